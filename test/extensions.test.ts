// RabbitMQ's queue and exchange extensions over real sockets: TTLs, queue expiry,
// length limits, dead-lettering (x-death), CC/BCC, alternate exchanges, priority
// queues, consumer priorities, single active consumer, consumer cancel notification.
// The expectations are RabbitMQ 3.10's (run with LEVERET_TEST_URL pointing at it).
import type amqp from 'amqplib';
import type { AMQPClient } from '@cloudamqp/amqp-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import {
  amqpClientChannel,
  amqpClientConnect,
  amqplibChannelClosed,
  amqplibConnect,
  closeReason,
  sleep,
  uid,
  waitFor,
} from './helpers/clients';

const T = 15_000;
const HOOK_TIMEOUT = 20_000;

type Headers = Record<string, unknown>;
type Death = Record<string, unknown>;

describe('queue and exchange extensions', () => {
  let broker: StartedBroker;
  let conn: amqp.ChannelModel;
  let ch: amqp.Channel; // setup, inspection and cleanup
  let pub: amqp.ConfirmChannel; // publishing, with confirms so a publish has arrived when it resolves
  const queues: string[] = [];
  const exchanges: string[] = [];

  // ------------------------------------------------------------------ helpers

  async function queue(args?: Record<string, unknown>, name = uid('lt-ext')): Promise<string> {
    queues.push(name);
    await ch.assertQueue(name, { durable: false, arguments: args });
    return name;
  }

  async function exchange(type = 'direct', args?: Record<string, unknown>): Promise<string> {
    const name = uid('lt-ext-x');
    exchanges.push(name);
    await ch.assertExchange(name, type, { durable: false, autoDelete: false, arguments: args });
    return name;
  }

  /** A fanout dead-letter exchange with one queue bound to it. */
  async function dlxWithQueue(): Promise<{ dlx: string; dlq: string }> {
    const dlx = await exchange('fanout');
    const dlq = await queue();
    await ch.bindQueue(dlq, dlx, '');
    return { dlx, dlq };
  }

  async function channel(): Promise<amqp.Channel> {
    const c = await conn.createChannel();
    c.on('error', () => {});
    return c;
  }

  /** Publishes through the confirm channel; resolves true on ack, false on nack. */
  function send(exchangeName: string, rk: string, body: string, opts: amqp.Options.Publish = {}): Promise<boolean> {
    return new Promise((resolve) => {
      pub.publish(exchangeName, rk, Buffer.from(body), opts, (err) => resolve(!err));
    });
  }
  const sendQ = (q: string, body: string, opts: amqp.Options.Publish = {}) => send('', q, body, opts);

  const count = async (q: string) => (await ch.checkQueue(q)).messageCount;

  /** basic.get (no-ack) until empty; the messages. */
  async function getAll(q: string): Promise<amqp.GetMessage[]> {
    const out: amqp.GetMessage[] = [];
    for (;;) {
      const m = await ch.get(q, { noAck: true });
      if (m === false) return out;
      out.push(m);
    }
  }
  const bodies = async (q: string) => (await getAll(q)).map((m) => m.content.toString());

  /** Waits until the queue holds n ready messages, then drains their bodies. */
  async function bodiesWhen(q: string, n: number, timeoutMs = 3000): Promise<string[]> {
    await waitFor(async () => (await count(q)) >= n, timeoutMs, `${n} messages in ${q}`);
    return bodies(q);
  }

  /** Whether a queue exists (passive declare on a throwaway channel). */
  async function exists(q: string): Promise<boolean> {
    const c = await conn.createChannel();
    c.on('error', () => {});
    try {
      await c.checkQueue(q);
      await c.close();
      return true;
    } catch (e) {
      const r = closeReason(e);
      if (r.code === 404) return false;
      throw e;
    }
  }

  /** Runs op on channel c and returns the server's channel-close reason. */
  async function channelError(c: amqp.Channel, op: () => unknown): Promise<{ code: number; text: string }> {
    const closed = amqplibChannelClosed(c);
    try {
      await op();
    } catch {
      /* the close reason is what matters */
    }
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error('channel was not closed by the server within 2 s')), 2000);
    });
    try {
      return await Promise.race([closed, timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  const xDeath = (m: amqp.Message): Death[] => (m.properties.headers as Headers)['x-death'] as Death[];
  const tsValue = (v: unknown) => (v as { value: number }).value;

  beforeAll(async () => {
    broker = await startBroker();
    conn = await amqplibConnect(broker.url);
    ch = await conn.createChannel();
    ch.on('error', () => {});
    pub = await conn.createConfirmChannel();
    pub.on('error', () => {});
  }, HOOK_TIMEOUT);

  afterAll(async () => {
    if (conn) {
      const c = await conn.createChannel().catch(() => undefined);
      if (c) {
        c.on('error', () => {});
        for (const q of queues) await c.deleteQueue(q).catch(() => {});
        for (const x of exchanges) await c.deleteExchange(x).catch(() => {});
      }
      await conn.close().catch(() => {});
    }
    await broker?.stop();
  }, HOOK_TIMEOUT);

  // ------------------------------------------------------------------ x-message-ttl

  describe('x-message-ttl', () => {
    it(
      'messages expire in the queue',
      async () => {
        const q = await queue({ 'x-message-ttl': 200 });
        await sendQ(q, 'a');
        await sendQ(q, 'b');
        expect(await count(q)).toBe(2);
        await sleep(450);
        expect(await count(q)).toBe(0);
        expect(await ch.get(q, { noAck: true })).toBe(false);
      },
      T,
    );

    it(
      'basic.get never returns an expired message',
      async () => {
        // A long TTL for the first message would not help here: the queue TTL is the same for all,
        // so publish, wait past the TTL and get straight away.
        const q = await queue({ 'x-message-ttl': 150 });
        await sendQ(q, 'old');
        await sleep(250);
        await sendQ(q, 'new');
        const got = await bodies(q);
        expect(got).toEqual(['new']);
      },
      T,
    );

    it(
      'TTL 0 without a consumer: the message is dropped (dead-lettered as expired)',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-message-ttl': 0, 'x-dead-letter-exchange': dlx });
        expect(await sendQ(q, 'gone')).toBe(true);
        await sleep(50);
        expect(await count(q)).toBe(0);
        const dead = await getAll(dlq);
        expect(dead.map((m) => m.content.toString())).toEqual(['gone']);
        expect(xDeath(dead[0]!)[0]!.reason).toBe('expired');
      },
      T,
    );

    it(
      'TTL 0 with a consumer attached: the message is delivered',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-message-ttl': 0, 'x-dead-letter-exchange': dlx });
        const c = await channel();
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
        for (const b of ['m0', 'm1', 'm2']) await sendQ(q, b);
        await waitFor(() => got.length === 3, 3000, '3 deliveries');
        expect(got).toEqual(['m0', 'm1', 'm2']);
        expect(await count(dlq)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'TTL 0 with a consumer that has no prefetch room: the message is dropped (dead-lettered)',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-message-ttl': 0, 'x-dead-letter-exchange': dlx });
        const c = await channel();
        await c.prefetch(1);
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: false });
        await sendQ(q, 'taken');
        await waitFor(() => got.length === 1, 3000, 'first delivery');
        await sendQ(q, 'no-room');
        expect(await bodiesWhen(dlq, 1)).toEqual(['no-room']);
        expect(got).toEqual(['taken']);
        expect(await count(q)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'per-message expiration 0: delivered to a waiting consumer, dropped without one',
      async () => {
        const q = await queue();
        await sendQ(q, 'nobody', { expiration: '0' });
        await sleep(50);
        expect(await count(q)).toBe(0);
        const c = await channel();
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
        await sendQ(q, 'someone', { expiration: '0' });
        await waitFor(() => got.length === 1, 3000, 'delivery');
        expect(got).toEqual(['someone']);
        await c.close();
      },
      T,
    );

    it(
      'TTL with a consumer attached: delivered (unacked) messages do not expire, waiting ones do',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-message-ttl': 300, 'x-dead-letter-exchange': dlx });
        const c = await channel();
        await c.prefetch(1);
        const got: amqp.ConsumeMessage[] = [];
        await c.consume(q, (m) => m && got.push(m), { noAck: false });
        for (const b of ['m0', 'm1', 'm2']) await sendQ(q, b);
        await waitFor(() => got.length === 1, 3000, 'first delivery');
        await sleep(600);
        // m1 and m2 waited past their TTL while the consumer was full
        c.ack(got[0]!);
        await sleep(200);
        expect(got.map((m) => m.content.toString())).toEqual(['m0']);
        expect(await bodiesWhen(dlq, 2)).toEqual(['m1', 'm2']);
        expect(await count(q)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'a requeued message keeps its original expiry (the clock does not restart)',
      async () => {
        const q = await queue({ 'x-message-ttl': 800 });
        const c = await channel();
        await sendQ(q, 'm');
        const m1 = await c.get(q, { noAck: false });
        expect(m1).not.toBe(false);
        await sleep(400);
        c.nack(m1 as amqp.Message, false, true);
        const m2 = await c.get(q, { noAck: false });
        expect(m2).not.toBe(false);
        expect((m2 as amqp.GetMessage).fields.redelivered).toBe(true);
        c.nack(m2 as amqp.Message, false, true);
        await sleep(600); // 1000 ms since publish (> 800); a restarted clock would give until 1200
        expect(await c.get(q, { noAck: true })).toBe(false);
        expect(await count(q)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'a message requeued after its TTL passed expires (dead-lettered as expired)',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-message-ttl': 200, 'x-dead-letter-exchange': dlx });
        const c = await channel();
        await sendQ(q, 'late');
        const m = await c.get(q, { noAck: false });
        expect(m).not.toBe(false);
        await sleep(400);
        c.nack(m as amqp.Message, false, true);
        const dead = await (async () => {
          await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered message');
          return getAll(dlq);
        })();
        expect(dead.map((d) => d.content.toString())).toEqual(['late']);
        expect(xDeath(dead[0]!)[0]!.reason).toBe('expired');
        expect(await c.get(q, { noAck: true })).toBe(false);
        await c.close();
      },
      T,
    );
  });

  // ------------------------------------------------------------------ per-message expiration

  describe('per-message expiration', () => {
    it(
      'an expired message is never delivered',
      async () => {
        const q = await queue();
        await sendQ(q, 'short', { expiration: '150' });
        await sendQ(q, 'keep');
        await sleep(300);
        const c = await channel();
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
        await sleep(200);
        expect(got).toEqual(['keep']);
        await c.close();
      },
      T,
    );

    it(
      'an expired message at the head is removed from the queue',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await sendQ(q, 'short', { expiration: '100' });
        await waitFor(async () => (await count(q)) === 0, 2000, 'the head to expire');
        const dead = await bodiesWhen(dlq, 1);
        expect(dead).toEqual(['short']);
      },
      T,
    );

    it(
      'expiry happens at the head only: an expired message behind a live one stays counted until it reaches the head',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await sendQ(q, 'long', { expiration: '60000' });
        await sendQ(q, 'short', { expiration: '100' });
        await sendQ(q, 'none');
        await sleep(300);
        expect(await count(q)).toBe(3); // 'short' has expired but is not at the head
        expect(await count(dlq)).toBe(0);
        // basic.get never returns it once expired
        const got = await bodies(q);
        expect(got).toEqual(['long', 'none']);
        expect(await count(q)).toBe(0);
        expect(await bodiesWhen(dlq, 1)).toEqual(['short']);
      },
      T,
    );

    it(
      'a consumer never gets an expired message that was waiting behind a live one',
      async () => {
        const q = await queue();
        await sendQ(q, 'long', { expiration: '60000' });
        await sendQ(q, 'short', { expiration: '100' });
        await sendQ(q, 'none');
        await sleep(300);
        const c = await channel();
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
        await waitFor(() => got.length >= 2, 3000, 'deliveries');
        await sleep(100);
        expect(got).toEqual(['long', 'none']);
        await c.close();
      },
      T,
    );

    it(
      'the lower of x-message-ttl and expiration applies',
      async () => {
        const q = await queue({ 'x-message-ttl': 150 });
        await sendQ(q, 'long-expiration', { expiration: '60000' });
        await sleep(300);
        expect(await count(q)).toBe(0);
        const q2 = await queue({ 'x-message-ttl': 60000 });
        await sendQ(q2, 'short-expiration', { expiration: '100' });
        await sleep(300);
        expect(await count(q2)).toBe(0);
      },
      T,
    );

    it.each([
      ['abc', "PRECONDITION_FAILED - invalid expiration 'abc': no_integer"],
      ['-1', "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}"],
      ['10abc', 'PRECONDITION_FAILED - invalid expiration \'10abc\': {leftover_string,"abc"}'],
    ])(
      'an invalid expiration %j closes the channel with 406',
      async (expiration, text) => {
        const q = await queue();
        const c = await channel();
        const r = await channelError(c, async () => {
          c.sendToQueue(q, Buffer.from('x'), { expiration });
          await c.checkQueue(q);
        });
        expect(r).toEqual({ code: 406, text });
        expect(await count(q)).toBe(0);
      },
      T,
    );
  });

  // ------------------------------------------------------------------ x-expires

  describe('x-expires', () => {
    // NB: in RabbitMQ a passive queue.declare counts as a use and restarts the clock too,
    // so these tests look at the queue only when they mean to.
    it(
      'an unused queue is deleted after that time (passive declare then 404)',
      async () => {
        const q = await queue({ 'x-expires': 400 });
        await sleep(150);
        expect(await exists(q)).toBe(true);
        await sleep(800);
        const c = await channel();
        const r = await channelError(c, () => c.checkQueue(q));
        expect(r.code).toBe(404);
        expect(r.text).toBe(`NOT_FOUND - no queue '${q}' in vhost '/'`);
      },
      T,
    );

    it(
      'a queue with a consumer is not deleted; the clock starts when the last consumer goes',
      async () => {
        const q = await queue({ 'x-expires': 300 });
        const c = await channel();
        const { consumerTag } = await c.consume(q, () => {}, { noAck: true });
        await sleep(700);
        expect(await exists(q)).toBe(true);
        await c.cancel(consumerTag);
        await sleep(700);
        expect(await exists(q)).toBe(false);
        await c.close();
      },
      T,
    );

    it(
      'basic.get resets the clock',
      async () => {
        const q = await queue({ 'x-expires': 600 });
        await sleep(400);
        expect(await ch.get(q, { noAck: true })).toBe(false);
        await sleep(400); // 800 ms since declare, 400 since the get
        expect(await exists(q)).toBe(true);
        await sleep(1000);
        expect(await exists(q)).toBe(false);
      },
      T,
    );

    it(
      'redeclaring resets the clock',
      async () => {
        const q = await queue({ 'x-expires': 600 });
        await sleep(400);
        await ch.assertQueue(q, { durable: false, arguments: { 'x-expires': 600 } });
        await sleep(400);
        expect(await exists(q)).toBe(true);
        await sleep(1000);
        expect(await exists(q)).toBe(false);
      },
      T,
    );

    it(
      'a passive declare resets the clock as well',
      async () => {
        const q = await queue({ 'x-expires': 500 });
        for (let i = 0; i < 4; i++) {
          await sleep(300);
          expect(await exists(q)).toBe(true); // 1200 ms in all, never 500 without a use
        }
        await sleep(900);
        expect(await exists(q)).toBe(false);
      },
      T,
    );

    it(
      'a queue holding messages expires too (messages go with it)',
      async () => {
        const q = await queue({ 'x-expires': 300 });
        await sendQ(q, 'a');
        await sleep(700);
        expect(await exists(q)).toBe(false);
      },
      T,
    );
  });

  // ------------------------------------------------------------------ length limits

  describe('x-max-length / x-max-length-bytes', () => {
    it(
      'drop-head: the oldest messages are dropped and dead-lettered with reason maxlen',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-max-length': 2, 'x-dead-letter-exchange': dlx });
        for (const b of ['m0', 'm1', 'm2', 'm3']) expect(await sendQ(q, b)).toBe(true);
        expect(await count(q)).toBe(2);
        const dead = await (async () => {
          await waitFor(async () => (await count(dlq)) === 2, 3000, 'dead-lettered');
          return getAll(dlq);
        })();
        expect(dead.map((m) => m.content.toString())).toEqual(['m0', 'm1']);
        for (const m of dead) {
          expect(xDeath(m)[0]!.reason).toBe('maxlen');
          expect((m.properties.headers as Headers)['x-first-death-reason']).toBe('maxlen');
        }
        expect(await bodies(q)).toEqual(['m2', 'm3']);
      },
      T,
    );

    it(
      'drop-head by bytes: body bytes count; the oldest go until the rest fit',
      async () => {
        const q = await queue({ 'x-max-length-bytes': 10 });
        for (const b of ['aaaa', 'bbbb', 'cccc']) await sendQ(q, b);
        expect(await bodies(q)).toEqual(['bbbb', 'cccc']);
        // a message larger than the limit on its own cannot stay either
        await sendQ(q, 'x'.repeat(11));
        expect(await count(q)).toBe(0);
      },
      T,
    );

    it(
      'reject-publish: the publish is nacked and the message not enqueued (nor dead-lettered)',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-max-length': 2, 'x-overflow': 'reject-publish', 'x-dead-letter-exchange': dlx });
        const acks = [];
        for (const b of ['m0', 'm1', 'm2', 'm3']) acks.push(await sendQ(q, b));
        expect(acks).toEqual([true, true, false, false]);
        expect(await count(q)).toBe(2);
        await sleep(100);
        expect(await count(dlq)).toBe(0);
        // room again once a message leaves
        expect(((await ch.get(q, { noAck: true })) as amqp.GetMessage).content.toString()).toBe('m0');
        expect(await sendQ(q, 'm4')).toBe(true);
        expect(await bodies(q)).toEqual(['m1', 'm4']);
      },
      T,
    );

    it(
      'reject-publish counts ready messages only (unacked ones leave room)',
      async () => {
        const q = await queue({ 'x-max-length': 1, 'x-overflow': 'reject-publish' });
        const c = await channel();
        expect(await sendQ(q, 'm0')).toBe(true);
        const m = await c.get(q, { noAck: false });
        expect(m).not.toBe(false);
        expect(await sendQ(q, 'm1')).toBe(true);
        expect(await sendQ(q, 'm2')).toBe(false);
        await c.close(); // m0 comes back: the queue now holds more than its limit
        await waitFor(async () => (await count(q)) === 2, 3000, 'requeue');
        expect(await bodies(q)).toEqual(['m0', 'm1']);
      },
      T,
    );

    it(
      'drop-head: a requeue that takes the queue over its limit drops from the head (the requeued message, as maxlen)',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-max-length': 1, 'x-dead-letter-exchange': dlx });
        const c = await channel();
        expect(await sendQ(q, 'm0')).toBe(true);
        const m = await c.get(q, { noAck: false });
        expect(m).not.toBe(false);
        expect(await sendQ(q, 'm1')).toBe(true); // fits: m0 is unacked, not ready
        await c.close(); // m0 is requeued at the head: two ready messages, limit 1
        await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered');
        const dead = await getAll(dlq);
        expect(dead.map((d) => d.content.toString())).toEqual(['m0']);
        expect(xDeath(dead[0]!)[0]!.reason).toBe('maxlen');
        expect(await bodies(q)).toEqual(['m1']);
      },
      T,
    );

    it(
      'reject-publish by bytes',
      async () => {
        const q = await queue({ 'x-max-length-bytes': 8, 'x-overflow': 'reject-publish' });
        expect(await sendQ(q, 'aaaa')).toBe(true);
        expect(await sendQ(q, 'bbbb')).toBe(true);
        expect(await sendQ(q, 'c')).toBe(false);
        expect(await bodies(q)).toEqual(['aaaa', 'bbbb']);
      },
      T,
    );

    it(
      'reject-publish-dlx: nacked and dead-lettered with reason maxlen',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': dlx });
        expect(await sendQ(q, 'm0')).toBe(true);
        expect(await sendQ(q, 'm1')).toBe(false);
        expect(await sendQ(q, 'm2')).toBe(false);
        const dead = await (async () => {
          await waitFor(async () => (await count(dlq)) === 2, 3000, 'dead-lettered');
          return getAll(dlq);
        })();
        expect(dead.map((m) => m.content.toString())).toEqual(['m1', 'm2']);
        const d = xDeath(dead[0]!)[0]!;
        expect(d.reason).toBe('maxlen');
        expect(d.queue).toBe(q);
        expect(await bodies(q)).toEqual(['m0']);
      },
      T,
    );

    it(
      'max-length 0 (drop-head) without a consumer: every message is dropped (dead-lettered)',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-max-length': 0, 'x-dead-letter-exchange': dlx });
        expect(await sendQ(q, 'm0')).toBe(true);
        expect(await count(q)).toBe(0);
        const dead = await (async () => {
          await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered');
          return getAll(dlq);
        })();
        expect(dead.map((m) => m.content.toString())).toEqual(['m0']);
        expect(xDeath(dead[0]!)[0]!.reason).toBe('maxlen');
      },
      T,
    );

    it(
      'max-length 0 (drop-head) with a consumer: messages are delivered',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-max-length': 0, 'x-dead-letter-exchange': dlx });
        const c = await channel();
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
        for (const b of ['m0', 'm1']) await sendQ(q, b);
        await waitFor(() => got.length === 2, 3000, 'deliveries');
        expect(got).toEqual(['m0', 'm1']);
        expect(await count(dlq)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'max-length 0 (reject-publish) with a consumer: nacked, not delivered',
      async () => {
        const q = await queue({ 'x-max-length': 0, 'x-overflow': 'reject-publish' });
        const c = await channel();
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
        expect(await sendQ(q, 'm0')).toBe(false);
        await sleep(150);
        expect(got).toEqual([]);
        await c.close();
      },
      T,
    );
  });

  // ------------------------------------------------------------------ dead-lettering

  describe('dead-lettering', () => {
    it(
      'reject(requeue=false) of a single message dead-letters just that message',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        for (const b of ['m0', 'm1', 'm2']) await sendQ(q, b);
        const c = await channel();
        const ms: amqp.GetMessage[] = [];
        for (let i = 0; i < 3; i++) ms.push((await c.get(q, { noAck: false })) as amqp.GetMessage);
        c.reject(ms[1]!, false);
        c.ack(ms[0]!);
        c.ack(ms[2]!);
        expect(await bodiesWhen(dlq, 1)).toEqual(['m1']);
        await sleep(100);
        expect(await count(dlq)).toBe(0);
        expect(await count(q)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'nack(multiple, requeue=false) dead-letters the whole batch, in order',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        const N = 10;
        const c = await channel();
        const got: amqp.ConsumeMessage[] = [];
        await c.consume(q, (m) => m && got.push(m), { noAck: false });
        for (let i = 0; i < N; i++) await sendQ(q, `m${i}`);
        await waitFor(() => got.length === N, 3000, 'deliveries');
        c.nack(got[N - 1]!, true, false);
        const dead = await bodiesWhen(dlq, N);
        expect(dead).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
        for (const m of got) expect(m.fields.redelivered).toBe(false);
        await c.close();
      },
      T,
    );

    it(
      'nack(requeue=false) of a single message, x-death reason rejected',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await sendQ(q, 'n');
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        c.nack(m, false, false);
        await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered');
        const [d] = await getAll(dlq);
        expect(xDeath(d!)[0]!.reason).toBe('rejected');
        await c.close();
      },
      T,
    );

    it(
      'the x-death header and x-first-death-* headers (rejected, published to the default exchange)',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await sendQ(q, 'body', { headers: { own: 'kept' }, messageId: 'id-1' });
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        const before = Math.floor(Date.now() / 1000);
        c.reject(m, false);
        await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered');
        const [d] = await getAll(dlq);
        expect(d!.content.toString()).toBe('body');
        expect(d!.fields.exchange).toBe(dlx);
        expect(d!.fields.routingKey).toBe(q); // the original routing key (no x-dead-letter-routing-key)
        expect(d!.properties.messageId).toBe('id-1');
        const h = d!.properties.headers as Headers;
        expect(h.own).toBe('kept');
        const deaths = xDeath(d!);
        expect(Array.isArray(deaths)).toBe(true);
        expect(deaths).toHaveLength(1);
        const e = deaths[0]!;
        expect(Object.keys(e).sort()).toEqual(['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']);
        expect(e.count).toBe(1);
        expect(e.reason).toBe('rejected');
        expect(e.queue).toBe(q);
        expect(e.exchange).toBe('');
        expect(e['routing-keys']).toEqual([q]);
        expect((e.time as { '!': string })['!']).toBe('timestamp');
        expect(tsValue(e.time)).toBeGreaterThanOrEqual(before - 2);
        expect(tsValue(e.time)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 2);
        expect(h['x-first-death-reason']).toBe('rejected');
        expect(h['x-first-death-queue']).toBe(q);
        expect(h['x-first-death-exchange']).toBe('');
        await c.close();
      },
      T,
    );

    it(
      'x-death for an expired message: exchange and routing keys as published, original-expiration, expiration removed',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const src = await exchange('direct');
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await ch.bindQueue(q, src, 'k1');
        await send(src, 'k1', 'exp', { expiration: '100' });
        await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered');
        const [d] = await getAll(dlq);
        expect(d!.properties.expiration).toBeUndefined();
        const e = xDeath(d!)[0]!;
        expect(Object.keys(e).sort()).toEqual(['count', 'exchange', 'original-expiration', 'queue', 'reason', 'routing-keys', 'time']);
        expect(e).toMatchObject({
          count: 1,
          reason: 'expired',
          queue: q,
          exchange: src,
          'routing-keys': ['k1'],
          'original-expiration': '100',
        });
        const h = d!.properties.headers as Headers;
        expect(h['x-first-death-reason']).toBe('expired');
        expect(h['x-first-death-queue']).toBe(q);
        expect(h['x-first-death-exchange']).toBe(src);
        expect(d!.fields.exchange).toBe(dlx);
        expect(d!.fields.routingKey).toBe('k1');
      },
      T,
    );

    it(
      'a rejected message with an expiration: the dead-lettered copy has no expiration (and does not expire)',
      async () => {
        const dlx = await exchange('fanout');
        const dlq = await queue();
        await ch.bindQueue(dlq, dlx, '');
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await sendQ(q, 'r', { expiration: '300' });
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        expect(m.properties.expiration).toBe('300');
        c.reject(m, false);
        await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered');
        await sleep(500);
        const [d] = await getAll(dlq);
        expect(d).toBeDefined();
        expect(d!.properties.expiration).toBeUndefined();
        expect(xDeath(d!)[0]!['original-expiration']).toBe('300');
        await c.close();
      },
      T,
    );

    it(
      'expired messages (queue TTL) go to the DLX in order, without original-expiration',
      async () => {
        const { dlx, dlq } = await dlxWithQueue();
        const q = await queue({ 'x-message-ttl': 100, 'x-dead-letter-exchange': dlx });
        for (const b of ['e0', 'e1', 'e2']) await sendQ(q, b);
        await waitFor(async () => (await count(dlq)) === 3, 3000, 'dead-lettered');
        const dead = await getAll(dlq);
        expect(dead.map((m) => m.content.toString())).toEqual(['e0', 'e1', 'e2']);
        for (const m of dead) {
          const e = xDeath(m)[0]!;
          expect(e.reason).toBe('expired');
          expect(e['original-expiration']).toBeUndefined();
        }
      },
      T,
    );

    it(
      'x-dead-letter-routing-key replaces the routing key; x-death keeps the original ones',
      async () => {
        const dlx = await exchange('direct');
        const dlq = await queue();
        const other = await queue();
        await ch.bindQueue(dlq, dlx, 'dead');
        await ch.bindQueue(other, dlx, 'orig');
        const src = await exchange('direct');
        const q = await queue({ 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead' });
        await ch.bindQueue(q, src, 'orig');
        await send(src, 'orig', 'x');
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await waitFor(async () => (await count(dlq)) === 1, 3000, 'dead-lettered');
        const [d] = await getAll(dlq);
        expect(d!.fields.routingKey).toBe('dead');
        expect(d!.fields.exchange).toBe(dlx);
        expect(xDeath(d!)[0]!['routing-keys']).toEqual(['orig']);
        expect(await count(other)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'without x-dead-letter-routing-key the message is routed by its original key',
      async () => {
        const dlx = await exchange('direct');
        const a = await queue();
        const b = await queue();
        await ch.bindQueue(a, dlx, 'ka');
        await ch.bindQueue(b, dlx, 'kb');
        const src = await exchange('direct');
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await ch.bindQueue(q, src, 'kb');
        await send(src, 'kb', 'y');
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await waitFor(async () => (await count(b)) === 1, 3000, 'dead-lettered');
        expect(await count(a)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'the same message dying again in the same queue for the same reason increments count (reject loop)',
      async () => {
        const q = uid('lt-ext');
        await queue({ 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q }, q);
        await sendQ(q, 'loop');
        const c = await channel();
        let m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        for (let i = 1; i <= 3; i++) {
          c.reject(m, false);
          await waitFor(async () => (await ch.checkQueue(q)).messageCount === 1, 3000, 'dead-lettered back');
          m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
          expect(m.content.toString()).toBe('loop');
          expect(m.fields.redelivered).toBe(false);
          const deaths = xDeath(m);
          expect(deaths).toHaveLength(1);
          expect(deaths[0]).toMatchObject({ count: i, reason: 'rejected', queue: q, exchange: '', 'routing-keys': [q] });
          const h = m.properties.headers as Headers;
          expect(h['x-first-death-reason']).toBe('rejected');
          expect(h['x-first-death-queue']).toBe(q);
          expect(h['x-first-death-exchange']).toBe('');
        }
        c.ack(m);
        await c.close();
      },
      T,
    );

    it(
      'a two-queue reject loop: one x-death entry per (queue, reason), most recent first',
      async () => {
        const q1 = uid('lt-ext');
        const q2 = uid('lt-ext');
        await queue({ 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 }, q1);
        await queue({ 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q1 }, q2);
        await sendQ(q1, 'ping');
        const c = await channel();
        const rejectFrom = async (q: string) => {
          await waitFor(async () => (await ch.checkQueue(q)).messageCount === 1, 3000, `message in ${q}`);
          const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
          c.reject(m, false);
          return m;
        };
        await rejectFrom(q1);
        await rejectFrom(q2);
        await rejectFrom(q1); // now back in q2
        await waitFor(async () => (await ch.checkQueue(q2)).messageCount === 1, 3000, 'message in q2');
        const m = (await c.get(q2, { noAck: true })) as amqp.GetMessage;
        const deaths = xDeath(m);
        expect(deaths.map((d) => [d.queue, d.reason, d.count])).toEqual([
          [q1, 'rejected', 2],
          [q2, 'rejected', 1],
        ]);
        const h = m.properties.headers as Headers;
        expect(h['x-first-death-queue']).toBe(q1);
        await c.close();
      },
      T,
    );

    it(
      'an automatic cycle (expired, DLX routes back to the same queue) is broken: the message is dropped',
      async () => {
        const q = uid('lt-ext');
        await queue({ 'x-message-ttl': 100, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q }, q);
        await sendQ(q, 'cycle');
        for (let i = 0; i < 5; i++) {
          await sleep(150);
          expect(await count(q)).toBe(0);
        }
        expect(await ch.get(q, { noAck: true })).toBe(false);
      },
      T,
    );

    it(
      'a cycling copy is dropped but other queues the DLX routes to still get the message',
      async () => {
        const dlx = await exchange('fanout');
        const q = await queue({ 'x-message-ttl': 100, 'x-dead-letter-exchange': dlx });
        const side = await queue();
        await ch.bindQueue(q, dlx, '');
        await ch.bindQueue(side, dlx, '');
        await sendQ(q, 'fan');
        await waitFor(async () => (await count(side)) === 1, 3000, 'side copy');
        await sleep(300);
        expect(await count(q)).toBe(0);
        expect(await count(side)).toBe(1);
        const [d] = await getAll(side);
        expect(xDeath(d!).map((e) => [e.queue, e.reason, e.count])).toEqual([[q, 'expired', 1]]);
      },
      T,
    );

    it(
      'a cycle is broken when it is automatic even if the message was rejected earlier elsewhere',
      async () => {
        // q1 --rejected--> q2 --expired--> q2: the x-death entries up to q2's own are all automatic
        const q1 = uid('lt-ext');
        const q2 = uid('lt-ext');
        await queue({ 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 }, q1);
        await queue({ 'x-message-ttl': 100, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 }, q2);
        await sendQ(q1, 'once-rejected');
        const c = await channel();
        const m = (await c.get(q1, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await sleep(200);
        for (let i = 0; i < 5; i++) {
          await sleep(150);
          expect(await count(q2)).toBe(0);
        }
        await c.close();
      },
      T,
    );

    it(
      'a cycle that includes a reject is allowed (rejected in q1, expired in q2, back to q1)',
      async () => {
        const q1 = uid('lt-ext');
        const q2 = uid('lt-ext');
        await queue({ 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 }, q1);
        await queue({ 'x-message-ttl': 100, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q1 }, q2);
        await sendQ(q1, 'round');
        const c = await channel();
        const m = (await c.get(q1, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await waitFor(async () => (await count(q1)) === 1, 3000, 'back in q1');
        const back = (await c.get(q1, { noAck: true })) as amqp.GetMessage;
        expect(xDeath(back).map((e) => [e.queue, e.reason, e.count])).toEqual([
          [q2, 'expired', 1],
          [q1, 'rejected', 1],
        ]);
        await c.close();
      },
      T,
    );

    it(
      'a dead-letter exchange that does not exist: the message is dropped',
      async () => {
        const missing = uid('lt-ext-missing');
        const q = await queue({ 'x-dead-letter-exchange': missing });
        await sendQ(q, 'lost');
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await sleep(100);
        expect(await count(q)).toBe(0);
        // declaring the exchange afterwards brings nothing back
        exchanges.push(missing);
        await ch.assertExchange(missing, 'fanout', { durable: false });
        const late = await queue();
        await ch.bindQueue(late, missing, '');
        await sleep(100);
        expect(await count(late)).toBe(0);
        await c.close();
      },
      T,
    );

    it(
      'a dead-lettered message is not returned to a mandatory publisher and the DL copy may be unroutable',
      async () => {
        // DLX exists but routes nowhere: the message just disappears
        const dlx = await exchange('direct');
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await sendQ(q, 'nowhere', { mandatory: true });
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await sleep(100);
        expect(await count(q)).toBe(0);
        await c.close();
      },
      T,
    );
  });

  // ------------------------------------------------------------------ CC / BCC

  describe('CC and BCC headers', () => {
    it(
      'a message is routed with the CC and BCC keys too; BCC is removed, CC kept',
      async () => {
        const x = await exchange('direct');
        const [qa, qb, qc, qd] = [await queue(), await queue(), await queue(), await queue()];
        await ch.bindQueue(qa, x, 'a');
        await ch.bindQueue(qb, x, 'b');
        await ch.bindQueue(qc, x, 'c');
        await ch.bindQueue(qd, x, 'd');
        await send(x, 'a', 'cc', { headers: { CC: ['b'], BCC: ['c'], other: 1 } });
        for (const q of [qa, qb, qc]) {
          const ms = await getAll(q);
          expect(ms.map((m) => m.content.toString())).toEqual(['cc']);
          const h = ms[0]!.properties.headers as Headers;
          expect(h.CC).toEqual(['b']);
          expect('BCC' in h).toBe(false);
          expect(h.other).toBe(1);
          expect(ms[0]!.fields.routingKey).toBe('a');
        }
        expect(await count(qd)).toBe(0);
      },
      T,
    );

    it(
      'a queue matched by several keys gets one copy',
      async () => {
        const x = await exchange('direct');
        const q = await queue();
        await ch.bindQueue(q, x, 'a');
        await ch.bindQueue(q, x, 'b');
        await send(x, 'a', 'once', { headers: { CC: ['b', 'a'], BCC: ['b'] } });
        expect(await bodies(q)).toEqual(['once']);
      },
      T,
    );

    it(
      'CC / BCC through the default exchange (keys are queue names)',
      async () => {
        const [q1, q2, q3] = [await queue(), await queue(), await queue()];
        await sendQ(q1, 'dflt', { headers: { CC: [q2], BCC: [q3] } });
        for (const q of [q1, q2, q3]) {
          const ms = await getAll(q);
          expect(ms.map((m) => m.content.toString())).toEqual(['dflt']);
          expect((ms[0]!.properties.headers as Headers).BCC).toBeUndefined();
        }
      },
      T,
    );

    it(
      'mandatory: routed only by a CC key is not returned',
      async () => {
        const x = await exchange('direct');
        const q = await queue();
        await ch.bindQueue(q, x, 'b');
        const returned: amqp.Message[] = [];
        const onReturn = (m: amqp.Message) => returned.push(m);
        pub.on('return', onReturn);
        await send(x, 'nothing', 'via-cc', { mandatory: true, headers: { CC: ['b'] } });
        pub.off('return', onReturn);
        expect(returned).toHaveLength(0);
        expect(await bodies(q)).toEqual(['via-cc']);
      },
      T,
    );

    it(
      'a dead-lettered message without x-dead-letter-routing-key is routed with its CC keys too; x-death routing-keys lists them',
      async () => {
        const dlx = await exchange('direct');
        const da = await queue();
        const db = await queue();
        await ch.bindQueue(da, dlx, 'ka');
        await ch.bindQueue(db, dlx, 'kb');
        const x = await exchange('direct');
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await ch.bindQueue(q, x, 'ka');
        await send(x, 'ka', 'dl-cc', { headers: { CC: ['kb'] } });
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await waitFor(async () => (await count(da)) === 1 && (await count(db)) === 1, 3000, 'both copies');
        const [d] = await getAll(da);
        expect(xDeath(d!)[0]!['routing-keys']).toEqual(['ka', 'kb']);
        expect((d!.properties.headers as Headers).CC).toEqual(['kb']);
        await c.close();
      },
      T,
    );

    it(
      'a dead-lettered message without x-dead-letter-routing-key is routed with its BCC keys too, which x-death does not list',
      async () => {
        const dlx = await exchange('direct');
        const [da, db, dc] = [await queue(), await queue(), await queue()];
        await ch.bindQueue(da, dlx, 'ka');
        await ch.bindQueue(db, dlx, 'kb');
        await ch.bindQueue(dc, dlx, 'kc');
        const x = await exchange('direct');
        const q = await queue({ 'x-dead-letter-exchange': dlx });
        await ch.bindQueue(q, x, 'ka');
        await send(x, 'ka', 'dl-bcc', { headers: { CC: ['kb'], BCC: ['kc'] } });
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        expect((m.properties.headers as Headers).BCC).toBeUndefined();
        c.reject(m, false);
        await waitFor(async () => (await count(da)) === 1 && (await count(db)) === 1, 3000, 'CC copies');
        await sleep(50);
        const copies = await getAll(dc);
        expect(copies.map((d) => d.content.toString())).toEqual(['dl-bcc']);
        const h = copies[0]!.properties.headers as Headers;
        expect(h.BCC).toBeUndefined();
        expect(xDeath(copies[0]!)[0]!['routing-keys']).toEqual(['ka', 'kb']);
        await c.close();
      },
      T,
    );

    it(
      'with x-dead-letter-routing-key, the dead-lettered copy loses its CC header',
      async () => {
        const dlx = await exchange('direct');
        const dq = await queue();
        const ccq = await queue();
        await ch.bindQueue(dq, dlx, 'dead');
        await ch.bindQueue(ccq, dlx, 'kb');
        const x = await exchange('direct');
        const q = await queue({ 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead' });
        await ch.bindQueue(q, x, 'ka');
        await send(x, 'ka', 'dl-rk', { headers: { CC: ['kb'] } });
        const c = await channel();
        const m = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        c.reject(m, false);
        await waitFor(async () => (await count(dq)) === 1, 3000, 'dead-lettered');
        const [d] = await getAll(dq);
        expect((d!.properties.headers as Headers).CC).toBeUndefined();
        expect(xDeath(d!)[0]!['routing-keys']).toEqual(['ka', 'kb']);
        await sleep(50);
        expect(await count(ccq)).toBe(0);
        await c.close();
      },
      T,
    );
  });

  // ------------------------------------------------------------------ alternate exchange

  describe('alternate-exchange', () => {
    it(
      'unroutable messages go to the alternate exchange; routable ones do not',
      async () => {
        const ae = await exchange('fanout');
        const aeq = await queue();
        await ch.bindQueue(aeq, ae, '');
        const x = await exchange('direct', { 'alternate-exchange': ae });
        const q = await queue();
        await ch.bindQueue(q, x, 'hit');
        await send(x, 'hit', 'routed');
        await send(x, 'miss', 'unroutable');
        expect(await bodies(q)).toEqual(['routed']);
        const ms = await getAll(aeq);
        expect(ms.map((m) => m.content.toString())).toEqual(['unroutable']);
        expect(ms[0]!.fields.exchange).toBe(x);
        expect(ms[0]!.fields.routingKey).toBe('miss');
      },
      T,
    );

    it(
      'mandatory with an alternate exchange that routes: no basic.return',
      async () => {
        const ae = await exchange('fanout');
        const aeq = await queue();
        await ch.bindQueue(aeq, ae, '');
        const x = await exchange('direct', { 'alternate-exchange': ae });
        const returned: amqp.Message[] = [];
        const onReturn = (m: amqp.Message) => returned.push(m);
        pub.on('return', onReturn);
        expect(await send(x, 'miss', 'to-ae', { mandatory: true })).toBe(true);
        pub.off('return', onReturn);
        expect(returned).toHaveLength(0);
        expect(await bodies(aeq)).toEqual(['to-ae']);
      },
      T,
    );

    it(
      'mandatory with an alternate exchange that routes nowhere (or does not exist): basic.return 312',
      async () => {
        const emptyAe = await exchange('direct');
        const x1 = await exchange('direct', { 'alternate-exchange': emptyAe });
        const x2 = await exchange('direct', { 'alternate-exchange': uid('lt-ext-noae') });
        const returned: amqp.Message[] = [];
        const onReturn = (m: amqp.Message) => returned.push(m);
        pub.on('return', onReturn);
        expect(await send(x1, 'miss', 'r1', { mandatory: true })).toBe(true);
        expect(await send(x2, 'miss', 'r2', { mandatory: true })).toBe(true);
        pub.off('return', onReturn);
        expect(
          returned.map((m) => [
            m.content.toString(),
            (m.fields as unknown as { replyCode: number }).replyCode,
            (m.fields as unknown as { replyText: string }).replyText,
            m.fields.exchange,
          ]),
        ).toEqual([
          ['r1', 312, 'NO_ROUTE', x1],
          ['r2', 312, 'NO_ROUTE', x2],
        ]);
      },
      T,
    );

    it(
      'alternate exchanges chain',
      async () => {
        const ae2 = await exchange('fanout');
        const q = await queue();
        await ch.bindQueue(q, ae2, '');
        const ae1 = await exchange('direct', { 'alternate-exchange': ae2 });
        const x = await exchange('topic', { 'alternate-exchange': ae1 });
        await send(x, 'a.b', 'chained');
        expect(await bodies(q)).toEqual(['chained']);
      },
      T,
    );
  });

  // ------------------------------------------------------------------ priority queues

  describe('x-max-priority', () => {
    it(
      'higher priority first, FIFO within a priority; above max counts as max; none = 0',
      async () => {
        const q = await queue({ 'x-max-priority': 5 });
        const msgs: Array<[string, number | undefined]> = [
          ['p1-a', 1],
          ['none-a', undefined],
          ['p5-a', 5],
          ['p3-a', 3],
          ['p9-a', 9], // above max: as 5
          ['p0-a', 0],
          ['p5-b', 5],
          ['p1-b', 1],
          ['none-b', undefined],
          ['p200', 200],
        ];
        for (const [b, p] of msgs) await sendQ(q, b, p === undefined ? {} : { priority: p });
        const got = await getAll(q);
        expect(got.map((m) => m.content.toString())).toEqual([
          'p5-a',
          'p9-a',
          'p5-b',
          'p200',
          'p3-a',
          'p1-a',
          'p1-b',
          'none-a',
          'p0-a',
          'none-b',
        ]);
        // the priority property is delivered as published
        expect(got[1]!.properties.priority).toBe(9);
      },
      T,
    );

    it(
      'a consumer gets the queued messages by priority',
      async () => {
        const q = await queue({ 'x-max-priority': 10 });
        for (const [b, p] of [
          ['lo', 1],
          ['hi', 8],
          ['mid', 4],
        ] as const)
          await sendQ(q, b, { priority: p });
        const c = await channel();
        const got: string[] = [];
        await c.consume(q, (m) => m && got.push(m.content.toString()), { noAck: true });
        await waitFor(() => got.length === 3, 3000, 'deliveries');
        expect(got).toEqual(['hi', 'mid', 'lo']);
        await c.close();
      },
      T,
    );

    it(
      'a requeued high-priority message comes before lower ones',
      async () => {
        const q = await queue({ 'x-max-priority': 10 });
        await sendQ(q, 'low-1', { priority: 1 });
        await sendQ(q, 'high', { priority: 7 });
        await sendQ(q, 'low-2', { priority: 1 });
        const c = await channel();
        const h = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        expect(h.content.toString()).toBe('high');
        const l1 = (await c.get(q, { noAck: false })) as amqp.GetMessage;
        expect(l1.content.toString()).toBe('low-1');
        c.nack(l1, false, true);
        c.nack(h, false, true);
        await sleep(50);
        const got: Array<[string, boolean]> = [];
        for (;;) {
          const m = await c.get(q, { noAck: true });
          if (m === false) break;
          got.push([m.content.toString(), m.fields.redelivered]);
        }
        expect(got).toEqual([
          ['high', true],
          ['low-1', true],
          ['low-2', false],
        ]);
        await c.close();
      },
      T,
    );
  });

  // ------------------------------------------------------------------ consumer priorities

  describe('consumer priorities (x-priority)', () => {
    it(
      'the higher-priority consumer gets messages while it has prefetch room; lower ones when it is full',
      async () => {
        const q = await queue();
        const lowCh = await channel();
        const highCh = await channel();
        await lowCh.prefetch(10);
        await highCh.prefetch(2);
        const low: string[] = [];
        const high: amqp.ConsumeMessage[] = [];
        // the low one subscribes first
        await lowCh.consume(q, (m) => m && low.push(m.content.toString()), { noAck: false, arguments: { 'x-priority': 1 } });
        await highCh.consume(q, (m) => m && high.push(m), { noAck: false, arguments: { 'x-priority': 10 } });
        for (let i = 0; i < 5; i++) await sendQ(q, `m${i}`);
        await waitFor(() => high.length + low.length === 5, 3000, 'deliveries');
        expect(high.map((m) => m.content.toString())).toEqual(['m0', 'm1']);
        expect(low).toEqual(['m2', 'm3', 'm4']);
        highCh.ack(high[0]!);
        await sleep(50);
        await sendQ(q, 'm5');
        await waitFor(() => high.length + low.length === 6, 3000, 'm5');
        expect(high.map((m) => m.content.toString())).toEqual(['m0', 'm1', 'm5']);
        await lowCh.close();
        await highCh.close();
      },
      T,
    );

    it(
      'a higher-priority no-ack consumer takes everything',
      async () => {
        const q = await queue();
        const c = await channel();
        const low: string[] = [];
        const high: string[] = [];
        await c.consume(q, (m) => m && low.push(m.content.toString()), { noAck: true });
        await c.consume(q, (m) => m && high.push(m.content.toString()), { noAck: true, arguments: { 'x-priority': 5 } });
        for (let i = 0; i < 6; i++) await sendQ(q, `m${i}`);
        await waitFor(() => high.length + low.length === 6, 3000, 'deliveries');
        expect(high).toHaveLength(6);
        expect(low).toHaveLength(0);
        await c.close();
      },
      T,
    );

    it(
      'equal priorities are served round-robin; a negative priority comes last',
      async () => {
        const q = await queue();
        const c = await channel();
        const a: string[] = [];
        const b: string[] = [];
        const neg: string[] = [];
        await c.consume(q, (m) => m && neg.push(m.content.toString()), { noAck: true, arguments: { 'x-priority': -1 } });
        await c.consume(q, (m) => m && a.push(m.content.toString()), { noAck: true });
        await c.consume(q, (m) => m && b.push(m.content.toString()), { noAck: true });
        for (let i = 0; i < 6; i++) await sendQ(q, `m${i}`);
        await waitFor(() => a.length + b.length + neg.length === 6, 3000, 'deliveries');
        expect(neg).toHaveLength(0);
        expect(a).toHaveLength(3);
        expect(b).toHaveLength(3);
        await c.close();
      },
      T,
    );
  });

  // ------------------------------------------------------------------ single active consumer

  describe('x-single-active-consumer', () => {
    it(
      'only the first consumer receives; when it cancels the next one takes over',
      async () => {
        const q = await queue({ 'x-single-active-consumer': true });
        const c1 = await channel();
        const c2 = await channel();
        const c3 = await channel();
        const got1: string[] = [];
        const got2: string[] = [];
        const got3: string[] = [];
        const t1 = (await c1.consume(q, (m) => m && got1.push(m.content.toString()), { noAck: true })).consumerTag;
        await c2.consume(q, (m) => m && got2.push(m.content.toString()), { noAck: true });
        await c3.consume(q, (m) => m && got3.push(m.content.toString()), { noAck: true });
        for (let i = 0; i < 4; i++) await sendQ(q, `a${i}`);
        await waitFor(() => got1.length === 4, 3000, 'deliveries to the first');
        await sleep(50);
        expect(got2).toEqual([]);
        expect(got3).toEqual([]);
        await c1.cancel(t1);
        for (let i = 0; i < 3; i++) await sendQ(q, `b${i}`);
        await waitFor(() => got2.length === 3, 3000, 'deliveries to the second');
        await sleep(50);
        expect(got1).toEqual(['a0', 'a1', 'a2', 'a3']);
        expect(got2).toEqual(['b0', 'b1', 'b2']);
        expect(got3).toEqual([]);
        for (const c of [c1, c2, c3]) await c.close();
      },
      T,
    );

    it(
      "when the active consumer's channel closes, the next consumer gets its unacked messages first, then the waiting ones",
      async () => {
        // (Cancelling the active consumer while it holds unacked messages is left out on purpose:
        // RabbitMQ 3.10 then activates the next consumer but does not hand it the messages already
        // waiting until something else makes the queue dispatch, e.g. the requeue on channel close.)
        const q = await queue({ 'x-single-active-consumer': true });
        const c1 = await channel();
        const c2 = await channel();
        await c1.prefetch(1);
        const got1: string[] = [];
        const got2: Array<[string, boolean]> = [];
        await c1.consume(q, (m) => m && got1.push(m.content.toString()), { noAck: false });
        await c2.consume(q, (m) => m && got2.push([m.content.toString(), m.fields.redelivered]), { noAck: true });
        for (const b of ['m0', 'm1', 'm2']) await sendQ(q, b);
        await waitFor(() => got1.length === 1, 3000, 'first delivery');
        await sleep(100);
        expect(got1).toEqual(['m0']);
        expect(got2).toEqual([]); // c2 has room but is not active
        await c1.close(); // m0 was never acked: it goes back to the head of the queue
        await waitFor(() => got2.length === 3, 3000, 'takeover');
        expect(got2).toEqual([
          ['m0', true],
          ['m1', false],
          ['m2', false],
        ]);
        await c2.close();
      },
      T,
    );

    it(
      'exclusive consume on a single-active-consumer queue is refused',
      async () => {
        const q = await queue({ 'x-single-active-consumer': true });
        const c = await channel();
        const r = await channelError(c, () => c.consume(q, () => {}, { exclusive: true }));
        expect(r.code).toBe(403);
        expect(r.text).toBe(`ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`);
      },
      T,
    );
  });

  // ------------------------------------------------------------------ queue type / mode

  describe('x-queue-type and x-queue-mode', () => {
    it(
      'x-queue-type classic is accepted and behaves as a normal queue',
      async () => {
        const q = await queue({ 'x-queue-type': 'classic' });
        await ch.assertQueue(q, { durable: false, arguments: { 'x-queue-type': 'classic' } });
        await sendQ(q, 'c');
        expect(await bodies(q)).toEqual(['c']);
      },
      T,
    );

    it(
      'x-queue-mode lazy is accepted and behaves as a normal queue',
      async () => {
        const q = await queue({ 'x-queue-mode': 'lazy' });
        for (const b of ['l0', 'l1']) await sendQ(q, b);
        expect(await bodies(q)).toEqual(['l0', 'l1']);
      },
      T,
    );

    it(
      'redeclaring with a different x-queue-type is refused',
      async () => {
        const q = await queue({ 'x-queue-type': 'classic' });
        const c = await channel();
        const r = await channelError(c, () => c.assertQueue(q, { durable: false, arguments: { 'x-queue-type': 'quorum' } }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(
          `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received 'quorum' but current is 'classic'`,
        );
      },
      T,
    );
  });

  // ------------------------------------------------------------------ argument validation

  describe('argument validation', () => {
    it.each([
      ['x-message-ttl', -1, '{value_negative,-1}'],
      ['x-expires', 0, '{value_zero,0}'],
      ['x-max-length', -1, '{value_negative,-1}'],
      ['x-max-priority', 256, '{max_value_exceeded,256}'],
      ['x-overflow', 'bogus', 'invalid_overflow'],
      ['x-message-ttl', 'abc', '"expected integer, got longstr"'],
    ])(
      '%s = %j is refused with 406',
      async (arg, value, detail) => {
        const name = uid('lt-ext-bad');
        queues.push(name); // in case a broker accepts it
        const c = await channel();
        const r = await channelError(c, () => c.assertQueue(name, { durable: false, arguments: { [arg]: value } }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(`PRECONDITION_FAILED - invalid arg '${arg}' for queue '${name}' in vhost '/': ${detail}`);
        expect(await exists(name)).toBe(false);
      },
      T,
    );
  });

  // ------------------------------------------------------------------ consumer cancel notification

  describe('consumer cancel notification', () => {
    it(
      'deleting a queue sends basic.cancel to its consumers (amqplib: callback with null)',
      async () => {
        const q = await queue();
        const c = await channel();
        const seen: Array<string | null> = [];
        await c.consume(q, (m) => seen.push(m === null ? null : m.content.toString()), { noAck: true });
        await sendQ(q, 'before');
        await waitFor(() => seen.length === 1, 3000, 'delivery');
        await ch.deleteQueue(q);
        await waitFor(() => seen.length === 2, 3000, 'cancel notification');
        expect(seen).toEqual(['before', null]);
        // the channel stays open
        const other = await queue();
        expect((await c.checkQueue(other)).queue).toBe(other);
        await c.close();
      },
      T,
    );

    it(
      'deleting a queue sends basic.cancel to its consumers (amqp-client: wait() rejects)',
      async () => {
        const q = await queue();
        let client: AMQPClient | undefined;
        try {
          client = await amqpClientConnect(broker.url);
          const { ch: c } = await amqpClientChannel(client);
          const consumer = await c.basicConsume(q, { noAck: true }, () => {});
          const waited = consumer.wait().then(
            () => 'resolved',
            (e: Error) => e.message,
          );
          await ch.deleteQueue(q);
          expect(await waited).toMatch(/cancelled by the server/);
          expect(c.closed).toBe(false);
          const other = await queue();
          expect((await c.queueDeclare(other, { passive: true })).name).toBe(other);
        } finally {
          if (client && !client.closed) await client.close().catch(() => {});
        }
      },
      T,
    );

    it(
      'every consumer of the deleted queue is told, on every channel',
      async () => {
        const q = await queue();
        const c1 = await channel();
        const c2 = await channel();
        let cancelled = 0;
        await c1.consume(q, (m) => m === null && cancelled++, { noAck: true });
        await c1.consume(q, (m) => m === null && cancelled++, { noAck: true });
        await c2.consume(q, (m) => m === null && cancelled++, { noAck: false });
        await ch.deleteQueue(q);
        await waitFor(() => cancelled === 3, 3000, 'three cancel notifications');
        await c1.close();
        await c2.close();
      },
      T,
    );
  });
});
