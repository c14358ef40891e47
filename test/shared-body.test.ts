// Shared bodies (issue 14, scenario n): a persistent message routed to several durable
// queues is written once to the shared body log (data-dir/shared), each queue writing only
// a small index record that names it. Real brokers on temporary data directories, real
// clients (amqplib), clean stops and kill -9.
import fs from 'node:fs';
import path from 'node:path';
import type amqp from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EXTERNAL_BROKER } from './helpers/broker';
import { amqplibConnect, sleep, waitFor } from './helpers/clients';
import { queueDir, readSegmentRecords, removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api } from './helpers/http';
import os from 'node:os';
import type { Logger } from '../src/logger';
import { fsOps } from '../src/store/fs-ops';
import { INDEX_RECORD, messageRecordSize } from '../src/store/message-record';
import { QueueLog } from '../src/store/queue-log';
import { SharedBodyLog } from '../src/store/shared-log';
import { SyncScheduler } from '../src/store/sync-scheduler';

const T = 60_000;
const BODY = 1024;

const dirs: string[] = [];
let brokers: DurableBroker[] = [];
let conns: amqp.ChannelModel[] = [];

async function start(dataDir: string, args: string[] = []): Promise<DurableBroker> {
  const b = await startOn(dataDir, args);
  brokers.push(b);
  return b;
}

async function connect(b: DurableBroker): Promise<amqp.ChannelModel> {
  const c = await amqplibConnect(b.url);
  c.on('error', () => {});
  conns.push(c);
  return c;
}

function dropClients(): void {
  for (const c of conns) c.close().catch(() => {});
  conns = [];
}

async function restart(b: DurableBroker, how: 'SIGTERM' | 'SIGKILL', args: string[] = []): Promise<DurableBroker> {
  if (how === 'SIGTERM') expect(await b.stop()).toBe(0);
  else await b.crash();
  dropClients();
  return start(b.dataDir, args);
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

async function newDataDir(): Promise<string> {
  const d = await tempDataDir('leveret-shared-');
  dirs.push(d);
  return d;
}

/** A 1 KB body that names message `i` in its first bytes. */
function body(i: number, tag = 'm'): Buffer {
  const b = Buffer.alloc(BODY, 0x61 + (i % 26));
  b.write(`${tag}${String(i).padStart(7, '0')};`, 0, 'latin1');
  return b;
}

const idOf = (b: Buffer): string => b.toString('latin1', 0, b.indexOf(';'));

/** Declares a durable fanout exchange bound to durable queues. */
async function fanout(c: amqp.ChannelModel, ex: string, queues: string[]): Promise<void> {
  const ch = await c.createChannel();
  await ch.assertExchange(ex, 'fanout', { durable: true });
  for (const q of queues) {
    await ch.assertQueue(q, { durable: true });
    await ch.bindQueue(q, ex, '');
  }
  await ch.close();
}

/** Publishes persistent messages on a confirm channel and waits for every confirm. */
async function publish(c: amqp.ChannelModel, ex: string, key: string, bodies: Buffer[]): Promise<void> {
  const ch = await c.createConfirmChannel();
  for (const b of bodies) ch.publish(ex, key, b, { persistent: true });
  await ch.waitForConfirms();
  await ch.close();
}

interface Got {
  ids: string[];
  redelivered: string[];
}

/** Takes every ready message of a queue (settled on delivery); ids in order. */
async function drain(c: amqp.ChannelModel, queue: string): Promise<Got> {
  const ch = await c.createChannel();
  const out: Got = { ids: [], redelivered: [] };
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    const id = idOf(m.content);
    expect(m.content.length).toBe(BODY);
    out.ids.push(id);
    if (m.fields.redelivered) out.redelivered.push(id);
  }
  await ch.close();
  return out;
}

const ids = (from: number, to: number, tag = 'm'): string[] => {
  const out: string[] = [];
  for (let i = from; i < to; i++) out.push(`${tag}${String(i).padStart(7, '0')}`);
  return out;
};

/** Bytes of the files under a directory (recursively); 0 when it is not there. */
function duBytes(dir: string, filter: (name: string) => boolean = () => true): number {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) n += duBytes(full, filter);
    else if (filter(e.name)) n += fs.statSync(full).size;
  }
  return n;
}

const sharedDir = (dataDir: string): string => path.join(dataDir, 'shared');
const sharedSegments = (dataDir: string): string[] =>
  fs.existsSync(sharedDir(dataDir))
    ? fs
        .readdirSync(sharedDir(dataDir))
        .filter((f) => f.endsWith('.seg'))
        .sort()
    : [];

describe.skipIf(EXTERNAL_BROKER)('shared message bodies', () => {
  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    it(
      `fanout to 6 durable queues writes each body once; after ${how === 'SIGTERM' ? 'a clean stop' : 'kill -9'} every queue has every message in order`,
      async () => {
        const dir = await newDataDir();
        let b = await start(dir);
        let c = await connect(b);
        const queues = ['sb.q1', 'sb.q2', 'sb.q3', 'sb.q4', 'sb.q5', 'sb.q6'];
        await fanout(c, 'sb.fan', queues);
        const N = 300;
        await publish(
          c,
          'sb.fan',
          '',
          Array.from({ length: N }, (_, i) => body(i)),
        );
        // Three messages of q1 delivered and not acked: they come back redelivered.
        const ch = await c.createChannel();
        for (let i = 0; i < 3; i++) expect(await ch.get('sb.q1', { noAck: false })).not.toBe(false);
        await sleep(100); // the delivered records are written at the end of the turn

        // Written once: the shared log holds the bodies, each queue an index record per message.
        const shared = duBytes(sharedDir(dir), (f) => f.endsWith('.seg'));
        expect(shared).toBeGreaterThanOrEqual(N * BODY);
        expect(shared).toBeLessThan(N * (BODY + 100));
        for (const q of queues) expect(duBytes(queueDir(dir, q), (f) => f.endsWith('.seg'))).toBe(N * INDEX_RECORD);
        // A broker that cannot read index records must refuse the directory from now on.
        expect(fs.readFileSync(path.join(dir, 'VERSION'), 'utf8').trim()).toBe('leveret-store 2');

        b = await restart(b, how);
        c = await connect(b);
        // Recovered on disk, the backlog still weighs its bodies (not its 21-byte index records).
        const info = (await api(b.httpPort, 'GET', '/api/queues/%2f/sb.q2')).json as { messages: number; message_bytes: number };
        expect(info.messages).toBe(N);
        expect(info.message_bytes).toBeGreaterThanOrEqual(N * BODY);
        expect(info.message_bytes).toBeLessThan(N * (BODY + 100));
        for (const q of queues) {
          const got = await drain(c, q);
          expect(got.ids, q).toEqual(ids(0, N));
          expect(got.redelivered, q).toEqual(q === 'sb.q1' ? ids(0, 3) : []);
        }
        // All acked: after the next restart nothing is left of the bodies.
        b = await restart(b, 'SIGTERM');
        expect(sharedSegments(dir)).toEqual([]);
      },
      T,
    );
  }

  it(
    'acked in some queues only: after a restart the others still have every message; all acked, the shared segments go',
    async () => {
      const dir = await newDataDir();
      const args = ['--segment-size', '16384'];
      let b = await start(dir, args);
      let c = await connect(b);
      const queues = ['sa.a', 'sa.b', 'sa.c'];
      await fanout(c, 'sa.fan', queues);
      const N = 400; // about 26 shared segments of 16 KB
      await publish(
        c,
        'sa.fan',
        '',
        Array.from({ length: N }, (_, i) => body(i)),
      );
      expect(sharedSegments(dir).length).toBeGreaterThan(20);
      expect((await drain(c, 'sa.a')).ids).toEqual(ids(0, N));
      // Still named by sa.b and sa.c: nothing goes.
      await sleep(200);
      expect(sharedSegments(dir).length).toBeGreaterThan(20);

      b = await restart(b, 'SIGKILL', args);
      c = await connect(b);
      expect((await drain(c, 'sa.a')).ids).toEqual([]);
      expect((await drain(c, 'sa.b')).ids).toEqual(ids(0, N));
      await sleep(200);
      expect(sharedSegments(dir).length).toBeGreaterThan(20);
      // The last queue takes the messages while the broker runs: the segments go as it does.
      const before = duBytes(sharedDir(dir));
      expect((await drain(c, 'sa.c')).ids).toEqual(ids(0, N));
      await waitFor(() => sharedSegments(dir).length === 0, 5000, 'shared segments removed');
      expect(duBytes(sharedDir(dir))).toBe(0);
      expect(before).toBeGreaterThan(N * BODY);

      // A new fanout message after that is stored (in a new segment) and recovered.
      await publish(c, 'sa.fan', '', [body(N)]);
      expect(sharedSegments(dir).length).toBe(1);
      b = await restart(b, 'SIGKILL', args);
      c = await connect(b);
      for (const q of queues) expect((await drain(c, q)).ids).toEqual(ids(N, N + 1));
      // Under load the shared directory stays bounded: publish and drain in rounds.
      for (let round = 0; round < 5; round++) {
        await publish(
          c,
          'sa.fan',
          '',
          Array.from({ length: 100 }, (_, i) => body(i, 'r')),
        );
        for (const q of queues) expect((await drain(c, q)).ids).toEqual(ids(0, 100, 'r'));
      }
      await waitFor(() => duBytes(sharedDir(dir)) <= 16384 + 2 * BODY, 5000, 'shared directory bounded');
    },
    T,
  );

  it(
    'purging one queue and deleting another does not lose the bodies the others name',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      let c = await connect(b);
      const queues = ['sp.purged', 'sp.deleted', 'sp.kept', 'sp.partly'];
      await fanout(c, 'sp.fan', queues);
      const N = 200;
      await publish(
        c,
        'sp.fan',
        '',
        Array.from({ length: N }, (_, i) => body(i)),
      );
      // Once in memory, once recovered (runs read back from disk): both purge paths.
      let ch = await c.createChannel();
      await ch.purgeQueue('sp.purged');
      await ch.close();
      b = await restart(b, 'SIGTERM');
      c = await connect(b);
      ch = await c.createChannel();
      // One unacked delivery keeps part of the segment live: the purge acks record by record.
      const held = await ch.get('sp.partly', { noAck: false });
      expect(held).not.toBe(false);
      expect((await ch.purgeQueue('sp.partly')).messageCount).toBe(N - 1);
      await ch.deleteQueue('sp.deleted');
      ch.ack(held as amqp.GetMessage);
      await ch.close();
      b = await restart(b, 'SIGKILL');
      c = await connect(b);
      expect((await drain(c, 'sp.purged')).ids).toEqual([]);
      expect((await drain(c, 'sp.partly')).ids).toEqual([]);
      expect((await drain(c, 'sp.kept')).ids).toEqual(ids(0, N));
      ch = await c.createChannel();
      await expect(ch.checkQueue('sp.deleted')).rejects.toThrow(/404/);
      // The last reference gone, the bodies go with it.
      b = await restart(b, 'SIGTERM');
      expect(sharedSegments(dir)).toEqual([]);
    },
    T,
  );

  it(
    'a flipped byte in a shared body record loses only the messages that name it; the broker stays healthy',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      let c = await connect(b);
      const queues = ['sd.a', 'sd.b', 'sd.c'];
      await fanout(c, 'sd.fan', queues);
      const N = 50;
      await publish(
        c,
        'sd.fan',
        '',
        Array.from({ length: N }, (_, i) => body(i)),
      );
      expect(await b.stop()).toBe(0);
      dropClients();

      const segs = sharedSegments(dir);
      expect(segs.length).toBe(1);
      const file = path.join(sharedDir(dir), segs[0]);
      const records = readSegmentRecords(file);
      expect(records.length).toBe(N);
      // Flip a byte inside message 7's body, and one inside message 30's header fields.
      const data = fs.readFileSync(file);
      data[records[7].offset + records[7].size - 100] ^= 0xff;
      data[records[30].offset + 12] ^= 0x01;
      fs.writeFileSync(file, data);

      b = await start(dir);
      c = await connect(b);
      const expected = ids(0, N).filter((_, i) => i !== 7 && i !== 30);
      for (const q of queues) expect((await drain(c, q)).ids, q).toEqual(expected);
      const damaged = b.logLines().filter((l) => String(l.msg).includes('damaged shared body'));
      expect(damaged.length).toBe(2 * queues.length);
      // Kept aside once per record, however many queues named it.
      const aside = path.join(sharedDir(dir), 'damaged');
      expect(fs.readdirSync(aside).length).toBe(2);

      // Healthy: new messages go through, and survive a crash.
      await publish(c, 'sd.fan', '', [body(100)]);
      b = await restart(b, 'SIGKILL');
      c = await connect(b);
      for (const q of queues) expect((await drain(c, q)).ids).toEqual(ids(100, 101));
    },
    T,
  );

  it(
    'single-queue and fanout messages interleaved keep each queue in order, and single-queue ones keep their full records',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      let c = await connect(b);
      await fanout(c, 'sm.fan', ['sm.a', 'sm.b']);
      const ch = await c.createConfirmChannel();
      const expectA: string[] = [];
      const expectB: string[] = [];
      for (let i = 0; i < 120; i++) {
        if (i % 3 === 0) {
          ch.publish('', 'sm.a', body(i, 's'), { persistent: true });
          expectA.push(ids(i, i + 1, 's')[0]);
        } else {
          ch.publish('sm.fan', '', body(i, 'f'), { persistent: true });
          expectA.push(ids(i, i + 1, 'f')[0]);
          expectB.push(ids(i, i + 1, 'f')[0]);
        }
      }
      await ch.waitForConfirms();
      // sm.a: 40 whole records and 80 index records; sm.b: 80 index records.
      const aBytes = duBytes(queueDir(dir, 'sm.a'), (f) => f.endsWith('.seg'));
      expect(aBytes).toBeGreaterThan(40 * BODY);
      expect(aBytes).toBeLessThan(40 * (BODY + 100) + 80 * INDEX_RECORD);
      expect(duBytes(queueDir(dir, 'sm.b'), (f) => f.endsWith('.seg'))).toBe(80 * INDEX_RECORD);

      b = await restart(b, 'SIGKILL');
      c = await connect(b);
      expect((await drain(c, 'sm.a')).ids).toEqual(expectA);
      expect((await drain(c, 'sm.b')).ids).toEqual(expectB);
    },
    T,
  );

  it(
    'compaction of a queue log moves index records and keeps their references: the bodies stay until acked, across kill -9',
    async () => {
      const dir = await newDataDir();
      const args = ['--segment-size', '4096']; // about 190 index records per queue segment
      let b = await start(dir, args);
      let c = await connect(b);
      await fanout(c, 'sc.fan', ['sc.sparse', 'sc.full']);
      const N = 1000;
      await publish(
        c,
        'sc.fan',
        '',
        Array.from({ length: N }, (_, i) => body(i)),
      );
      // Every 25th message of sc.sparse stays unacked: its older segments fall below 10 % live.
      const ch = await c.createChannel();
      await ch.prefetch(0);
      const held: string[] = [];
      let seen = 0;
      await new Promise<void>((resolve) => {
        void ch.consume('sc.sparse', (m) => {
          if (m === null) return;
          if (seen % 25 === 0) held.push(idOf(m.content));
          else ch.ack(m);
          if (++seen === N) resolve();
        });
      });
      await waitFor(() => b.logLines().some((l) => l.msg === 'segment compacted'), 5000, 'a queue segment compacted');
      await sleep(300); // the compacted sources go once the copies are synced
      // sc.full takes everything: the held messages' bodies are now named only by the
      // copies compaction made, and must stay.
      expect((await drain(c, 'sc.full')).ids).toEqual(ids(0, N));
      await sleep(300);
      b = await restart(b, 'SIGKILL', args);
      c = await connect(b);
      const got = await drain(c, 'sc.sparse');
      expect(got.ids).toEqual(held);
      expect(got.redelivered).toEqual(held);
      expect((await drain(c, 'sc.full')).ids).toEqual([]);
      // Their last references released while the broker runs, the bodies go.
      await waitFor(() => sharedSegments(dir).length === 0, 5000, 'shared segments removed');
    },
    T,
  );

  it(
    'a data directory written before shared bodies (whole records in every queue) recovers, and takes index records after them',
    async () => {
      // test/fixtures/data-dir-before-shared-bodies: written by the broker of the commit before
      // this one and killed with -9: 20 persistent messages, 15 through a fanout exchange to
      // old.a, old.b and old.c, 5 straight to old.a; two of old.b's delivered, not acked.
      const dir = await newDataDir();
      fs.cpSync(path.join(__dirname, 'fixtures', 'data-dir-before-shared-bodies'), dir, { recursive: true });
      expect(fs.existsSync(sharedDir(dir))).toBe(false);
      let b = await start(dir);
      let c = await connect(b);
      expect(fs.readFileSync(path.join(dir, 'VERSION'), 'utf8').trim()).toBe('leveret-store 1');
      // Not drained yet: new fanout messages go behind the old ones, as index records.
      await publish(c, 'old.fan', '', [body(0, 'n'), body(1, 'n')]);
      expect(fs.readFileSync(path.join(dir, 'VERSION'), 'utf8').trim()).toBe('leveret-store 2');
      b = await restart(b, 'SIGKILL');
      c = await connect(b);
      const fan = Array.from({ length: 20 }, (_, i) => i).filter((i) => i % 4 !== 3);
      const oldIds = (q: string): string[] =>
        q === 'old.a'
          ? Array.from({ length: 20 }, (_, i) => (i % 4 === 3 ? `old-single-${i}` : `old-fanout-${i}`))
          : fan.map((i) => `old-fanout-${i}`);
      for (const q of ['old.a', 'old.b', 'old.c']) {
        const ch = await c.createChannel();
        const got: string[] = [];
        const redelivered: string[] = [];
        for (;;) {
          const m = await ch.get(q, { noAck: true });
          if (m === false) break;
          const id = m.content.length === BODY ? idOf(m.content) : m.content.toString();
          got.push(id);
          if (m.fields.redelivered) redelivered.push(id);
        }
        expect(got, q).toEqual([...oldIds(q), ...ids(0, 2, 'n')]);
        expect(redelivered, q).toEqual(q === 'old.b' ? ['old-fanout-0', 'old-fanout-1'] : []);
        await ch.close();
      }
    },
    T,
  );

  it(
    'a backlog past the memory budget waits on disk as index records, weighs its bodies, and is read back in order',
    async () => {
      const dir = await newDataDir();
      const b = await start(dir, ['--queue-memory-budget', '0']);
      const c = await connect(b);
      await fanout(c, 'sk.fan', ['sk.a', 'sk.b']);
      const N = 300;
      await publish(
        c,
        'sk.fan',
        '',
        Array.from({ length: N }, (_, i) => body(i)),
      );
      for (const q of ['sk.a', 'sk.b']) {
        const info = (await api(b.httpPort, 'GET', `/api/queues/%2f/${q}`)).json as { messages: number; message_bytes: number };
        expect(info.messages).toBe(N);
        expect(info.message_bytes).toBeGreaterThanOrEqual(N * BODY);
        expect(info.message_bytes).toBeLessThan(N * (BODY + 100));
      }
      expect((await drain(c, 'sk.a')).ids).toEqual(ids(0, N));
      expect((await drain(c, 'sk.b')).ids).toEqual(ids(0, N));
      const after = (await api(b.httpPort, 'GET', '/api/queues/%2f/sk.b')).json as { messages: number; message_bytes: number };
      expect(after).toMatchObject({ messages: 0, message_bytes: 0 });
    },
    T,
  );

  it(
    'large shared bodies waiting on disk are read back a chunk at a time, in order',
    async () => {
      const dir = await newDataDir();
      const b = await start(dir, ['--queue-memory-budget', '0']);
      const c = await connect(b);
      await fanout(c, 'sl.fan', ['sl.a', 'sl.b']);
      const big = (i: number): Buffer => Buffer.concat([Buffer.from(`big${String(i).padStart(4, '0')};`), Buffer.alloc(256 * 1024 - 8, i)]);
      const N = 24; // 6 MiB named by 504 bytes of index records per queue
      await publish(
        c,
        'sl.fan',
        '',
        Array.from({ length: N }, (_, i) => big(i)),
      );
      for (const q of ['sl.a', 'sl.b']) {
        const ch = await c.createChannel();
        const got: string[] = [];
        for (;;) {
          const m = await ch.get(q, { noAck: true });
          if (m === false) break;
          expect(m.content.equals(big(got.length))).toBe(true);
          got.push(idOf(m.content));
        }
        expect(got).toEqual(Array.from({ length: N }, (_, i) => `big${String(i).padStart(4, '0')}`));
        await ch.close();
      }
    },
    T,
  );

  it(
    'a transient message, or one routed to a single durable queue among others, is not shared',
    async () => {
      const dir = await newDataDir();
      const b = await start(dir);
      const c = await connect(b);
      const ch = await c.createChannel();
      await ch.assertExchange('st.fan', 'fanout', { durable: true });
      await ch.assertQueue('st.durable', { durable: true });
      await ch.assertQueue('st.transient', { durable: false });
      await ch.bindQueue('st.durable', 'st.fan', '');
      await ch.bindQueue('st.transient', 'st.fan', '');
      await ch.close();
      await publish(c, 'st.fan', '', [body(1)]);
      await fanout(c, 'st.fan2', ['st.x', 'st.y']);
      const cc = await c.createConfirmChannel();
      cc.publish('st.fan2', '', body(2), { persistent: false });
      await cc.waitForConfirms();
      await sleep(100);
      expect(duBytes(sharedDir(dir), (f) => f.endsWith('.seg'))).toBe(0);
      expect(duBytes(queueDir(dir, 'st.durable'), (f) => f.endsWith('.seg'))).toBeGreaterThan(BODY);
      // No shared body written: older brokers can still read the directory.
      expect(fs.readFileSync(path.join(dir, 'VERSION'), 'utf8').trim()).toBe('leveret-store 1');
    },
    T,
  );
});

// In-process, like test/segment-log.test.ts: real files, one file-system call swapped for a
// failing one, to watch the order of writes when the shared body log cannot write.
describe('shared body log write failures', () => {
  const realFsOps = { ...fsOps };
  const work: string[] = [];
  afterEach(() => {
    Object.assign(fsOps, realFsOps);
    for (const d of work.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  const quiet = (): Logger => {
    const l: Record<string, unknown> = {};
    for (const k of ['error', 'warn', 'info', 'debug', 'trace', 'fatal']) l[k] = () => {};
    l.child = () => l;
    return l as unknown as Logger;
  };

  function open(dir: string) {
    const scheduler = new SyncScheduler(() => {});
    const events: string[] = [];
    scheduler.addWaiter({ storeSynced: (e) => events.push(`synced ${e}`), storeFailed: () => events.push('failed') });
    const shared = new SharedBodyLog(path.join(dir, 'shared'), scheduler, 1 << 20, quiet());
    shared.recover();
    scheduler.lead = shared;
    const queues = ['q1', 'q2'].map((q) => new QueueLog(path.join(dir, q), scheduler, 1 << 20, quiet(), shared));
    return { scheduler, shared, queues, events };
  }

  const segBytes = (dir: string): number =>
    fs.existsSync(dir) ? fs.readdirSync(dir).reduce((n, f) => n + (f.endsWith('.seg') ? fs.statSync(path.join(dir, f)).size : 0), 0) : 0;

  it(
    'EIO on the shared log: no index record is written before its body, the confirm is refused, and both are written once writes work',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-shared-eio-'));
      work.push(dir);
      const p = open(dir);
      const content = body(1);
      const msg = {
        exchange: 'fan',
        routingKey: '',
        rawProperties: Buffer.from([0x10, 0x00, 2]),
        body: content,
        bodySize: content.length,
        copyBody: (target: Buffer, at: number) => content.copy(target, at),
        persistent: true,
        durableTargets: 2,
      };
      const at = p.queues.map((q) => q.appendShared(msg, Date.now()));
      expect(at).toEqual([0, 0]);
      expect(p.shared.segments.get(1)!.refs).toBe(2); // one record, named twice
      const sharedFd = p.shared.segments.get(1)!.fd;
      fsOps.writeSync = ((fd: number, ...rest: unknown[]) => {
        if (fd === sharedFd) throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
        return (realFsOps.writeSync as (...a: unknown[]) => number)(fd, ...rest);
      }) as typeof fsOps.writeSync;
      await sleep(50);
      expect(p.events).toContain('failed');
      expect(p.shared.failure).not.toBeNull();
      expect(p.shared.usable()).toBe(false);
      for (const q of ['q1', 'q2']) expect(segBytes(path.join(dir, q)), q).toBe(0);
      expect(segBytes(path.join(dir, 'shared'))).toBe(0);

      fsOps.writeSync = realFsOps.writeSync;
      await waitFor(() => p.shared.failure === null && p.events.some((e) => e.startsWith('synced')), 5000, 'writes work again');
      await sleep(50);
      expect(segBytes(path.join(dir, 'shared'))).toBe(messageRecordSize(msg));
      for (const q of ['q1', 'q2']) expect(segBytes(path.join(dir, q)), q).toBe(INDEX_RECORD);

      // What a restart finds: both queues name the record, which is kept.
      const r = open(dir);
      for (const q of r.queues) expect(q.recover().map((run) => run.count)).toEqual([1]);
      r.shared.seal();
      expect(r.shared.segments.get(1)!.refs).toBe(2);
      const rec = r.shared.read(1, 0, messageRecordSize(msg))!;
      expect(rec.subarray(rec.length - BODY)).toEqual(body(1));
    },
    T,
  );
});
