import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { settled, TTL, useCluster, type LeveretNode } from './helpers/cluster';
import { api, type ApiReply } from './helpers/http';

/**
 * Issue 15: definition changes wait for the in-sync followers, as confirms do. A durable
 * declare (AMQP) and a policy or exchange change (HTTP) are answered only once every follower
 * in the ISR holds them: with one of them paused, not before it leaves the ISR or resumes; and
 * a leader killed right after an answer leaves a successor that has the change.
 */
const h = useCluster();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When a promise settled (null while pending), and how. */
interface Timed<T> {
  at: number | null;
  value?: T;
  error?: Error;
  done: Promise<void>;
}

function timed<T>(p: Promise<T>): Timed<T> {
  const t: Timed<T> = { at: null, done: Promise.resolve() };
  t.done = p.then(
    (v) => {
      t.at = Date.now();
      t.value = v;
    },
    (e: Error) => {
      t.at = Date.now();
      t.error = e;
    },
  );
  return t;
}

interface NodeEntry {
  name: string;
  cluster_role?: string;
  in_sync?: boolean;
  replication?: { streaming: boolean };
}

/** Every member in the ISR and every follower streaming, as the leader's /api/nodes shows it. */
async function everyoneInSync(leader: LeveretNode): Promise<boolean> {
  const r = await api(leader.httpPort, 'GET', '/api/nodes').catch(() => null);
  if (r === null || r.status !== 200) return false;
  const all = r.json as NodeEntry[];
  return all.length === 3 && all.every((n) => n.in_sync === true && (n.cluster_role === 'leader' || n.replication?.streaming === true));
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms: number, dump: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${dump()}`);
    await sleep(50);
  }
}

const dumpAll = (nodes: LeveretNode[]) => () => nodes.map((n) => `== ${n.name}\n${n.tail(30)}`).join('\n');

const policyBody = { pattern: '^c15-', definition: { 'max-length': 1000 }, 'apply-to': 'queues', priority: 1 };

/** The definitions a node's data directory holds (its definitions.log, as text). */
const definitionsOf = (n: LeveretNode): string => fs.readFileSync(path.join(n.dataDir, 'definitions.log'), 'utf8');

async function allInSync(nodes: LeveretNode[]): Promise<{ leader: LeveretNode; followers: LeveretNode[]; term: number }> {
  const s = await settled(nodes);
  await until('the ISR has all three, streaming', () => everyoneInSync(s.leader), 20_000, dumpAll(nodes));
  return s;
}

describe('cluster: definition changes wait for the in-sync followers', () => {
  it(
    'a follower paused (--min-isr 1): a durable queue.declare and a policy PUT wait until it leaves the ISR, and the channel keeps its order',
    { timeout: 90_000 },
    async () => {
      const nodes = await h.startCluster(['--replication-max-lag', '3']);
      const { leader, followers } = await allInSync(nodes);
      const conn = await amqp.connect(leader.url);
      conn.on('error', () => undefined);
      try {
        const ch = await conn.createConfirmChannel();
        await ch.assertQueue('c15-transient', { durable: false });
        // Everyone in step: a declare answers at once.
        const t0 = Date.now();
        await ch.assertQueue('c15-before', { durable: true });
        const inStepMs = Date.now() - t0;

        const paused = followers[0];
        const stoppedAt = Date.now();
        paused.signal('SIGSTOP');
        const declared = timed(ch.assertQueue('c15-paused', { durable: true }));
        // Sent right behind the declare on the same channel: its confirm (a transient message,
        // nothing to sync) must not overtake the held declare-ok.
        let confirmedAt: number | null = null;
        ch.publish('', 'c15-transient', Buffer.from('x'), {}, () => (confirmedAt = Date.now()));
        const policy = timed(api(leader.httpPort, 'PUT', '/api/policies/%2F/c15-policy', { body: policyBody }));
        await sleep(1500);
        expect(declared.at, 'declare-ok while the paused follower is in the ISR').toBeNull();
        expect(policy.at, 'policy PUT answered while the paused follower is in the ISR').toBeNull();
        expect(confirmedAt, 'a later confirm overtook the held declare-ok').toBeNull();

        const dropped = await leader.waitLog(
          'replication: ISR changed',
          (l) => l.time >= stoppedAt && (l.removed as Array<{ node: string }>).some((r) => r.node === paused.name),
          30_000,
        );
        await declared.done;
        await policy.done;
        await until('the confirm', () => confirmedAt !== null, 5000, dumpAll(nodes));
        expect(declared.error).toBeUndefined();
        expect(policy.error).toBeUndefined();
        expect((policy.value as ApiReply).status).toBe(201);
        // Answered once the ISR no longer waited for the paused follower, not before.
        expect(declared.at!).toBeGreaterThanOrEqual(dropped.time - 200);
        expect(policy.at!).toBeGreaterThanOrEqual(dropped.time - 200);
        expect(confirmedAt!).toBeGreaterThanOrEqual(declared.at!);
        console.log(
          `paused follower: declare in step ${inStepMs} ms; ${paused.name} dropped ${dropped.time - stoppedAt} ms after SIGSTOP; ` +
            `declare-ok ${declared.at! - stoppedAt} ms, policy PUT ${policy.at! - stoppedAt} ms, later confirm ${confirmedAt! - stoppedAt} ms after it`,
        );
        // The follower still in the ISR holds both (it acked them).
        const other = followers[1];
        expect(definitionsOf(other)).toContain('"c15-paused"');
        expect(definitionsOf(other)).toContain('"c15-policy"');
        paused.signal('SIGCONT');
        await ch.close();
      } finally {
        await conn.close().catch(() => undefined);
      }
    },
  );

  it(
    'a follower paused and resumed before any lag bound: declare, exchange PUT and policy DELETE are answered only after it resumes',
    { timeout: 90_000 },
    async () => {
      const nodes = await h.startCluster(['--replication-max-lag', '60']);
      const { leader, followers } = await allInSync(nodes);
      const conn = await amqp.connect(leader.url);
      conn.on('error', () => undefined);
      try {
        const ch = await conn.createChannel();
        expect((await api(leader.httpPort, 'PUT', '/api/policies/%2F/c15-gone', { body: policyBody })).status).toBe(201);
        const paused = followers[1];
        paused.signal('SIGSTOP');
        const stoppedAt = Date.now();
        const declared = timed(ch.assertQueue('c15-resumed', { durable: true }));
        const exchange = timed(api(leader.httpPort, 'PUT', '/api/exchanges/%2F/c15-x', { body: { type: 'topic', durable: true } }));
        const unpolicy = timed(api(leader.httpPort, 'DELETE', '/api/policies/%2F/c15-gone'));
        await sleep(2500);
        expect(declared.at).toBeNull();
        expect(exchange.at).toBeNull();
        expect(unpolicy.at).toBeNull();
        const contAt = Date.now();
        paused.signal('SIGCONT');
        await Promise.all([declared.done, exchange.done, unpolicy.done]);
        expect(declared.error).toBeUndefined();
        expect((exchange.value as ApiReply).status).toBe(201);
        expect((unpolicy.value as ApiReply).status).toBe(204);
        for (const t of [declared, exchange, unpolicy]) expect(t.at!).toBeGreaterThanOrEqual(contAt);
        console.log(
          `resumed follower: paused ${contAt - stoppedAt} ms; answers ${declared.at! - contAt} / ${exchange.at! - contAt} / ${unpolicy.at! - contAt} ms after SIGCONT`,
        );
        expect(definitionsOf(paused)).toContain('"c15-resumed"');
        expect(definitionsOf(paused)).toContain('"c15-x"');
        await ch.close();
      } finally {
        await conn.close().catch(() => undefined);
      }
    },
  );

  it(
    'a leader that loses its lease while a declare and a policy PUT wait answers neither as done: 320 to the AMQP client, 503 to the HTTP one',
    { timeout: 90_000 },
    async () => {
      const nodes = await h.startCluster(['--replication-max-lag', '60']);
      const { leader, followers } = await allInSync(nodes);
      const conn = await amqp.connect(leader.url);
      let closedWith: number | undefined;
      let closeText = '';
      conn.on('error', (e: { code?: number; message?: string }) => {
        closedWith = e.code;
        closeText = e.message ?? '';
      });
      conn.on('close', (e?: { code?: number; message?: string }) => {
        closedWith ??= e?.code ?? -1;
        closeText ||= e?.message ?? 'closed without an error';
      });
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      const [paused, other] = followers;
      paused.signal('SIGSTOP');
      const declared = timed(ch.assertQueue('c15-fenced', { durable: true }));
      const policy = timed(api(leader.httpPort, 'PUT', '/api/policies/%2F/c15-fenced', { body: policyBody }));
      await sleep(500);
      expect(declared.at).toBeNull();
      // The leader is paused past its lease: the other follower takes over.
      leader.signal('SIGSTOP');
      await other
        .waitLog('cluster: leading (serving AMQP, HTTP and replication)', () => true, TTL * 1000 + 15_000)
        .catch(async () => {
          // the paused follower is in the ISR too: it may be the one elected once it resumes
        });
      await sleep(TTL * 1000 + 1000);
      // The paused follower comes back first, so that only fencing can keep the old leader from answering.
      paused.signal('SIGCONT');
      await sleep(300);
      leader.signal('SIGCONT');
      await Promise.all([declared.done, policy.done]);
      expect(declared.value, 'declare-ok from a leader whose lease ran out').toBeUndefined();
      expect(declared.error).toBeDefined();
      await until(
        'the connection to close',
        () => closedWith !== undefined,
        10_000,
        () => `declare: ${declared.error?.message}\n${dumpAll(nodes)()}`,
      );
      expect(closedWith).toBe(320);
      const status = policy.value?.status ?? 0;
      expect(status === 0 || status >= 500, `policy PUT answered ${status} by a demoted leader`).toBe(true);
      console.log(
        `fenced leader: declare failed with "${declared.error!.message}", connection closed with ${closedWith} (${closeText}); policy PUT: ${status || policy.error?.message}`,
      );
      await conn.close().catch(() => undefined);
    },
  );

  it(
    '--min-isr 0: with both followers paused, a declare waits while they are in the ISR, then is answered on the leader alone',
    { timeout: 90_000 },
    async () => {
      const nodes = await h.startCluster(['--replication-max-lag', '3', '--min-isr', '0']);
      const { leader, followers } = await allInSync(nodes);
      const conn = await amqp.connect(leader.url);
      conn.on('error', () => undefined);
      try {
        const ch = await conn.createChannel();
        const stoppedAt = Date.now();
        for (const f of followers) f.signal('SIGSTOP');
        const declared = timed(ch.assertQueue('c15-alone', { durable: true }));
        await sleep(1000);
        expect(declared.at).toBeNull();
        const alone = await leader.waitLog(
          'replication: ISR changed',
          (l) => l.time >= stoppedAt && (l.isr as string[]).length === 1,
          30_000,
        );
        await declared.done;
        expect(declared.error).toBeUndefined();
        expect(declared.at!).toBeGreaterThanOrEqual(alone.time - 200);
        // Alone in the ISR with --min-isr 0: the next change is answered on the leader's disk alone.
        const t0 = Date.now();
        await ch.assertQueue('c15-alone-2', { durable: true });
        const aloneMs = Date.now() - t0;
        expect(aloneMs).toBeLessThan(2000);
        console.log(
          `--min-isr 0: leader alone in the ISR ${alone.time - stoppedAt} ms after SIGSTOP; declare-ok ${declared.at! - stoppedAt} ms; next declare ${aloneMs} ms`,
        );
        for (const f of followers) f.signal('SIGCONT');
        await ch.close();
      } finally {
        await conn.close().catch(() => undefined);
      }
    },
  );

  it(
    'kill -9 of the leader right after declare-ok and an exchange PUT, 3 cycles: each new leader has every change',
    { timeout: 180_000 },
    async () => {
      let nodes = await h.startCluster(['--replication-max-lag', '3']);
      const cycles = 3;
      for (let i = 0; i < cycles; i++) {
        const { leader } = await allInSync(nodes);
        // What the previous cycles made is there.
        const conn = await amqp.connect(leader.url);
        conn.on('error', () => undefined);
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        for (let j = 0; j < i; j++) await ch.checkQueue(`c15-kill-${j}`);
        for (let j = 0; j < i; j++) expect((await api(leader.httpPort, 'GET', `/api/exchanges/%2F/c15-kx-${j}`)).status).toBe(200);
        expect(
          (await api(leader.httpPort, 'PUT', `/api/exchanges/%2F/c15-kx-${i}`, { body: { type: 'direct', durable: true } })).status,
        ).toBe(201);
        await ch.assertQueue(`c15-kill-${i}`, { durable: true });
        leader.signal('SIGKILL');
        await leader.exited;
        await conn.close().catch(() => undefined);
        nodes = [...nodes.filter((n) => n !== leader), h.restart(leader)];
      }
      const { leader } = await allInSync(nodes);
      const conn = await amqp.connect(leader.url);
      conn.on('error', () => undefined);
      try {
        const ch = await conn.createChannel();
        for (let j = 0; j < cycles; j++) await ch.checkQueue(`c15-kill-${j}`);
        for (let j = 0; j < cycles; j++) expect((await api(leader.httpPort, 'GET', `/api/exchanges/%2F/c15-kx-${j}`)).status).toBe(200);
      } finally {
        await conn.close().catch(() => undefined);
      }
    },
  );
});
