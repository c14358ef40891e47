// Store paths the other suites do not reach, each over a real broker on a real data directory:
// a purge that settles part of a segment (the rest is delivered and unacked), a data directory
// that is not ours, and a restart on a full disk (tmpfs, as root: CI runs so).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { expectStartFailure, removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { waitFor } from './helpers/clients';

const brokers: DurableBroker[] = [];
const dirs: string[] = [];
const mounts: string[] = [];

afterAll(async () => {
  for (const b of brokers) await b.crash();
  for (const m of mounts) {
    execFileSync('umount', [m]);
    fs.rmdirSync(m);
  }
  for (const d of dirs) await removeDataDir(d);
});

async function start(dataDir: string, args: string[] = []): Promise<DurableBroker> {
  const b = await startOn(dataDir, args);
  brokers.push(b);
  return b;
}

async function publishConfirmed(conn: amqp.ChannelModel, queue: string, bodies: string[]): Promise<void> {
  const ch = await conn.createConfirmChannel();
  for (const body of bodies) {
    if (!ch.sendToQueue(queue, Buffer.from(body), { persistent: true })) await new Promise((r) => ch.once('drain', r));
  }
  await ch.waitForConfirms();
  await ch.close();
}

/** Takes every message left in the queue (acking them) and returns their bodies. */
async function drain(conn: amqp.ChannelModel, queue: string): Promise<string[]> {
  const ch = await conn.createChannel();
  const bodies: string[] = [];
  for (;;) {
    const m = await ch.get(queue);
    if (m === false) break;
    bodies.push(m.content.toString());
    ch.ack(m);
  }
  await ch.close();
  return bodies;
}

describe('purge of on-disk backlogs', () => {
  it('a segment that also holds unacked deliveries is settled by record headers, one with nothing else live goes whole; after a restart only the unacked come back', async () => {
    const dataDir = await tempDataDir('leveret-cov-purge-');
    dirs.push(dataDir);
    // A small memory budget: most of the backlog waits on disk as runs of records, all in one segment.
    let b = await start(dataDir, ['--queue-memory-budget', String(256 * 1024)]);
    let conn = await amqp.connect(b.url);
    conn.on('error', () => {}); // the broker stops under it
    const setup = await conn.createChannel();
    await setup.assertQueue('partial', { durable: true });
    const N = 30_000;
    await publishConfirmed(
      conn,
      'partial',
      Array.from({ length: N }, (_, i) => `m-${i}`),
    );

    // Ten deliveries stay unacked: their records stay live in the segment the purge settles.
    const consumer = await conn.createChannel();
    await consumer.prefetch(10);
    const unacked: string[] = [];
    await consumer.consume('partial', (m) => {
      if (m !== null) unacked.push(m.content.toString());
    });
    await waitFor(() => unacked.length === 10, 10_000, 'ten deliveries');
    expect(unacked).toEqual(Array.from({ length: 10 }, (_, i) => `m-${i}`));

    const purged = await setup.purgeQueue('partial');
    expect(purged.messageCount).toBe(N - 10);
    // Beside it, a queue with nothing unacked: its segment goes as a whole.
    await setup.assertQueue('whole', { durable: true });
    await publishConfirmed(
      conn,
      'whole',
      Array.from({ length: 5000 }, (_, i) => `w-${i}`),
    );
    expect((await setup.purgeQueue('whole')).messageCount).toBe(5000);
    await publishConfirmed(conn, 'partial', ['after']);
    // A clean stop (kill -9 after a purge is purge-deep.test.ts's case): this broker's coverage
    // of the purge is written only when it exits normally.
    expect(await b.stop()).toBe(0);

    b = await start(dataDir);
    conn = await amqp.connect(b.url);
    const left = await drain(conn, 'partial');
    expect(left.sort()).toEqual([...unacked, 'after'].sort());
    expect(await drain(conn, 'whole')).toEqual([]);
    await conn.close();
    expect(await b.stop()).toBe(0);
  }, 120_000);
});

describe('data directory', () => {
  it('a directory with files but no VERSION is not ours: the broker refuses it, touches nothing and leaves no lock', async () => {
    const dataDir = await tempDataDir('leveret-cov-foreign-');
    dirs.push(dataDir);
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'notes.txt'), 'somebody else lives here\n');
    const r = await expectStartFailure(dataDir);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain(`data directory ${dataDir} is not empty and has no VERSION file; refusing to use it`);
    expect(fs.readdirSync(dataDir)).toEqual(['notes.txt']);
    expect(fs.readFileSync(path.join(dataDir, 'notes.txt'), 'utf8')).toBe('somebody else lives here\n');
  }, 30_000);

  it('a broker restarted on a full disk still starts (its lock is a symlink naming its pid) and serves what it stored', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and needs to run as root (CI does)');
    const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-cov-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount]);
    mounts.push(mount);
    const dataDir = path.join(mount, 'data');

    let b = await start(dataDir, ['--disk-free-limit', '1']);
    let conn = await amqp.connect(b.url);
    await (await conn.createChannel()).assertQueue('kept', { durable: true });
    const bodies = Array.from({ length: 5 }, (_, i) => `kept-${i}`);
    await publishConfirmed(conn, 'kept', bodies);
    await conn.close();
    expect(await b.stop()).toBe(0);

    // Fill the file system to the last block.
    const filler = fs.openSync(path.join(mount, 'filler'), 'w');
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) fs.writeSync(filler, chunk);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    try {
      for (;;) fs.writeSync(filler, chunk, 0, 1);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    fs.closeSync(filler);

    b = await start(dataDir, ['--disk-free-limit', '1']);
    expect(fs.readlinkSync(path.join(dataDir, 'leveret.lock'))).toBe(String(b.pid));
    conn = await amqp.connect(b.url);
    expect((await (await conn.createChannel()).checkQueue('kept')).messageCount).toBe(5);
    const ch = await conn.createChannel();
    const got: string[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await ch.get('kept', { noAck: true });
      if (m !== false) got.push(m.content.toString());
    }
    expect(got).toEqual(bodies);
    await conn.close();
    expect(await b.stop()).toBe(0);
    expect(fs.readdirSync(dataDir)).not.toContain('leveret.lock'); // a dangling symlink would fool existsSync
  }, 60_000);
});
