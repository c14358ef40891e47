// Load shapes shared by the alarm and slow-client suites: a publisher at full speed, a
// consumer whose socket can stop being read, and the broker's resident memory.
import fs from 'node:fs';
import type net from 'node:net';
import { Worker } from 'node:worker_threads';
import { AMQPClient } from '@cloudamqp/amqp-client';
import * as raw from './raw';

/** The broker process's resident memory (VmRSS) in bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * The sampler's loop, run in a worker thread: a flood published from the test's own
 * thread keeps that thread's event loop busy (amqp-client's writes complete in
 * process.nextTick while the socket takes them), and a timer there fired 12 times in a
 * 60 s flood. The worker has a loop of its own. It keeps the peak (kB) and the count in
 * shared memory, so the test thread reads them without waiting for a message.
 */
const SAMPLER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { pid, everyMs, shared } = workerData;
const cells = new Int32Array(shared);
const sample = () => {
  try {
    const m = /VmRSS:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'));
    if (m === null) return;
    Atomics.store(cells, 0, Math.max(Atomics.load(cells, 0), Number(m[1])));
    Atomics.add(cells, 1, 1);
  } catch {
    // the process is gone: the test will say so
  }
};
sample();
setInterval(sample, everyMs);
`;

/**
 * Samples a process's RSS every `everyMs` (from a worker thread) until stopped; returns
 * the highest seen. `samples()` says how many were taken.
 */
export function sampleRss(pid: number, everyMs = 100): { stop(): number; max(): number; samples(): number } {
  const shared = new SharedArrayBuffer(8);
  const cells = new Int32Array(shared);
  // A first sample here, so that max() is right at once.
  Atomics.store(cells, 0, Math.floor(rssOf(pid) / 1024));
  Atomics.store(cells, 1, 1);
  const worker = new Worker(SAMPLER, { eval: true, workerData: { pid, everyMs, shared } });
  worker.unref();
  const max = () => Atomics.load(cells, 0) * 1024;
  return {
    stop() {
      void worker.terminate();
      return max();
    },
    max,
    samples: () => Atomics.load(cells, 1),
  };
}

/**
 * Publishes `size`-byte transient messages to `queue` (default exchange) as fast as
 * amqp-client takes them, without confirms, for `ms`; returns how many and the rate.
 */
export async function flood(url: string, queue: string, ms: number, size = 200): Promise<{ published: number; rate: number }> {
  const c = new AMQPClient(url, undefined, null);
  c.onerror = () => {};
  await c.connect();
  const ch = await c.channel();
  const body = Buffer.alloc(size, 'x');
  let published = 0;
  const t0 = Date.now();
  const end = t0 + ms;
  const batch: Promise<number>[] = [];
  while (Date.now() < end) {
    // amqp-client refuses to publish on a blocked connection: wait until it is unblocked.
    while (c.blocked !== undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 200; i++) batch.push(ch.basicPublish('', queue, body));
    await Promise.all(batch);
    published += batch.length;
    batch.length = 0;
  }
  const elapsed = (Date.now() - t0) / 1000;
  await c.close();
  return { published, rate: published / elapsed };
}

/**
 * A consumer on its own raw connection that counts deliveries and acks them (multiple,
 * every 500). `stall()` stops reading its socket, so the broker's writes to it back up
 * until its TCP window is full; `resume()` reads again.
 */
export class StallingConsumer {
  delivered = 0;
  private lastTag = 0n;
  private ackedTag = 0n;
  private rest: Buffer = Buffer.alloc(0);

  private constructor(
    readonly client: raw.RawClient,
    private readonly socket: net.Socket,
  ) {}

  static async start(port: number, queue: string, prefetch: number): Promise<StallingConsumer> {
    const client = await raw.RawClient.connect(port);
    await client.handshake({ heartbeat: 0 });
    await client.openChannel(1);
    if (prefetch > 0) {
      client.send(raw.method(1, 60, 10, Buffer.concat([raw.u32(0), raw.u16(prefetch), raw.u8(0)])));
      await client.expectMethod(60, 11);
    }
    // From here on the frames are ours to read (RawClient keeps every byte, which a long
    // backlog would make slow).
    const socket = client.socket;
    socket.removeAllListeners('data');
    const c = new StallingConsumer(client, socket);
    socket.on('data', (d: Buffer) => c.onData(d));
    client.send(raw.basicConsume(1, queue, { tag: 'stalling' }));
    return c;
  }

  stall(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    let buf = this.rest.length === 0 ? d : Buffer.concat([this.rest, d]);
    let off = 0;
    while (buf.length - off >= 8) {
      const size = buf.readUInt32BE(off + 3);
      if (buf.length - off < 8 + size) break;
      if (buf[off] === raw.FRAME_METHOD && buf.readUInt16BE(off + 7) === 60 && buf.readUInt16BE(off + 9) === 60) {
        const tagLen = buf[off + 11];
        this.lastTag = buf.readBigUInt64BE(off + 12 + tagLen);
        this.delivered++;
      }
      off += 8 + size;
    }
    this.rest = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    buf = this.rest;
    if (this.lastTag - this.ackedTag >= 500n) {
      this.socket.write(raw.basicAck(1, Number(this.lastTag), true));
      this.ackedTag = this.lastTag;
    }
  }

  /** Acks whatever is outstanding. */
  ackAll(): void {
    if (this.lastTag > this.ackedTag) this.socket.write(raw.basicAck(1, Number(this.lastTag), true));
    this.ackedTag = this.lastTag;
  }
}
