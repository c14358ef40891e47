// Starts a Leveret broker for a test suite (or uses LEVERET_TEST_URL).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface StartedBroker {
  url: string;
  port: number;
  httpPort: number;
  dataDir: string;
  pid?: number;
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  output(): string;
}

export interface StartBrokerOptions {
  args?: string[];
  env?: Record<string, string>;
}

/** The checkout holding dist/cli.js, also when this file runs compiled from another directory. */
function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'src', 'cli.ts'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(start, '..', '..');
  }
}

const REPO_ROOT = findRepoRoot(__dirname);

/** True when the suites run against an external broker (e.g. RabbitMQ). */
export const EXTERNAL_BROKER = !!process.env.LEVERET_TEST_URL;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (!addr || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not get a free port'));
        return;
      }
      const port = addr.port;
      srv.close(() => resolve(port));
    });
  });
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      s.removeAllListeners();
      s.on('error', () => {});
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export async function startBroker(opts: StartBrokerOptions = {}): Promise<StartedBroker> {
  const external = process.env.LEVERET_TEST_URL;
  if (external) {
    const u = new URL(external);
    const port = u.port ? Number(u.port) : 5672;
    return {
      url: external,
      port,
      httpPort: Number(process.env.LEVERET_TEST_HTTP_PORT ?? 15672),
      dataDir: '',
      async stop() {},
      kill() {},
      output: () => '',
    };
  }

  const port = await freePort();
  let httpPort = await freePort();
  while (httpPort === port) httpPort = await freePort();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'leveret-test-'));
  const cli = path.join(REPO_ROOT, 'dist', 'cli.js');
  const args = [cli, '--port', String(port), '--http-port', String(httpPort), '--data-dir', dataDir, ...(opts.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  child.once('error', (e) => {
    out += `\n[spawn error] ${e.message}\n`;
  });

  const cleanup = async () => {
    await fs.rm(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) {
      await cleanup();
      throw new Error(`broker exited before accepting connections (code ${child.exitCode}, signal ${child.signalCode}):\n${out}`);
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exitPromise;
      await cleanup();
      throw new Error(`broker did not accept connections on port ${port} within 10 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  let stopped: Promise<void> | undefined;
  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    port,
    httpPort,
    dataDir,
    pid: child.pid,
    stop() {
      if (!stopped) {
        stopped = (async () => {
          if (!exited) {
            child.kill('SIGTERM');
            const t = setTimeout(() => {
              if (!exited) child.kill('SIGKILL');
            }, 5000);
            await exitPromise;
            clearTimeout(t);
          }
          await cleanup();
        })();
      }
      return stopped;
    },
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (!exited) child.kill(signal);
    },
    output: () => out,
  };
}
