/**
 * Names travel as AMQP short strings both ways: the writer copies short ASCII names itself
 * and hands anything else to the UTF-8 encoder. Both paths, and the switch from one to the
 * other in the middle of a name, must give clients back exactly the names they used.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { uid } from './helpers/clients';

let broker: StartedBroker;
beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  await broker?.stop();
});

async function roundTrip(exchange: string, routingKey: string, queue: string): Promise<amqp.ConsumeMessage> {
  const conn = await amqp.connect(broker.url);
  try {
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'direct', { autoDelete: true });
    const q = await ch.assertQueue(queue, { exclusive: true });
    expect(q.queue).toBe(queue);
    await ch.bindQueue(queue, exchange, routingKey);
    const got = new Promise<amqp.ConsumeMessage>((resolve) => {
      void ch.consume(queue, (m) => m && resolve(m), { noAck: true, consumerTag: routingKey });
    });
    ch.publish(exchange, routingKey, Buffer.from('x'));
    return await got;
  } finally {
    await conn.close();
  }
}

describe('names on the wire', () => {
  const cases: Array<[string, string]> = [
    ['ASCII', 'orders.created'],
    ['non-ASCII', 'заказ.создан-日本'],
    ['ASCII then non-ASCII at the 63rd character', 'a'.repeat(62) + 'é'],
    ['64 ASCII characters (the native path)', 'k'.repeat(64)],
    ['255 bytes of ASCII', 'r'.repeat(255)],
    ['255 bytes of two-byte characters and one ASCII', 'ж'.repeat(127) + 'z'],
  ];
  for (const [what, key] of cases) {
    it(`come back as sent: ${what}`, async () => {
      const ex = uid('ex-') + (key.length < 200 ? '-' + key.slice(0, 20) : '');
      const q = uid('q-') + '-ü';
      const m = await roundTrip(ex, key, q);
      expect(m.fields.routingKey).toBe(key);
      expect(m.fields.exchange).toBe(ex);
      expect(m.fields.consumerTag).toBe(key);
    });
  }
});
