// Durability: what survives a clean stop (SIGTERM) and a crash (kill -9) of the broker,
// through real sockets and real brokers on temporary data directories. Every test owns
// its data directory and its brokers; nothing is shared between tests.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { AMQPClient } from '@cloudamqp/amqp-client';
import type amqp from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EXTERNAL_BROKER } from './helpers/broker';
import { amqpClientConnect, amqplibConnect, sleep } from './helpers/clients';
import {
  expectStartFailure,
  queueDir,
  readSegmentRecords,
  removeDataDir,
  segmentFiles,
  snapshotFiles,
  startOn,
  tempDataDir,
  type DurableBroker,
} from './helpers/durable-broker';

const T = 30_000;

// ------------------------------------------------------------------ bookkeeping

const dirs: string[] = [];
let brokers: DurableBroker[] = [];
let amqplibConns: amqp.ChannelModel[] = [];
let amqpClients: AMQPClient[] = [];

async function newDataDir(): Promise<string> {
  const d = await tempDataDir();
  dirs.push(d);
  return d;
}

async function start(dataDir: string): Promise<DurableBroker> {
  const b = await startOn(dataDir);
  brokers.push(b);
  return b;
}

async function connect(b: DurableBroker): Promise<amqp.ChannelModel> {
  const c = await amqplibConnect(b.url);
  amqplibConns.push(c);
  return c;
}

async function connectClient(b: DurableBroker): Promise<AMQPClient> {
  const c = await amqpClientConnect(b.url);
  amqpClients.push(c);
  return c;
}

/** A channel whose server-side close does not throw out of an event emitter. */
async function channel(c: amqp.ChannelModel): Promise<amqp.Channel> {
  const ch = await c.createChannel();
  ch.on('error', () => {});
  return ch;
}

async function confirmChannel(c: amqp.ChannelModel): Promise<amqp.ConfirmChannel> {
  const ch = await c.createConfirmChannel();
  ch.on('error', () => {});
  return ch;
}

type Stop = 'SIGTERM' | 'SIGKILL';

/** Stops the broker the given way (waiting for it to exit) and starts a new one on its data directory. */
async function restart(b: DurableBroker, how: Stop): Promise<DurableBroker> {
  if (how === 'SIGTERM') {
    const code = await b.stop();
    expect(code, `clean stop exit code; output:\n${b.output()}`).toBe(0);
  } else {
    await b.crash();
  }
  // The old broker's clients are dead either way.
  dropClients();
  return start(b.dataDir);
}

function dropClients(): void {
  for (const c of amqplibConns) c.close().catch(() => {});
  amqplibConns = [];
  for (const c of amqpClients) if (!c.closed) c.close().catch(() => {});
  amqpClients = [];
}

afterEach(async () => {
  for (const c of amqplibConns) await c.close().catch(() => {});
  amqplibConns = [];
  for (const c of amqpClients) if (!c.closed) await c.close().catch(() => {});
  amqpClients = [];
  for (const b of brokers) await b.crash();
  brokers = [];
});

afterAll(async () => {
  for (const d of dirs) await removeDataDir(d);
});

// ------------------------------------------------------------------ helpers

async function queueExists(c: amqp.ChannelModel, name: string): Promise<boolean> {
  const ch = await channel(c);
  try {
    await ch.checkQueue(name);
    await ch.close();
    return true;
  } catch (err) {
    expect(String(err)).toMatch(/404/);
    return false;
  }
}

async function exchangeExists(c: amqp.ChannelModel, name: string): Promise<boolean> {
  const ch = await channel(c);
  try {
    await ch.checkExchange(name);
    await ch.close();
    return true;
  } catch (err) {
    expect(String(err)).toMatch(/404/);
    return false;
  }
}

/** Runs op on a fresh channel and returns the reply code the server closed it with (0: not closed). */
async function closeCode(c: amqp.ChannelModel, op: (ch: amqp.Channel) => Promise<unknown>): Promise<number> {
  const ch = await channel(c);
  try {
    await op(ch);
    await ch.close();
    return 0;
  } catch (err) {
    const m = /(\d{3}) \(/.exec(String(err));
    return m ? Number(m[1]) : -1;
  }
}

async function messageCount(c: amqp.ChannelModel, q: string): Promise<number> {
  const ch = await channel(c);
  const n = (await ch.checkQueue(q)).messageCount;
  await ch.close();
  return n;
}

/**
 * Consumes (and acks) messages from q: all `expected` of them, or, when expected is not
 * given, until none has come for 400 ms. Waits a little after the expected count for any
 * surplus, which is returned too.
 */
async function consumeAll(c: amqp.ChannelModel, q: string, expected?: number): Promise<amqp.ConsumeMessage[]> {
  const ch = await channel(c);
  await ch.prefetch(500);
  const got: amqp.ConsumeMessage[] = [];
  let last = Date.now();
  const { consumerTag } = await ch.consume(q, (m) => {
    if (m === null) return;
    got.push(m);
    last = Date.now();
    ch.ack(m);
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (expected !== undefined && got.length >= expected) {
      await sleep(50);
      break;
    }
    if (expected === undefined && Date.now() - last > 400) break;
    if (Date.now() > deadline) break;
    await sleep(10);
  }
  await ch.cancel(consumerTag);
  await ch.close();
  return got;
}

/** Persistent publishes on a confirm channel; resolves when all are confirmed. */
async function publishConfirmed(
  c: amqp.ChannelModel,
  exchange: string,
  routingKey: string,
  bodies: Buffer[],
  props: (i: number) => amqp.Options.Publish = () => ({}),
): Promise<void> {
  const ch = await confirmChannel(c);
  bodies.forEach((b, i) => ch.publish(exchange, routingKey, b, { persistent: true, ...props(i) }));
  await ch.waitForConfirms();
  await ch.close();
}

/**
 * Makes sure the broker has written what the connection sent before this call (acks,
 * deliveries, purges): a persistent publish is only confirmed after a sync round, which
 * writes every pending store record first; frames on one connection are handled in order.
 */
async function barrier(c: amqp.ChannelModel): Promise<void> {
  const ch = await confirmChannel(c);
  await ch.assertQueue('barrier', { durable: true });
  ch.sendToQueue('barrier', Buffer.from('b'), { persistent: true });
  await ch.waitForConfirms();
  await ch.purgeQueue('barrier');
  await ch.close();
}

function bodyOf(i: number, size: number): Buffer {
  const head = Buffer.from(`msg-${i}:`);
  return size <= head.length ? head.subarray(0, size) : Buffer.concat([head, randomBytes(size - head.length)]);
}

function warnings(b: DurableBroker): Array<Record<string, unknown>> {
  return b.logLines().filter((l) => l.level === 40);
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const segmentBytes = (dir: string, q: string) => sum(segmentFiles(dir, q).map((f) => fs.statSync(f).size));

// ------------------------------------------------------------------ the suites

describe.skipIf(EXTERNAL_BROKER)('durability', () => {
  describe.each<Stop>(['SIGTERM', 'SIGKILL'])('definitions across %s', (how) => {
    it(
      'durable exchanges, queues (incl. auto-delete) and bindings (queue and exchange-to-exchange) come back; transient and exclusive ones do not',
      async () => {
        const dir = await newDataDir();
        let b = await start(dir);
        let c = await connect(b);
        const ch = await channel(c);
        await ch.assertExchange('d.topic', 'topic', { durable: true });
        await ch.assertExchange('d.fanout', 'fanout', { durable: true });
        await ch.assertExchange('d.ae-args', 'direct', { durable: true, arguments: { 'alternate-exchange': 'nowhere' } });
        await ch.assertExchange('d.gone', 'direct', { durable: true });
        await ch.deleteExchange('d.gone');
        await ch.assertExchange('t.direct', 'direct', { durable: false });
        await ch.assertQueue('d.q', { durable: true, arguments: { 'x-queue-mode': 'lazy' } });
        await ch.assertQueue('d.autodel', { durable: true, autoDelete: true });
        await ch.assertQueue('t.q', { durable: false });
        await ch.assertQueue('d.excl', { durable: true, exclusive: true });
        await ch.bindQueue('d.q', 'd.topic', 'a.#');
        await ch.bindExchange('d.topic', 'd.fanout', ''); // exchange-to-exchange: d.fanout -> d.topic
        await ch.bindQueue('d.q', 'amq.direct', 'direct-key'); // from a built-in exchange
        await ch.bindQueue('d.q', 'd.topic', 'unbound.#');
        await ch.unbindQueue('d.q', 'd.topic', 'unbound.#');
        await ch.bindQueue('d.q', 't.direct', 'k'); // from a transient exchange: goes with it
        await ch.bindQueue('t.q', 'd.topic', 'a.#'); // to a transient queue: goes with it
        await ch.bindQueue('d.excl', 'd.topic', 'a.#');

        b = await restart(b, how);
        c = await connect(b);

        expect(await exchangeExists(c, 'd.topic')).toBe(true);
        expect(await exchangeExists(c, 'd.fanout')).toBe(true);
        expect(await exchangeExists(c, 'd.ae-args')).toBe(true);
        expect(await exchangeExists(c, 'd.gone')).toBe(false);
        expect(await exchangeExists(c, 't.direct')).toBe(false);
        expect(await queueExists(c, 'd.q')).toBe(true);
        expect(await queueExists(c, 'd.autodel')).toBe(true);
        expect(await queueExists(c, 't.q')).toBe(false);
        expect(await queueExists(c, 'd.excl')).toBe(false);

        // Their properties came back too: an equivalent redeclare passes, any difference is 406.
        expect(await closeCode(c, (x) => x.assertExchange('d.topic', 'topic', { durable: true }))).toBe(0);
        expect(await closeCode(c, (x) => x.assertExchange('d.topic', 'topic', { durable: false }))).toBe(406);
        expect(await closeCode(c, (x) => x.assertExchange('d.topic', 'direct', { durable: true }))).toBe(406);
        expect(
          await closeCode(c, (x) =>
            x.assertExchange('d.ae-args', 'direct', { durable: true, arguments: { 'alternate-exchange': 'nowhere' } }),
          ),
        ).toBe(0);
        expect(
          await closeCode(c, (x) =>
            x.assertExchange('d.ae-args', 'direct', { durable: true, arguments: { 'alternate-exchange': 'elsewhere' } }),
          ),
        ).toBe(406);
        expect(await closeCode(c, (x) => x.assertQueue('d.q', { durable: true, arguments: { 'x-queue-mode': 'lazy' } }))).toBe(0);
        expect(await closeCode(c, (x) => x.assertQueue('d.q', { durable: true, arguments: { 'x-queue-mode': 'default' } }))).toBe(406);
        expect(await closeCode(c, (x) => x.assertQueue('d.q', { durable: false, arguments: { 'x-queue-mode': 'lazy' } }))).toBe(406);
        expect(await closeCode(c, (x) => x.assertQueue('d.autodel', { durable: true, autoDelete: true }))).toBe(0);
        expect(await closeCode(c, (x) => x.assertQueue('d.autodel', { durable: true, autoDelete: false }))).toBe(406);

        // Bindings route as before (and only as before).
        const pub = await confirmChannel(c);
        const returned: string[] = [];
        pub.on('return', (m: amqp.Message) => returned.push(m.fields.routingKey));
        pub.publish('d.fanout', 'a.via-e2e', Buffer.from('1')); // d.fanout -> d.topic -> d.q
        pub.publish('amq.direct', 'direct-key', Buffer.from('3')); // -> d.q
        pub.publish('d.topic', 'unbound.x', Buffer.from('4'), { mandatory: true }); // unbound: returned
        await pub.waitForConfirms();
        expect(returned).toEqual(['unbound.x']);
        expect((await consumeAll(c, 'd.q', 2)).map((m) => m.content.toString())).toEqual(['1', '3']);
      },
      T,
    );
    it(
      'a server-named durable queue (amq.gen-…) comes back with its binding and messages',
      async () => {
        const dir = await newDataDir();
        let b = await start(dir);
        let c = await connect(b);
        const ch = await channel(c);
        await ch.assertExchange('d.gen-src', 'direct', { durable: true });
        const gen = (await ch.assertQueue('', { durable: true })).queue;
        expect(gen).toMatch(/^amq\.gen-/);
        await ch.bindQueue(gen, 'd.gen-src', 'gen-key');
        await publishConfirmed(c, 'd.gen-src', 'gen-key', [Buffer.from('stored')]);

        b = await restart(b, how);
        c = await connect(b);
        const lost = b.logLines().filter((l) => l.msg === 'stored definition could not be restored');
        expect(lost, 'definitions the broker could not restore').toEqual([]);
        expect(await queueExists(c, gen)).toBe(true);
        await publishConfirmed(c, 'd.gen-src', 'gen-key', [Buffer.from('routed')]);
        expect((await consumeAll(c, gen, 2)).map((m) => m.content.toString())).toEqual(['stored', 'routed']);
      },
      T,
    );
  });

  describe.each<Stop>(['SIGTERM', 'SIGKILL'])('messages across %s', (how) => {
    it(
      'persistent messages in a durable queue come back in order, byte-exact with their properties; transient ones and non-durable queues do not',
      async () => {
        const dir = await newDataDir();
        let b = await start(dir);
        let c = await connect(b);
        const setup = await channel(c);
        await setup.assertExchange('d.ex', 'direct', { durable: true });
        await setup.assertQueue('d.msgs', { durable: true });
        await setup.bindQueue('d.msgs', 'd.ex', 'k');
        await setup.assertQueue('d.transient-only', { durable: true });
        await setup.assertQueue('t.msgs', { durable: false });

        const sizes = [0, 1, 300_000, 17, 4096, 131_072, 999, 65_536, 5, 2500, 12, 70_000];
        const bodies = sizes.map((s, i) => bodyOf(i, s));
        const props = (i: number) => ({
          contentType: 'application/x-test',
          contentEncoding: 'identity',
          headers: {
            s: `str-${i}`,
            n: i,
            neg: -123456,
            big: 2 ** 40,
            f: 1.25,
            t: true,
            u: 'ünïcødé ✓',
            nested: { a: 1, list: [1, 'x', false] },
          },
          priority: i % 10,
          correlationId: `corr-${i}`,
          replyTo: `reply-${i}`,
          messageId: `mid-${i}`,
          timestamp: 1_700_000_000 + i,
          type: `type-${i}`,
          appId: 'durability-test',
          userId: 'guest',
        });
        const pub = await confirmChannel(c);
        bodies.forEach((body, i) => {
          pub.publish('d.ex', 'k', body, { persistent: true, ...props(i) });
          // interleaved: transient messages to the same durable queue
          pub.publish('d.ex', 'k', Buffer.from(`transient-${i}`), { persistent: false, messageId: `t-${i}` });
          pub.sendToQueue('d.transient-only', Buffer.from(`transient-only-${i}`), { deliveryMode: 1 });
          pub.sendToQueue('t.msgs', Buffer.from(`persistent-in-transient-queue-${i}`), { persistent: true });
        });
        await pub.waitForConfirms();
        expect(await messageCount(c, 'd.msgs')).toBe(2 * bodies.length);

        // Transient messages and non-durable queues never touch the disk.
        expect(segmentBytes(dir, 'd.transient-only')).toBe(0);
        expect(fs.existsSync(queueDir(dir, 't.msgs'))).toBe(false);
        expect(segmentBytes(dir, 'd.msgs')).toBeGreaterThan(sum(sizes));

        b = await restart(b, how);
        c = await connect(b);

        expect(await queueExists(c, 't.msgs')).toBe(false);
        expect(await messageCount(c, 'd.transient-only')).toBe(0);
        expect(await messageCount(c, 'd.msgs')).toBe(bodies.length);
        const got = await consumeAll(c, 'd.msgs', bodies.length);
        expect(got.length).toBe(bodies.length);
        got.forEach((m, i) => {
          expect(m.content.equals(bodies[i]), `body ${i} (${sizes[i]} bytes) byte-exact`).toBe(true);
          expect(m.fields.redelivered).toBe(false);
          expect(m.fields.exchange).toBe('d.ex');
          expect(m.fields.routingKey).toBe('k');
          const p = m.properties;
          const want = props(i);
          expect({
            contentType: p.contentType,
            contentEncoding: p.contentEncoding,
            headers: p.headers,
            deliveryMode: p.deliveryMode,
            priority: p.priority,
            correlationId: p.correlationId,
            replyTo: p.replyTo,
            messageId: p.messageId,
            timestamp: p.timestamp,
            type: p.type,
            appId: p.appId,
            userId: p.userId,
            expiration: p.expiration,
          }).toEqual({ ...want, deliveryMode: 2, expiration: undefined });
        });
      },
      T,
    );
    it(
      'transient messages paged out of memory (deep queues) do not come back; persistent ones among them do, in order',
      async () => {
        const dir = await newDataDir();
        let b = await start(dir);
        let c = await connect(b);
        const setup = await channel(c);
        await setup.assertQueue('d.deep', { durable: true });
        await setup.assertQueue('t.deep', { durable: false });
        // 40 x 256 KiB of transient bodies per queue: well past the broker's per-queue memory
        // budget, so most of them are paged out to disk; every fifth message is persistent.
        const pub = await confirmChannel(c);
        const persistentBodies: Buffer[] = [];
        for (let i = 0; i < 40; i++) {
          const body = bodyOf(i, 256 * 1024);
          const persistent = i % 5 === 4;
          if (persistent) persistentBodies.push(body);
          pub.sendToQueue('d.deep', body, { persistent, messageId: String(i) });
          pub.sendToQueue('t.deep', body, { persistent: true });
        }
        await pub.waitForConfirms();
        expect(await messageCount(c, 'd.deep')).toBe(40);

        b = await restart(b, how);
        c = await connect(b);
        expect(await queueExists(c, 't.deep')).toBe(false);
        const got = await consumeAll(c, 'd.deep');
        expect(got.map((m) => m.properties.messageId)).toEqual(['4', '9', '14', '19', '24', '29', '34', '39']);
        got.forEach((m, i) => expect(m.content.equals(persistentBodies[i])).toBe(true));
        // whatever was paged out for the non-durable queue is gone from the disk too
        const paging = path.join(dir, 'paging');
        expect(fs.existsSync(paging) ? fs.readdirSync(paging) : []).toEqual([]);
      },
      T,
    );
  });

  it(
    'acked, rejected, purged and no-ack messages and deleted queues stay gone after kill -9; unacked ones come back redelivered',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      let c = await connect(b);
      const ch = await channel(c);
      for (const q of ['d.settle', 'd.consumed', 'd.purge', 'd.del']) await ch.assertQueue(q, { durable: true });
      await ch.bindQueue('d.del', 'amq.direct', 'del-key');
      const ten = Array.from({ length: 10 }, (_, i) => Buffer.from(`m${i}`));
      await publishConfirmed(c, '', 'd.settle', ten);
      await publishConfirmed(c, '', 'd.consumed', ten);
      await publishConfirmed(c, '', 'd.purge', ten.slice(0, 5));
      await publishConfirmed(c, 'amq.direct', 'del-key', ten.slice(0, 3));

      // d.settle through basic.get
      const get = async () => {
        const m = await ch.get('d.settle', { noAck: false });
        if (m === false) throw new Error('queue unexpectedly empty');
        return m;
      };
      ch.ack(await get()); // m0 acked
      ch.ack(await get()); // m1 acked
      ch.reject(await get(), false); // m2 rejected, not requeued
      await get(); // m3 delivered, left unacked
      await get(); // m4 delivered, left unacked
      const m5 = await ch.get('d.settle', { noAck: true }); // m5 settled on delivery
      expect(m5 && m5.content.toString()).toBe('m5');
      // m6..m9 never delivered

      // d.consumed through basic.consume: m0..m5 delivered, then the consumer is cancelled (its
      // deliveries stay unacked on the channel); m0..m3 acked, m4 nacked with requeue, m5 left unacked
      const cons = await channel(c);
      await cons.prefetch(6);
      const delivered: amqp.ConsumeMessage[] = [];
      const { consumerTag } = await cons.consume('d.consumed', (m) => m && delivered.push(m));
      while (delivered.length < 6) await sleep(5);
      await cons.cancel(consumerTag);
      expect(delivered.map((m) => m.content.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
      for (const m of delivered.slice(0, 4)) cons.ack(m);
      cons.nack(delivered[4], false, true);

      expect((await ch.purgeQueue('d.purge')).messageCount).toBe(5);
      await publishConfirmed(c, '', 'd.purge', [Buffer.from('after-purge')]);
      expect((await ch.deleteQueue('d.del')).messageCount).toBe(3);
      // deleted and declared again in the same run: only what came after counts
      await ch.assertQueue('d.redeclared', { durable: true });
      await publishConfirmed(c, '', 'd.redeclared', ten.slice(0, 3));
      await ch.deleteQueue('d.redeclared');
      await ch.assertQueue('d.redeclared', { durable: true });
      await publishConfirmed(c, '', 'd.redeclared', [Buffer.from('fresh')]);
      await barrier(c);

      b = await restart(b, 'SIGKILL');
      c = await connect(b);

      const settle = await consumeAll(c, 'd.settle', 6);
      expect(settle.map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
        ['m3', true],
        ['m4', true],
        ['m6', false],
        ['m7', false],
        ['m8', false],
        ['m9', false],
      ]);
      const consumed = await consumeAll(c, 'd.consumed', 6);
      expect(consumed.map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
        ['m4', true],
        ['m5', true],
        ['m6', false],
        ['m7', false],
        ['m8', false],
        ['m9', false],
      ]);
      expect((await consumeAll(c, 'd.purge', 1)).map((m) => m.content.toString())).toEqual(['after-purge']);
      expect((await consumeAll(c, 'd.redeclared')).map((m) => m.content.toString())).toEqual(['fresh']);

      expect(await queueExists(c, 'd.del')).toBe(false);
      const x = await channel(c);
      expect((await x.assertQueue('d.del', { durable: true })).messageCount).toBe(0);
      // and its old binding did not come back with it
      await publishConfirmed(c, 'amq.direct', 'del-key', [Buffer.from('unrouted')]);
      expect(await messageCount(c, 'd.del')).toBe(0);

      // Everything consumed above was acked: a second crash brings nothing back.
      await barrier(c);
      b = await restart(b, 'SIGKILL');
      c = await connect(b);
      for (const q of ['d.settle', 'd.consumed', 'd.purge', 'd.del', 'd.redeclared']) expect(await messageCount(c, q), q).toBe(0);
    },
    T,
  );

  it(
    'every confirmed message is there after kill -9 right after the confirms (amqplib)',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      let c = await connect(b);
      const ch = await confirmChannel(c);
      await ch.assertQueue('d.confirmed', { durable: true });
      const bodies = Array.from({ length: 3000 }, (_, i) => bodyOf(i, 20 + ((i * 7919) % 1500)));
      for (const body of bodies) ch.sendToQueue('d.confirmed', body, { persistent: true });
      await ch.waitForConfirms();
      await b.crash(); // at once: no chance for anything to be written afterwards
      b = await restart(b, 'SIGKILL');
      c = await connect(b);
      expect(await messageCount(c, 'd.confirmed')).toBe(bodies.length);
      const got = await consumeAll(c, 'd.confirmed', bodies.length);
      expect(got.length).toBe(bodies.length);
      const bad = got.filter((m, i) => !m.content.equals(bodies[i]));
      expect(bad.length, 'messages out of order or not byte-exact').toBe(0);
    },
    T,
  );

  it(
    'every confirmed message is there after kill -9 in the middle of a publishing stream',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      const ch = await confirmChannel(await connect(b));
      await ch.assertQueue('d.stream', { durable: true });
      const bodies: Buffer[] = [];
      const confirmed = new Set<number>();
      let outstanding = 0;
      let stop = false;
      const publishing = (async () => {
        for (let i = 0; !stop; i++) {
          const body = bodyOf(i, 50 + ((i * 104729) % 3000));
          bodies.push(body);
          outstanding++;
          try {
            ch.publish('', 'd.stream', body, { persistent: true, messageId: String(i) }, (err) => {
              outstanding--;
              if (err === null || err === undefined) confirmed.add(i);
            });
          } catch {
            break; // the broker is gone
          }
          // a window of unconfirmed publishes in flight, as a real publisher keeps
          while (outstanding > 500 && !stop) await sleep(1);
        }
      })();
      while (confirmed.size < 1000) await sleep(1);
      await b.crash();
      const confirmedAtCrash = [...confirmed];
      stop = true;
      await publishing;
      b = await restart(b, 'SIGKILL');
      const c = await connect(b);
      const got = await consumeAll(c, 'd.stream');
      const ids = got.map((m) => Number(m.properties.messageId));
      // What is there is a prefix of what was published, in order, byte-exact, each once.
      expect(ids).toEqual(ids.map((_, i) => i));
      for (const m of got) expect(m.content.equals(bodies[Number(m.properties.messageId)])).toBe(true);
      const present = new Set(ids);
      const missing = confirmedAtCrash.filter((i) => !present.has(i));
      expect(missing, `confirmed but missing (of ${confirmedAtCrash.length} confirmed, ${ids.length} present)`).toEqual([]);
    },
    T,
  );

  it(
    'committed persistent publishes survive kill -9 right after tx.commit-ok; uncommitted ones do not',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      const client = await connectClient(b);
      const ch = await client.channel();
      await ch.queueDeclare('d.tx', { durable: true });
      await ch.txSelect();
      const other = await client.channel();
      await other.txSelect();
      for (let i = 0; i < 40; i++) await ch.basicPublish('', 'd.tx', bodyOf(i, 200), { deliveryMode: 2 });
      await ch.txCommit();
      for (let i = 0; i < 10; i++) await other.basicPublish('', 'd.tx', Buffer.from(`uncommitted-${i}`), { deliveryMode: 2 });
      for (let i = 40; i < 80; i++) await ch.basicPublish('', 'd.tx', bodyOf(i, 200 + i), { deliveryMode: 2 });
      await ch.txCommit();
      await b.crash(); // straight after commit-ok
      const expected = Array.from({ length: 80 }, (_, i) => i);
      b = await restart(b, 'SIGKILL');
      const c = await connect(b);
      const got = await consumeAll(c, 'd.tx');
      expect(got.map((m) => Number(/^msg-(\d+):/.exec(m.content.toString('latin1'))?.[1] ?? -1))).toEqual(expected);
      expect(got.every((m) => m.properties.deliveryMode === 2)).toBe(true);
    },
    T,
  );

  it(
    'a second broker on the same data directory refuses to start while the first keeps working; a dead owner’s lock is taken over',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      const lockFile = path.join(dir, 'leveret.lock');
      expect(Number(fs.readFileSync(lockFile, 'utf8').trim())).toBe(b.pid);
      let c = await connect(b);
      await (await channel(c)).assertQueue('d.lock', { durable: true });
      await publishConfirmed(c, '', 'd.lock', [Buffer.from('before')]);

      const second = await expectStartFailure(dir);
      expect(second.code, second.output).not.toBe(0);
      expect(second.code, second.output).not.toBeNull();
      expect(second.output).toMatch(/data dir|lock/i);
      expect(second.output).toContain(dir);

      // The first broker is unharmed: still owns the lock, still stores and delivers.
      expect(Number(fs.readFileSync(lockFile, 'utf8').trim())).toBe(b.pid);
      expect(b.exited).toBe(false);
      await publishConfirmed(c, '', 'd.lock', [Buffer.from('after')]);
      expect((await consumeAll(c, 'd.lock', 2)).map((m) => m.content.toString())).toEqual(['before', 'after']);
      await publishConfirmed(c, '', 'd.lock', [Buffer.from('kept')]);

      // kill -9 leaves the lock behind, naming a dead process: the next broker takes it over.
      await b.crash();
      expect(fs.existsSync(lockFile)).toBe(true);
      b = await restart(b, 'SIGKILL');
      expect(Number(fs.readFileSync(lockFile, 'utf8').trim())).toBe(b.pid);
      c = await connect(b);
      expect((await consumeAll(c, 'd.lock', 1)).map((m) => m.content.toString())).toEqual(['kept']);
      // A clean stop removes the lock.
      expect(await b.stop()).toBe(0);
      expect(fs.existsSync(lockFile)).toBe(false);
    },
    T,
  );

  it(
    'an unknown store version is refused and the data files are left untouched',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      const c = await connect(b);
      await (await channel(c)).assertQueue('d.version', { durable: true });
      await publishConfirmed(c, '', 'd.version', [Buffer.from('one'), Buffer.from('two')]);
      expect(await b.stop()).toBe(0);
      dropClients();
      const versionFile = path.join(dir, 'VERSION');
      expect(fs.readFileSync(versionFile, 'utf8').trim()).toBe('leveret-store 1');

      fs.writeFileSync(versionFile, 'leveret-store 99\n');
      const before = snapshotFiles(dir);
      const failed = await expectStartFailure(dir);
      expect(failed.code, failed.output).not.toBe(0);
      expect(failed.code, failed.output).not.toBeNull();
      expect(failed.output).toMatch(/version/i);
      expect(failed.output).toContain('leveret-store 99');
      const after = snapshotFiles(dir);
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [name, bytes] of before) expect(after.get(name)!.equals(bytes), `${name} unchanged`).toBe(true);

      // The data really is intact: with the right version back, the messages are there.
      fs.writeFileSync(versionFile, 'leveret-store 1\n');
      b = await start(dir);
      const c2 = await connect(b);
      expect((await consumeAll(c2, 'd.version', 2)).map((m) => m.content.toString())).toEqual(['one', 'two']);
    },
    T,
  );

  describe('damaged newest segment', () => {
    const N = 20;

    /** A crashed broker's data directory holding N persistent messages in queue d.damaged. */
    async function crashedWithMessages(): Promise<{ dir: string; bodies: Buffer[]; seg: string }> {
      const dir = await newDataDir();
      const b = await start(dir);
      const c = await connect(b);
      await (await channel(c)).assertQueue('d.damaged', { durable: true });
      const bodies = Array.from({ length: N }, (_, i) => bodyOf(i, 30 + i * 97));
      await publishConfirmed(c, '', 'd.damaged', bodies);
      await b.crash();
      dropClients();
      const segs = segmentFiles(dir, 'd.damaged');
      expect(segs.length).toBe(1);
      const records = readSegmentRecords(segs[0]);
      expect(records.map((r) => r.body)).toEqual(bodies);
      expect(records.at(-1)!.offset + records.at(-1)!.size).toBe(fs.statSync(segs[0]).size);
      return { dir, bodies, seg: segs[0] };
    }

    function expectTornWarning(b: DurableBroker): void {
      const w = warnings(b).filter((l) => /torn|corrupt|truncat|cut/i.test(String(l.msg)));
      expect(w.length, `a warning about the damaged segment in:\n${b.output()}`).toBeGreaterThan(0);
    }

    it.each([
      ['in the middle of its payload', (size: number) => Math.floor(size / 2)],
      ['inside its 8-byte header', () => 5],
    ])(
      'last record cut %s: the broker starts, warns, and has every earlier message',
      async (_what, cutAt) => {
        const { dir, bodies, seg } = await crashedWithMessages();
        const last = readSegmentRecords(seg).at(-1)!;
        fs.truncateSync(seg, last.offset + cutAt(last.size));

        let b = await start(dir);
        expectTornWarning(b);
        let c = await connect(b);
        expect(await messageCount(c, 'd.damaged')).toBe(N - 1);
        const got = await consumeAll(c, 'd.damaged', N - 1);
        expect(got.map((m) => m.content)).toEqual(bodies.slice(0, N - 1));

        // The store carries on normally: new messages are kept, and the next start is clean.
        await publishConfirmed(c, '', 'd.damaged', [Buffer.from('new-1'), Buffer.from('new-2')]);
        b = await restart(b, 'SIGKILL');
        expect(warnings(b)).toEqual([]);
        c = await connect(b);
        expect((await consumeAll(c, 'd.damaged')).map((m) => m.content.toString())).toEqual(['new-1', 'new-2']);
      },
      T,
    );

    it(
      'last record cut behind an empty newer segment (killed mid-write just after a rollover): a torn tail, not damage',
      async () => {
        // An append that finds the segment full creates the next segment file at once; the
        // full one's last appends are written at the end of the turn. bench/crash.mjs caught
        // a kill -9 inside that write (the file ended on a page boundary inside a record),
        // and recovery then called the unconfirmed tail damage, with an error and a copy.
        const { dir, bodies, seg } = await crashedWithMessages();
        const last = readSegmentRecords(seg).at(-1)!;
        fs.truncateSync(seg, last.offset + Math.floor(last.size / 2));
        const id = Number(path.basename(seg, '.seg'));
        for (const next of [id + 1, id + 2]) {
          for (const ext of ['seg', 'ack']) fs.writeFileSync(path.join(path.dirname(seg), `${String(next).padStart(10, '0')}.${ext}`), '');
        }

        const b = await start(dir);
        expectTornWarning(b);
        expect(
          b.logLines().filter((l) => Number(l.level) >= 50),
          b.output(),
        ).toEqual([]);
        expect(fs.existsSync(path.join(path.dirname(seg), 'damaged'))).toBe(false);
        const c = await connect(b);
        expect(await messageCount(c, 'd.damaged')).toBe(N - 1);
        expect((await consumeAll(c, 'd.damaged', N - 1)).map((m) => m.content)).toEqual(bodies.slice(0, N - 1));
      },
      T,
    );

    it.each([
      ['0xAB bytes', Buffer.alloc(37, 0xab)],
      ['a plausible header with a bad checksum', Buffer.concat([Buffer.from([0, 0, 0, 10, 1, 2, 3, 4]), Buffer.alloc(10, 7)])],
      ['zeros (a zero-length record header)', Buffer.alloc(64)],
    ])(
      'garbage appended (%s): the broker starts, warns, and has every message',
      async (_what, garbage) => {
        const { dir, bodies, seg } = await crashedWithMessages();
        fs.appendFileSync(seg, garbage);
        const b = await start(dir);
        const c = await connect(b);
        expect(await messageCount(c, 'd.damaged'), 'messages recovered (the garbage must not count as messages)').toBe(N);
        expectTornWarning(b);
        const got = await consumeAll(c, 'd.damaged', N);
        expect(got.map((m) => m.content)).toEqual(bodies);
      },
      T,
    );

    it.each([
      [
        'a corrupted byte in the body of a record: only that record is lost',
        10,
        (rec: { size: number }, body: Buffer) => rec.size - Math.floor(body.length / 2),
        0xff,
      ],
      ['a corrupted length in the middle of the segment (it points far past the record)', 7, () => 2, 0x40],
    ])(
      '%s, every intact record after it is recovered',
      async (_what, k, offsetIn, flip) => {
        const { dir, bodies, seg } = await crashedWithMessages();
        const rec = readSegmentRecords(seg)[k];
        const data = fs.readFileSync(seg);
        data[rec.offset + offsetIn(rec, bodies[k])] ^= flip;
        fs.writeFileSync(seg, data);

        const b = await start(dir);
        expectDamageLogged(b, dir);
        const c = await connect(b);
        const got = (await consumeAll(c, 'd.damaged', N - 1)).map((m) => m.content);
        expect(got).toEqual(bodies.filter((_, i) => i !== k));
      },
      T,
    );

    /** The damage is logged as an error and the damaged bytes kept aside for inspection. */
    function expectDamageLogged(b: DurableBroker, dir: string): void {
      const errors = b.logLines().filter((l) => l.level === 50 && /damaged record skipped/.test(String(l.msg)));
      expect(errors.length, `an error about the damaged record in:\n${b.output()}`).toBe(1);
      const copy = String(errors[0].copy);
      expect(copy.startsWith(dir)).toBe(true);
      expect(fs.existsSync(copy)).toBe(true);
    }
  });

  it(
    'a corrupted record in an older segment is dropped when read, never delivered; the others are intact',
    async () => {
      const dir = await newDataDir();
      let b = await start(dir);
      const c = await connect(b);
      await (await channel(c)).assertQueue('d.older', { durable: true });
      // 1 MiB bodies: the 8 MiB segment fills after 8 of them, the 9th starts a second one
      const bodies = Array.from({ length: 9 }, (_, i) => bodyOf(i, 1024 * 1024));
      await publishConfirmed(c, '', 'd.older', bodies);
      await b.crash();
      dropClients();
      const segs = segmentFiles(dir, 'd.older');
      expect(segs.length).toBe(2);
      const recs = readSegmentRecords(segs[0]);
      expect(recs.length).toBe(8);
      const data = fs.readFileSync(segs[0]);
      data[recs[3].offset + recs[3].size - 1000] ^= 0x01;
      fs.writeFileSync(segs[0], data);

      b = await start(dir);
      const c2 = await connect(b);
      const got = (await consumeAll(c2, 'd.older')).map((m) => bodies.findIndex((x) => x.equals(m.content)));
      expect(got).toEqual([0, 1, 2, 4, 5, 6, 7, 8]);
    },
    T,
  );
});
