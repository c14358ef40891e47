// Publisher confirms, transactions and channel.flow, through amqplib,
// @cloudamqp/amqp-client and raw frames. Expectations are RabbitMQ 3.10's.
import type { AMQPClient } from '@cloudamqp/amqp-client';
import type amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { amqpClientChannel, amqpClientConnect, amqplibChannelClosed, amqplibConnect, sleep, uid, waitFor } from './helpers/clients';
import * as raw from './helpers/raw';

const T = 15_000;
const HOOK_TIMEOUT = 20_000; // startBroker waits up to 10 s, stop() up to 5 s

describe('confirms and transactions', () => {
  let broker: StartedBroker;
  let A: amqp.ChannelModel;
  let B: AMQPClient;
  let setup: amqp.Channel;
  const queues: string[] = [];

  async function newQueue(args?: Record<string, unknown>): Promise<string> {
    const q = uid('lt-ctx');
    queues.push(q);
    await setup.assertQueue(q, { durable: false, arguments: args });
    return q;
  }
  const count = async (q: string) => (await setup.checkQueue(q)).messageCount;
  async function bodies(q: string): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const m = await setup.get(q, { noAck: true });
      if (!m) return out;
      out.push(m.content.toString());
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

  describe('publisher confirms', () => {
    it(
      'every publish is acked; acks may be multiple and cover tags 1..N (amqplib)',
      async () => {
        const q = await newQueue();
        const ch = await A.createConfirmChannel();
        const acks: Array<{ deliveryTag: number; multiple: boolean }> = [];
        ch.on('ack', (f: { deliveryTag: number; multiple: boolean }) => acks.push(f));
        const nacks: unknown[] = [];
        ch.on('nack', (f: unknown) => nacks.push(f));
        const N = 500;
        const callbacks: Array<Promise<void>> = [];
        for (let i = 0; i < N; i++) {
          callbacks.push(
            new Promise<void>((resolve, reject) => {
              ch.sendToQueue(q, Buffer.from(`m${i}`), {}, (err) => (err ? reject(err) : resolve()));
            }),
          );
        }
        await ch.waitForConfirms();
        await Promise.all(callbacks);
        expect(nacks).toHaveLength(0);
        // the acks, expanded, confirm exactly 1..N
        const confirmed = new Set<number>();
        let last = 0;
        for (const a of acks) {
          expect(a.deliveryTag).toBeGreaterThan(last); // increasing
          if (a.multiple) for (let t = last + 1; t <= a.deliveryTag; t++) confirmed.add(t);
          else confirmed.add(a.deliveryTag);
          last = a.deliveryTag;
        }
        expect(confirmed.size).toBe(N);
        expect(Math.max(...confirmed)).toBe(N);
        expect(await count(q)).toBe(N);
        await ch.close();
      },
      T,
    );

    it(
      'confirm.select makes basicPublish resolve with delivery tags 1..N (amqp-client)',
      async () => {
        const q = await newQueue();
        const ch = await B.channel();
        await ch.confirmSelect();
        await ch.confirmSelect(); // selecting again is allowed
        const tags = await Promise.all(Array.from({ length: 50 }, (_, i) => ch.basicPublish('', q, `m${i}`)));
        expect(tags).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await count(q)).toBe(50);
        await ch.close();
      },
      T,
    );

    it(
      'unroutable messages are acked too; a mandatory one is returned before its ack',
      async () => {
        const ch = await A.createConfirmChannel();
        const events: string[] = [];
        ch.on('return', (m: amqp.Message) => {
          const f = m.fields as amqp.MessageFields & { replyCode: number; replyText: string };
          events.push(`return:${m.content.toString()}:${f.replyCode}:${f.replyText}`);
        });
        const e = uid('lt-ctx-ex');
        await ch.assertExchange(e, 'direct', { durable: false, autoDelete: false });
        try {
          await new Promise<void>((resolve, reject) => {
            ch.publish(e, 'nowhere', Buffer.from('m1'), { mandatory: true }, (err) => {
              events.push(`ack:m1:${err ? 'nack' : 'ok'}`);
              if (err) reject(err);
              else resolve();
            });
          });
          await new Promise<void>((resolve, reject) => {
            ch.publish(e, 'nowhere', Buffer.from('m2'), { mandatory: false }, (err) => {
              events.push(`ack:m2:${err ? 'nack' : 'ok'}`);
              if (err) reject(err);
              else resolve();
            });
          });
          expect(events).toEqual(['return:m1:312:NO_ROUTE', 'ack:m1:ok', 'ack:m2:ok']);
        } finally {
          await ch.deleteExchange(e);
          await ch.close();
        }
      },
      T,
    );

    it(
      'basic.return precedes basic.ack on the wire (raw)',
      async () => {
        const c = await raw.RawClient.connect(broker.port);
        try {
          await c.handshake();
          await c.openChannel(1);
          c.send(raw.method(1, 85, 10, raw.u8(0))); // confirm.select, nowait=false
          await c.expectMethod(85, 11);
          c.send(raw.basicPublish(1, '', uid('lt-no-such-queue'), true));
          c.send(raw.contentHeader(1, 3));
          c.send(raw.contentBody(1, Buffer.from('abc')));
          const seen: string[] = [];
          while (!seen.includes('ack')) {
            const f = await c.nextFrame(5000);
            if (!f) throw new Error('socket closed');
            if (raw.isMethod(f, 60, 50)) {
              const r = new raw.Reader(f.args!);
              seen.push(`return ${r.u16()} ${r.shortstr()}`);
            } else if (raw.isMethod(f, 60, 80)) {
              const tag = Number(f.args!.readBigUInt64BE(0));
              expect(tag).toBe(1);
              seen.push('ack');
            } else if (f.type === raw.FRAME_HEADER) seen.push('header');
            else if (f.type === raw.FRAME_BODY) seen.push(`body ${f.payload.toString()}`);
          }
          expect(seen).toEqual(['return 312 NO_ROUTE', 'header', 'body abc', 'ack']);
        } finally {
          c.destroy();
        }
      },
      T,
    );

    // basic.nack needs a queue that refuses messages: x-max-length with x-overflow=reject-publish.
    it(
      'a message refused by a full queue (x-overflow reject-publish) is nacked',
      async () => {
        const q = await newQueue({ 'x-max-length': 1, 'x-overflow': 'reject-publish' });
        const ch = await B.channel();
        await ch.confirmSelect();
        await ch.basicPublish('', q, 'fits');
        await expect(ch.basicPublish('', q, 'overflows')).rejects.toThrow(/rejected/i);
        expect(await bodies(q)).toEqual(['fits']);
        await ch.close();
      },
      T,
    );

    it(
      'confirm.select on a transactional channel is 406',
      async () => {
        const { ch, closedByServer } = await amqpClientChannel(B);
        await ch.txSelect();
        await ch.confirmSelect().catch(() => {});
        expect(await closedByServer).toEqual({ code: 406, text: 'PRECONDITION_FAILED - cannot switch from tx to confirm mode' });
      },
      T,
    );

    it(
      'tx.select on a confirm channel is 406',
      async () => {
        const { ch, closedByServer } = await amqpClientChannel(B);
        await ch.confirmSelect();
        await ch.txSelect().catch(() => {});
        expect(await closedByServer).toEqual({ code: 406, text: 'PRECONDITION_FAILED - cannot switch from confirm to tx mode' });
      },
      T,
    );
  });

  describe('transactions', () => {
    it(
      'publishes are held until tx.commit',
      async () => {
        const q = await newQueue();
        const ch = await B.channel();
        await ch.txSelect();
        await ch.basicPublish('', q, 't1');
        await ch.basicPublish('', q, 't2');
        await sleep(150);
        expect(await count(q)).toBe(0);
        await ch.txCommit();
        await waitFor(async () => (await count(q)) === 2, 3000, 'committed messages');
        expect(await bodies(q)).toEqual(['t1', 't2']);
        // the channel stays transactional: a second transaction works too
        await ch.basicPublish('', q, 't3');
        await sleep(100);
        expect(await count(q)).toBe(0);
        await ch.txCommit();
        await waitFor(async () => (await count(q)) === 1, 3000, 'second commit');
        await ch.close();
      },
      T,
    );

    it(
      'tx.rollback discards publishes',
      async () => {
        const q = await newQueue();
        const ch = await B.channel();
        await ch.txSelect();
        await ch.basicPublish('', q, 'dropped-1');
        await ch.basicPublish('', q, 'dropped-2');
        await ch.txRollback();
        await ch.basicPublish('', q, 'kept');
        await ch.txCommit();
        await waitFor(async () => (await count(q)) === 1, 3000, 'committed message');
        expect(await bodies(q)).toEqual(['kept']);
        await ch.close();
      },
      T,
    );

    it(
      'acks are transactional: rollback discards them, commit applies them',
      async () => {
        const q = await newQueue();
        for (const b of ['a1', 'a2']) setup.sendToQueue(q, Buffer.from(b));
        await waitFor(async () => (await count(q)) === 2, 3000, '2 messages');
        const ch = await B.channel();
        await ch.txSelect();
        const m1 = await ch.basicGet(q, { noAck: false });
        const m2 = await ch.basicGet(q, { noAck: false });
        await ch.basicAck(m1!.deliveryTag);
        await ch.txRollback(); // the ack of a1 is forgotten: a1 is still unacked
        await ch.basicAck(m2!.deliveryTag);
        await ch.txCommit(); // a2 is acked
        await ch.close(); // a1 is requeued
        await waitFor(async () => (await count(q)) === 1, 3000, 'a1 requeued');
        const m = await setup.get(q, { noAck: true });
        expect(m && m.content.toString()).toBe('a1');
        expect(m && m.fields.redelivered).toBe(true);
      },
      T,
    );

    it(
      'tx.commit and tx.rollback without tx.select are 406 PRECONDITION_FAILED',
      async () => {
        for (const op of ['commit', 'rollback'] as const) {
          const { ch, closedByServer } = await amqpClientChannel(B);
          await (op === 'commit' ? ch.txCommit() : ch.txRollback()).catch(() => {});
          expect(await closedByServer).toEqual({ code: 406, text: 'PRECONDITION_FAILED - channel is not transactional' });
        }
      },
      T,
    );

    it(
      'a transaction on a channel is not affected by another channel (amqplib publishes outside it)',
      async () => {
        const q = await newQueue();
        const ch = await B.channel();
        await ch.txSelect();
        await ch.basicPublish('', q, 'in-tx');
        setup.sendToQueue(q, Buffer.from('outside'));
        await waitFor(async () => (await count(q)) === 1, 3000, 'non-tx publish');
        await ch.txRollback();
        await sleep(100);
        expect(await bodies(q)).toEqual(['outside']);
        await ch.close();
      },
      T,
    );
  });

  describe('channel.flow', () => {
    it(
      'channel.flow(active=true) is answered with flow-ok(true) (amqp-client)',
      async () => {
        const ch = await B.channel();
        expect(await ch.basicFlow(true)).toBe(true);
        // the channel still works
        const q = await ch.queueDeclare('', { exclusive: true });
        await ch.basicPublish('', q.name, 'x');
        expect((await ch.basicGet(q.name))?.bodyToString()).toBe('x');
        await ch.close();
      },
      T,
    );

    it(
      'channel.flow(active=true) is answered with flow-ok (raw)',
      async () => {
        const c = await raw.RawClient.connect(broker.port);
        try {
          await c.handshake();
          await c.openChannel(1);
          c.send(raw.channelFlow(1, true));
          const ok = await c.expectMethod(20, 21);
          expect(ok.channel).toBe(1);
          expect(ok.args![0]).toBe(1);
        } finally {
          c.destroy();
        }
      },
      T,
    );

    it(
      'channel.flow(active=false) is refused: RabbitMQ closes the connection with 540 NOT_IMPLEMENTED',
      async () => {
        const c = await raw.RawClient.connect(broker.port);
        try {
          await c.handshake();
          await c.openChannel(1);
          c.send(raw.channelFlow(1, false));
          const close = await c.expectClose(5000);
          expect(close).toEqual({ channel: 0, code: 540, text: 'NOT_IMPLEMENTED - active=false', classId: 20, methodId: 20 });
          c.send(raw.connectionCloseOk());
          expect(await c.waitClosed(3000)).toBe(true);
        } finally {
          c.destroy();
        }
      },
      T,
    );
  });

  it(
    'confirm mode survives a channel error on another channel',
    async () => {
      const q = await newQueue();
      const ch = await A.createConfirmChannel();
      const bad = await A.createChannel();
      const closed = amqplibChannelClosed(bad);
      bad.publish(uid('lt-noex'), 'k', Buffer.from('x'));
      expect((await closed).code).toBe(404);
      ch.sendToQueue(q, Buffer.from('confirmed'));
      await ch.waitForConfirms();
      expect(await bodies(q)).toEqual(['confirmed']);
      await ch.close();
    },
    T,
  );
});
