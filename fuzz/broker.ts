/**
 * The broker under test: a Leveret the harness starts from dist/cli.js (or one given by
 * --uri), its resident memory from /proc, its log lines counted by level, and the
 * management API for tidying up between rounds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

export interface Target {
  host: string;
  port: number;
  httpPort: number | null;
  url: string;
  /** null when the broker is not ours (no memory figures then) */
  pid: number | null;
  alive(): boolean;
  /** log lines at error level (50) and above, the latest few */
  errors: string[];
  /** log lines by pino level */
  levels: Record<string, number>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** The checkout's root, from fuzz/ or from fuzz/dist/fuzz/. */
function repoRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      if (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name === 'leveret') return dir;
    } catch {
      // not here
    }
  }
  throw new Error('cannot find the leveret checkout');
}

export async function startLeveret(extraArgs: string[] = []): Promise<Target> {
  const port = await freePort();
  let httpPort = await freePort();
  while (httpPort === port) httpPort = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'leveret-fuzz-'));
  const root = repoRoot();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(root, 'dist', 'cli.js'),
      '--port',
      String(port),
      '--http-port',
      String(httpPort),
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      '--heartbeat',
      '0',
      ...extraArgs,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const errors: string[] = [];
  const levels: Record<string, number> = {};
  const onLine = (line: string): void => {
    let level = 'text';
    try {
      level = String((JSON.parse(line) as { level?: number }).level ?? 'text');
    } catch {
      // a line not from pino: stderr (a crash says so there)
    }
    levels[level] = (levels[level] ?? 0) + 1;
    if (level === 'text' || Number(level) >= 50) {
      errors.push(line.length > 4000 ? line.slice(0, 4000) + '...' : line);
      if (errors.length > 50) errors.shift();
    }
  };
  readline.createInterface({ input: child.stdout! }).on('line', onLine);
  readline.createInterface({ input: child.stderr! }).on('line', onLine);
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the broker did not start: ${errors.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: '127.0.0.1',
    port,
    httpPort,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    pid: child.pid ?? null,
    alive: () => !exited,
    errors,
    levels,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A broker someone else runs: no memory figures, no log. */
export function externalTarget(uri: string, httpPort: number | null): Target {
  const u = new URL(uri);
  return {
    host: u.hostname,
    port: Number(u.port || 5672),
    httpPort,
    url: uri,
    pid: null,
    alive: () => true,
    errors: [],
    levels: {},
    async stop() {},
  };
}

/** VmRSS in bytes, or null when the process is gone or not ours. */
export function rssOf(pid: number | null): number | null {
  if (pid === null) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function api(t: Target, method: string, p: string): Promise<unknown> {
  const res = await fetch(`http://${t.host}:${t.httpPort}${p}`, {
    method,
    headers: { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') },
  });
  if (method === 'GET') return res.json();
  await res.arrayBuffer();
  return null;
}

/**
 * Deletes what the fuzzing left behind in a broker of our own (every queue, every
 * exchange but the predeclared ones; mutated names can be anything), so that rounds
 * start alike and memory is compared like with like.
 */
export async function tidy(t: Target): Promise<void> {
  if (t.httpPort === null || t.pid === null) return;
  const queues = (await api(t, 'GET', '/api/queues/%2F?columns=name')) as { name: string }[];
  for (const q of queues) await api(t, 'DELETE', `/api/queues/%2F/${encodeURIComponent(q.name)}`);
  const exchanges = (await api(t, 'GET', '/api/exchanges/%2F?columns=name')) as { name: string }[];
  for (const x of exchanges)
    if (x.name !== '' && !x.name.startsWith('amq.')) await api(t, 'DELETE', `/api/exchanges/%2F/${encodeURIComponent(x.name)}`);
}

/** How many AMQP connections the broker still holds. */
export async function connectionCount(t: Target): Promise<number | null> {
  if (t.httpPort === null) return null;
  return ((await api(t, 'GET', '/api/connections?columns=name')) as unknown[]).length;
}
