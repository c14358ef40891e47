// A full disk blocks publishers instead of losing messages or crashing, and the broker
// carries on when space returns. The data directory is a small tmpfs mounted by the test
// (CI runs as root); without root the test fails and says why rather than skipping.
import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { startOn, type DurableBroker } from './helpers/durable-broker';

const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-full-'));
let mounted = false;
let broker: DurableBroker | null = null;

afterAll(async () => {
  await broker?.crash();
  if (mounted) execFileSync('umount', [mountPoint]);
  fs.rmSync(mountPoint, { recursive: true, force: true });
});

describe('full disk', () => {
  it('blocks publishers with connection.blocked and nacks, then accepts and confirms again when space returns', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a 3 MiB tmpfs and needs to run as root (CI does)');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountPoint]);
    mounted = true;
    broker = await startOn(path.join(mountPoint, 'data'), ['--segment-size', '262144']);
    const conn = await amqp.connect(broker.url);
    const events: string[] = [];
    conn.on('blocked', (reason: string) => events.push(`blocked: ${reason}`));
    conn.on('unblocked', () => events.push('unblocked'));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('full.q', { durable: true });

    // 4000 x 1000 B cannot fit in 3 MiB.
    const N = 4000;
    const outcome = new Array<'ack' | 'nack' | undefined>(N);
    const settled = Array.from(
      { length: N },
      (_, i) =>
        new Promise<void>((resolve) =>
          ch.sendToQueue('full.q', Buffer.alloc(1000, i % 251), { persistent: true, messageId: String(i) }, (err) => {
            outcome[i] = err ? 'nack' : 'ack';
            resolve();
          }),
        ),
    );
    const deadline = Date.now() + 10_000;
    while (!events.includes('blocked: disk write failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(events[0]).toBe('blocked: disk write failed');
    await new Promise((r) => setTimeout(r, 500));
    const nackedWhileFull = outcome.filter((o) => o === 'nack').length;
    expect(nackedWhileFull).toBeGreaterThan(0);

    // A connection that does not publish is not held up (as in RabbitMQ, publishing ones are).
    const other = await amqp.connect(broker.url);
    const och = await other.createChannel();
    const tq = await och.assertQueue('', { exclusive: true });
    expect(await och.get(tq.queue, { noAck: true })).toBe(false);
    expect((await och.checkQueue('full.q')).messageCount).toBeGreaterThan(0);
    await other.close();

    execFileSync('mount', ['-o', 'remount,size=64m', mountPoint]);
    await Promise.all(settled);
    expect(outcome.every((o) => o !== undefined)).toBe(true);
    await expect.poll(() => events.includes('unblocked'), { timeout: 5000 }).toBe(true);

    // With space back, new publishes are confirmed again.
    for (let i = N; i < N + 200; i++) ch.sendToQueue('full.q', Buffer.alloc(1000, i % 251), { persistent: true, messageId: String(i) });
    await ch.waitForConfirms();

    // Every confirmed message is there, intact, and the broker keeps accepting messages.
    const ids = new Set<string>();
    await ch.prefetch(500);
    const got = await ch.checkQueue('full.q');
    await new Promise<void>((resolve) => {
      void ch.consume('full.q', (m) => {
        if (m === null) return;
        expect(m.content.equals(Buffer.alloc(1000, Number(m.properties.messageId) % 251))).toBe(true);
        ids.add(m.properties.messageId as string);
        ch.ack(m);
        if (ids.size === got.messageCount) resolve();
      });
    });
    outcome.forEach((o, i) => {
      if (o === 'ack') expect(ids.has(String(i))).toBe(true);
    });
    for (let i = N; i < N + 200; i++) expect(ids.has(String(i))).toBe(true);
    await conn.close();
    expect(broker.exited).toBe(false);
  }, 60_000);
});
