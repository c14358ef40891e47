/**
 * The per-message machinery of leveret-perf: publish templates, producers (batched,
 * windowed, optionally rate-limited) and consumers (in-place latency and batched acks).
 * Nothing here allocates per message except the publish batch buffers.
 */
import { randomBytes } from 'node:crypto';
import type { Connection, ConfirmHandler, DeliveryHandler } from './client';
import { Histogram } from './histogram';
import { Writer } from '../src/protocol/writer';
import type { FieldTable } from '../src/protocol/types';
import * as M from '../src/protocol/generated';

/** What buildTemplates needs to know about the messages. */
export interface MessageSpec {
  size: number;
  persistent: boolean;
}

// ====================================================================== shared state

export const MAGIC_A = 0x4c565254; // "LVRT"
export const MAGIC_B = randomBytes(4).readUInt32LE(0);
export const STAMP_BYTES = 16;
/** Aim for publish writes of about this many bytes. */
const BATCH_BYTES = 128 * 1024;

export const stats = {
  published: 0,
  confirmed: 0,
  nacked: 0,
  consumed: 0,
  /** Latency is recorded only while measuring (after warm-up). */
  measuring: false,
};
export const histTotal = new Histogram();
export const histTick = new Histogram();

// ====================================================================== publishing

export interface Template {
  buf: Buffer;
  /** Offset of the body's first byte in buf, or -1 when the body is too short to carry a stamp. */
  stampOff: number;
}

export interface Route {
  exchange: string;
  routingKey: string;
  headers?: FieldTable;
}

export function buildTemplates(o: MessageSpec, routes: Route[], frameMax: number): Template[] {
  const body = Buffer.alloc(o.size, 0x78);
  if (o.size >= STAMP_BYTES) {
    body.writeDoubleLE(0, 0);
    body.writeUInt32LE(MAGIC_A, 8);
    body.writeUInt32LE(MAGIC_B, 12);
  }
  const chunk = frameMax - 8;
  return routes.map((r) => {
    const w = new Writer();
    M.encodeBasicPublish(w, 1, 0, r.exchange, r.routingKey, false, false);
    w.beginFrame(2, 1);
    w.u16(60); // class basic
    w.u16(0); // weight
    w.u64(o.size);
    const props: M.BasicProperties = { deliveryMode: o.persistent ? 2 : 1 };
    if (r.headers) props.headers = r.headers;
    M.encodeBasicProperties(w, props);
    w.endFrame();
    const head = Buffer.concat(w.take());
    for (let off = 0; off < o.size; off += chunk) w.bodyFrame(1, body, off, Math.min(o.size, off + chunk));
    const buf = Buffer.concat([head, ...w.take()]);
    return { buf, stampOff: o.size >= STAMP_BYTES ? head.length + 7 : -1 };
  });
}

export class Producer implements ConfirmHandler {
  private tpl = 0;
  private readonly perBatch: number;
  /** Sequence number of the last message published (confirm mode numbers from 1). */
  private seq = 0;
  /** Lowest sequence number not yet confirmed. */
  private low = 1;
  private outstanding = 0;
  private readonly ring: Uint8Array;
  private readonly mask: number;
  private scheduled = false;
  private waitingDrain = false;
  running = false;
  /** Messages this producer has published (for the per-producer spread). */
  published = 0;
  /** Messages left to publish (Infinity in duration mode). */
  remaining = Infinity;
  /** Rate mode: when the rate clock started, and messages sent since. */
  private rateStart = 0;
  private rateSent = 0;
  /** Resolved when `remaining` reaches 0 (and, with confirms, everything is confirmed). */
  private doneResolve: (() => void) | null = null;
  private readonly pumpBound = () => this.pump();

  constructor(
    readonly conn: Connection,
    private readonly templates: Template[],
    private readonly window: number,
    readonly rate: number,
    startAt: number,
  ) {
    this.tpl = startAt % templates.length;
    const avg = templates.reduce((n, t) => n + t.buf.length, 0) / templates.length;
    this.perBatch = Math.max(1, Math.floor(BATCH_BYTES / avg));
    let size = 1;
    while (size < window * 4) size <<= 1;
    this.ring = new Uint8Array(window > 0 ? size : 1);
    this.mask = size - 1;
    conn.socket.on('drain', () => {
      this.waitingDrain = false;
      if (this.rate === 0) this.schedule();
    });
  }

  start(limit = Infinity): Promise<void> {
    this.remaining = limit;
    this.running = true;
    this.rateStart = performance.now();
    this.rateSent = 0;
    const done = new Promise<void>((resolve) => (this.doneResolve = resolve));
    if (this.rate === 0) this.schedule();
    return done;
  }

  stop(): void {
    this.running = false;
  }

  private schedule(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    setImmediate(this.pumpBound);
  }

  /** How many messages the confirm window lets us send now. */
  private room(): number {
    if (this.window === 0) return Infinity;
    return Math.min(this.window - this.outstanding, this.ring.length - (this.seq + 1 - this.low));
  }

  /** Unlimited rate: one batch per turn of the event loop, until the socket or the window says wait. */
  private pump(): void {
    this.scheduled = false;
    if (!this.running || this.waitingDrain) return;
    const n = Math.min(this.perBatch, this.room(), this.remaining);
    if (n <= 0) return; // a confirm or the end of the run moves us on
    this.send(n, performance.now());
    if (!this.waitingDrain) this.schedule();
  }

  /** Fixed rate: called every millisecond or so by the ticker. */
  tick(now: number): void {
    if (!this.running || this.waitingDrain) return;
    const due = Math.floor(((now - this.rateStart) * this.rate) / 1000) - this.rateSent;
    const n = Math.min(due, this.room(), this.remaining, this.perBatch);
    if (n <= 0) return;
    this.rateSent += n;
    this.send(n, now);
  }

  private send(n: number, stamp: number): void {
    const templates = this.templates;
    const count = templates.length;
    let bytes = 0;
    if (count === 1) bytes = templates[0].buf.length * n;
    else for (let i = 0, t = this.tpl; i < n; i++, t = t + 1 === count ? 0 : t + 1) bytes += templates[t].buf.length;
    const out = Buffer.allocUnsafe(bytes);
    let off = 0;
    let t = this.tpl;
    const confirm = this.window > 0;
    for (let i = 0; i < n; i++) {
      const tp = templates[t];
      tp.buf.copy(out, off);
      if (tp.stampOff >= 0) out.writeDoubleLE(stamp, off + tp.stampOff);
      off += tp.buf.length;
      if (++t === count) t = 0;
      if (confirm) this.ring[++this.seq & this.mask] = 1;
    }
    this.tpl = t;
    if (confirm) this.outstanding += n;
    else this.seq += n;
    stats.published += n;
    this.published += n;
    this.remaining -= n;
    if (!this.conn.writeRaw(out)) this.waitingDrain = true;
    if (this.remaining === 0) {
      this.running = false;
      if (!confirm) this.finish();
      else if (this.outstanding === 0) this.finish();
    }
  }

  private finish(): void {
    const r = this.doneResolve;
    this.doneResolve = null;
    if (r) r();
  }

  onConfirm(tag: number, multiple: boolean, nack: boolean): void {
    const ring = this.ring;
    const mask = this.mask;
    let freed = 0;
    if (multiple) {
      for (let s = this.low; s <= tag; s++) {
        if (ring[s & mask]) {
          ring[s & mask] = 0;
          freed++;
        }
      }
      if (tag + 1 > this.low) this.low = tag + 1;
    } else {
      if (tag >= this.low && ring[tag & mask]) {
        ring[tag & mask] = 0;
        freed = 1;
      }
      while (this.low <= this.seq && !ring[this.low & mask]) this.low++;
    }
    this.outstanding -= freed;
    if (nack) stats.nacked += freed;
    else stats.confirmed += freed;
    if (this.remaining === 0 && this.outstanding === 0) this.finish();
    else if (this.rate === 0 && this.running) this.schedule();
  }

  get unconfirmed(): number {
    return this.outstanding;
  }
}

// ====================================================================== consuming

export class Consumer implements DeliveryHandler {
  private tag = 0;
  private remaining = 0;
  private stampGot = STAMP_BYTES;
  private readonly scratch = Buffer.alloc(STAMP_BYTES);
  private unacked = 0;
  consumed = 0;

  constructor(
    readonly conn: Connection,
    readonly ch: number,
    private readonly ackEvery: number,
    private readonly autoAck: boolean,
  ) {}

  onDeliver(tag: number): void {
    this.tag = tag;
  }

  onHeader(size: number): void {
    this.remaining = size;
    this.stampGot = size >= STAMP_BYTES ? 0 : STAMP_BYTES;
    if (size === 0) this.complete();
  }

  onBody(chunk: Buffer): void {
    if (this.stampGot < STAMP_BYTES) {
      if (this.stampGot === 0 && chunk.length >= STAMP_BYTES) {
        this.stampGot = STAMP_BYTES;
        this.latency(chunk);
      } else {
        const n = Math.min(STAMP_BYTES - this.stampGot, chunk.length);
        chunk.copy(this.scratch, this.stampGot, 0, n);
        this.stampGot += n;
        if (this.stampGot === STAMP_BYTES) this.latency(this.scratch);
      }
    }
    this.remaining -= chunk.length;
    if (this.remaining <= 0) this.complete();
  }

  private latency(b: Buffer): void {
    if (b.readUInt32LE(8) !== MAGIC_A || b.readUInt32LE(12) !== MAGIC_B) return; // not ours
    const us = (this.conn.now - b.readDoubleLE(0)) * 1000;
    histTick.record(us);
    if (stats.measuring) histTotal.record(us);
  }

  private complete(): void {
    this.consumed++;
    stats.consumed++;
    if (this.autoAck) return;
    if (++this.unacked >= this.ackEvery) {
      M.encodeBasicAck(this.conn.writer, this.ch, this.tag, this.ackEvery > 1);
      this.unacked = 0;
    }
  }
}
