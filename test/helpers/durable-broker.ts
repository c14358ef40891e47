// Spawns Leveret brokers on a data directory the caller owns, for restart and crash tests.
// Unlike helpers/broker.ts, the data directory outlives the broker (so a second broker can
// recover it), kill() waits for the child's 'exit' event (so the next broker never races a
// dying one for the lock), and a broker that refuses to start is reported, not thrown.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { canConnect, freePort } from './broker';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

export interface DurableBroker {
  url: string;
  port: number;
  /** the management HTTP port */
  httpPort: number;
  dataDir: string;
  pid: number;
  /** SIGTERM, then wait for exit (SIGKILL after 8 s). Resolves with the exit code. */
  stop(): Promise<number | null>;
  /** kill -9 and wait for the 'exit' event. */
  crash(): Promise<void>;
  /** Everything the broker wrote to stdout and stderr so far. */
  output(): string;
  /** Parsed JSON log lines (stdout) so far. */
  logLines(): Array<Record<string, unknown>>;
  readonly exited: boolean;
}

export interface FailedStart {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** A fresh, empty temporary directory; the data directory is a not-yet-existing child of it. */
export async function tempDataDir(prefix = 'leveret-durable-'): Promise<string> {
  const base = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  return path.join(base, 'data');
}

/** Removes what tempDataDir made. */
export async function removeDataDir(dataDir: string): Promise<void> {
  await fsp.rm(path.dirname(dataDir), { recursive: true, force: true });
}

interface Spawned {
  child: ChildProcess;
  port: number;
  httpPort: number;
  out: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isExited: () => boolean;
}

async function spawnBroker(dataDir: string, extraArgs: string[]): Promise<Spawned> {
  const port = await freePort();
  let httpPort = await freePort();
  while (httpPort === port) httpPort = await freePort();
  const child = spawn(
    process.execPath,
    [CLI, '--port', String(port), '--http-port', String(httpPort), '--data-dir', dataDir, ...extraArgs],
    {
      cwd: REPO_ROOT,
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  child.once('error', (e) => (out += `\n[spawn error] ${e.message}\n`));
  return { child, port, httpPort, out: () => out, exit, isExited: () => exited };
}

/**
 * Starts a broker on `dataDir` and waits until it accepts AMQP connections. Throws (with
 * the broker's output) if it exits first or takes more than 10 s.
 */
export async function startOn(dataDir: string, extraArgs: string[] = []): Promise<DurableBroker> {
  const s = await spawnBroker(dataDir, extraArgs);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (s.isExited()) {
      const { code, signal } = await s.exit;
      throw new Error(`broker exited before accepting connections (code ${code}, signal ${signal}):\n${s.out()}`);
    }
    if (await canConnect(s.port)) break;
    if (Date.now() > deadline) {
      s.child.kill('SIGKILL');
      await s.exit;
      throw new Error(`broker did not accept connections on port ${s.port} within 10 s:\n${s.out()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `amqp://guest:guest@127.0.0.1:${s.port}`,
    port: s.port,
    httpPort: s.httpPort,
    dataDir,
    pid: s.child.pid!,
    async stop() {
      if (!s.isExited()) {
        s.child.kill('SIGTERM');
        const t = setTimeout(() => s.child.kill('SIGKILL'), 8000);
        const { code } = await s.exit;
        clearTimeout(t);
        return code;
      }
      return (await s.exit).code;
    },
    async crash() {
      if (!s.isExited()) s.child.kill('SIGKILL');
      await s.exit;
    },
    output: s.out,
    logLines: () => parseLogLines(s.out()),
    get exited() {
      return s.isExited();
    },
  };
}

/**
 * Starts a broker that is expected to refuse to start. Resolves with its exit status and
 * output; throws if it is still running (and accepting connections) after `timeoutMs`.
 */
export async function expectStartFailure(dataDir: string, timeoutMs = 8000): Promise<FailedStart> {
  const s = await spawnBroker(dataDir, []);
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  const r = await Promise.race([s.exit, timer]);
  if (r === 'timeout') {
    const listening = await canConnect(s.port);
    s.child.kill('SIGKILL');
    await s.exit;
    throw new Error(`broker did not refuse to start within ${timeoutMs} ms (listening: ${listening}):\n${s.out()}`);
  }
  return { code: r.code, signal: r.signal, output: s.out() };
}

export function parseLogLines(out: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const l of out.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  }
  return lines;
}

// ---------------------------------------------------------------- on-disk layout

/** queues/<sha1(vhost + "\0" + name)> */
export function queueDir(dataDir: string, queue: string, vhost = '/'): string {
  return path.join(dataDir, 'queues', createHash('sha1').update(`${vhost}\0${queue}`).digest('hex'));
}

/** The queue's .seg files, oldest first (full paths). */
export function segmentFiles(dataDir: string, queue: string, vhost = '/'): string[] {
  const dir = queueDir(dataDir, queue, vhost);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .sort()
    .map((f) => path.join(dir, f));
}

export interface SegmentRecord {
  /** offset of the record (its u32 length) in the segment */
  offset: number;
  /** whole record size: 8-byte header plus payload */
  size: number;
  body: Buffer;
}

/** Splits a segment file into its records (u32 length, u32 crc32, payload). */
export function readSegmentRecords(file: string): SegmentRecord[] {
  const data = fs.readFileSync(file);
  const out: SegmentRecord[] = [];
  let pos = 0;
  while (pos + 8 <= data.length) {
    const len = data.readUInt32BE(pos);
    if (pos + 8 + len > data.length) break;
    // payload: u8 flags, u64 published-at, shortstr exchange, shortstr routing key, u32 props length, props, body
    let p = pos + 8 + 1 + 8;
    p += 1 + data[p];
    p += 1 + data[p];
    const propsLen = data.readUInt32BE(p);
    p += 4 + propsLen;
    out.push({ offset: pos, size: 8 + len, body: Buffer.from(data.subarray(p, pos + 8 + len)) });
    pos += 8 + len;
  }
  return out;
}

/** Every file under dir (relative path -> bytes), for before/after comparisons. */
export function snapshotFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) {
        out.set(path.relative(dir, full) + '/', Buffer.alloc(0));
        walk(full);
      } else out.set(path.relative(dir, full), fs.readFileSync(full));
    }
  };
  walk(dir);
  return out;
}
