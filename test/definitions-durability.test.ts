// The store's failure paths lose nothing (issue 9): a durable definition is written before
// it is applied, so a disk that refuses the write leaves the model as it was and answers
// 541 INTERNAL_ERROR; storage failures on timers (x-expires, auto-delete, dead-lettering)
// are logged, not fatal; the broker starts on a full disk; orphaned queue folders go.
//
// Faults are real: each test mounts its own small tmpfs (CI runs as root) and fills it.
// On tmpfs a write into the unused part of a file's last page needs no new space, so a
// full disk alone does not refuse a short definition record: exhaustDefinitionsLog keeps
// declaring until a record crosses into a page the disk cannot give.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { AMQPClient, type AMQPBaseClient } from '@cloudamqp/amqp-client';
import { startOn, tempDataDir, removeDataDir, type DurableBroker } from './helpers/durable-broker';
import { closeReason, sleep, waitFor } from './helpers/clients';

const T = 60_000;
const mounts: string[] = [];
const dirs: string[] = [];
let brokers: DurableBroker[] = [];

afterEach(async () => {
  for (const b of brokers) await b.crash();
  brokers = [];
});

afterAll(async () => {
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
    } catch {
      // already gone
    }
    fs.rmSync(m, { recursive: true, force: true });
  }
  for (const d of dirs) await removeDataDir(d);
});

/** A fresh tmpfs of `size` (nr_inodes too, if given); returns a data directory inside it. */
function mountTmpfs(size = '4m', inodes?: number): string {
  if (process.getuid?.() !== 0) throw new Error('these tests mount a tmpfs and need to run as root (CI does)');
  const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-defs-'));
  const options = `size=${size}` + (inodes === undefined ? '' : `,nr_inodes=${inodes}`);
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mountPoint]);
  mounts.push(mountPoint);
  return path.join(mountPoint, 'data');
}

async function start(dataDir: string): Promise<DurableBroker> {
  // The disks here are far smaller than the default disk free limit: it is their filling up that is tested.
  const b = await startOn(dataDir, ['--disk-free-limit', '0']);
  brokers.push(b);
  return b;
}

/** Writes a filler file next to the data directory until the disk says ENOSPC. */
function fillDisk(dataDir: string): string {
  const filler = path.join(path.dirname(dataDir), 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(1 << 16, 0x5a);
  for (let n = chunk.length; n >= 1;) {
    try {
      fs.writeSync(fd, chunk, 0, n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      n = Math.floor(n / 2);
    }
  }
  fs.closeSync(fd);
  return filler;
}

/** Creates empty files until the file system has no inode left (no new file can be made). */
function exhaustInodes(dataDir: string): string {
  const dir = path.join(path.dirname(dataDir), 'inodes');
  fs.mkdirSync(dir);
  for (let i = 0; ; i++) {
    try {
      fs.closeSync(fs.openSync(path.join(dir, String(i)), 'w'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return dir;
      throw err;
    }
  }
}

async function connect(b: DurableBroker): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(b.url);
  c.on('error', () => {}); // asserted through closeReason where it matters
  return c;
}

/**
 * Runs an operation on a fresh connection; returns why the channel or connection was
 * closed (a connection error wins), or null if it worked.
 */
async function refusal(b: DurableBroker, op: (ch: amqp.Channel) => Promise<unknown>): Promise<{ code: number; text: string } | null> {
  const c = await amqp.connect(b.url);
  let connectionError: unknown = null;
  let closed = false;
  c.on('error', (err: unknown) => (connectionError = err));
  const whenClosed = new Promise<void>((resolve) => c.on('close', () => resolve()));
  c.on('close', () => (closed = true));
  const ch = await c.createChannel();
  ch.on('error', () => {});
  try {
    await op(ch);
  } catch (err) {
    // A connection.close follows its channel's failure at once; a channel.close alone does not.
    await Promise.race([whenClosed, sleep(200)]);
    if (!closed) await c.close();
    return closeReason(connectionError ?? err);
  }
  await c.close();
  return null;
}

/**
 * Declares durable exchanges until the disk refuses one (see the top of the file).
 * Returns the names that were accepted and the one refused, with the refusal.
 */
async function exhaustDefinitionsLog(
  b: DurableBroker,
): Promise<{ accepted: string[]; refused: string; reason: { code: number; text: string } }> {
  const accepted: string[] = [];
  for (let i = 0; i < 200; i++) {
    const name = `pad.${i}.${'x'.repeat(60)}`;
    const reason = await refusal(b, (ch) => ch.assertExchange(name, 'direct', { durable: true }));
    if (reason !== null) return { accepted, refused: name, reason };
    accepted.push(name);
  }
  throw new Error('the disk never refused a definition');
}

async function exists(b: DurableBroker, check: (ch: amqp.Channel) => Promise<unknown>): Promise<boolean> {
  return (await refusal(b, check)) === null;
}

/** A channel.close (404) from a passive declare shows up as a refusal too, so a missing thing is `false`. */
async function queueExists(b: DurableBroker, name: string): Promise<boolean> {
  const c = await connect(b);
  const ch = await c.createChannel();
  ch.on('error', () => {});
  try {
    await ch.checkQueue(name);
    return true;
  } catch (err) {
    expect(closeReason(err).code).toBe(404);
    return false;
  } finally {
    await c.close().catch(() => {});
  }
}

async function publishPersistent(b: DurableBroker, queue: string, bodies: string[]): Promise<void> {
  const c = await connect(b);
  const ch = await c.createConfirmChannel();
  for (const body of bodies) ch.sendToQueue(queue, Buffer.from(body), { persistent: true });
  await ch.waitForConfirms();
  await c.close();
}

async function drain(b: DurableBroker, queue: string): Promise<string[]> {
  const c = await connect(b);
  const ch = await c.createChannel();
  const got: string[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    got.push(m.content.toString());
  }
  await c.close();
  return got;
}

function errorLines(b: DurableBroker, text: RegExp): Array<Record<string, unknown>> {
  return b.logLines().filter((l) => typeof l.msg === 'string' && text.test(l.msg));
}

const queueFolder = (dataDir: string, vhost: string, name: string): string =>
  path.join(dataDir, 'queues', createHash('sha1').update(`${vhost}\0${name}`).digest('hex'));

describe('definitions are written before they are applied', () => {
  it(
    'a durable declare, bind or delete the disk refuses answers 541 and changes nothing; non-durable ones still work; everything survives a restart as answered',
    async () => {
      const dataDir = mountTmpfs();
      let b = await start(dataDir);
      let c = await connect(b);
      let ch = await c.createChannel();
      // Long names: their delete and bind records outgrow what the log's last page has left.
      const keep = 'keep.' + 'k'.repeat(200);
      await ch.assertQueue(keep, { durable: true });
      await c.close();
      await publishPersistent(b, keep, ['one', 'two']);

      const filler = fillDisk(dataDir);
      const { accepted, refused, reason } = await exhaustDefinitionsLog(b);
      expect(reason.code).toBe(541);
      expect(reason.text).toMatch(/^INTERNAL_ERROR - cannot store the declaration of exchange 'pad\.\d+\.x+' in vhost '\/': ENOSPC$/);
      expect(await exists(b, (ch) => ch.checkExchange(refused))).toBe(false);

      // Every later durable change is refused the same way and leaves nothing behind.
      const longName = 'q.' + 'y'.repeat(200);
      expect((await refusal(b, (ch) => ch.assertQueue(longName, { durable: true })))?.code).toBe(541);
      expect(await queueExists(b, longName)).toBe(false);
      expect((await refusal(b, (ch) => ch.bindQueue(keep, 'amq.direct', 'k'.repeat(200))))?.code).toBe(541);
      expect((await refusal(b, (ch) => ch.deleteQueue(keep)))?.code).toBe(541);
      expect(await queueExists(b, keep)).toBe(true);

      // Nothing durable, nothing written: a full disk does not stand in the way.
      expect(
        await exists(b, async (ch) => {
          await ch.assertExchange('transient.x', 'fanout', { durable: false });
          const q = await ch.assertQueue('transient.q', { durable: false });
          await ch.bindQueue(q.queue, 'transient.x', '');
          await ch.deleteQueue('transient.q');
          await ch.deleteExchange('transient.x');
        }),
      ).toBe(true);
      expect(b.exited).toBe(false);

      // Space back: the same declarations work.
      fs.rmSync(filler);
      await waitFor(
        async () => (await refusal(b, (ch) => ch.assertExchange(refused, 'direct', { durable: true }))) === null,
        5000,
        'declare after space returned',
      );
      await b.stop();
      b = await start(dataDir);
      for (const name of [...accepted, refused]) expect(await exists(b, (ch) => ch.checkExchange(name))).toBe(true);
      expect(await queueExists(b, longName)).toBe(false);
      expect(await drain(b, keep)).toEqual(['one', 'two']);
      // The refused binding was not stored: a mandatory publish with its key comes back.
      c = await connect(b);
      ch = await c.createChannel();
      const returned = new Promise<void>((resolve) => ch.on('return', () => resolve()));
      ch.publish('amq.direct', 'k'.repeat(200), Buffer.from('x'), { mandatory: true });
      await returned;
      await c.close();
    },
    T,
  );
});

describe('storage failures on timers are caught and scoped', () => {
  it(
    'x-expires: a queue whose deletion cannot be stored is kept, the broker lives on, and it expires once space returns',
    async () => {
      const dataDir = mountTmpfs();
      const b = await start(dataDir);
      const name = 'expiring.' + 'e'.repeat(200); // its delete record outgrows what the log's last page has left
      const c = await connect(b);
      const ch = await c.createChannel();
      await ch.assertQueue(name, { durable: true, arguments: { 'x-expires': 300 } });
      const { consumerTag } = await ch.consume(name, () => {}); // the clock stops while it has a consumer
      const filler = fillDisk(dataDir);
      await exhaustDefinitionsLog(b);
      await ch.cancel(consumerTag);
      await sleep(1000);

      expect(b.exited, b.output()).toBe(false);
      const errors = errorLines(b, /expired queue could not be deleted/);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors[0]).toMatchObject({ queue: name, vhost: '/' });
      await c.close();
      expect(await queueExists(b, name)).toBe(true);

      fs.rmSync(filler);
      // Looked at less often than it expires: a passive declare counts as use.
      let gone = false;
      for (let i = 0; i < 10 && !gone; i++) {
        await sleep(800);
        gone = !(await queueExists(b, name));
      }
      expect(gone).toBe(true);
      expect(b.exited).toBe(false);
    },
    T,
  );

  it(
    'auto-delete: the last consumer leaving a queue whose deletion cannot be stored keeps it; it goes once space returns',
    async () => {
      const dataDir = mountTmpfs();
      const b = await start(dataDir);
      const name = 'autodel.' + 'a'.repeat(200);
      const consumer = await connect(b);
      const ch = await consumer.createChannel();
      await ch.assertQueue(name, { durable: true, autoDelete: true });
      await ch.consume(name, () => {});
      const filler = fillDisk(dataDir);
      await exhaustDefinitionsLog(b);
      await consumer.close(); // the consumer goes with its connection

      await sleep(300);
      expect(b.exited, b.output()).toBe(false);
      expect(await queueExists(b, name)).toBe(true);
      expect(errorLines(b, /auto-delete queue could not be deleted/)[0]).toMatchObject({ queue: name, vhost: '/' });

      fs.rmSync(filler);
      await waitFor(async () => !(await queueExists(b, name)), 10_000, 'the auto-delete queue to go');
      expect(b.exited).toBe(false);
    },
    T,
  );

  it(
    'TTL expiry dead-lettering into a queue whose store cannot take the message is logged, not fatal',
    async () => {
      const dataDir = mountTmpfs('4m', 400);
      const b = await start(dataDir);
      const c = await connect(b);
      const ch = await c.createConfirmChannel();
      await ch.assertQueue('dlq', { durable: true }); // no segment file yet: its first message needs a new file
      await ch.assertQueue('ttl.src', {
        durable: true,
        arguments: { 'x-message-ttl': 800, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dlq' },
      });
      for (let i = 0; i < 5; i++) ch.sendToQueue('ttl.src', Buffer.from(`m${i}`), { persistent: true });
      await ch.waitForConfirms();
      await c.close();
      const filler = fillDisk(dataDir);
      const inodes = exhaustInodes(dataDir);

      await waitFor(
        () => errorLines(b, /dead-lettered message could not be stored/).length > 0 || b.exited,
        5000,
        'the messages to expire',
      );
      expect(b.exited, b.output()).toBe(false);
      expect(errorLines(b, /dead-lettered message could not be stored/)[0]).toMatchObject({ queue: 'dlq', from: 'ttl.src', vhost: '/' });

      fs.rmSync(filler);
      fs.rmSync(inodes, { recursive: true });
      // Nacked until the store's next retry finds the space (about a second).
      await waitFor(
        () =>
          publishPersistent(b, 'dlq', ['after']).then(
            () => true,
            () => false,
          ),
        5000,
        'a confirmed publish',
      );
      // Each expired message was either dropped and logged (the disk was full) or, when it
      // expired only once space was back (a loaded machine), dead-lettered: none is both or neither.
      const drained = await drain(b, 'dlq');
      expect(drained.at(-1)).toBe('after');
      expect(drained.length - 1 + errorLines(b, /dead-lettered message could not be stored/).length).toBe(5);
    },
    T,
  );
});

describe('starting on a full disk', () => {
  it(
    'starts read-only with the disk alarm up: consumers get the stored messages, publishers are blocked until space returns',
    async () => {
      const dataDir = mountTmpfs();
      let b = await start(dataDir);
      let c = await connect(b);
      let ch = await c.createChannel();
      // Declared, deleted and declared again: the log has records a compaction would drop.
      for (let i = 0; i < 20; i++) {
        await ch.assertExchange(`churn.${i}`, 'topic', { durable: true });
        await ch.deleteExchange(`churn.${i}`);
      }
      await ch.assertQueue('stored.q', { durable: true });
      await c.close();
      const bodies = Array.from({ length: 50 }, (_, i) => `stored-${i}`);
      await publishPersistent(b, 'stored.q', bodies);
      expect(await b.stop()).toBe(0);

      const filler = fillDisk(dataDir);
      b = await start(dataDir);
      expect(b.output()).toMatch(/definitions log could not be compacted/);

      // The disk alarm is up from the start: a publisher hears connection.blocked once it
      // publishes (as in RabbitMQ; here a message no queue takes, so nothing waits for the disk).
      const publisher = await connect(b);
      const events: string[] = [];
      publisher.on('blocked', (reason: string) => events.push(`blocked: ${reason}`));
      publisher.on('unblocked', () => events.push('unblocked'));
      const probe = await publisher.createChannel();
      probe.publish('', 'no-such-queue', Buffer.from('probe'));
      await waitFor(() => events.length > 0, 5000, 'connection.blocked');
      expect(events).toEqual(['blocked: disk write failed']);

      // Consumers are served. (Nothing is published first: a message waiting in memory for
      // the disk would be written ahead of reading the queue's log back, which on a full
      // disk fails and drops what was to be read: queue-log / paged-queue-store, being rewritten.)
      c = await connect(b);
      ch = await c.createChannel();
      const got: string[] = [];
      await new Promise<void>((resolve) => {
        void ch.consume('stored.q', (m) => {
          if (m === null) return;
          got.push(m.content.toString());
          ch.ack(m);
          if (got.length === bodies.length) resolve();
        });
      });
      expect(got).toEqual(bodies);
      // A round trip behind the acks: amqplib drops what it has not sent yet when it closes
      // a connection it was told is blocked.
      expect((await ch.checkQueue('stored.q')).messageCount).toBe(0);
      await c.close();

      fs.rmSync(filler);
      await waitFor(() => events.includes('unblocked'), 5000, 'connection.unblocked');
      const pch = await publisher.createConfirmChannel();
      pch.sendToQueue('stored.q', Buffer.from('after'), { persistent: true });
      await pch.waitForConfirms();
      await publisher.close();
      expect(await drain(b, 'stored.q')).toEqual(['after']);
      expect(b.exited).toBe(false);
    },
    T,
  );
});

describe('orphaned queue folders', () => {
  async function newDataDir(): Promise<string> {
    const d = await tempDataDir('leveret-orphans-');
    dirs.push(d);
    return d;
  }

  async function connectClient(b: DurableBroker): Promise<AMQPBaseClient> {
    return new AMQPClient(b.url).connect();
  }

  it(
    'a folder left by a queue that is no longer defined is removed at start-up and none of its messages come back',
    async () => {
      const dataDir = await newDataDir();
      let b = await start(dataDir);
      let client = await connectClient(b);
      let ch = await client.channel();
      await ch.queueDeclare('orphan.q', { durable: true });
      await ch.confirmSelect();
      for (const body of ['old-1', 'old-2', 'old-3']) await ch.basicPublish('', 'orphan.q', body, { deliveryMode: 2 });
      await client.close();
      expect(await b.stop()).toBe(0);

      // Keep the folder aside, delete the queue, put the folder back: a leftover.
      const folder = queueFolder(dataDir, '/', 'orphan.q');
      expect(fs.readdirSync(folder).some((f) => f.endsWith('.seg'))).toBe(true);
      const aside = path.join(path.dirname(dataDir), 'aside');
      fs.cpSync(folder, aside, { recursive: true });
      b = await start(dataDir);
      client = await connectClient(b);
      ch = await client.channel();
      await ch.queueDelete('orphan.q');
      await client.close();
      expect(await b.stop()).toBe(0);
      fs.cpSync(aside, folder, { recursive: true });

      b = await start(dataDir);
      expect(fs.existsSync(folder)).toBe(false);
      expect(b.logLines().some((l) => l.msg === 'removing the folder of a queue that no longer exists' && l.dir === folder)).toBe(true);
      client = await connectClient(b);
      ch = await client.channel();
      expect((await ch.queueDeclare('orphan.q', { durable: true })).messageCount).toBe(0);
      await ch.confirmSelect();
      await ch.basicPublish('', 'orphan.q', 'new', { deliveryMode: 2 });
      await client.close();
      expect(await b.stop()).toBe(0);

      b = await start(dataDir);
      expect(await drain(b, 'orphan.q')).toEqual(['new']);
    },
    T,
  );

  it(
    'a deleted queue (priority levels too) leaves no folder; after kill -9 a queue declared with its name is empty',
    async () => {
      const dataDir = await newDataDir();
      let b = await start(dataDir);
      let c = await connect(b);
      let ch = await c.createChannel();
      await ch.assertQueue('gone.q', { durable: true });
      await ch.assertQueue('gone.pq', { durable: true, maxPriority: 3 });
      await c.close();
      await publishPersistent(b, 'gone.q', ['a', 'b', 'c']);
      const pc = await connect(b);
      const pch = await pc.createConfirmChannel();
      for (let p = 0; p <= 3; p++) pch.sendToQueue('gone.pq', Buffer.from(`p${p}`), { persistent: true, priority: p });
      await pch.waitForConfirms();
      await pc.close();
      expect(fs.existsSync(queueFolder(dataDir, '/', 'gone.pq'))).toBe(true);

      c = await connect(b);
      ch = await c.createChannel();
      await ch.deleteQueue('gone.q');
      await ch.deleteQueue('gone.pq');
      await c.close();
      expect(fs.existsSync(queueFolder(dataDir, '/', 'gone.q'))).toBe(false);
      expect(fs.existsSync(queueFolder(dataDir, '/', 'gone.pq'))).toBe(false);
      await b.crash();

      b = await start(dataDir);
      c = await connect(b);
      ch = await c.createChannel();
      expect((await ch.assertQueue('gone.q', { durable: true })).messageCount).toBe(0);
      expect((await ch.assertQueue('gone.pq', { durable: true, maxPriority: 3 })).messageCount).toBe(0);
      await c.close();
      await b.crash();
      b = await start(dataDir);
      expect(await drain(b, 'gone.q')).toEqual([]);
      expect(await drain(b, 'gone.pq')).toEqual([]);
    },
    T,
  );
});
