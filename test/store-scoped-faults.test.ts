// A queue whose log cannot be written (EIO on its files, not a full disk) refuses
// persistent messages (publishers get nacks) while every other queue, the connection and
// the process carry on; once its writes work again it takes messages again and nothing
// confirmed is lost. The broker runs in this process so that one file-system call can be
// made to fail for one queue's files only (src/store/fs-ops.ts).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { Server } from '../src/app';
import { fsOps } from '../src/store/fs-ops';

const realFsOps = { ...fsOps };
const servers: Server[] = [];
const dirs: string[] = [];

afterEach(() => {
  Object.assign(fsOps, realFsOps);
});

afterAll(async () => {
  for (const s of servers) await s.stop('test done');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function startServer(dataDir: string): Promise<Server> {
  const config = { ...defaultConfig(), port: 0, httpPort: 0, host: '127.0.0.1', dataDir, logLevel: 'silent' as const };
  const server = new Server(config, createLogger('silent'));
  await server.start();
  servers.push(server);
  return server;
}

const queueFolder = (dataDir: string, name: string): string =>
  path.join(dataDir, 'queues', createHash('sha1').update(`/\0${name}`).digest('hex'));

/**
 * Watches which file each descriptor the store opens belongs to; `fail(folder)` then makes
 * every write to files under that folder fail with EIO, `heal()` ends it.
 */
function faultyDisk(): { fail(folder: string): void; heal(): void } {
  const paths = new Map<number, string>();
  let failing: string | null = null;
  fsOps.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (realFsOps.openSync as (...a: unknown[]) => number)(p, ...rest);
    paths.set(fd, String(p));
    return fd;
  }) as typeof fsOps.openSync;
  fsOps.writeSync = ((fd: number, ...rest: unknown[]) => {
    if (failing !== null && paths.get(fd)?.startsWith(failing))
      throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO', errno: -5 });
    return (realFsOps.writeSync as (...a: unknown[]) => number)(fd, ...rest);
  }) as typeof fsOps.writeSync;
  return {
    fail: (folder) => (failing = folder),
    heal: () => (failing = null),
  };
}

function publishOutcome(ch: amqp.ConfirmChannel, queue: string, body: string): Promise<'ack' | 'nack'> {
  return new Promise((resolve) => ch.sendToQueue(queue, Buffer.from(body), { persistent: true }, (err) => resolve(err ? 'nack' : 'ack')));
}

describe('store errors scoped to one queue', () => {
  it('EIO on one queue: it refuses persistent messages, the others and the connection carry on, and it recovers', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-scoped-'));
    dirs.push(dataDir);
    const disk = faultyDisk();
    let server = await startServer(dataDir);
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${server.port}`);
    let blocked = false;
    conn.on('blocked', () => (blocked = true));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('sick', { durable: true });
    await ch.assertQueue('well', { durable: true });
    expect(await publishOutcome(ch, 'sick', 'sick-0')).toBe('ack');

    // From now on writes to 'sick's files fail: the message whose write fails is nacked
    // (it waited on that round), its log is set aside, and the queue refuses from then on.
    disk.fail(queueFolder(dataDir, 'sick'));
    expect(await publishOutcome(ch, 'sick', 'sick-unwritten')).toBe('nack');
    expect(await publishOutcome(ch, 'sick', 'sick-refused')).toBe('nack');
    expect(await publishOutcome(ch, 'well', 'well-1')).toBe('ack');
    expect(await publishOutcome(ch, 'well', 'well-2')).toBe('ack');
    expect(blocked).toBe(false);

    disk.heal();
    await expect.poll(async () => publishOutcome(ch, 'sick', 'sick-after'), { timeout: 10_000 }).toBe('ack');
    await conn.close();
    await server.stop('restart');
    servers.splice(servers.indexOf(server), 1);

    server = await startServer(dataDir);
    const conn2 = await amqp.connect(`amqp://guest:guest@127.0.0.1:${server.port}`);
    const ch2 = await conn2.createChannel();
    expect((await ch2.checkQueue('well')).messageCount).toBe(2);
    const sick: string[] = [];
    for (let m = await ch2.get('sick', { noAck: true }); m !== false; m = await ch2.get('sick', { noAck: true }))
      sick.push(m.content.toString());
    // Every message confirmed to 'sick' is there; nothing refused is.
    expect(sick[0]).toBe('sick-0');
    expect(sick).toContain('sick-after');
    expect(sick).not.toContain('sick-refused');
    await conn2.close();
  }, 60_000);
});
