// An idle connection (a channel, a consumer on its own queue) shares or leaves unmade what
// it has not used yet: confirms, the content assembler, the unacked map, the routing set,
// its queue's ring buffers and its stats rows. These checks use each of them only after a
// while of idling, and look at what the management API shows before and after.
import type amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { amqplibConnect, sleep, uid, waitFor } from './helpers/clients';
import { api } from './helpers/http';

const T = 20_000;

type Obj = Record<string, unknown>;

describe('what an idle connection made lazily works once used', () => {
  let broker: StartedBroker;
  let conn: amqp.ChannelModel;

  beforeAll(async () => {
    // A short stats interval: the idle channel and queue are sampled (as zeros) before they move.
    broker = await startBroker({ args: ['--stats-interval', '200'] });
    conn = await amqplibConnect(broker.url);
  }, 20_000);

  afterAll(async () => {
    await conn?.close().catch(() => {});
    await broker?.stop();
  });

  const get = async (path: string): Promise<Obj> => {
    const r = await api(broker.httpPort, 'GET', path);
    expect(r.status).toBe(200);
    return r.json as Obj;
  };

  it(
    'a consumer that idled gets deliveries and acks them; the same connection then publishes with confirms',
    async () => {
      const ch = await conn.createChannel();
      const q = (await ch.assertQueue('', { exclusive: true, autoDelete: true })).queue;
      const got: amqp.ConsumeMessage[] = [];
      await ch.consume(q, (m) => m !== null && got.push(m), { noAck: false });
      // Idle long enough for several stats samples of the idle channel and queue.
      await sleep(700);
      const queuePath = `/api/queues/%2F/${encodeURIComponent(q)}`;
      const idleQueue = await get(queuePath);
      expect(idleQueue).toMatchObject({ messages: 0, messages_ready: 0, messages_unacknowledged: 0, consumers: 1, arguments: {} });
      const chans = (await api(broker.httpPort, 'GET', '/api/channels')).json as Obj[];
      const idleChan = chans.find((c) => c.consumer_count === 1 && c.number === 1);
      expect(idleChan).toMatchObject({ confirm: false, transactional: false, messages_unacknowledged: 0, messages_unconfirmed: 0 });

      // Deliveries on the idle consumer's channel, then acks.
      const other = await conn.createChannel();
      for (let i = 0; i < 3; i++) other.sendToQueue(q, Buffer.from(`m${i}`));
      await waitFor(() => got.length === 3, 5000, 'three deliveries');
      expect(got.map((m) => m.content.toString())).toEqual(['m0', 'm1', 'm2']);
      await waitFor(async () => (await get(queuePath)).messages_unacknowledged === 3, 5000, 'three unacked');
      ch.ack(got[2], true);
      await waitFor(async () => (await get(queuePath)).messages === 0, 5000, 'acked');
      await waitFor(async () => ((await get(queuePath)).message_stats as Obj | undefined)?.ack === 3, 5000, 'queue message_stats.ack = 3');

      // The same (long idle) connection: a confirm channel publishing to its own queue.
      const confirm = await conn.createConfirmChannel();
      const target = uid('idle-lazy');
      await confirm.assertQueue(target, { durable: false, autoDelete: false });
      for (let i = 0; i < 5; i++) confirm.sendToQueue(target, Buffer.from(`c${i}`));
      await confirm.waitForConfirms();
      expect((await confirm.checkQueue(target)).messageCount).toBe(5);

      await confirm.deleteQueue(target);
      await confirm.close();
      await other.close();
      await ch.close();
    },
    T,
  );

  it(
    'two channels that idled publish one after the other, one with confirms: both messages arrive',
    async () => {
      // Each makes its own assembler (and one its confirms) from the shared idle ones.
      const a = await conn.createChannel();
      const b = await conn.createConfirmChannel();
      const q = (await b.assertQueue('', { exclusive: true })).queue;
      await sleep(300);
      b.sendToQueue(q, Buffer.from('x'));
      a.sendToQueue(q, Buffer.from('y'));
      await b.waitForConfirms();
      await waitFor(async () => (await b.checkQueue(q)).messageCount === 2, 5000, 'two messages');
      await a.close();
      await b.close();
    },
    T,
  );
});
