#!/usr/bin/env node
/**
 * Would a second thread take work off the broker's main thread? (issue 14, point 6; see
 * docs/two-cores.md.) Measures, for a stream of basic.publish + content header + body
 * frames cut into 64 KiB reads, the main thread's CPU per message when
 *
 *   inline    the main thread parses the stream itself, as the broker does today: the real
 *             FrameParser, the connection's publish decoding (same-bytes cache, then the
 *             generated decoder), the real ContentAssembler, one Message per publish;
 *   transfer  a worker parses the same stream with the same FrameParser and decoder, packs
 *             each read's messages into a batch (bodies in one ArrayBuffer, the rest as
 *             int32 records; exchange, routing key and properties as small ids, their bytes
 *             sent once) and transfers it with postMessage; the main thread only walks the
 *             records and makes the Messages (bodies stay views of the batch);
 *   ring      the same batches written into a SharedArrayBuffer ring of slots; the main
 *             thread waits with Atomics.waitAsync and copies each body out (the slot is
 *             reused), as the broker copies small bodies today.
 *
 * and, to split each side's work from the hand-over's cost, three single-thread modes:
 *
 *   pack       the worker's work alone (parse and pack into one reused batch, no hand-over);
 *   walk       the main thread's work alone (walk batches packed beforehand; bodies as views);
 *   walk-copy  the same, copying each body out as the ring mode must.
 *
 * Per message it reports the CPU of the main thread and of the worker (each thread's own
 * time on a CPU, from /proc/thread-self/schedstat, in ns), the main thread's event-loop
 * busy time (wall clock: it includes time the thread was runnable but not running, so on a
 * loaded machine it is above the CPU figure) and the whole process's CPU (all threads, GC
 * helpers included). Then, from the medians: what could leave the main thread (inline −
 * walk) and what the hand-over costs on each side (transfer − walk, worker − pack; ring −
 * walk-copy, worker − pack). Every mode runs in a fresh process (no JIT feedback shared),
 * and the modes alternate within each run so that the machine's load drifts over all of
 * them alike. Back-pressure: the worker runs at most --window batches ahead (a shared
 * counter, Atomics.wait), so neither worker mode queues without bound. Each run checks
 * that the Messages kept at the end hold the exchange, routing key, properties and body
 * that were published.
 *
 * Not modelled: the socket read itself (syscall, buffer allocation), which in a worker
 * design would move with the parsing; routing, queues and deliveries, which stay on the
 * main thread; and the way back (confirms, deliveries) if the worker owned the socket.
 *
 * Needs `npm run build` (imports dist/). Usage:
 *   node bench/threads.mjs [--messages 3000000] [--warmup 500000] [--size 16] [--runs 3]
 *                          [--modes inline,pack,walk,transfer,walk-copy,ring] [--window 8] [--json]
 * (--messages are measured after --warmup more; --json prints every run and the medians on stdout)
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const dist = (p) => require(new URL(`../dist/${p}.js`, import.meta.url).pathname);
const { FrameParser } = dist('protocol/frame-parser');
const { Reader } = dist('protocol/reader');
const { Writer } = dist('protocol/writer');
const M = dist('protocol/generated');
const { sameBytes } = dist('protocol/same-bytes');
const { ContentAssembler } = dist('server/content-assembler');
const { Message } = dist('broker/message');

const READ_SIZE = 64 * 1024; // what one socket read hands over under load
const FRAME_MAX = 131072;
const EXCHANGE = 'perf-x-1';
const ROUTING_KEY = 'perf-q-1';
/** Messages kept alive on the main thread, standing in for a queue that holds them a while. */
const KEEP = 4096;

// Shared control words (Int32Array over a SharedArrayBuffer).
const PRODUCED = 0; // batches the worker has handed over
const CONSUMED = 1; // batches the main thread has walked

// ---- the input stream -------------------------------------------------------------------

/** The stream of one publisher: whole messages repeated, cut into READ_SIZE reads (cycled). */
function buildReads(size) {
  const w = new Writer();
  const body = Buffer.alloc(size, 0x78);
  M.encodeBasicPublish(w, 1, 0, EXCHANGE, ROUTING_KEY, false, false);
  w.beginFrame(2, 1);
  w.u16(60);
  w.u16(0);
  w.u64(size);
  M.encodeBasicProperties(w, { deliveryMode: 1 });
  w.endFrame();
  for (let off = 0; off < size; off += FRAME_MAX - 8) w.bodyFrame(1, body, off, Math.min(size, off + FRAME_MAX - 8));
  const one = Buffer.concat(w.take());
  const perCycle = Math.max(1, Math.ceil((64 * READ_SIZE) / one.length));
  const stream = Buffer.alloc(perCycle * one.length);
  for (let i = 0; i < perCycle; i++) one.copy(stream, i * one.length);
  const reads = [];
  for (let off = 0; off < stream.length; off += READ_SIZE) reads.push(stream.subarray(off, Math.min(stream.length, off + READ_SIZE)));
  return { reads, bytesPerMessage: one.length };
}

// ---- measuring ----------------------------------------------------------------------------

/** This thread's time on a CPU in ms: schedstat counts it in ns (stat's utime+stime only in 10 ms ticks). */
function threadCpuMs() {
  const s = readFileSync('/proc/thread-self/schedstat', 'utf8');
  return Number(s.slice(0, s.indexOf(' '))) / 1e6;
}

function processCpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

// ---- inline: what Connection and Channel do with a publish today, up to the Message --------

class Ingress {
  constructor(sink) {
    this.sink = sink;
    this.reader = new Reader();
    this.asm = new ContentAssembler(128 << 20);
    this.channels = new Map([[1, this.asm]]);
    this.lastPublishRaw = Buffer.alloc(256);
    this.lastPublishLen = -1;
    this.lastPublish = null;
    this.frames = 0;
  }
  onMethodFrame(channel, buf, start, end) {
    this.frames++;
    const len = end - start;
    let m;
    if (len === this.lastPublishLen && sameBytes(buf, start, this.lastPublishRaw, len)) m = this.lastPublish;
    else {
      const payload = buf.subarray(start, end);
      m = M.decodeMethod(this.reader.reset(payload));
      if (m.id === M.BASIC_PUBLISH && len <= 256) {
        payload.copy(this.lastPublishRaw);
        this.lastPublishLen = len;
        this.lastPublish = m;
      }
    }
    if (m.id !== M.BASIC_PUBLISH) throw new Error('only basic.publish expected');
    this.channels.get(channel).start(m.exchange, m.routingKey, m.mandatory);
  }
  onHeaderFrame(channel, buf, start, end) {
    this.frames++;
    const asm = this.channels.get(channel);
    if (asm.header(buf, start, end)) this.sink(asm.take());
  }
  onBodyChunk(channel, chunk) {
    const asm = this.channels.get(channel);
    if (asm.bodyChunk(chunk)) this.sink(asm.take());
  }
  onHeartbeatFrame() {}
  onFrameError(code, text) {
    throw new Error(`frame error ${code}: ${text}`);
  }
}

// ---- the worker: the same parsing, results packed as numbers --------------------------------

/**
 * Batch layout. data: the bodies, then the bytes of new definitions. recs (int32):
 * [0] messages, [1] definitions, then per definition kind, id, offset, length
 * (kind 0: exchange+routing key as two shortstrs; kind 1: properties), then per message
 * route id, properties id, body offset, body length, mandatory.
 */
const REC = 5;
const DEF = 4;
const DEF_RESERVE = 1024;

class Packer {
  constructor(limit, flush) {
    this.limit = limit; // messages to produce in all
    this.flushOut = flush;
    this.reader = new Reader();
    this.lastPublishRaw = Buffer.alloc(256);
    this.lastPublishLen = -1;
    this.lastPublish = null;
    this.lastRouteId = -1;
    this.routes = new Map(); // exchange -> Map(routing key -> id)
    this.nextRoute = 0;
    this.props = Buffer.alloc(0);
    this.propsId = -1;
    this.size = 0;
    this.received = 0;
    this.partial = null; // a body split over reads, put together here before it goes out
    this.mandatory = 0;
    this.count = 0;
    this.batch = null;
    this.msgs = 0;
    this.defs = [];
    this.bodyEnd = 0;
  }
  /** The batch to write into (allocated or a ring slot, by flushOut's owner). */
  use(batch) {
    this.batch = batch;
    this.msgs = 0;
    this.defs.length = 0;
    this.defUsed = 0;
    this.bodyEnd = 0;
  }
  room(bytes) {
    const b = this.batch;
    return this.bodyEnd + bytes + DEF_RESERVE <= b.data.length && 2 + (this.msgs + 1) * REC + (this.defs.length + 8) <= b.recs.length;
  }
  flush() {
    const b = this.batch;
    const recs = b.recs;
    // Definitions go before the messages in recs: move the message records up behind them.
    const nd = this.defs.length / DEF;
    const shift = nd * DEF;
    if (shift > 0) recs.copyWithin(2 + shift, 2, 2 + this.msgs * REC);
    for (let i = 0; i < shift; i++) recs[2 + i] = this.defs[i];
    recs[0] = this.msgs;
    recs[1] = nd;
    this.flushOut(b, this.bodyEnd);
  }
  onMethodFrame(channel, buf, start, end) {
    if (this.count >= this.limit) return;
    const len = end - start;
    if (len === this.lastPublishLen && sameBytes(buf, start, this.lastPublishRaw, len)) {
      // same exchange and routing key as the last publish: same route id
    } else {
      const payload = buf.subarray(start, end);
      const m = M.decodeMethod(this.reader.reset(payload));
      if (m.id !== M.BASIC_PUBLISH) throw new Error('only basic.publish expected');
      if (len <= 256) {
        payload.copy(this.lastPublishRaw);
        this.lastPublishLen = len;
        this.lastPublish = m;
      }
      this.lastRouteId = this.routeId(m.exchange, m.routingKey, buf, start + 6);
      this.mandatory = m.mandatory ? 1 : 0;
    }
  }
  routeId(exchange, routingKey, buf, at) {
    let byKey = this.routes.get(exchange);
    if (byKey === undefined) this.routes.set(exchange, (byKey = new Map()));
    let id = byKey.get(routingKey);
    if (id === undefined) {
      id = this.nextRoute++;
      byKey.set(routingKey, id);
      // exchange shortstr, then routing-key shortstr: copied as they came
      const exLen = buf[at];
      const rkLen = buf[at + 1 + exLen];
      this.define(0, id, buf, at, 2 + exLen + rkLen);
    }
    return id;
  }
  /** New exchange/routing-key pairs and property lists go out as bytes, in a reserve at the end of `data`. */
  define(kind, id, buf, start, len) {
    if (this.defUsed + len > DEF_RESERVE || !this.room(0)) this.flush();
    const off = this.batch.data.length - DEF_RESERVE + this.defUsed;
    buf.copy(this.batch.data, off, start, start + len);
    this.defUsed += len;
    this.defs.push(kind, id, off, len);
  }
  onHeaderFrame(channel, buf, start, end) {
    if (this.count >= this.limit) return;
    const len = end - start;
    const classId = (buf[start] << 8) | buf[start + 1];
    if (len < 14 || classId !== 60 || buf[start + 2] !== 0 || buf[start + 3] !== 0) throw new Error('bad content header');
    if (buf.readUInt32BE(start + 4) !== 0) throw new Error('body too large');
    this.size = buf.readUInt32BE(start + 8);
    if (len - 12 !== this.props.length || !sameBytes(buf, start + 12, this.props, this.props.length)) {
      this.props = Buffer.from(buf.subarray(start + 12, end));
      this.propsId++;
      this.define(1, this.propsId, buf, start + 12, len - 12);
    }
    this.received = 0;
    this.partial = null;
    if (this.size === 0) this.complete(null, 0);
  }
  onBodyChunk(channel, chunk) {
    if (this.count >= this.limit) return;
    const n = chunk.length;
    if (this.received === 0 && n === this.size) return this.complete(chunk, n);
    if (this.partial === null) this.partial = Buffer.allocUnsafe(this.size);
    chunk.copy(this.partial, this.received);
    this.received += n;
    if (this.received === this.size) this.complete(this.partial, this.size);
  }
  complete(body, len) {
    if (!this.room(len)) this.flush();
    const recs = this.batch.recs;
    const p = 2 + this.msgs * REC;
    recs[p] = this.lastRouteId;
    recs[p + 1] = this.propsId;
    recs[p + 2] = this.bodyEnd;
    recs[p + 3] = len;
    recs[p + 4] = this.mandatory;
    if (len > 0) body.copy(this.batch.data, this.bodyEnd, 0, len);
    this.bodyEnd += len;
    this.msgs++;
    this.count++;
    this.partial = null;
  }
  onHeartbeatFrame() {}
  onFrameError(code, text) {
    throw new Error(`frame error ${code}: ${text}`);
  }
}

function workerMain() {
  const { mode, size, messages, warmup, window, ctlSab, ring } = workerData;
  const ctl = new Int32Array(ctlSab);
  const { reads } = buildReads(size);
  const dataBytes = Math.max(2 * READ_SIZE, size + 4096);
  const recCap = 2 + Math.ceil(READ_SIZE / 20) * REC + 64;
  let produced = 0;
  let waitMs = 0;
  /** Blocks (not spinning) while the main thread is `window` batches behind. */
  const awaitRoom = () => {
    for (;;) {
      const consumed = Atomics.load(ctl, CONSUMED);
      if (produced - consumed < window) return;
      const t = performance.now();
      Atomics.wait(ctl, CONSUMED, consumed);
      waitMs += performance.now() - t;
    }
  };
  const slots =
    mode === 'ring'
      ? Array.from({ length: window }, (_, i) => ({
          data: Buffer.from(ring.data, i * dataBytes, dataBytes),
          recs: new Int32Array(ring.recs, i * recCap * 4, recCap),
        }))
      : null;
  const fresh = () => ({ data: Buffer.from(new ArrayBuffer(dataBytes)), recs: new Int32Array(recCap) });
  const packer = new Packer(messages, (batch, used) => {
    if (packer.msgs === 0 && packer.defs.length === 0) return;
    if (mode === 'transfer') {
      const d = batch.data.buffer;
      const r = batch.recs.buffer;
      parentPort.postMessage({ data: d, recs: r, used }, [d, r]);
      produced++;
      Atomics.store(ctl, PRODUCED, produced);
      awaitRoom();
      packer.use(fresh());
    } else {
      produced++;
      Atomics.store(ctl, PRODUCED, produced);
      Atomics.notify(ctl, PRODUCED);
      awaitRoom();
      packer.use(slots[produced % window]);
    }
  });
  packer.use(mode === 'ring' ? slots[0] : fresh());
  parentPort.postMessage({ config: { dataBytes, recCap } });
  const parser = new FrameParser(packer, FRAME_MAX);
  let mark = null;
  for (let i = 0; packer.count < messages; i = (i + 1) % reads.length) {
    parser.push(reads[i]);
    packer.flush();
    if (mark === null && packer.count >= warmup) {
      mark = { cpu: threadCpuMs(), wall: performance.now(), wait: waitMs, count: packer.count };
    }
  }
  const end = { cpu: threadCpuMs(), wall: performance.now(), wait: waitMs, count: packer.count };
  parentPort.postMessage({ done: { mark, end, batches: produced } });
}

// ---- the main thread ----------------------------------------------------------------------

function makeSink() {
  const kept = new Array(KEEP).fill(null);
  let n = 0;
  const sink = (msg) => {
    kept[n & (KEEP - 1)] = msg;
    n++;
  };
  /** The messages kept are what the stream said: the modes must produce the same Messages. */
  const check = (size) => {
    const expectProps = Buffer.from([0x10, 0x00, 0x01]); // flags: delivery-mode; delivery-mode 1
    for (const m of kept) {
      if (m === null) continue;
      const ok =
        m instanceof Message &&
        m.exchange === EXCHANGE &&
        m.routingKey === ROUTING_KEY &&
        m.rawProperties.equals(expectProps) &&
        m.body.length === size &&
        (size === 0 || (m.body[0] === 0x78 && m.body[size - 1] === 0x78));
      if (!ok)
        throw new Error(`a message came out wrong: ${m.exchange} ${m.routingKey} ${m.rawProperties.toString('hex')} ${m.body.length}`);
    }
  };
  return { sink, count: () => n, check };
}

/** What is left of ingress on the main thread in a worker design: definitions, then one Message per record. */
class Walker {
  constructor(sink) {
    this.sink = sink;
    this.routes = [];
    this.props = [];
  }
  walk(data, recs, copyBodies) {
    const n = recs[0];
    const nd = recs[1];
    let p = 2;
    for (let d = 0; d < nd; d++, p += DEF) {
      const off = recs[p + 2];
      const len = recs[p + 3];
      if (recs[p] === 0) {
        const exLen = data[off];
        const exchange = data.toString('utf8', off + 1, off + 1 + exLen);
        const routingKey = data.toString('utf8', off + 2 + exLen, off + len);
        this.routes[recs[p + 1]] = { exchange, routingKey, wire: Buffer.from(data.subarray(off, off + len)) };
      } else {
        this.props[recs[p + 1]] = Buffer.from(data.subarray(off, off + len));
      }
    }
    const routes = this.routes;
    const props = this.props;
    for (let k = 0; k < n; k++, p += REC) {
      const r = routes[recs[p]];
      const off = recs[p + 2];
      const len = recs[p + 3];
      let body;
      if (copyBodies) {
        body = Buffer.allocUnsafe(len);
        data.copy(body, 0, off, off + len);
      } else body = data.subarray(off, off + len);
      this.sink(new Message(r.exchange, r.routingKey, props[recs[p + 1]], body, r.wire));
    }
  }
}

function batchSizes(size) {
  return { dataBytes: Math.max(2 * READ_SIZE, size + 4096), recCap: 2 + Math.ceil(READ_SIZE / 20) * REC + 64 };
}

function snapshot(count, elu) {
  return { count, cpu: threadCpuMs(), proc: processCpuMs(), wall: performance.now(), elu: performance.eventLoopUtilization(elu) };
}

/** Runs `step` once per event-loop turn (one socket read's worth) until it has made o.messages. */
function loop(mode, o, count, step) {
  return new Promise((resolve) => {
    const elu0 = performance.eventLoopUtilization();
    let mark = null;
    const turn = () => {
      step();
      const n = count();
      if (mark === null && n >= o.warmup) mark = snapshot(n, elu0);
      if (n < o.messages) return setImmediate(turn);
      resolve(result(mode, o, mark, snapshot(n, elu0), null));
    };
    setImmediate(turn);
  });
}

/** Today: the main thread parses and assembles. */
function runInline(o) {
  const { reads } = buildReads(o.size);
  const { sink, count, check } = makeSink();
  const parser = new FrameParser(new Ingress(sink), FRAME_MAX);
  let i = 0;
  return loop('inline', o, count, () => {
    parser.push(reads[i]);
    i = (i + 1) % reads.length;
  }).then((r) => (check(o.size), r));
}

/** The worker's share alone, on this thread, with no hand-over: parse and pack into one reused batch. */
function runPack(o) {
  const { reads } = buildReads(o.size);
  const { dataBytes, recCap } = batchSizes(o.size);
  const batch = { data: Buffer.alloc(dataBytes), recs: new Int32Array(recCap) };
  const packer = new Packer(Infinity, () => packer.use(batch));
  packer.use(batch);
  const parser = new FrameParser(packer, FRAME_MAX);
  let i = 0;
  return loop(
    'pack',
    o,
    () => packer.count,
    () => {
      parser.push(reads[i]);
      packer.flush();
      i = (i + 1) % reads.length;
    },
  );
}

/** The main thread's share alone, with no hand-over: walk batches packed beforehand (one cycle of the stream). */
function runWalk(o, copyBodies) {
  const { reads } = buildReads(o.size);
  const { dataBytes, recCap } = batchSizes(o.size);
  const batches = [];
  const fresh = () => ({ data: Buffer.alloc(dataBytes), recs: new Int32Array(recCap) });
  const packer = new Packer(Infinity, (b) => {
    batches.push(b);
    packer.use(fresh());
  });
  packer.use(fresh());
  const parser = new FrameParser(packer, FRAME_MAX);
  for (const r of reads) {
    parser.push(r);
    packer.flush();
  }
  const { sink, count, check } = makeSink();
  const walker = new Walker(sink);
  let i = 0;
  return loop(copyBodies ? 'walk-copy' : 'walk', o, count, () => {
    const b = batches[i];
    walker.walk(b.data, b.recs, copyBodies);
    i = (i + 1) % batches.length;
  }).then((r) => (check(o.size), r));
}

/** A worker parses; the main thread walks what it hands over (transferred batches, or a shared ring). */
function runWorker(mode, o) {
  return new Promise((resolve, reject) => {
    const ctlSab = new SharedArrayBuffer(64);
    const ctl = new Int32Array(ctlSab);
    const { dataBytes, recCap } = batchSizes(o.size);
    const ring =
      mode === 'ring' ? { data: new SharedArrayBuffer(dataBytes * o.window), recs: new SharedArrayBuffer(recCap * 4 * o.window) } : null;
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { mode, size: o.size, messages: o.messages, warmup: o.warmup, window: o.window, ctlSab, ring },
    });
    const { sink, count, check } = makeSink();
    const walker = new Walker(sink);
    const elu0 = performance.eventLoopUtilization();
    let mark = null;
    let last = null;
    let consumed = 0;
    let workerDone = null;

    const walked = () => {
      consumed++;
      Atomics.store(ctl, CONSUMED, consumed);
      Atomics.notify(ctl, CONSUMED);
      const c = count();
      if (mark === null && c >= o.warmup) mark = snapshot(c, elu0);
      if (c >= o.messages && last === null) last = snapshot(c, elu0);
      finish();
    };
    const finish = () => {
      if (last === null || workerDone === null) return;
      worker.terminate();
      check(o.size);
      resolve(result(mode, o, mark, last, workerDone));
    };

    let slots = null;
    let seen = 0;
    const drainRing = () => {
      const produced = Atomics.load(ctl, PRODUCED);
      while (seen < produced) {
        const s = slots[seen % o.window];
        seen++;
        walker.walk(s.data, s.recs, true);
        walked();
      }
      if (last !== null) return;
      // One promise per wake-up, not per batch: everything produced meanwhile is walked above.
      const w = Atomics.waitAsync(ctl, PRODUCED, produced);
      if (w.async) w.value.then(drainRing);
      else setImmediate(drainRing);
    };

    worker.on('message', (m) => {
      if (m.recs !== undefined) {
        walker.walk(Buffer.from(m.data), new Int32Array(m.recs), false);
        return walked();
      }
      if (m.config !== undefined) {
        if (mode === 'ring') {
          slots = Array.from({ length: o.window }, (_, i) => ({
            data: Buffer.from(ring.data, i * dataBytes, dataBytes),
            recs: new Int32Array(ring.recs, i * recCap * 4, recCap),
          }));
          drainRing();
        }
        return;
      }
      if (m.done !== undefined) {
        workerDone = m.done;
        finish();
      }
    });
    worker.on('error', reject);
  });
}

function result(mode, o, a, b, w) {
  const n = b.count - a.count;
  const per = (ms) => (ms * 1000) / n; // µs per message
  const r = {
    mode,
    messages: n,
    msgPerSec: Math.round(n / ((b.wall - a.wall) / 1000)),
    mainCpuUs: per(b.cpu - a.cpu),
    mainBusyUs: per(b.elu.active - a.elu.active),
    processCpuUs: per(b.proc - a.proc),
    workerCpuUs: null,
    workerWaitUs: null,
  };
  if (w !== null) {
    const wn = w.end.count - w.mark.count;
    r.workerCpuUs = ((w.end.cpu - w.mark.cpu) * 1000) / wn;
    r.workerWaitUs = ((w.end.wait - w.mark.wait) * 1000) / wn;
  }
  return r;
}

function parseArgs(argv) {
  const o = {
    messages: 3_000_000,
    warmup: 500_000,
    size: 16,
    modes: ['inline', 'pack', 'walk', 'transfer', 'walk-copy', 'ring'],
    runs: 3,
    window: 8,
    json: false,
    one: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--modes') o.modes = argv[++i].split(',');
    else if (a === '--one') o.one = argv[++i];
    else if (['--messages', '--warmup', '--size', '--runs', '--window'].includes(a)) o[a.slice(2)] = Number(argv[++i]);
    else {
      console.error(`unknown option ${a}; see the usage at the top of bench/threads.mjs`);
      process.exit(1);
    }
  }
  o.messages += o.warmup;
  return o;
}

const RUNNERS = {
  inline: runInline,
  pack: runPack,
  walk: (o) => runWalk(o, false),
  'walk-copy': (o) => runWalk(o, true),
  transfer: (o) => runWorker('transfer', o),
  ring: (o) => runWorker('ring', o),
};

const f = (v, d = 3) => (v === null || v === undefined ? '-' : v.toFixed(d));

async function main() {
  const argv = process.argv.slice(2);
  const o = parseArgs(argv);
  if (o.one !== null) {
    // A child running one mode: its JIT feedback and heap are its own.
    const r = await RUNNERS[o.one](o);
    process.stdout.write(JSON.stringify(r));
    return;
  }
  for (const m of o.modes) if (!(m in RUNNERS)) throw new Error(`unknown mode ${m}`);
  const { bytesPerMessage } = buildReads(o.size);
  const all = [];
  console.error(
    `${o.size} B bodies, ${bytesPerMessage} B per message on the wire, ${o.messages - o.warmup} measured after ${o.warmup}; µs per message`,
  );
  console.error(`run mode           msg/s   main cpu  main busy  worker cpu  process cpu   load`);
  // Modes alternate within each run so that the machine's load drifts over all of them alike.
  for (let run = 1; run <= o.runs; run++) {
    for (const mode of o.modes) {
      const load = loadavg()[0];
      // Each mode in a fresh process, so that one mode's code never makes another's call sites polymorphic.
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), ...argv.filter((x) => x !== '--json'), '--one', mode], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const r = JSON.parse(out);
      r.run = run;
      r.load = load;
      all.push(r);
      const cols = [
        String(r.msgPerSec).padStart(10),
        f(r.mainCpuUs).padStart(10),
        f(r.mainBusyUs).padStart(10),
        f(r.workerCpuUs).padStart(11),
        f(r.processCpuUs).padStart(12),
      ];
      console.error(`${String(run).padStart(3)} ${mode.padEnd(9)} ${cols.join(' ')}  ${load.toFixed(2).padStart(5)}`);
    }
  }
  const med = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const stat = (mode, k) => {
    const xs = all.filter((r) => r.mode === mode && r[k] !== null).map((r) => r[k]);
    return xs.length === 0 ? null : { median: med(xs), min: Math.min(...xs), max: Math.max(...xs) };
  };
  const summary = {};
  for (const mode of o.modes) {
    summary[mode] = {};
    for (const k of ['msgPerSec', 'mainCpuUs', 'mainBusyUs', 'workerCpuUs', 'processCpuUs']) summary[mode][k] = stat(mode, k);
  }
  const g = (s) => (s === null ? '-' : `${f(s.median)} (${f(s.min)}–${f(s.max)})`);
  console.error('\nmedians (min–max) over the runs, µs of CPU per message:');
  for (const mode of o.modes) {
    const s = summary[mode];
    console.error(`  ${mode.padEnd(9)} main thread ${g(s.mainCpuUs)}   worker ${g(s.workerCpuUs)}   process ${g(s.processCpuUs)}`);
  }
  // What the hand-over itself costs: each side of a worker mode minus that side's work done alone.
  const m = (mode, k) => summary[mode]?.[k]?.median ?? null;
  const derived = {};
  if (m('inline', 'mainCpuUs') !== null && m('walk', 'mainCpuUs') !== null)
    derived.movableUs = m('inline', 'mainCpuUs') - m('walk', 'mainCpuUs');
  if (m('transfer', 'mainCpuUs') !== null && m('walk', 'mainCpuUs') !== null)
    derived.transferMainHandoffUs = m('transfer', 'mainCpuUs') - m('walk', 'mainCpuUs');
  if (m('transfer', 'workerCpuUs') !== null && m('pack', 'mainCpuUs') !== null)
    derived.transferWorkerHandoffUs = m('transfer', 'workerCpuUs') - m('pack', 'mainCpuUs');
  if (m('ring', 'mainCpuUs') !== null && m('walk-copy', 'mainCpuUs') !== null)
    derived.ringMainHandoffUs = m('ring', 'mainCpuUs') - m('walk-copy', 'mainCpuUs');
  if (m('ring', 'workerCpuUs') !== null && m('pack', 'mainCpuUs') !== null)
    derived.ringWorkerHandoffUs = m('ring', 'workerCpuUs') - m('pack', 'mainCpuUs');
  if (Object.keys(derived).length > 0) {
    console.error('\nderived from the medians, µs per message:');
    if (derived.movableUs !== undefined)
      console.error(`  could leave the main thread (inline − walk):             ${f(derived.movableUs)}`);
    if (derived.transferMainHandoffUs !== undefined)
      console.error(`  transfer, receiving on the main thread (transfer − walk): ${f(derived.transferMainHandoffUs)}`);
    if (derived.transferWorkerHandoffUs !== undefined)
      console.error(`  transfer, sending in the worker (worker − pack):         ${f(derived.transferWorkerHandoffUs)}`);
    if (derived.ringMainHandoffUs !== undefined)
      console.error(`  ring, receiving on the main thread (ring − walk-copy):   ${f(derived.ringMainHandoffUs)}`);
    if (derived.ringWorkerHandoffUs !== undefined)
      console.error(`  ring, sending in the worker (worker − pack):             ${f(derived.ringWorkerHandoffUs)}`);
  }
  if (o.json) console.log(JSON.stringify({ options: o, bytesPerMessage, node: process.version, runs: all, summary, derived }, null, 2));
}

if (isMainThread) await main();
else workerMain();
