// A vhost's default queue type applies as RabbitMQ applies it: a durable, non-exclusive
// queue declared without x-queue-type takes the default's type (quorum: kept by Leveret
// as a durable classic queue, with the notice an explicit quorum declaration gets);
// transient and exclusive queues stay classic.
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { api, grantAll } from './helpers/http';
import { sleep } from './helpers/clients';

describe('vhost default queue type', () => {
  let broker: StartedBroker;

  beforeAll(async () => {
    broker = await startBroker();
  }, 20_000);

  afterAll(async () => {
    await broker?.stop();
  });

  it('makes durable queues declared without a type quorum queues; transient and exclusive ones stay classic', async () => {
    expect((await api(broker.httpPort, 'PUT', '/api/vhosts/qv', { body: { default_queue_type: 'quorum' } })).status).toBe(201);
    await grantAll(broker.httpPort, 'guest', 'qv');
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${broker.port}/qv`);
    const ch = await conn.createChannel();
    await ch.assertQueue('dq', { durable: true });
    await ch.assertQueue('tq', { durable: false });
    await ch.assertQueue('', { exclusive: true, durable: true });
    // Redeclaring as before is equivalent: the default is applied the same way each time.
    await ch.assertQueue('dq', { durable: true });
    await conn.close();
    await sleep(100);
    const notices = broker
      .output()
      .split('\n')
      .filter((l) => l.includes('declared as a quorum queue'));
    expect(notices.length).toBe(1);
    expect(notices[0]).toContain("queue 'dq' in vhost 'qv'");
  }, 20_000);
});
