#!/usr/bin/env node
/**
 * A trivial AMQP "broker" used to measure leveret-perf's own ceiling: it completes the
 * handshake, says ok to every declare/bind/qos, discards publishes (confirming them with
 * one multiple ack per TCP read in confirm mode) and, once a consumer subscribes, floods
 * it with a pre-encoded block of deliveries as fast as the socket takes them, ignoring
 * acks and prefetch. It does no routing or queueing, so whatever rate the tool reaches
 * against it is the tool's limit (or the sink's: compare their CPU use).
 *
 * With --echo it instead forwards every publish, as a basic.deliver, to the consumers
 * subscribed so far (round robin; no queue: publishers are paused while a consumer's socket
 * is full). Bodies keep their timestamps, so the tool measures latency through it.
 *
 *   node bench/dist/bench/sink.js --port 5699 --size 16 [--echo]
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { FrameParser, type FrameHandler } from '../src/protocol/frame-parser';
import { Reader } from '../src/protocol/reader';
import { Writer } from '../src/protocol/writer';
import * as M from '../src/protocol/generated';

const { values } = parseArgs({
  options: { port: { type: 'string' }, size: { type: 'string' }, block: { type: 'string' }, echo: { type: 'boolean' } },
});
const ECHO = !!values.echo;
const PORT = Number(values.port ?? 5699);
const SIZE = Number(values.size ?? 16);
/** Deliveries per pre-encoded block. */
const BLOCK = Number(values.block ?? 512);

function deliveryBlock(ch: number, tag: string): Buffer {
  const w = new Writer();
  const body = Buffer.alloc(SIZE, 0x79);
  const parts: Buffer[] = [];
  for (let i = 0; i < BLOCK; i++) {
    M.encodeBasicDeliver(w, ch, tag, i + 1, false, 'perf', 'key');
    w.beginFrame(2, ch);
    w.u16(60);
    w.u16(0);
    w.u64(SIZE);
    M.encodeBasicProperties(w, { deliveryMode: 1 });
    w.endFrame();
    for (let off = 0; off < SIZE; off += 131064) w.bodyFrame(ch, body, off, Math.min(SIZE, off + 131064));
    parts.push(...w.take());
  }
  return Buffer.concat(parts);
}

let published = 0;
let delivered = 0;

/** Echo mode: where publishes go. */
interface Target {
  conn: SinkConnection;
  ch: number;
  tag: string;
  deliveryTag: number;
}
const targets: Target[] = [];
let nextTarget = 0;
const dirty = new Set<SinkConnection>();
const publishers = new Set<SinkConnection>();
let paused = false;

function pauseAll(): void {
  if (paused) return;
  paused = true;
  for (const p of publishers) p.pause();
}
function resumeAll(): void {
  if (!paused) return;
  paused = false;
  for (const p of publishers) p.resume();
}

class SinkConnection implements FrameHandler {
  private readonly parser = new FrameParser(this, 131072);
  private readonly reader = new Reader();
  private readonly w = new Writer();
  private gotHeader = false;
  /** Per channel: confirm mode's last sequence number (0 = not in confirm mode). */
  private confirmSeq: number[] = [];
  private confirmMode: boolean[] = [];
  private flooding: { ch: number; block: Buffer }[] = [];
  private floodScheduled = false;
  private waitingDrain = false;
  private closed = false;
  /** Echo mode: the publish being received on each channel. */
  private echoTarget: (Target | null)[] = [];
  private echoBody: (Buffer | null)[] = [];
  private echoGot: number[] = [];

  constructor(private readonly s: net.Socket) {
    s.setNoDelay(true);
    s.on('data', (chunk) => this.onData(chunk));
    s.on('drain', () => {
      this.waitingDrain = false;
      if (ECHO) resumeAll();
      this.scheduleFlood();
    });
    s.on('error', () => {});
    s.on('close', () => {
      this.closed = true;
      publishers.delete(this);
      for (let i = targets.length - 1; i >= 0; i--) if (targets[i].conn === this) targets.splice(i, 1);
      // A full consumer socket that went away will never drain.
      if (this.waitingDrain) resumeAll();
    });
  }

  get writer(): Writer {
    return this.w;
  }
  pause(): void {
    this.s.pause();
  }
  resume(): void {
    this.s.resume();
  }

  private onData(chunk: Buffer): void {
    if (!this.gotHeader) {
      // The 8-byte protocol header arrives alone (the client waits for connection.start).
      this.gotHeader = true;
      M.encodeConnectionStart(this.w, 0, 0, 9, { product: 'perf-sink', version: '1' }, 'PLAIN', 'en_US');
      if (chunk.length > 8) this.parser.push(chunk.subarray(8));
    } else {
      this.parser.push(chunk);
    }
    if (dirty.size > 0) {
      for (const c of dirty) c.flush();
      dirty.clear();
    }
    for (let ch = 0; ch < this.confirmSeq.length; ch++) {
      if (this.confirmMode[ch] && this.confirmSeq[ch] > 0) {
        M.encodeBasicAck(this.w, ch, this.confirmSeq[ch], true);
      }
    }
    this.flush();
  }

  flush(): void {
    if (this.w.empty || this.closed) return;
    const chunks = this.w.take();
    if (!this.s.write(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))) {
      this.waitingDrain = true;
      if (ECHO) pauseAll();
    }
  }

  private scheduleFlood(): void {
    if (this.floodScheduled || this.flooding.length === 0) return;
    this.floodScheduled = true;
    setImmediate(() => {
      this.floodScheduled = false;
      if (this.closed || this.waitingDrain) return;
      for (const f of this.flooding) {
        delivered += BLOCK;
        if (!this.s.write(f.block)) this.waitingDrain = true;
      }
      if (!this.waitingDrain) this.scheduleFlood();
    });
  }

  onMethodFrame(ch: number, buf: Buffer, start: number, end: number): void {
    const payload = buf.subarray(start, end);
    const id = payload.readUInt32BE(0);
    if (id === M.BASIC_PUBLISH) {
      published++;
      if (this.confirmMode[ch]) this.confirmSeq[ch]++;
      if (ECHO) {
        publishers.add(this);
        if (paused) this.pause();
        const t = targets.length > 0 ? targets[nextTarget++ % targets.length] : null;
        this.echoTarget[ch] = t;
        if (t) {
          // exchange and routing key as published
          const r = this.reader.reset(payload, 6);
          const exchange = r.shortstr();
          const key = r.shortstr();
          M.encodeBasicDeliver(t.conn.writer, t.ch, t.tag, ++t.deliveryTag, false, exchange, key);
          delivered++;
        }
      }
      return;
    }
    if (id === M.BASIC_ACK) return;
    const m = M.decodeMethod(this.reader.reset(payload));
    const w = this.w;
    switch (m.id) {
      case M.CONNECTION_START_OK:
        M.encodeConnectionTune(w, 0, 2047, 131072, 0);
        break;
      case M.CONNECTION_TUNE_OK:
        break;
      case M.CONNECTION_OPEN:
        M.encodeConnectionOpenOk(w, 0, '');
        break;
      case M.CONNECTION_CLOSE:
        M.encodeConnectionCloseOk(w, 0);
        this.flooding = [];
        break;
      case M.CHANNEL_OPEN:
        M.encodeChannelOpenOk(w, ch, '');
        break;
      case M.CHANNEL_CLOSE:
        M.encodeChannelCloseOk(w, ch);
        break;
      case M.BASIC_QOS:
        M.encodeBasicQosOk(w, ch);
        break;
      case M.CONFIRM_SELECT:
        this.confirmMode[ch] = true;
        this.confirmSeq[ch] = 0;
        if (!m.nowait) M.encodeConfirmSelectOk(w, ch);
        break;
      case M.EXCHANGE_DECLARE:
        if (!m.nowait) M.encodeExchangeDeclareOk(w, ch);
        break;
      case M.EXCHANGE_DELETE:
        if (!m.nowait) M.encodeExchangeDeleteOk(w, ch);
        break;
      case M.QUEUE_DECLARE:
        if (!m.nowait) M.encodeQueueDeclareOk(w, ch, m.queue || `amq.gen-${Math.random().toString(36).slice(2)}`, 0, 0);
        break;
      case M.QUEUE_BIND:
        if (!m.nowait) M.encodeQueueBindOk(w, ch);
        break;
      case M.QUEUE_DELETE:
        if (!m.nowait) M.encodeQueueDeleteOk(w, ch, 0);
        break;
      case M.QUEUE_PURGE:
        if (!m.nowait) M.encodeQueuePurgeOk(w, ch, 0);
        break;
      case M.BASIC_CONSUME: {
        const tag = m.consumerTag || `ctag-${ch}`;
        if (!m.nowait) M.encodeBasicConsumeOk(w, ch, tag);
        this.flush();
        if (ECHO) targets.push({ conn: this, ch, tag, deliveryTag: 0 });
        else {
          this.flooding.push({ ch, block: deliveryBlock(ch, tag) });
          this.scheduleFlood();
        }
        break;
      }
      case M.BASIC_CANCEL:
        this.flooding = this.flooding.filter((f) => f.ch !== ch);
        if (!m.nowait) M.encodeBasicCancelOk(w, ch, m.consumerTag);
        break;
      default:
        break;
    }
  }
  onHeaderFrame(ch: number, buf: Buffer, start: number, end: number): void {
    const payload = buf.subarray(start, end);
    const t = this.echoTarget[ch];
    if (!t) return;
    const w = t.conn.writer;
    w.beginFrame(2, t.ch);
    w.ensure(payload.length);
    payload.copy(w.buf, w.pos);
    w.pos += payload.length;
    w.endFrame();
    dirty.add(t.conn);
    const size = payload.readUInt32BE(4) * 0x100000000 + payload.readUInt32BE(8);
    this.echoBody[ch] = size > 0 ? Buffer.allocUnsafe(size) : null;
    this.echoGot[ch] = 0;
    if (size === 0) this.echoTarget[ch] = null;
  }
  onBodyChunk(ch: number, chunk: Buffer): void {
    const t = this.echoTarget[ch];
    const body = this.echoBody[ch];
    if (!t || !body) return;
    chunk.copy(body, this.echoGot[ch]);
    this.echoGot[ch] += chunk.length;
    if (this.echoGot[ch] >= body.length) {
      for (let off = 0; off < body.length; off += 131064) t.conn.writer.bodyFrame(t.ch, body, off, Math.min(body.length, off + 131064));
      this.echoTarget[ch] = null;
      this.echoBody[ch] = null;
    }
  }
  onHeartbeatFrame(): void {}
  onFrameError(code: number, text: string): void {
    process.stderr.write(`sink: frame error ${code} ${text}\n`);
    this.s.destroy();
  }
}

const server = net.createServer((s) => new SinkConnection(s));
server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`sink listening on 127.0.0.1:${PORT} (${ECHO ? 'echo' : `flood, body ${SIZE} B`})\n`);
});
let lastPub = 0;
let lastDel = 0;
setInterval(() => {
  if (published !== lastPub || delivered !== lastDel) {
    process.stderr.write(`sink: received ${published - lastPub}/s, sent ${delivered - lastDel}/s\n`);
  }
  lastPub = published;
  lastDel = delivered;
}, 1000).unref();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
