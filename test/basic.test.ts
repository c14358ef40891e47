// The basic class: consume/cancel/get, acknowledgements, recover, QoS,
// redelivery, channel errors, message bodies and properties. Both amqplib and
// @cloudamqp/amqp-client are used, raw frames where neither client exposes a
// method (basic.recover-async). Expectations are RabbitMQ 3.10's.
import type { AMQPClient, AMQPMessage } from '@cloudamqp/amqp-client';
import type amqp from 'amqplib';
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
import * as raw from './helpers/raw';

const T = 15_000;
const HOOK_TIMEOUT = 20_000; // startBroker waits up to 10 s, stop() up to 5 s

describe('basic', () => {
  let broker: StartedBroker;
  let A: amqp.ChannelModel; // amqplib
  let B: AMQPClient; // amqp-client
  let setup: amqp.Channel; // amqplib channel for declaring/inspecting queues

  /** A unique, non-durable queue, deleted in afterAll. */
  const queues: string[] = [];
  async function newQueue(prefix = 'lt-basic'): Promise<string> {
    const q = uid(prefix);
    queues.push(q);
    await setup.assertQueue(q, { durable: false });
    return q;
  }
  async function count(q: string): Promise<number> {
    return (await setup.checkQueue(q)).messageCount;
  }
  async function publishN(q: string, n: number, prefix = 'm'): Promise<string[]> {
    const bodies = Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
    for (const b of bodies) setup.sendToQueue(q, Buffer.from(b));
    await waitFor(async () => (await count(q)) >= n, 5000, `${n} messages in ${q}`);
    return bodies;
  }
  /** Drains a queue with no-ack basic.get. */
  async function getAll(q: string): Promise<Array<{ body: string; redelivered: boolean }>> {
    const out: Array<{ body: string; redelivered: boolean }> = [];
    for (;;) {
      const m = await setup.get(q, { noAck: true });
      if (!m) return out;
      out.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
    }
  }

  beforeAll(async () => {
    broker = await startBroker();
    A = await amqplibConnect(broker.url);
    B = await amqpClientConnect(broker.url);
    setup = await A.createChannel();
  }, HOOK_TIMEOUT);

  afterAll(async () => {
    if (A) {
      const ch = await A.createChannel().catch(() => undefined);
      for (const q of queues) await ch?.deleteQueue(q).catch(() => {});
      await A.close().catch(() => {});
    }
    if (B && !B.closed) await B.close().catch(() => {});
    await broker?.stop();
  }, HOOK_TIMEOUT);

  // -------------------------------------------------------------- consume

  describe('consume', () => {
    it(
      'no-ack consume delivers in order with a server-generated amq.ctag- tag (amqplib)',
      async () => {
        const q = await newQueue();
        const ch = await A.createChannel();
        const got: amqp.ConsumeMessage[] = [];
        const { consumerTag } = await ch.consume(q, (m) => m && got.push(m), { noAck: true });
        expect(consumerTag).toMatch(/^amq\.ctag-[A-Za-z0-9_-]{22}$/);
        for (let i = 1; i <= 5; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
        await waitFor(() => got.length === 5, 5000, '5 deliveries');
        expect(got.map((m) => m.content.toString())).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
        expect(got.map((m) => m.fields.deliveryTag)).toEqual([1, 2, 3, 4, 5]);
        for (const m of got) {
          expect(m.fields.consumerTag).toBe(consumerTag);
          expect(m.fields.exchange).toBe('');
          expect(m.fields.routingKey).toBe(q);
          expect(m.fields.redelivered).toBe(false);
        }
        await ch.close();
        expect(await count(q)).toBe(0);
      },
      T,
    );

    it(
      'manual-ack consume: acked messages are gone, the tag is server-generated (amqp-client)',
      async () => {
        const q = await newQueue();
        const ch = await B.channel();
        const got: AMQPMessage[] = [];
        const consumer = await ch.basicConsume(q, { noAck: false }, (m) => {
          got.push(m);
        });
        expect(consumer.tag).toMatch(/^amq\.ctag-[A-Za-z0-9_-]{22}$/);
        for (let i = 1; i <= 3; i++) await ch.basicPublish('', q, `m${i}`);
        await waitFor(() => got.length === 3, 5000, '3 deliveries');
        expect(got.map((m) => m.bodyToString())).toEqual(['m1', 'm2', 'm3']);
        for (const m of got) await m.ack();
        await ch.close();
        expect(await count(q)).toBe(0);
      },
      T,
    );

    it(
      'a client-chosen consumer tag is used',
      async () => {
        const q = await newQueue();
        const ch = await A.createChannel();
        const tag = uid('my-tag');
        const r = await ch.consume(q, () => {}, { consumerTag: tag });
        expect(r.consumerTag).toBe(tag);
        await ch.close();
      },
      T,
    );

    it(
      'an exclusive consumer locks out other consumers with 403 ACCESS_REFUSED',
      async () => {
        const q = await newQueue();
        const owner = await A.createChannel();
        await owner.consume(q, () => {}, { exclusive: true });
        const other = await A.createChannel();
        const closed = amqplibChannelClosed(other);
        await other.consume(q, () => {}).catch(() => {});
        const r = await closed;
        expect(r.code).toBe(403);
        expect(r.text).toBe(`ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`);

        // and an exclusive consume is refused while another consumer exists
        const q2 = await newQueue();
        await owner.consume(q2, () => {});
        const { ch: bch, closedByServer } = await amqpClientChannel(B);
        await bch.basicConsume(q2, { exclusive: true }, () => {}).catch(() => {});
        const r2 = await closedByServer;
        expect(r2.code).toBe(403);
        expect(r2.text).toBe(`ACCESS_REFUSED - queue '${q2}' in vhost '/' in exclusive use`);
        await owner.close();
      },
      T,
    );

    it(
      'reusing a consumer tag on the channel is a connection error 530 NOT_ALLOWED',
      async () => {
        const q = await newQueue();
        const conn = await amqpClientConnect(broker.url);
        const ch = await conn.channel();
        await ch.basicConsume(q, { tag: 'dup-tag' }, () => {});
        const err = await ch
          .basicConsume(q, { tag: 'dup-tag' }, () => {})
          .then(
            () => new Error('consumed twice'),
            (e: Error) => e,
          );
        const r = closeReason(err);
        expect(r.code).toBe(530);
        expect(r.text).toBe("NOT_ALLOWED - attempt to reuse consumer tag 'dup-tag'");
        expect(err.message).toMatch(/^connection closed/);
        await waitFor(() => conn.closed, 3000, 'connection closed');
      },
      T,
    );

    it(
      'basic.cancel stops deliveries and leaves the rest in the queue',
      async () => {
        const q = await newQueue();
        const ch = await B.channel();
        const got: string[] = [];
        const consumer = await ch.basicConsume(q, { noAck: true }, (m) => {
          got.push(m.bodyToString() ?? '');
        });
        await ch.basicPublish('', q, 'before');
        await waitFor(() => got.length === 1, 3000, 'first delivery');
        await consumer.cancel();
        await ch.basicPublish('', q, 'after');
        await waitFor(async () => (await count(q)) === 1, 3000, 'message stays queued');
        expect(got).toEqual(['before']);
        // cancelling an unknown consumer tag is answered with cancel-ok
        await ch.basicCancel(uid('unknown-tag'));
        await ch.close();
        expect((await getAll(q)).map((m) => m.body)).toEqual(['after']);
      },
      T,
    );
  });

  describe('direct reply-to', () => {
    it(
      'amq.rabbitmq.reply-to round trips a reply; using it without a reply consumer is 406',
      async () => {
        const q = await newQueue();
        const srv = await A.createChannel();
        const seenReplyTo: string[] = [];
        await srv.consume(
          q,
          (m) => {
            if (!m) return;
            seenReplyTo.push(m.properties.replyTo);
            srv.publish('', m.properties.replyTo, Buffer.from(`re:${m.content.toString()}`), { correlationId: m.properties.correlationId });
          },
          { noAck: true },
        );
        const ch = await B.channel();
        const replies: AMQPMessage[] = [];
        await ch.basicConsume('amq.rabbitmq.reply-to', { noAck: true }, (m) => {
          replies.push(m);
        });
        await ch.basicPublish('', q, 'ping', { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'corr-7' });
        await waitFor(() => replies.length === 1, 5000, 'reply');
        expect(replies[0].bodyToString()).toBe('re:ping');
        expect(replies[0].properties.correlationId).toBe('corr-7');
        expect(seenReplyTo[0]).toMatch(/^amq\.rabbitmq\.reply-to\..+/);
        await ch.close();
        await srv.close();

        const { ch: bad, closedByServer } = await amqpClientChannel(B);
        await bad.basicPublish('', q, 'x', { replyTo: 'amq.rabbitmq.reply-to' }).catch(() => {});
        expect(await closedByServer).toEqual({ code: 406, text: 'PRECONDITION_FAILED - fast reply consumer does not exist' });
      },
      T,
    );
  });

  // -------------------------------------------------------------- get

  describe('basic.get', () => {
    it(
      'returns messages with the remaining message_count, then get-empty (amqplib)',
      async () => {
        const q = await newQueue();
        await publishN(q, 3);
        const counts: number[] = [];
        const bodies: string[] = [];
        for (let i = 0; i < 3; i++) {
          const m = await setup.get(q, { noAck: true });
          if (!m) throw new Error('expected a message');
          counts.push(m.fields.messageCount);
          bodies.push(m.content.toString());
          expect(m.fields.exchange).toBe('');
          expect(m.fields.routingKey).toBe(q);
        }
        expect(bodies).toEqual(['m1', 'm2', 'm3']);
        expect(counts).toEqual([2, 1, 0]);
        expect(await setup.get(q, { noAck: true })).toBe(false);
      },
      T,
    );

    it(
      'returns messages with the remaining message_count, then null (amqp-client), and manual ack works',
      async () => {
        const q = await newQueue();
        await publishN(q, 2);
        const ch = await B.channel();
        const m1 = await ch.basicGet(q, { noAck: false });
        expect(m1?.bodyToString()).toBe('m1');
        expect(m1?.messageCount).toBe(1);
        expect(m1?.deliveryTag).toBe(1);
        const m2 = await ch.basicGet(q, { noAck: false });
        expect(m2?.messageCount).toBe(0);
        expect(m2?.deliveryTag).toBe(2);
        expect(await ch.basicGet(q)).toBeNull();
        await m1!.ack();
        await m2!.ack();
        await ch.close();
        expect(await count(q)).toBe(0);
      },
      T,
    );
  });

  // -------------------------------------------------------------- acks

  describe('ack / nack / reject', () => {
    it(
      'ack multiple acknowledges everything up to the tag; the rest return redelivered on close',
      async () => {
        const q = await newQueue();
        await publishN(q, 5);
        const ch = await A.createChannel();
        const got: amqp.ConsumeMessage[] = [];
        await ch.consume(q, (m) => m && got.push(m), { noAck: false });
        await waitFor(() => got.length === 5, 5000, '5 deliveries');
        ch.ack(got[2], true); // acks m1..m3
        await ch.close();
        expect(await getAll(q)).toEqual([
          { body: 'm4', redelivered: true },
          { body: 'm5', redelivered: true },
        ]);
      },
      T,
    );

    it(
      'nack/reject with and without requeue and multiple (amqplib)',
      async () => {
        const q = await newQueue();
        await publishN(q, 6);
        const ch = await A.createChannel();
        const got: amqp.ConsumeMessage[] = [];
        const { consumerTag } = await ch.consume(q, (m) => m && got.push(m), { noAck: false });
        await waitFor(() => got.length === 6, 5000, '6 deliveries');
        await ch.cancel(consumerTag); // so requeued messages stay in the queue
        ch.nack(got[1], true, true); // m1, m2 requeued
        ch.ack(got[2]); // m3 acked
        ch.nack(got[3], false, false); // m4 dropped
        ch.reject(got[4], false); // m5 dropped
        ch.reject(got[5], true); // m6 requeued
        await waitFor(async () => (await count(q)) === 3, 3000, '3 requeued');
        await ch.close();
        expect(await getAll(q)).toEqual([
          { body: 'm1', redelivered: true },
          { body: 'm2', redelivered: true },
          { body: 'm6', redelivered: true },
        ]);
      },
      T,
    );

    it(
      'nack multiple without requeue drops; reject with requeue puts the message back at its place (amqp-client)',
      async () => {
        const q = await newQueue();
        await publishN(q, 5);
        const ch = await B.channel();
        const got: AMQPMessage[] = [];
        for (let i = 0; i < 4; i++) got.push((await ch.basicGet(q, { noAck: false }))!);
        expect(got.map((m) => m.bodyToString())).toEqual(['m1', 'm2', 'm3', 'm4']);
        await ch.basicNack(got[1].deliveryTag, false, true); // m1, m2 dropped
        await ch.basicReject(got[3].deliveryTag, true); // m4 back, ahead of m5
        await ch.basicReject(got[2].deliveryTag, true); // m3 back, ahead of m4
        await waitFor(async () => (await count(q)) === 3, 3000, '3 in queue');
        await ch.close();
        expect(await getAll(q)).toEqual([
          { body: 'm3', redelivered: true },
          { body: 'm4', redelivered: true },
          { body: 'm5', redelivered: false },
        ]);
      },
      T,
    );

    it(
      'requeued messages are redelivered to a live consumer in order with redelivered=true',
      async () => {
        const q = await newQueue();
        await publishN(q, 3);
        const ch = await A.createChannel();
        const got: amqp.ConsumeMessage[] = [];
        await ch.consume(q, (m) => m && got.push(m), { noAck: false });
        await waitFor(() => got.length === 3, 5000, '3 deliveries');
        ch.nack(got[2], true, true);
        await waitFor(() => got.length === 6, 5000, '3 redeliveries');
        expect(got.slice(3).map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
          ['m1', true],
          ['m2', true],
          ['m3', true],
        ]);
        expect(got.slice(3).map((m) => m.fields.deliveryTag)).toEqual([4, 5, 6]);
        ch.ackAll();
        await ch.close();
        expect(await count(q)).toBe(0);
      },
      T,
    );

    it(
      'acking an unknown delivery tag is 406 PRECONDITION_FAILED',
      async () => {
        const ch = await A.createChannel();
        const closed = amqplibChannelClosed(ch);
        ch.ack({ fields: { deliveryTag: 42 } } as amqp.Message);
        const r = await closed;
        expect(r.code).toBe(406);
        expect(r.text).toBe('PRECONDITION_FAILED - unknown delivery tag 42');
      },
      T,
    );

    it(
      'acking a message twice is 406 PRECONDITION_FAILED',
      async () => {
        const q = await newQueue();
        await publishN(q, 1);
        const { ch, closedByServer } = await amqpClientChannel(B);
        const m = await ch.basicGet(q, { noAck: false });
        await ch.basicAck(m!.deliveryTag);
        await ch.basicAck(m!.deliveryTag).catch(() => {});
        const r = await closedByServer;
        expect(r.code).toBe(406);
        expect(r.text).toBe(`PRECONDITION_FAILED - unknown delivery tag ${m!.deliveryTag}`);
      },
      T,
    );

    it(
      'acking a delivery tag from no-ack consumption is 406',
      async () => {
        const q = await newQueue();
        await publishN(q, 1);
        const ch = await A.createChannel();
        const closed = amqplibChannelClosed(ch);
        const m = await ch.get(q, { noAck: true });
        expect(m).not.toBe(false);
        ch.ack(m as amqp.Message);
        const r = await closed;
        expect(r.code).toBe(406);
        expect(r.text).toBe('PRECONDITION_FAILED - unknown delivery tag 1');
      },
      T,
    );
  });

  // -------------------------------------------------------------- recover

  describe('recover', () => {
    it(
      'basic.recover (requeue=true) redelivers unacked messages with redelivered=true (amqplib)',
      async () => {
        const q = await newQueue();
        await publishN(q, 3);
        const ch = await A.createChannel();
        const got: amqp.ConsumeMessage[] = [];
        await ch.consume(q, (m) => m && got.push(m), { noAck: false });
        await waitFor(() => got.length === 3, 5000, '3 deliveries');
        ch.ack(got[0]);
        await ch.recover();
        await waitFor(() => got.length === 5, 5000, '2 redeliveries');
        expect(got.slice(3).map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
          ['m2', true],
          ['m3', true],
        ]);
        ch.ackAll();
        await sleep(100);
        expect(got).toHaveLength(5);
        await ch.close();
      },
      T,
    );

    it(
      'basic.recover via amqp-client (requeue=true) gets recover-ok and redelivers',
      async () => {
        const q = await newQueue();
        await publishN(q, 2);
        const ch = await B.channel();
        const got: AMQPMessage[] = [];
        await ch.basicConsume(q, { noAck: false }, (m) => {
          got.push(m);
        });
        await waitFor(() => got.length === 2, 5000, '2 deliveries');
        await ch.basicRecover(true);
        await waitFor(() => got.length === 4, 5000, '2 redeliveries');
        expect(got.slice(2).map((m) => [m.bodyToString(), m.redelivered])).toEqual([
          ['m1', true],
          ['m2', true],
        ]);
        await ch.basicAck(got[3].deliveryTag, true);
        await ch.close();
        expect(await count(q)).toBe(0);
      },
      T,
    );

    it(
      'basic.recover-async (requeue=true) redelivers without a reply (raw)',
      async () => {
        const q = await newQueue();
        await publishN(q, 2);
        const c = await raw.RawClient.connect(broker.port);
        try {
          await c.handshake();
          await c.openChannel(1);
          c.send(raw.basicConsume(1, q, { tag: 'raw-consumer', noAck: false }));
          await c.expectMethod(60, 21);
          const first = [raw.decodeDeliver((await c.expectMethod(60, 60)).args!), raw.decodeDeliver((await c.expectMethod(60, 60)).args!)];
          expect(first.map((d) => [d.deliveryTag, d.redelivered])).toEqual([
            [1, false],
            [2, false],
          ]);
          c.send(raw.basicRecoverAsync(1, true));
          const again = [raw.decodeDeliver((await c.expectMethod(60, 60)).args!), raw.decodeDeliver((await c.expectMethod(60, 60)).args!)];
          expect(again.map((d) => [d.deliveryTag, d.redelivered, d.consumerTag])).toEqual([
            [3, true, 'raw-consumer'],
            [4, true, 'raw-consumer'],
          ]);
          // no recover-ok was sent for the async variant
          expect(c.frames.some((f) => raw.isMethod(f, 60, 111))).toBe(false);
          c.send(raw.basicAck(1, 4, true));
          await waitFor(async () => (await setup.checkQueue(q)).messageCount === 0, 3000, 'acked');
        } finally {
          c.destroy();
        }
      },
      T,
    );
  });

  // -------------------------------------------------------------- qos

  describe('qos', () => {
    it(
      'prefetch 1: a busy consumer gets no more, an acking consumer gets the rest',
      async () => {
        const q = await newQueue();
        const slow = await A.createChannel();
        const fast = await A.createChannel();
        await slow.prefetch(1);
        await fast.prefetch(1);
        const slowGot: amqp.ConsumeMessage[] = [];
        const fastGot: string[] = [];
        await slow.consume(q, (m) => m && slowGot.push(m), { noAck: false });
        await fast.consume(
          q,
          (m) => {
            if (!m) return;
            fastGot.push(m.content.toString());
            setTimeout(() => {
              try {
                fast.ack(m);
              } catch {
                /* channel already closed at the end of the test */
              }
            }, 5);
          },
          { noAck: false },
        );
        for (let i = 1; i <= 10; i++) setup.sendToQueue(q, Buffer.from(`m${i}`));
        await waitFor(() => slowGot.length + fastGot.length === 10, 5000, '10 deliveries');
        await sleep(100);
        expect(slowGot).toHaveLength(1);
        expect(fastGot).toHaveLength(9);
        await slow.close();
        await fast.close();
      },
      T,
    );

    it(
      'two prefetch-1 consumers that ack promptly share the load round-robin',
      async () => {
        const q = await newQueue();
        const got: Record<string, string[]> = { a: [], b: [] };
        const chans: amqp.Channel[] = [];
        for (const name of ['a', 'b']) {
          const ch = await A.createChannel();
          chans.push(ch);
          await ch.prefetch(1);
          await ch.consume(
            q,
            (m) => {
              if (!m) return;
              got[name].push(m.content.toString());
              ch.ack(m);
            },
            { noAck: false },
          );
        }
        for (let i = 1; i <= 10; i++) setup.sendToQueue(q, Buffer.from(`m${i}`));
        await waitFor(() => got.a.length + got.b.length === 10, 5000, '10 deliveries');
        expect(got.a.length).toBe(5);
        expect(got.b.length).toBe(5);
        for (const ch of chans) await ch.close();
      },
      T,
    );

    it(
      'global=false limits each consumer; global=true limits the whole channel (RabbitMQ 3.x semantics)',
      async () => {
        const run = async (global: boolean) => {
          const q1 = await newQueue();
          const q2 = await newQueue();
          await publishN(q1, 5);
          await publishN(q2, 5);
          const ch = await B.channel();
          await ch.basicQos(2, 0, global);
          const got: AMQPMessage[] = [];
          await ch.basicConsume(q1, { noAck: false }, (m) => {
            got.push(m);
          });
          await ch.basicConsume(q2, { noAck: false }, (m) => {
            got.push(m);
          });
          await sleep(300);
          const n = got.length;
          await ch.close();
          return n;
        };
        expect(await run(false)).toBe(4); // 2 per consumer
        expect(await run(true)).toBe(2); // 2 for the channel
      },
      T,
    );

    it(
      'per-consumer and channel-wide limits combine',
      async () => {
        const q1 = await newQueue();
        const q2 = await newQueue();
        await publishN(q1, 5);
        await publishN(q2, 5);
        const ch = await A.createChannel();
        await ch.prefetch(3, true); // channel: 3
        await ch.prefetch(1, false); // each consumer: 1
        const got: amqp.ConsumeMessage[] = [];
        await ch.consume(q1, (m) => m && got.push(m), { noAck: false });
        await ch.consume(q2, (m) => m && got.push(m), { noAck: false });
        await sleep(300);
        expect(got).toHaveLength(2);
        ch.ack(got[0]);
        await waitFor(() => got.length === 3, 3000, 'one more after an ack');
        await ch.close();
      },
      T,
    );
  });

  // -------------------------------------------------------------- redelivery on close

  describe('unacked messages on close', () => {
    it(
      'return to the queue in original order with redelivered=true when the channel closes',
      async () => {
        const q = await newQueue();
        await publishN(q, 5);
        const ch = await A.createChannel();
        await ch.prefetch(3);
        const got: amqp.ConsumeMessage[] = [];
        await ch.consume(q, (m) => m && got.push(m), { noAck: false });
        await waitFor(() => got.length === 3, 5000, '3 deliveries');
        ch.ack(got[1]); // m2 acked, which lets m4 be delivered
        await waitFor(() => got.length === 4, 5000, '4th delivery');
        await sleep(50);
        expect(got).toHaveLength(4);
        await ch.close();
        expect(await getAll(q)).toEqual([
          { body: 'm1', redelivered: true },
          { body: 'm3', redelivered: true },
          { body: 'm4', redelivered: true },
          { body: 'm5', redelivered: false },
        ]);
      },
      T,
    );

    it(
      'return to the queue in original order with redelivered=true when the connection closes',
      async () => {
        const q = await newQueue();
        await publishN(q, 4);
        const conn = await amqpClientConnect(broker.url);
        const ch = await conn.channel();
        const got: AMQPMessage[] = [];
        await ch.basicConsume(q, { noAck: false }, (m) => {
          got.push(m);
        });
        await waitFor(() => got.length === 4, 5000, '4 deliveries');
        await conn.close();
        await waitFor(async () => (await count(q)) === 4, 5000, 'requeue on connection close');
        expect(await getAll(q)).toEqual([
          { body: 'm1', redelivered: true },
          { body: 'm2', redelivered: true },
          { body: 'm3', redelivered: true },
          { body: 'm4', redelivered: true },
        ]);
      },
      T,
    );

    it(
      'return to the queue when the connection drops without a close',
      async () => {
        const q = await newQueue();
        await publishN(q, 2);
        const c = await raw.RawClient.connect(broker.port);
        await c.handshake();
        await c.openChannel(1);
        c.send(raw.basicConsume(1, q, { noAck: false }));
        await c.expectMethod(60, 60);
        await c.expectMethod(60, 60);
        c.destroy();
        await waitFor(async () => (await count(q)) === 2, 5000, 'requeue on socket drop');
        expect(await getAll(q)).toEqual([
          { body: 'm1', redelivered: true },
          { body: 'm2', redelivered: true },
        ]);
      },
      T,
    );
  });

  // -------------------------------------------------------------- errors

  describe('channel errors', () => {
    it(
      "publishing to a missing exchange is 404 NOT_FOUND - no exchange 'x' in vhost '/'",
      async () => {
        const name = uid('lt-noex');
        const ch = await A.createChannel();
        const closed = amqplibChannelClosed(ch);
        ch.publish(name, 'k', Buffer.from('x'));
        const r = await closed;
        expect(r.code).toBe(404);
        expect(r.text).toBe(`NOT_FOUND - no exchange '${name}' in vhost '/'`);

        const { ch: bch, closedByServer } = await amqpClientChannel(B);
        await bch.basicPublish(name, 'k', 'x');
        const r2 = await closedByServer;
        expect(r2).toEqual({ code: 404, text: `NOT_FOUND - no exchange '${name}' in vhost '/'` });
      },
      T,
    );

    it(
      'a channel error closes only that channel; other channels on the connection keep working',
      async () => {
        const q = await newQueue();
        const good = await A.createChannel();
        const bad = await A.createChannel();
        const closed = amqplibChannelClosed(bad);
        bad.publish(uid('lt-noex'), 'k', Buffer.from('x'));
        expect((await closed).code).toBe(404);
        good.sendToQueue(q, Buffer.from('still-works'));
        await waitFor(async () => (await count(q)) === 1, 3000, 'publish on the good channel');
        const m = await good.get(q, { noAck: true });
        expect(m && m.content.toString()).toBe('still-works');
        // and a new channel can be opened on the same connection
        const again = await A.createChannel();
        await again.checkQueue(q);
        await again.close();
        await good.close();
      },
      T,
    );

    it(
      'a user-id property that does not match the authenticated user is 406',
      async () => {
        const q = await newQueue();
        const ch = await A.createChannel();
        const closed = amqplibChannelClosed(ch);
        ch.sendToQueue(q, Buffer.from('x'), { userId: 'bob' });
        const r = await closed;
        expect(r.code).toBe(406);
        expect(r.text).toBe("PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'");
        expect(await count(q)).toBe(0);
      },
      T,
    );
  });

  // -------------------------------------------------------------- bodies and properties

  describe('message bodies and properties', () => {
    it(
      'a 1 MB message spanning many frames round trips intact (amqplib -> amqp-client and back)',
      async () => {
        const q = await newQueue();
        const body = Buffer.alloc(1024 * 1024);
        for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 8)) & 0xff;
        setup.sendToQueue(q, body);
        await waitFor(async () => (await count(q)) === 1, 5000, 'large message queued');
        const ch = await B.channel(); // amqp-client negotiates frame_max 8192: ~128 body frames
        const m = await ch.basicGet(q, { noAck: true });
        expect(m!.bodySize).toBe(body.length);
        expect(Buffer.from(m!.body!).equals(body)).toBe(true);

        await ch.basicPublish('', q, body);
        await waitFor(async () => (await count(q)) === 1, 5000, 'large message queued again');
        const m2 = await setup.get(q, { noAck: true });
        expect(m2 && m2.content.equals(body)).toBe(true);
        await ch.close();
      },
      T,
    );

    it('10,000 small messages round trip in order', async () => {
      const q = await newQueue();
      const N = 10_000;
      const ch = await B.channel();
      await ch.basicQos(500);
      const got: number[] = [];
      await ch.basicConsume(q, { noAck: false }, (m) => {
        got.push(Number(m.bodyToString()));
        if (got.length % 100 === 0) void m.ack(true);
      });
      const pub = await A.createChannel();
      for (let i = 0; i < N; i++) {
        if (!pub.sendToQueue(q, Buffer.from(String(i)))) await new Promise((r) => pub.once('drain', r));
      }
      await waitFor(() => got.length === N, 15_000, `${N} deliveries`);
      expect(got.every((v, i) => v === i)).toBe(true);
      await pub.close();
      await ch.close();
    }, 25_000);

    it(
      'a zero-length body round trips (both clients)',
      async () => {
        const q = await newQueue();
        setup.sendToQueue(q, Buffer.alloc(0), { contentType: 'application/x-empty' });
        await waitFor(async () => (await count(q)) === 1, 3000, 'queued');
        const ch = await B.channel();
        const m = await ch.basicGet(q, { noAck: true });
        expect(m).not.toBeNull();
        expect(m!.bodySize).toBe(0);
        expect(m!.properties.contentType).toBe('application/x-empty');
        await ch.basicPublish('', q, new Uint8Array(0));
        await waitFor(async () => (await count(q)) === 1, 3000, 'queued');
        const m2 = await setup.get(q, { noAck: true });
        expect(m2 && m2.content.length).toBe(0);
        await ch.close();
      },
      T,
    );

    it(
      'all basic properties round trip (amqplib)',
      async () => {
        const q = await newQueue();
        const headers = {
          str: 'héllo',
          byte: 7,
          short: -1234,
          int: 123456789,
          long: 2 ** 40,
          neg: -5,
          dbl: 3.25,
          yes: true,
          no: false,
          nil: null,
          bin: Buffer.from([0, 1, 2, 255]),
          arr: ['a', 1, true, ['nested'], { k: 'v' }],
          table: { inner: { deeper: 'x', n: 42 }, list: [1, 2, 3] },
          empty: {},
          emptyArr: [],
        };
        const props = {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          headers,
          deliveryMode: 2,
          priority: 5,
          correlationId: 'corr-1',
          replyTo: 'reply-queue',
          expiration: '60000',
          messageId: 'msg-1',
          timestamp: 1_700_000_000,
          type: 'test.type',
          userId: 'guest',
          appId: 'leveret-tests',
        };
        setup.sendToQueue(q, Buffer.from('{"a":1}'), props);
        await waitFor(async () => (await count(q)) === 1, 3000, 'queued');
        const m = await setup.get(q, { noAck: true });
        if (!m) throw new Error('no message');
        const p = m.properties;
        expect(p.contentType).toBe(props.contentType);
        expect(p.contentEncoding).toBe(props.contentEncoding);
        expect(p.deliveryMode).toBe(2);
        expect(p.priority).toBe(5);
        expect(p.correlationId).toBe(props.correlationId);
        expect(p.replyTo).toBe(props.replyTo);
        expect(p.expiration).toBe(props.expiration);
        expect(p.messageId).toBe(props.messageId);
        expect(p.timestamp).toBe(props.timestamp);
        expect(p.type).toBe(props.type);
        expect(p.userId).toBe('guest');
        expect(p.appId).toBe(props.appId);
        expect(p.headers).toEqual(headers);
        expect(m.content.toString()).toBe('{"a":1}');
      },
      T,
    );

    it(
      'all basic properties round trip (amqp-client)',
      async () => {
        const q = await newQueue();
        const ch = await B.channel();
        const ts = new Date(1_700_000_000_000);
        const headers = {
          str: 'value',
          int: 42,
          neg: -42,
          float: 1.5,
          big: 2n ** 40n, // encoded as a signed 64-bit 'l'
          yes: true,
          bytes: new Uint8Array([1, 2, 3]),
          when: ts,
          arr: ['x', 2, false, { t: 'y' }],
          table: { nested: { n: 1, s: 's' } },
        };
        await ch.basicPublish('', q, 'payload', {
          contentType: 'text/plain',
          contentEncoding: 'identity',
          headers,
          deliveryMode: 1,
          priority: 9,
          correlationId: 'c-2',
          replyTo: 'reply-here', // not amq.rabbitmq.reply-to: that needs a direct reply-to consumer
          expiration: '120000',
          messageId: 'id-2',
          timestamp: ts,
          type: 'kind',
          userId: 'guest',
          appId: 'app-2',
        });
        await waitFor(async () => (await count(q)) === 1, 3000, 'queued');
        const m = await ch.basicGet(q, { noAck: true });
        const p = m!.properties;
        expect(p.contentType).toBe('text/plain');
        expect(p.contentEncoding).toBe('identity');
        expect(p.deliveryMode).toBe(1);
        expect(p.priority).toBe(9);
        expect(p.correlationId).toBe('c-2');
        expect(p.replyTo).toBe('reply-here');
        expect(p.expiration).toBe('120000');
        expect(p.messageId).toBe('id-2');
        expect(p.timestamp?.getTime()).toBe(ts.getTime());
        expect(p.type).toBe('kind');
        expect(p.userId).toBe('guest');
        expect(p.appId).toBe('app-2');
        const h = p.headers as Record<string, unknown>;
        expect(h.str).toBe('value');
        expect(h.int).toBe(42);
        expect(h.neg).toBe(-42);
        expect(h.float).toBe(1.5);
        expect(Number(h.big)).toBe(2 ** 40); // amqp-client decodes 'l' to a JS number
        expect(h.yes).toBe(true);
        expect(Array.from(h.bytes as Uint8Array)).toEqual([1, 2, 3]);
        expect((h.when as Date).getTime()).toBe(ts.getTime());
        expect(h.arr).toEqual(['x', 2, false, { t: 'y' }]);
        expect(h.table).toEqual({ nested: { n: 1, s: 's' } });
        expect(m!.bodyToString()).toBe('payload');
        await ch.close();
      },
      T,
    );

    it(
      'properties published by one client read the same in the other',
      async () => {
        const q = await newQueue();
        setup.sendToQueue(q, Buffer.from('cross'), {
          contentType: 'text/plain',
          headers: { a: 'b', n: 1000 },
          correlationId: 'x-1',
          messageId: 'm-1',
          timestamp: 1_600_000_000,
          persistent: true,
        });
        await waitFor(async () => (await count(q)) === 1, 3000, 'queued');
        const ch = await B.channel();
        const m = await ch.basicGet(q, { noAck: true });
        expect(m!.properties.contentType).toBe('text/plain');
        expect(m!.properties.headers).toEqual({ a: 'b', n: 1000 });
        expect(m!.properties.correlationId).toBe('x-1');
        expect(m!.properties.messageId).toBe('m-1');
        expect(m!.properties.timestamp?.getTime()).toBe(1_600_000_000_000);
        expect(m!.properties.deliveryMode).toBe(2);
        await ch.close();
      },
      T,
    );
  });
});
