// Issue 15, step 3: the store's change stream. A broker runs with its store's tap attached
// (LEVERET_TEST_STREAM_TO, test-only: the ops go, encoded, to an applier on a second
// directory in the same process); real traffic with amqplib; the follower's copy must end
// byte-identical to the leader's directory (node-local files aside) and a broker started
// on it must deliver exactly what was left. Also kill -9 mid-traffic: the copy recovers.
import fs from 'node:fs';
import path from 'node:path';
import type amqp from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { amqplibConnect, sleep } from './helpers/clients';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api } from './helpers/http';
import { digest } from './helpers/dir-digest';
import { OpApplier } from '../src/cluster/replication/op-applier';
import { collectOps, OpTap } from '../src/cluster/replication/op-tap';
import { decodeOp, encodeOp, OpKind } from '../src/cluster/replication/store-ops';

const T = 120_000;
const SEGMENT = ['--segment-size', '32768'];
const dirs: string[] = [];
let brokers: DurableBroker[] = [];
let conns: amqp.ChannelModel[] = [];

async function startStreaming(dataDir: string, followerDir: string): Promise<DurableBroker> {
  // The child copies the environment when it is spawned: set only around that.
  process.env.LEVERET_TEST_STREAM_TO = followerDir;
  try {
    const b = await startOn(dataDir, SEGMENT);
    brokers.push(b);
    return b;
  } finally {
    delete process.env.LEVERET_TEST_STREAM_TO;
  }
}

async function start(dataDir: string): Promise<DurableBroker> {
  const b = await startOn(dataDir, SEGMENT);
  brokers.push(b);
  return b;
}

async function connect(b: DurableBroker): Promise<amqp.ChannelModel> {
  const c = await amqplibConnect(b.url);
  c.on('error', () => {});
  conns.push(c);
  return c;
}

function body(q: string, i: number, size = 700): Buffer {
  const head = `${q}#${i}#`;
  return Buffer.concat([Buffer.from(head), Buffer.alloc(size - head.length, i % 251)]);
}

/** Everything a queue holds, in order, acked as read. */
async function drain(ch: amqp.Channel, q: string): Promise<string[]> {
  const got: string[] = [];
  for (;;) {
    const m = await ch.get(q, { noAck: true });
    if (m === false) return got;
    got.push(m.content.toString('latin1'));
  }
}

/**
 * Consumes `total` messages from `q`, acking those `ack(n)` picks; the others stay unacked
 * until the compaction timer has had its turn, then go back to the queue (channel closed).
 */
async function consumeAcking(c: amqp.ChannelModel, q: string, total: number, ack: (n: number) => boolean): Promise<void> {
  const ch = await c.createChannel();
  await ch.prefetch(0);
  let n = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  await ch.consume(q, (m) => {
    if (m === null) return;
    if (ack(n)) ch.ack(m);
    if (++n === total) done();
  });
  await all;
  await sleep(400); // compaction runs 100 ms after the ack that made a segment sparse
  await ch.close();
}

function streamLine(b: DurableBroker): Record<string, unknown> {
  const line = b.logLines().find((l) => l.msg === 'test stream: follower copy closed');
  expect(line, b.output().slice(-2000)).toBeDefined();
  return line!;
}

afterEach(async () => {
  for (const c of conns) await c.close().catch(() => {});
  conns = [];
  for (const b of brokers) await b.crash();
  brokers = [];
});

afterAll(async () => {
  for (const d of dirs) await removeDataDir(d);
});

describe('store change stream → follower directory', () => {
  it(
    'after real traffic the follower copy is byte-identical and a broker on it delivers what was left',
    async () => {
      const dataDir = await tempDataDir('leveret-stream-');
      const followerDir = path.join(path.dirname(dataDir), 'follower');
      dirs.push(dataDir);
      const leader = await startStreaming(dataDir, followerDir);
      const c = await connect(leader);
      const ch = await c.createConfirmChannel();
      const queues = ['s-a', 's-b', 's-c', 's-d'];
      for (const q of queues) await ch.assertQueue(q, { durable: true });
      await ch.assertExchange('s-fan', 'fanout', { durable: true });
      await ch.bindQueue('s-a', 's-fan', '');
      await ch.bindQueue('s-b', 's-fan', '');
      // definitions churn: a queue and an exchange declared, bound and deleted, policies
      await ch.assertExchange('s-tmp-x', 'direct', { durable: true });
      await ch.assertQueue('s-tmp', { durable: true });
      await ch.bindQueue('s-tmp', 's-tmp-x', 'k');
      await ch.unbindQueue('s-tmp', 's-tmp-x', 'k');
      await ch.deleteExchange('s-tmp-x');
      expect(
        (await api(leader.httpPort, 'PUT', '/api/policies/%2F/s-pol', { body: { pattern: '^s-c$', definition: { 'max-length': 100000 } } }))
          .status,
      ).toBe(201);
      expect(
        (await api(leader.httpPort, 'PUT', '/api/policies/%2F/s-pol2', { body: { pattern: '^zz$', definition: { 'message-ttl': 60000 } } }))
          .status,
      ).toBe(201);
      expect((await api(leader.httpPort, 'DELETE', '/api/policies/%2F/s-pol2')).status).toBe(204);

      const expected: Record<string, string[]> = { 's-a': [], 's-b': [], 's-c': [], 's-d': [] };
      const N = 1500;
      for (let i = 0; i < N; i++) {
        for (const q of ['s-c', 's-d']) {
          ch.sendToQueue(q, body(q, i), { persistent: true });
          expected[q].push(body(q, i).toString('latin1'));
        }
        ch.publish('s-fan', '', body('fan', i), { persistent: true }); // shared body: s-a and s-b
        expected['s-a'].push(body('fan', i).toString('latin1'));
        expected['s-b'].push(body('fan', i).toString('latin1'));
        ch.sendToQueue('s-tmp', body('s-tmp', i), { persistent: true });
        if (i % 200 === 199) await ch.waitForConfirms();
      }
      // one message larger than a frame: its write goes as several WRITE ops
      const big = Buffer.alloc(3 * 1024 * 1024 + 123, 7);
      big.write('s-c#big#');
      ch.sendToQueue('s-c', big, { persistent: true });
      expected['s-c'].push(big.toString('latin1'));
      await ch.waitForConfirms();

      // acks: most of s-a (its old segments go whole); s-b and s-c keep 1 in 20 unacked
      // while the rest are acked (sparse segments: compaction), then get them back when
      // the channel closes; s-d purged; s-tmp deleted with its messages.
      const keepA = 300;
      await consumeAcking(c, 's-a', N, (n) => n < N - keepA);
      await consumeAcking(c, 's-b', N, (n) => n % 20 !== 0);
      await consumeAcking(c, 's-c', N + 1, (n) => n % 20 !== 0 && n < N);
      expected['s-a'] = expected['s-a'].slice(N - keepA);
      expected['s-b'] = expected['s-b'].filter((_, i) => i % 20 === 0);
      expected['s-c'] = expected['s-c'].filter((_, i) => i % 20 === 0 || i === N);
      await ch.purgeQueue('s-d');
      expected['s-d'] = [];
      await ch.deleteQueue('s-tmp');
      // a last batch after the churn, so later segments exist beside compacted ones
      for (let i = N; i < N + 200; i++) {
        ch.publish('s-fan', '', body('fan', i), { persistent: true });
        expected['s-a'].push(body('fan', i).toString('latin1'));
        expected['s-b'].push(body('fan', i).toString('latin1'));
      }
      await ch.waitForConfirms();
      await sleep(400); // compaction runs on a 100 ms timer
      await c.close();
      conns = [];
      expect(await leader.stop()).toBe(0);

      const line = streamLine(leader);
      const a = digest(dataDir);
      const f = digest(followerDir);
      const files = Object.keys(a).filter((k) => !k.endsWith('/'));
      expect(files.length).toBeGreaterThan(10);
      expect(f).toEqual(a);
      expect(line.followerDurableLsn).toBe(line.lsn);
      expect(line.broken).toBeNull();
      const compacted = leader.logLines().filter((l) => l.msg === 'segment compacted').length;
      const bytes = files.reduce((s, k) => s + fs.statSync(path.join(dataDir, k)).size, 0);
      console.log(
        `stream: ${line.streamOps} ops, ${line.streamBytes} bytes over ${line.ms} ms; ${files.length} files, ${bytes} bytes ` +
          `on disk, ${compacted} compactions, follower fdatasyncs ${line.followerSyncs}`,
      );

      // The copy is a data directory a broker recovers and serves from.
      const onCopy = await start(followerDir);
      const c2 = await connect(onCopy);
      const ch2 = await c2.createChannel();
      // requeued messages may come back in another order than published: compared sorted
      for (const q of queues) expect((await drain(ch2, q)).sort(), q).toEqual(expected[q].sort());
      await ch2.checkQueue('s-tmp').then(
        () => expect.fail('s-tmp was deleted'),
        () => undefined,
      );
      const pol = await api(onCopy.httpPort, 'GET', '/api/policies/%2F');
      expect((pol.json as Array<{ name: string }>).map((p) => p.name)).toEqual(['s-pol']);
      const ex = await api(onCopy.httpPort, 'GET', '/api/exchanges/%2F/s-fan/bindings/source');
      expect((ex.json as Array<{ destination: string }>).map((b) => b.destination).sort()).toEqual(['s-a', 's-b']);
    },
    T,
  );

  it(
    'a leader restarted on its directory streams its recovery and what follows: the copy stays identical',
    async () => {
      const dataDir = await tempDataDir('leveret-stream-restart-');
      const followerDir = path.join(path.dirname(dataDir), 'follower');
      dirs.push(dataDir);
      const expected: string[] = [];
      for (let round = 0; round < 3; round++) {
        const leader = await startStreaming(dataDir, followerDir);
        const c = await connect(leader);
        const ch = await c.createConfirmChannel();
        await ch.assertQueue('r-a', { durable: true });
        await ch.assertQueue(`r-x${round}`, { durable: true });
        if (round > 0) await ch.deleteQueue(`r-x${round - 1}`);
        for (let i = 0; i < 600; i++) {
          ch.sendToQueue('r-a', body(`r${round}`, i), { persistent: true });
          expected.push(body(`r${round}`, i).toString('latin1'));
        }
        await ch.waitForConfirms();
        await consumeAcking(c, 'r-a', expected.length, (n) => n % 10 !== 0);
        expected.splice(0, expected.length, ...expected.filter((_, i) => i % 10 === 0));
        await c.close();
        conns = [];
        expect(await leader.stop()).toBe(0);
        expect(digest(followerDir), `round ${round}`).toEqual(digest(dataDir));
        const line = streamLine(leader);
        expect(line.broken).toBeNull();
        console.log(`restart round ${round}: ${line.streamOps} ops, ${line.streamBytes} bytes`);
      }
      const onCopy = await start(followerDir);
      const ch2 = await (await connect(onCopy)).createChannel();
      expect((await drain(ch2, 'r-a')).sort()).toEqual(expected.sort());
    },
    T,
  );

  it(
    'kill -9 mid-traffic: the copy recovers with every confirmed message and nothing torn',
    async () => {
      const dataDir = await tempDataDir('leveret-stream-kill-');
      const followerDir = path.join(path.dirname(dataDir), 'follower');
      dirs.push(dataDir);
      const leader = await startStreaming(dataDir, followerDir);
      const c = await connect(leader);
      const ch = await c.createConfirmChannel();
      await ch.assertQueue('k-a', { durable: true });
      await ch.assertQueue('k-b', { durable: true });
      await ch.assertExchange('k-fan', 'fanout', { durable: true });
      await ch.bindQueue('k-a', 'k-fan', '');
      await ch.bindQueue('k-b', 'k-fan', '');
      const confirmed = new Set<string>();
      const sent = new Set<string>();
      let stop = false;
      const pump = (async () => {
        for (let i = 0; !stop; i++) {
          const b = body('kill', i, 900);
          sent.add(b.toString('latin1'));
          ch.publish('k-fan', '', b, { persistent: true }, (err) => {
            if (!err) confirmed.add(b.toString('latin1'));
          });
          if (i % 64 === 63) await new Promise((r) => setImmediate(r));
        }
      })().catch(() => undefined); // the channel dies with the broker
      await sleep(1500);
      await leader.crash();
      stop = true;
      await pump;
      expect(confirmed.size).toBeGreaterThan(100);
      conns = [];

      const onCopy = await start(followerDir);
      const damage = onCopy.logLines().filter((l) => /damaged|torn|corrupt/.test(String(l.msg)));
      const c2 = await connect(onCopy);
      const ch2 = await c2.createChannel();
      for (const q of ['k-a', 'k-b']) {
        const got = await drain(ch2, q);
        const gotSet = new Set(got);
        expect(gotSet.size, `${q}: duplicates`).toBe(got.length);
        const lost = [...confirmed].filter((m) => !gotSet.has(m));
        expect(lost.length, `${q}: confirmed messages missing from the copy`).toBe(0);
        expect(got.filter((m) => !sent.has(m)).length, `${q}: unexpected`).toBe(0);
        console.log(`kill -9: ${q} confirmed ${confirmed.size}, in the copy ${got.length} (sent ${sent.size})`);
      }
      // A torn tail on the newest segment is allowed (cut at the last intact record); none
      // of what was confirmed is in it (checked above).
      console.log(`kill -9: recovery notes on the copy: ${damage.map((l) => l.msg).join('; ') || 'none'}`);
    },
    T,
  );

  it('ops round-trip their encoding, apply idempotently, and a path outside the directory is refused', async () => {
    const base = await tempDataDir('leveret-stream-ops-');
    dirs.push(base);
    const leaderRoot = path.join(path.dirname(base), 'leader');
    const ops: Buffer[] = [];
    const tap = new OpTap(
      leaderRoot,
      collectOps((op) => ops.push(op)),
    );
    const seg = path.join(leaderRoot, 'queues', 'q1', '0000000001.seg');
    tap.madeDir(path.join(leaderRoot, 'queues', 'q1'));
    tap.opened(7, seg, true);
    const chunk = Buffer.from('hello, follower');
    tap.wrote(7, chunk, 0);
    chunk.fill(0); // the store reuses its buffer: the op must have copied the bytes
    tap.wrote(7, Buffer.from('HELLO'), 0);
    tap.wrote(7, Buffer.from('!!'), 40); // past the end: a hole, as pwrite makes
    tap.syncStarting();
    tap.truncated(seg, 20);
    tap.replaced(path.join(leaderRoot, 'VERSION'), Buffer.from('leveret-store 2\n'));
    tap.opened(8, path.join(leaderRoot, 'paging', 'x.seg'), true); // node-local: not streamed
    tap.wrote(8, Buffer.from('transient'), 0);
    tap.synced(3);
    // What the leader's confirms of round 3 wait for the followers to hold (the confirm gate's
    // mark): the ops written before the round started, not those appended while it ran nor its
    // own ROUND and SYNCED ops, which a follower only gets once the leader's fdatasync is over.
    expect([tap.syncedUpTo, tap.lsn]).toEqual([5, 9]);
    tap.opened(9, path.join(leaderRoot, 'queues', 'q1', '0000000002.seg'), true);
    tap.removed(path.join(leaderRoot, 'queues', 'q1', '0000000002.seg'));
    tap.syncStarting();
    tap.synced(4);
    expect(ops.map((o) => decodeOp(o).kind)).toEqual([
      OpKind.MKDIR,
      OpKind.OPEN,
      OpKind.WRITE,
      OpKind.WRITE,
      OpKind.WRITE,
      OpKind.ROUND, // the round starts: a follower syncs alongside
      OpKind.TRUNCATE,
      OpKind.REPLACE,
      OpKind.SYNCED,
      OpKind.OPEN,
      OpKind.REMOVE,
      OpKind.ROUND,
      OpKind.SYNCED,
    ]);
    expect(ops.map((o) => decodeOp(o).lsn)).toEqual(ops.map((_, i) => i + 1));
    const synced = decodeOp(ops[8]);
    expect([synced.n, synced.upTo]).toEqual([3, 5]); // epoch 3 covered what came before the round started
    expect(decodeOp(ops[4])).toMatchObject({ path: 'queues/q1/0000000001.seg', n: 40 });

    const follower = path.join(path.dirname(base), 'follower');
    const a = new OpApplier(follower);
    for (const o of ops.slice(0, 6)) a.apply(o);
    expect(a.takeRound()).toBe(true); // the ROUND op: the follower's own sync starts now
    expect(a.takeRound()).toBe(false);
    for (const o of ops.slice(6)) a.apply(o);
    expect(a.durableLsn).toBe(13);
    expect(a.leaderDurableLsn).toBe(11);
    const expectedSeg = Buffer.concat([Buffer.from('HELLO, follower'), Buffer.alloc(5)]);
    expect(fs.readFileSync(path.join(follower, 'queues/q1/0000000001.seg'))).toEqual(expectedSeg);
    expect(fs.readFileSync(path.join(follower, 'VERSION'), 'utf8')).toBe('leveret-store 2\n');
    expect(fs.existsSync(path.join(follower, 'paging'))).toBe(false);
    const once = digest(follower);
    a.close();
    // The same ops again (a follower resuming from an older LSN): nothing changes.
    const again = new OpApplier(follower);
    for (const o of ops) again.apply(o);
    again.close();
    expect(digest(follower)).toEqual(once);
    expect(() => again.apply(ops[3])).toThrow(/out of order/);

    const evil = new OpApplier(path.join(path.dirname(base), 'evil'));
    const outside: Buffer[] = [];
    const rogue = new OpTap(
      '/',
      collectOps((op) => outside.push(op)),
    );
    rogue.removed('/etc/../tmp'); // encodes as "tmp": fine; then a path with '..' by hand
    const bad = Buffer.from(outside[0]);
    const withDots = Buffer.concat([bad.subarray(0, 9), Buffer.from([0, 6]), Buffer.from('../etc')]);
    expect(() => evil.apply(withDots)).toThrow(/must not touch/);
  });

  it("a follower syncs ack records as lazily as the leader's store: not in every round, once a second, and when it closes", async () => {
    const base = await tempDataDir('leveret-stream-lazy-');
    dirs.push(base);
    const a = new OpApplier(path.join(path.dirname(base), 'follower'));
    let lsn = 0;
    const apply = (kind: OpKind, rel: string, n = 0, data: Buffer | null = null): void => a.apply(encodeOp(kind, ++lsn, rel, n, data));
    const seg = 'queues/q1/0000000001.seg';
    const ack = 'queues/q1/0000000001.ack';
    // A round's answer: the LSN durable after it, and how many files it fdatasynced.
    const round = (): Promise<[number, number]> =>
      new Promise((resolve, reject) => {
        const before = a.syncs;
        a.syncAsync((durable, err) => (err ? reject(err) : resolve([durable, a.syncs - before])));
      });
    apply(OpKind.OPEN, seg, 1);
    apply(OpKind.OPEN, ack, 1);
    apply(OpKind.WRITE, seg, 0, Buffer.from('message 1'));
    apply(OpKind.WRITE, ack, 0, Buffer.from('ack 1'));
    expect(await round()).toEqual([4, 2]); // the first round takes the ack file too
    apply(OpKind.WRITE, seg, 9, Buffer.from('message 2'));
    apply(OpKind.WRITE, ack, 5, Buffer.from('ack 2'));
    expect(await round()).toEqual([6, 1]); // within a second: the segment only
    await sleep(1100);
    apply(OpKind.WRITE, seg, 18, Buffer.from('message 3'));
    expect(await round()).toEqual([7, 2]); // a second on: the ack written a round ago as well
    apply(OpKind.WRITE, ack, 10, Buffer.from('ack 3'));
    const before = a.syncs;
    a.close();
    expect(a.syncs - before).toBe(1);
    expect(a.durableLsn).toBe(8);
    expect(fs.readFileSync(path.join(path.dirname(base), 'follower', ack), 'utf8')).toBe('ack 1ack 2ack 3');
  });
});
