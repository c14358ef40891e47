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

/** These disks are far smaller than the default disk free limit: what is tested here is the disk filling up. */
const WRITE_FAILURES_ONLY = ['--disk-free-limit', '0'];

const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-full-'));
let mounted = false;
let broker: DurableBroker | null = null;
/** Further tmpfs mounts made by the tests below, and the brokers on them. */
const mounts: string[] = [];
const brokers: DurableBroker[] = [];

afterAll(async () => {
  await broker?.crash();
  for (const b of brokers) await b.crash();
  if (mounted) execFileSync('umount', [mountPoint]);
  for (const m of mounts) {
    execFileSync('umount', [m]);
    fs.rmSync(m, { recursive: true, force: true });
  }
  fs.rmSync(mountPoint, { recursive: true, force: true });
});

/** A tmpfs of `size` mounted on a fresh directory (root only, as CI runs). */
function tmpfs(size: string): string {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and needs to run as root (CI does)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Fills a file system to the last byte; returns the filler's path. */
function fill(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  // Top up what a whole block could not take.
  try {
    for (;;) fs.writeSync(fd, block, 0, 512);
  } catch {
    // full
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

async function publishConfirmed(ch: amqp.ConfirmChannel, queue: string, n: number, size: number): Promise<void> {
  for (let i = 0; i < n; i++) ch.sendToQueue(queue, Buffer.alloc(size, i % 251), { persistent: true, messageId: String(i) });
  await ch.waitForConfirms();
}

describe('full disk', () => {
  it('blocks publishers with connection.blocked and nacks, then accepts and confirms again when space returns', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a 3 MiB tmpfs and needs to run as root (CI does)');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountPoint]);
    mounted = true;
    broker = await startOn(path.join(mountPoint, 'data'), ['--segment-size', '262144', ...WRITE_FAILURES_ONLY]);
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

describe('full disk: what waits for the disk is kept', () => {
  it('acks made while the disk is full are written once space returns: after kill -9 the acked messages stay gone', async () => {
    const mount = tmpfs('2m');
    const dataDir = path.join(mount, 'data');
    let b = await startOn(dataDir, ['--segment-size', '262144', ...WRITE_FAILURES_ONLY]);
    brokers.push(b);
    const conn = await amqp.connect(b.url);
    conn.on('error', () => {}); // the broker is killed under it
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('acks.q', { durable: true });
    await publishConfirmed(ch, 'acks.q', 300, 1000);

    const filler = fill(mount);
    await ch.prefetch(100);
    const acked: string[] = [];
    await new Promise<void>((resolve) => {
      void ch.consume('acks.q', (m) => {
        if (m === null || acked.length >= 100) return;
        acked.push(m.properties.messageId as string);
        ch.ack(m);
        if (acked.length === 100) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 1000)); // the broker tries to write the acks and fails
    fs.rmSync(filler);
    await new Promise((r) => setTimeout(r, 3500)); // its retry comes within a few seconds
    await b.crash();

    b = await startOn(dataDir, ['--segment-size', '262144', ...WRITE_FAILURES_ONLY]);
    brokers.push(b);
    const conn2 = await amqp.connect(b.url);
    const ch2 = await conn2.createChannel();
    expect((await ch2.checkQueue('acks.q')).messageCount).toBe(200);
    const m = await ch2.get('acks.q', { noAck: true });
    expect(m && acked.includes(m.properties.messageId as string)).toBe(false);
    await conn2.close();
  }, 60_000);

  it('a publisher blocked by a full disk outlives three heartbeat intervals and carries on when space returns', async () => {
    const mount = tmpfs('1m');
    const b = await startOn(path.join(mount, 'data'), ['--heartbeat', '1', ...WRITE_FAILURES_ONLY]);
    brokers.push(b);
    const conn = await amqp.connect(`${b.url}?heartbeat=1`);
    let closed: unknown = null;
    conn.on('close', (err) => (closed = err ?? 'closed'));
    conn.on('error', () => {});
    const events: string[] = [];
    conn.on('blocked', () => events.push('blocked'));
    conn.on('unblocked', () => events.push('unblocked'));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('hb.q', { durable: true });
    const filler = fill(mount);
    // This publish cannot be written: the alarm goes up; the next publish gets the connection
    // told connection.blocked (as in RabbitMQ, on its first publish during the alarm) and it
    // is no longer read from.
    ch.sendToQueue('hb.q', Buffer.alloc(2000, 1), { persistent: true });
    await expect.poll(() => /store write failed/.test(b.output()), { timeout: 5000 }).toBe(true);
    ch.sendToQueue('hb.q', Buffer.alloc(2000, 2), { persistent: true });
    await expect.poll(() => events.includes('blocked'), { timeout: 5000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 4000)); // more than three heartbeat intervals
    expect(closed).toBe(null);
    fs.rmSync(filler);
    await expect.poll(() => events.includes('unblocked'), { timeout: 8000 }).toBe(true);
    ch.sendToQueue('hb.q', Buffer.alloc(2000, 3), { persistent: true });
    await ch.waitForConfirms();
    expect(closed).toBe(null);
    expect((await ch.checkQueue('hb.q')).messageCount).toBeGreaterThanOrEqual(1);
    await conn.close();
  }, 60_000);
});
