// Issue 15, point 4: real clients reconnect after a failover. A three-node cluster (three
// dist/cli.js processes, one etcd, TTL 2 s); each client is given every node and uses only the
// retry an application normally has; the leader is killed with kill -9 while the client streams,
// and in the end every message the client got confirmed is consumed (duplicates allowed,
// counted).
// - amqplib: a publisher and a consumer, each with the small reconnect loop an application
//   writes (next node, 0.5 s pause); the publisher sends again what was not confirmed.
// - pika: BlockingConnection with the three nodes' parameters (connection_attempts,
//   retry_delay), confirm_delivery (conformance/cluster/pika_failover.py).
// - celery: a worker and a client with the three nodes as kombu's failover URL list,
//   confirm_publish, acks_late, a file:// result backend; tasks sent before the kill and during
//   the failover all complete (conformance/cluster/celery_failover.py).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, settled, useCluster, type LeveretNode } from './helpers/cluster';
import { drain } from './helpers/total-queue';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const h = useCluster();
const LEADING = 'cluster: leading (serving AMQP, HTTP and replication)';
const PY_DIR = path.join(ROOT, 'conformance', 'cluster');

async function until<T>(what: string, f: () => T | undefined | null | false, timeoutMs: number, dump: () => string = () => ''): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms\n${dump()}`);
    await sleep(20);
  }
}

const dumpAll = (nodes: LeveretNode[]) => () => nodes.map((n) => `== ${n.name}\n${n.tail(30)}`).join('\n');

/** The node leading a term above `term`, once it serves. */
function newLeader(nodes: LeveretNode[], term: number): { node: LeveretNode; term: number; at: number } | undefined {
  for (const node of nodes) {
    const l = node.logs(LEADING).find((x) => (x.term as number) > term);
    if (l) return { node, term: l.term as number, at: l.time };
  }
  return undefined;
}

function served(c: amqp.ChannelModel): string {
  return (c.connection as unknown as { serverProperties: { node?: string } }).serverProperties.node ?? '?';
}

/** Kills the leader with kill -9 and waits for another node to serve; returns the timings. */
async function killLeader(nodes: LeveretNode[], leader: LeveretNode, term: number) {
  const killedAt = Date.now();
  leader.signal('SIGKILL');
  await leader.exited;
  const next = await until('a new leader', () => newLeader(nodes, term), 20_000, dumpAll(nodes));
  return { killedAt, next };
}

interface Py {
  child: ChildProcess;
  out: () => string;
  lines: () => string[];
  exited: Promise<number | null>;
}

function runPython(args: string[], env: NodeJS.ProcessEnv = {}): Py {
  const child = spawn(PYTHON, args, {
    cwd: PY_DIR,
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, lines: () => out.split('\n'), exited };
}

function tailOf(text: string, n = 40): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

describe('real clients reconnect after a failover (kill -9 of the leader)', () => {
  let pythonProblem: string | null = null;
  beforeAll(() => {
    pythonProblem = ensurePythonModules(
      ['pika', 'celery', 'kombu'],
      ['python3-pika', 'python3-celery', 'python3-kombu'],
      'The cluster client tests',
    );
  }, INSTALL_TIMEOUT_MS);

  it(
    'amqplib with an application retry loop: publisher via the leader, consumer via a follower; every confirmed message consumed',
    { timeout: 120_000 },
    async () => {
      const nodes = await h.startCluster();
      const { leader, followers, term } = await settled(nodes);
      const queue = 'cl-amqplib';
      const urls = [leader, ...followers].map((n) => n.url);
      const TOTAL = 4000;
      const BATCH = 20;
      const confirmed = new Set<string>();
      const consumed = new Map<string, number>();
      const pubConnections: Array<{ node: string; at: number }> = [];
      const subConnections: Array<{ node: string; at: number }> = [];
      let pubErrors = 0;
      let subErrors = 0;
      let stop = false;

      // What an application writes: connect to the next URL, publish in confirmed batches, and on
      // any failure pause, reconnect and send the unconfirmed batch again.
      const publisher = (async () => {
        let next = 0;
        let seq = 0;
        while (seq < TOTAL) {
          try {
            const conn = await amqp.connect(urls[next++ % urls.length], { timeout: 3000 });
            conn.on('error', () => undefined);
            pubConnections.push({ node: served(conn), at: Date.now() });
            const ch = await conn.createConfirmChannel();
            ch.on('error', () => undefined);
            await ch.assertQueue(queue, { durable: true });
            while (seq < TOTAL) {
              const ids = Array.from({ length: BATCH }, (_, i) => `a-${seq + i + 1}`);
              for (const id of ids) ch.sendToQueue(queue, Buffer.from(id), { persistent: true, messageId: id });
              await ch.waitForConfirms();
              for (const id of ids) confirmed.add(id);
              seq += BATCH;
              await sleep(5);
            }
            await conn.close();
          } catch {
            pubErrors++;
            await sleep(500);
          }
        }
      })();

      // The consumer: the same loop, starting at a follower (its proxy forwards to the leader).
      const consumer = (async () => {
        let next = 1;
        while (!stop) {
          try {
            const conn = await amqp.connect(urls[next++ % urls.length], { timeout: 3000 });
            conn.on('error', () => undefined);
            subConnections.push({ node: served(conn), at: Date.now() });
            const closed = new Promise<void>((r) => conn.on('close', () => r()));
            const ch = await conn.createChannel();
            ch.on('error', () => undefined);
            await ch.assertQueue(queue, { durable: true });
            await ch.prefetch(100);
            await ch.consume(queue, (m) => {
              if (!m) return;
              const id = m.content.toString();
              consumed.set(id, (consumed.get(id) ?? 0) + 1);
              ch.ack(m);
            });
            while (!stop) {
              const ended = await Promise.race([closed.then(() => true), sleep(100).then(() => false)]);
              if (ended) throw new Error('connection closed');
            }
            await conn.close().catch(() => undefined);
          } catch {
            if (!stop) subErrors++;
            await sleep(500);
          }
        }
      })();

      try {
        await until('1000 confirmed', () => confirmed.size >= 1000, 20_000, dumpAll(nodes));
        const { killedAt, next } = await killLeader(nodes, leader, term);
        const atKill = confirmed.size;
        await until(
          'confirms after the failover',
          () => confirmed.size >= atKill + 500 || confirmed.size === TOTAL,
          30_000,
          dumpAll(nodes),
        );
        const resumedAt = Date.now();
        await publisher;
        await until(
          'every confirmed message consumed',
          () => [...confirmed].every((id) => consumed.has(id)),
          30_000,
          () => `missing ${[...confirmed].filter((id) => !consumed.has(id)).length}\n${dumpAll(nodes)()}`,
        );
        stop = true;
        await consumer;
        const dup = [...consumed.values()].filter((n) => n > 1).length;
        const unknown = [...consumed.keys()].filter((id) => !/^a-\d+$/.test(id));
        const pubBack = pubConnections.find((c) => c.at > killedAt);
        const subBack = subConnections.find((c) => c.at > killedAt);
        const since = (c: { node: string; at: number } | undefined) => (c ? `${c.at - killedAt} ms (served by ${c.node})` : 'never');
        console.log(
          `amqplib: ${confirmed.size} confirmed, ${consumed.size} distinct consumed (${dup} twice or more), lost 0; ` +
            `${next.node.name} led term ${next.term} ${next.at - killedAt} ms after the kill; publisher reconnected after ${since(pubBack)} ` +
            `(${pubErrors} failed tries), consumer after ${since(subBack)} (${subErrors} failed tries); 500 more confirms ${resumedAt - killedAt} ms after the kill`,
        );
        expect(confirmed.size).toBe(TOTAL);
        expect(unknown).toEqual([]);
        // both reconnected to the new leader, directly or through a follower
        expect(pubBack?.node).toBe(next.node.name);
        expect(subBack?.node).toBe(next.node.name);
      } finally {
        stop = true;
      }
    },
  );

  it(
    'pika BlockingConnection with the three nodes (connection_attempts, retry_delay) and confirm_delivery, through a follower: every confirmed message consumed',
    { timeout: 120_000 },
    async () => {
      expect(pythonProblem, pythonProblem ?? '').toBeNull();
      const nodes = await h.startCluster();
      const { leader, followers, term } = await settled(nodes);
      const queue = 'cl-pika';
      const TOTAL = 3000;
      // a follower first: pika connects through its proxy
      const ports = [followers[0], leader, followers[1]].map((n) => n.port);
      const py = runPython(['pika_failover.py', ports.join(','), queue, String(TOTAL), 'k']);
      const confirmedIds = () =>
        py
          .lines()
          .filter((l) => l.startsWith('C '))
          .map((l) => l.split(' ')[1]);
      const pyDump = () => `pika output:\n${tailOf(py.out())}\n${dumpAll(nodes)()}`;
      try {
        await until('pika: 800 confirmed', () => confirmedIds().length >= 800, 30_000, pyDump);
        const { killedAt, next } = await killLeader(nodes, leader, term);
        const code = await Promise.race([py.exited, sleep(90_000).then(() => 'timeout' as const)]);
        expect(code, pyDump()).toBe(0);
        const ids = confirmedIds();
        const got = await drain({ host: '127.0.0.1', port: next.node.port }, [queue]);
        const lost = ids.filter((id) => !got.has(id));
        const dup = [...got.values()].filter((n) => n > 1).length;
        const unknown = [...got.keys()].filter((id) => !/^k-\d+$/.test(id));
        const errors = py.lines().filter((l) => l.startsWith('E '));
        const connects = py.lines().filter((l) => l.startsWith('CONNECTED '));
        const reconnect = connects.map((l) => l.split(' ')).find((p) => Number(p[2]) * 1000 > killedAt);
        console.log(
          `pika: ${ids.length} confirmed, ${got.size} distinct consumed (${dup} twice or more), lost ${lost.length}; ` +
            `${next.node.name} led term ${next.term} ${next.at - killedAt} ms after the kill; pika reconnected (served by ${reconnect?.[1]}) ` +
            `${reconnect ? Math.round(Number(reconnect[2]) * 1000 - killedAt) : '?'} ms after it; errors: ${errors.map((e) => e.slice(2, 90)).join(' | ')}`,
        );
        expect(new Set(ids).size).toBe(TOTAL);
        expect(lost, 'confirmed to pika, never consumed').toEqual([]);
        expect(unknown).toEqual([]);
        expect(errors.length).toBeGreaterThan(0); // it did live through the failover
        expect(reconnect?.[1]).toBe(next.node.name);
      } finally {
        py.child.kill('SIGKILL');
      }
    },
  );

  it(
    'celery worker and client with the three nodes as failover URLs: tasks sent before the kill and during the failover all complete',
    { timeout: 180_000 },
    async () => {
      expect(pythonProblem, pythonProblem ?? '').toBeNull();
      const nodes = await h.startCluster();
      const { leader, followers, term } = await settled(nodes);
      const results = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-celery-results-'));
      const prefix = `cl-celery-${process.pid}`;
      const env = {
        LEVERET_CLUSTER_PORTS: [followers[0], leader, followers[1]].map((n) => n.port).join(','),
        LEVERET_CELERY_PREFIX: prefix,
        LEVERET_CELERY_RESULTS: results,
      };
      const worker = runPython(
        [
          '-m',
          'celery',
          '-A',
          'celery_failover',
          'worker',
          '--pool=threads',
          '--concurrency=4',
          '-l',
          'warning',
          '--without-gossip',
          '--without-mingle',
          '-n',
          `${prefix}@%h`,
        ],
        env,
      );
      const BEFORE = 60;
      const AFTER = 60;
      const client = runPython(['celery_failover.py', String(BEFORE), String(AFTER)], env);
      const dump = () => `client:\n${tailOf(client.out())}\nworker:\n${tailOf(worker.out())}\n${dumpAll(nodes)()}`;
      const t0 = Date.now();
      try {
        await until('the worker ready', () => worker.out().includes('LEVERET-CELERY-WORKER-READY'), 60_000, dump);
        const readyMs = Date.now() - t0;
        await until('the client sent the first tasks', () => client.out().includes('WAITING'), 60_000, dump);
        const executions = () => {
          const f = path.join(results, 'executions.log');
          return fs.existsSync(f)
            ? fs
                .readFileSync(f, 'utf8')
                .split('\n')
                .filter(Boolean)
                .map((l) => {
                  const [tag, at] = l.split(' ');
                  return { tag, at: Number(at) * 1000 };
                })
            : [];
        };
        const ranBefore = executions().length;
        const { killedAt, next } = await killLeader(nodes, leader, term);
        // the kill came first: the next tasks are sent while the cluster fails over
        client.child.stdin!.write('go\n');
        const code = await Promise.race([client.exited, sleep(150_000).then(() => 'timeout' as const)]);
        const allDoneMs = Date.now() - killedAt;
        const done = client.lines().filter((l) => l.startsWith('DONE ') && l.endsWith(' ok'));
        const sentAfter = client.lines().filter((l) => l.startsWith('SENT after-'));
        const firstAfter = sentAfter.length ? Math.round(Number(sentAfter[0].split(' ')[2]) * 1000 - killedAt) : NaN;
        const lastAfter = sentAfter.length ? Math.round(Number(sentAfter[sentAfter.length - 1].split(' ')[2]) * 1000 - killedAt) : NaN;
        const workerLost = (worker.out().match(/Connection to broker lost/g) ?? []).length;
        const ran = executions();
        const tags = new Set(ran.map((r) => r.tag));
        const twice = ran.length - tags.size;
        const firstRunAfter = Math.min(...ran.filter((r) => r.at > killedAt).map((r) => r.at)) - killedAt;
        const lastRun = Math.max(...ran.map((r) => r.at)) - killedAt;
        console.log(
          `celery: worker ready ${readyMs} ms after start; ${BEFORE} tasks sent before the kill (${ranBefore} had run by then), ${AFTER} sent after it ` +
            `(first confirmed ${firstAfter} ms, last ${lastAfter} ms after the kill); ${next.node.name} led term ${next.term} ${next.at - killedAt} ms after the kill; ` +
            `${done.length} of ${BEFORE + AFTER} completed, first task run after the kill ${firstRunAfter} ms after it, last ${lastRun} ms, every result read ${allDoneMs} ms after the kill; ${ran.length} executions (${twice} repeated: redelivered after the failover); ` +
            `the worker logged "Connection to broker lost" ${workerLost} time(s); client exit ${code}`,
        );
        expect(code, dump()).toBe(0);
        expect(client.out()).toContain('ALL DONE');
        expect(done.length).toBe(BEFORE + AFTER);
        expect(tags.size).toBe(BEFORE + AFTER);
        expect(ranBefore).toBeLessThan(BEFORE); // some tasks sent before the kill were still to run
      } finally {
        client.child.kill('SIGKILL');
        worker.child.kill('SIGTERM');
        await Promise.race([worker.exited, sleep(8000)]);
        worker.child.kill('SIGKILL');
        fs.rmSync(results, { recursive: true, force: true });
      }
    },
  );
});
