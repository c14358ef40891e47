// Purging a deep queue whose backlog waits on disk settles it where it lies: the broker
// does not read a million messages back into memory to ack them, and what was purged
// stays gone after kill -9.
import fs from 'node:fs';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';

const N = 1_000_000;
const brokers: DurableBroker[] = [];
let dataDir = '';

afterAll(async () => {
  for (const b of brokers) await b.crash();
  if (dataDir) await removeDataDir(dataDir);
});

/** Resident set size of a process, in bytes. */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

async function publish(ch: amqp.Channel, queue: string, n: number): Promise<void> {
  const body = Buffer.from('0123456789abcdef');
  for (let i = 0; i < n; i++) {
    if (!ch.sendToQueue(queue, body, { persistent: true })) await new Promise((r) => ch.once('drain', r));
  }
}

describe('purge of a deep on-disk queue', () => {
  it(`settles ${N.toLocaleString('en')} messages without reading them back: RSS stays flat, and they stay gone after kill -9`, async () => {
    dataDir = await tempDataDir();
    // A small memory budget: nearly the whole backlog waits on disk as runs of records.
    let b = await startOn(dataDir, ['--queue-memory-budget', String(256 * 1024)]);
    brokers.push(b);
    const conn = await amqp.connect(b.url);
    conn.on('error', () => {}); // the broker is killed under it
    const ch = await conn.createChannel();
    await ch.assertQueue('deep', { durable: true });
    await publish(ch, 'deep', N);
    await expect.poll(async () => (await ch.checkQueue('deep')).messageCount, { timeout: 60_000, interval: 250 }).toBe(N);

    const before = rss(b.pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rss(b.pid))), 5);
    const purged = await ch.purgeQueue('deep');
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(sampler);
    expect(purged.messageCount).toBe(N);
    expect((await ch.checkQueue('deep')).messageCount).toBe(0);
    const grew = peak - before;
    console.log(`purge of ${N} on-disk messages: RSS ${(before / 2 ** 20).toFixed(1)} MiB before, peak ${(peak / 2 ** 20).toFixed(1)} MiB`);
    expect(grew, `RSS went from ${(before / 2 ** 20).toFixed(1)} MiB to a peak of ${(peak / 2 ** 20).toFixed(1)} MiB`).toBeLessThan(
      24 * 2 ** 20,
    );

    // New messages after the purge are kept; the purged ones do not come back.
    await ch.sendToQueue('deep', Buffer.from('after'), { persistent: true });
    await ch.checkQueue('deep');
    await b.crash();
    b = await startOn(dataDir);
    brokers.push(b);
    const conn2 = await amqp.connect(b.url);
    const ch2 = await conn2.createChannel();
    expect((await ch2.checkQueue('deep')).messageCount).toBe(1);
    const m = await ch2.get('deep', { noAck: true });
    expect(m && m.content.toString()).toBe('after');
    await conn2.close();
  }, 180_000);

  it('a purge next to deliveries still unacked settles only the ready messages, durably', async () => {
    const dir = await tempDataDir();
    let b = await startOn(dir, ['--queue-memory-budget', String(64 * 1024), '--segment-size', String(1024 * 1024)]);
    brokers.push(b);
    const conn = await amqp.connect(b.url);
    conn.on('error', () => {}); // the broker is killed under it
    const ch = await conn.createChannel();
    await ch.assertQueue('mixed', { durable: true });
    await publish(ch, 'mixed', 50_000);
    await expect.poll(async () => (await ch.checkQueue('mixed')).messageCount, { timeout: 30_000 }).toBe(50_000);
    // Ten deliveries stay unacked in the first segment, so it cannot simply be dropped.
    await ch.prefetch(10);
    const held: amqp.ConsumeMessage[] = [];
    const { consumerTag } = await ch.consume('mixed', (m) => m !== null && held.push(m));
    await expect.poll(() => held.length, { timeout: 5000 }).toBe(10);
    await ch.cancel(consumerTag);
    expect((await ch.purgeQueue('mixed')).messageCount).toBe(50_000 - 10);
    for (const m of held) ch.ack(m);
    await ch.sendToQueue('mixed', Buffer.from('after'), { persistent: true });
    await ch.checkQueue('mixed');
    await b.crash();
    b = await startOn(dir);
    brokers.push(b);
    const conn2 = await amqp.connect(b.url);
    const ch2 = await conn2.createChannel();
    expect((await ch2.checkQueue('mixed')).messageCount).toBe(1);
    await conn2.close();
    await removeDataDir(dir);
  }, 120_000);
});
