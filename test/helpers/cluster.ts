// The harness of the cluster tests (issue 15): one real etcd per test file, Leveret nodes as
// dist/cli.js processes with the cluster flags, their JSON logs parsed, and AMQP probes.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import net from 'node:net';
import { startEtcd, type StartedEtcd } from './etcd';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const TTL = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LogLine {
  time: number;
  msg: string;
  [k: string]: unknown;
}

export class LeveretNode {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';
  private partial = '';
  private proc: ChildProcessWithoutNullStreams;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly httpPort: number,
    readonly dataDir: string,
    readonly args: string[],
    /** where this node's client ports listen (a partition test gives each node its own loopback address) */
    readonly host = '127.0.0.1',
  ) {
    this.proc = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d: Buffer) => {
      const lines = (this.partial + d.toString()).split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.trim()) continue;
        try {
          this.lines.push(JSON.parse(l) as LogLine);
        } catch {
          this.stderr += l + '\n';
        }
      }
    });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  get url(): string {
    return `amqp://guest:guest@${this.host}:${this.port}`;
  }

  logs(msg: string): LogLine[] {
    return this.lines.filter((l) => l.msg === msg);
  }

  async waitLog(msg: string, pred: (l: LogLine) => boolean = () => true, timeoutMs = 15_000): Promise<LogLine> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => l.msg === msg && pred(l));
      if (hit) return hit;
      if (Date.now() > until) throw new Error(`${this.name}: no log "${msg}" within ${timeoutMs} ms\n${this.tail()}`);
      await sleep(20);
    }
  }

  tail(n = 25): string {
    return (
      this.lines
        .slice(-n)
        .map(
          (l) =>
            `${l.time} ${l.msg} ${JSON.stringify({ ...l, msg: undefined, time: undefined, pid: undefined, hostname: undefined, level: undefined })}`,
        )
        .join('\n') + `\nstderr: ${this.stderr}`
    );
  }

  /** null while running */
  exitCode(): number | null {
    return this.proc.exitCode ?? (this.proc.signalCode !== null ? -1 : null);
  }

  get errText(): string {
    return this.stderr;
  }
}

const handedOut = new Set<number>();

/**
 * A free port below Linux's ephemeral range (32768-60999): a killed node's ports are reused by
 * its restart, and a port from the ephemeral range may meanwhile be taken as the local port of
 * some outgoing connection (the publishers and probes make many), failing the restart with
 * EADDRINUSE.
 */
export async function clusterPort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
}

export interface NodeOptions {
  extra?: string[];
  /** reuse a directory and ports (a restarted node) */
  dataDir?: string;
  port?: number;
  httpPort?: number;
  replicationPort?: number;
  /** --host (all listeners) and --advertise-host */
  host?: string;
  advertiseHost?: string;
}

/**
 * The processes of a cluster test: one etcd for the file (started in beforeAll), Leveret nodes
 * killed after each test, data directories removed after the file.
 */
export class ClusterHarness {
  etcd!: StartedEtcd;
  readonly running: LeveretNode[] = [];
  readonly dirs: string[] = [];
  private seq = 0;

  newClusterName(): string {
    return `cn${process.pid}-${++this.seq}`;
  }

  async startNode(cluster: string, name: string, extraOrOpts: string[] | NodeOptions = []): Promise<LeveretNode> {
    const o: NodeOptions = Array.isArray(extraOrOpts) ? { extra: extraOrOpts } : extraOrOpts;
    const port = o.port ?? (await clusterPort());
    const httpPort = o.httpPort ?? (await clusterPort());
    const replicationPort = o.replicationPort ?? (await clusterPort());
    const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `leveret-cluster-${name}-`));
    if (!this.dirs.includes(dataDir)) this.dirs.push(dataDir);
    const host = o.host ?? '127.0.0.1';
    const args = [
      ['--cluster-etcd', this.etcd.endpoint],
      ['--cluster-name', cluster],
      ['--node-name', name],
      ['--host', host],
      ['--port', String(port)],
      ['--http-port', String(httpPort)],
      ['--replication-port', String(replicationPort)],
      ['--cluster-lease-ttl', String(TTL)],
      ['--data-dir', dataDir],
      ['--log-format', 'json'],
      o.advertiseHost ? ['--advertise-host', o.advertiseHost] : [],
    ].flat();
    const node = new LeveretNode(name, port, httpPort, dataDir, [...args, ...(o.extra ?? [])], host);
    this.running.push(node);
    return node;
  }

  /** The same node again: its name, directory, ports and flags. */
  restart(old: LeveretNode): LeveretNode {
    const node = new LeveretNode(old.name, old.port, old.httpPort, old.dataDir, old.args, old.host);
    this.running.push(node);
    return node;
  }

  async startCluster(extra: string[] = []): Promise<LeveretNode[]> {
    const cluster = this.newClusterName();
    return Promise.all(['n1', 'n2', 'n3'].map((n) => this.startNode(cluster, n, extra)));
  }

  async killAll(): Promise<void> {
    for (const n of this.running.splice(0)) {
      n.signal('SIGCONT');
      n.signal('SIGKILL');
      await n.exited;
    }
  }
}

/** A harness with its vitest hooks registered (call at the top of a test file). */
export function useCluster(): ClusterHarness {
  const h = new ClusterHarness();
  beforeAll(async () => {
    h.etcd = await startEtcd();
  }, 30_000);
  afterEach(() => h.killAll());
  afterAll(async () => {
    await h.etcd?.stop();
    for (const d of h.dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  return h;
}

/** Waits until one node serves and the others caught up from it. */
export async function settled(
  nodes: LeveretNode[],
  timeoutMs = 20_000,
): Promise<{ leader: LeveretNode; followers: LeveretNode[]; term: number }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const serving = nodes.filter((n) => n.logs('cluster: leading (serving AMQP, HTTP and replication)').length > 0);
    if (serving.length === 1) {
      const leader = serving[0];
      const term = leader.logs('cluster: leading (serving AMQP, HTTP and replication)')[0].term as number;
      const followers = nodes.filter((n) => n !== leader);
      const caughtUp = followers.every((f) => f.logs('cluster: data directory in step with the leader').some((l) => l.term === term));
      if (caughtUp) return { leader, followers, term };
    }
    if (Date.now() > until)
      throw new Error(`cluster did not settle within ${timeoutMs} ms:\n${nodes.map((n) => `== ${n.name}\n${n.tail()}`).join('\n')}`);
    await sleep(50);
  }
}

/** An AMQP connection that completes its handshake within `ms`, else null (and closed if it opens later). */
export async function tryAmqp(port: number, ms: number, host = '127.0.0.1'): Promise<amqp.ChannelModel | null> {
  const pending = amqp.connect(`amqp://guest:guest@${host}:${port}`);
  const timeout = new Promise<null>((r) => setTimeout(() => r(null), ms));
  const won = await Promise.race([pending.catch(() => null), timeout]);
  if (won === null) {
    void pending.then(
      (c) => c.close().catch(() => undefined),
      () => undefined,
    );
  }
  return won;
}

/** The node that served an AMQP connection made to `port` (a follower forwards to the leader), or null when refused. */
export async function servedBy(port: number, ms = 5000, host = '127.0.0.1'): Promise<string | null> {
  const c = await tryAmqp(port, ms, host);
  if (c === null) return null;
  const node = (c.connection as unknown as { serverProperties: { node?: string } }).serverProperties.node ?? null;
  c.on('error', () => undefined);
  await c.close().catch(() => undefined);
  return node;
}

export async function publishConfirmed(conn: amqp.ChannelModel, queue: string): Promise<void> {
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(queue, { durable: true });
  ch.sendToQueue(queue, Buffer.from('hello'), { persistent: true });
  await ch.waitForConfirms();
  await ch.close();
}

export interface Accepted {
  node: string;
  at: number;
}

/**
 * Tries an AMQP handshake with every node every `everyMs`, without waiting for earlier tries (a
 * paused node holds them until it resumes: a handshake it completes then is counted then).
 * Records each completed handshake with its time.
 */
export function probe(nodes: LeveretNode[], everyMs = 100): { stop: () => Promise<Accepted[]>; accepted: () => Accepted[] } {
  const accepted: Accepted[] = [];
  const tries: Promise<void>[] = [];
  const timer = setInterval(() => {
    for (const n of nodes) {
      tries.push(
        amqp.connect(n.url).then(
          (c) => {
            // A follower forwards to the leader: what counts is the node that served.
            const served = (c.connection as unknown as { serverProperties: { node?: string } }).serverProperties.node;
            accepted.push({ node: served ?? n.name, at: Date.now() });
            c.on('error', () => undefined);
            return c.close().catch(() => undefined);
          },
          () => undefined,
        ),
      );
    }
  }, everyMs);
  return {
    accepted: () => accepted,
    async stop() {
      clearInterval(timer);
      // Tries stuck on a paused node end when it resumes (or is killed by afterEach).
      await Promise.race([Promise.all(tries), sleep(5000)]);
      return accepted;
    },
  };
}

/** Once another node accepted after one, the first never accepts again: no two serve at once. */
export function expectOneAtATime(accepted: Accepted[]): string[] {
  const order: string[] = [];
  for (const a of [...accepted].sort((x, y) => x.at - y.at)) if (order[order.length - 1] !== a.node) order.push(a.node);
  expect(new Set(order).size, `AMQP accepted by ${order.join(' → ')}`).toBe(order.length);
  return order;
}
