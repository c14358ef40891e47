// Flow control over real sockets: a publisher that outruns the consumers of a queue is
// held back (the management API shows its connection in state "flow", as RabbitMQ does
// under credit flow) and let go again; nothing it published is lost on the way.
import { AMQPClient } from '@cloudamqp/amqp-client';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { uid, waitFor } from './helpers/clients';
import { api } from './helpers/http';

let broker: StartedBroker | undefined;

afterAll(async () => {
  await broker?.stop();
});

interface ConnectionRow {
  state: string;
  client_properties: { connection_name?: string };
}

/** Publishes 200-byte transient messages as fast as amqp-client takes them until stopped. */
async function publishUntil(url: string, queue: string, stopped: () => boolean): Promise<number> {
  const c = new AMQPClient(`${url}?name=cov-flow-publisher`, undefined, null);
  c.onerror = () => {};
  await c.connect();
  const ch = await c.channel();
  const body = Buffer.alloc(200, 'x');
  let published = 0;
  const batch: Promise<number>[] = [];
  while (!stopped()) {
    for (let i = 0; i < 200; i++) batch.push(ch.basicPublish('', queue, body));
    await Promise.all(batch);
    published += batch.length;
    batch.length = 0;
    // The consumer lives in this process too: a turn for it between batches, or a loop that
    // never yields starves it, and a consumer that takes nothing rightly causes no flow.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await c.close();
  return published;
}

describe('flow control', () => {
  it('a publisher faster than the queue\'s consumer is shown in state "flow", then runs again; every message arrives', async () => {
    broker = await startBroker();
    const b = broker;
    const q = uid('cov-flow');

    // A consumer that takes and acks all the time, but more slowly than a publisher at full speed.
    const consumer = await amqp.connect(b.url);
    const cch = await consumer.createChannel();
    await cch.assertQueue(q, { durable: false });
    await cch.prefetch(100);
    let got = 0;
    await cch.consume(q, (m) => {
      if (m === null) return;
      got++;
      cch.ack(m);
    });

    let stop = false;
    const publishing = publishUntil(b.url, q, () => stop);
    const publisherState = async (): Promise<string | undefined> => {
      const rows = (await api(b.httpPort, 'GET', '/api/connections')).json as ConnectionRow[];
      return rows.find((c) => c.client_properties.connection_name === 'cov-flow-publisher')?.state;
    };
    try {
      await waitFor(async () => (await publisherState()) === 'flow', 30_000, 'the publisher in state "flow"');
      await waitFor(async () => (await publisherState()) === 'running', 30_000, 'the publisher running again');
    } finally {
      stop = true;
    }
    const published = await publishing;
    await waitFor(() => got === published, 60_000, `all ${published} messages (${got} so far)`);
    expect((await cch.checkQueue(q)).messageCount).toBe(0);
    await consumer.close();
  }, 150_000);
});
