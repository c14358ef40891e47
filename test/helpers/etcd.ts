// Starts a single-member etcd (Debian's /usr/bin/etcd) on free loopback ports with a temporary
// data directory, for the cluster tests; stop() kills it and removes the directory.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './broker';

export interface StartedEtcd {
  /** http://127.0.0.1:<client port> */
  endpoint: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  /** kill -9, or another signal such as SIGTERM (the data directory stays), for restart tests. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports and data directory, once healthy. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  output(): string;
}

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 500 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

interface Running {
  exited: () => boolean;
  exit: Promise<void>;
  kill: (signal: NodeJS.Signals) => void;
}

export async function startEtcd(): Promise<StartedEtcd> {
  const clientPort = await freePort();
  let peerPort = await freePort();
  while (peerPort === clientPort) peerPort = await freePort();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'leveret-etcd-'));
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    ['--name', 'test'],
    ['--data-dir', dataDir],
    ['--listen-client-urls', client],
    ['--advertise-client-urls', client],
    ['--listen-peer-urls', peer],
    ['--initial-advertise-peer-urls', peer],
    ['--initial-cluster', `test=${peer}`],
    ['--initial-cluster-state', 'new'], // ignored on restart: the data directory has the cluster
    ['--logger', 'zap'],
    ['--log-level', 'warn'],
  ].flat();
  let out = '';

  const launch = async (): Promise<Running> => {
    const child = spawn(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let exited = false;
    const exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        exited = true;
        resolve();
      }),
    );
    child.once('error', (e) => (out += `\n[spawn error] ${e.message}\n`));
    const deadline = Date.now() + 15_000;
    while (!(await healthy(clientPort))) {
      if (exited || Date.now() > deadline) {
        if (!exited) child.kill('SIGKILL');
        await exit;
        throw new Error(`etcd did not become healthy on ${client}:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return { exited: () => exited, exit, kill: (signal) => child.kill(signal) };
  };

  let running: Running;
  try {
    running = await launch();
  } catch (err) {
    await fs.rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (!running.exited()) running.kill(signal);
    await running.exit;
  };
  let stopping: Promise<void> | undefined;
  return {
    endpoint: client,
    clientPort,
    peerPort,
    dataDir,
    output: () => out,
    kill,
    async restart() {
      await kill();
      running = await launch();
    },
    stop() {
      stopping ??= (async () => {
        await kill();
        await fs.rm(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
