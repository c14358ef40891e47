/**
 * Large bodies arrive over many socket reads and leave as many frames. Every way a message
 * leaves the broker must give back the same bytes: deliveries at the default and a small
 * frame_max, persistence and recovery after kill -9, paging to disk, the management API's
 * get, and dead-lettering, for bodies from just under 256 KiB to 5 MiB.
 */
import { createHash, randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { startOn, tempDataDir, removeDataDir, type DurableBroker } from './helpers/durable-broker';
import { uid } from './helpers/clients';
import { api } from './helpers/http';

const KIB_256 = 256 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const brokers: DurableBroker[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const b of brokers) if (!b.exited) await b.stop();
  for (const d of dirs) await removeDataDir(d);
});

async function broker(args: string[] = []): Promise<DurableBroker> {
  const dir = await tempDataDir('leveret-large-');
  dirs.push(dir);
  const b = await startOn(dir, args);
  brokers.push(b);
  return b;
}

async function consumeAll(url: string, queue: string, n: number, frameMax?: number): Promise<Buffer[]> {
  const conn = await amqp.connect(frameMax === undefined ? url : `${url}?frameMax=${frameMax}`);
  try {
    const ch = await conn.createChannel();
    const got: Buffer[] = [];
    await new Promise<void>((resolve) => {
      void ch.consume(queue, (m) => {
        if (m === null) return;
        got.push(m.content);
        ch.ack(m);
        if (got.length === n) resolve();
      });
    });
    return got;
  } finally {
    await conn.close();
  }
}

const sizes = [KIB_256 - 1, KIB_256, KIB_256 + 1, 1024 * 1024 + 7, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1, 5 * 1024 * 1024];

describe('large bodies', () => {
  it('are delivered byte for byte at the default and a small frame_max', async () => {
    const b = await broker();
    const q = uid('large');
    const bodies = sizes.map((n) => randomBytes(n));
    const conn = await amqp.connect(b.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(q, { durable: false });
    for (const body of [...bodies, ...bodies]) ch.sendToQueue(q, body);
    await ch.waitForConfirms();
    await conn.close();
    const first = await consumeAll(b.url, q, bodies.length);
    const second = await consumeAll(b.url, q, bodies.length, 4096);
    expect(first.map(sha)).toEqual(bodies.map(sha));
    // Those the first consumer was sent but did not ack come back redelivered, the largest
    // first here, as RabbitMQ 3.10 orders them in this test too: compare them as a set.
    expect(second.map(sha).sort()).toEqual(bodies.map(sha).sort());
  }, 60_000);

  it('survive kill -9 when persistent, page to disk and back, come out of the API get and a dead-letter queue intact', async () => {
    // A small per-queue memory budget makes the transient ones page out to disk too.
    const b = await broker(['--queue-memory-budget', String(512 * 1024)]);
    const durable = uid('large-durable');
    const paged = uid('large-paged');
    const dlq = uid('large-dlq');
    const bodies = sizes.map((n) => randomBytes(n));
    let conn = await amqp.connect(b.url);
    let ch = await conn.createConfirmChannel();
    await ch.assertQueue(durable, { durable: true });
    await ch.assertQueue(paged, { durable: false });
    await ch.assertQueue(dlq, { durable: false });
    for (const body of bodies) {
      ch.sendToQueue(durable, body, { persistent: true });
      ch.sendToQueue(paged, body);
    }
    await ch.waitForConfirms();
    await conn.close();

    expect(await consumeAll(b.url, paged, bodies.length).then((g) => g.map(sha))).toEqual(bodies.map(sha));

    // The management API's get joins the pieces (and re-queues the message).
    const got = await api(b.httpPort, 'POST', `/api/queues/%2F/${durable}/get`, {
      body: { count: 1, ackmode: 'ack_requeue_true', encoding: 'base64' },
    });
    expect(got.status).toBe(200);
    const first = (got.json as Array<{ payload: string; payload_bytes: number }>)[0];
    expect(first.payload_bytes).toBe(bodies[0].length);
    expect(sha(Buffer.from(first.payload, 'base64'))).toBe(sha(bodies[0]));

    await b.crash();
    const again = await startOn(b.dataDir);
    brokers.push(again);
    const recovered = await consumeAll(again.url, durable, bodies.length);
    expect(recovered.map(sha)).toEqual(bodies.map(sha));

    // Dead-lettered copies keep the body.
    conn = await amqp.connect(again.url);
    ch = await conn.createConfirmChannel();
    const src = uid('large-src');
    await ch.assertQueue(dlq, { durable: false });
    await ch.assertQueue(src, { durable: false, deadLetterExchange: '', deadLetterRoutingKey: dlq, messageTtl: 1 });
    for (const body of bodies) ch.sendToQueue(src, body);
    await ch.waitForConfirms();
    await conn.close();
    expect(await consumeAll(again.url, dlq, bodies.length).then((g) => g.map(sha))).toEqual(bodies.map(sha));
  }, 90_000);
});
