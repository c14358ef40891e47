import { FRAME_END } from './constants';
import { Decimal, numberFits, RAW_SECONDS, wireTypes, type FieldTable, type FieldValue } from './types';

const BLOCK = 64 * 1024;
/**
 * The first block: what a handshake and an idle connection's few frames need. Small
 * allocations come from Node's shared pool, so an idle connection pins about this much
 * instead of a block of its own; a connection that writes more moves to BLOCK.
 */
const FIRST_BLOCK = 2048;
const NO_BLOCK = Buffer.alloc(0);
/** Spare blocks a busy writer keeps (a turn's output is flushed at 256 KiB anyway). */
const MAX_SPARES = 4;
/** Bodies at least this big are sent by reference instead of being copied into the block. */
const EXTERNAL_BODY = 4096;

/**
 * An append-only output buffer for one connection. Frames are encoded straight into a
 * large block; `take()` hands the bytes written since the last take to the socket as
 * zero-copy slices. Regions already handed out are never written again, so the block can
 * be shared with the socket until it is full and a new one is started.
 */
export class Writer {
  buf: Buffer = NO_BLOCK;
  pos = 0;
  /** The last take() handed out more than a small block's worth: the next block is a big one. */
  private busy = false;
  private mark = 0;
  private frameStart = -1;
  private chunks: Buffer[] = [];
  /** Bytes appended since the last take(): lets the owner decide to flush early. */
  pending = 0;
  /** Full blocks handed to the socket since it last had everything written (see released). */
  private retired: Buffer[] | null = null;
  /** Blocks the socket is done with, filled again before a new one is allocated. */
  private spares: Buffer[] | null = null;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const carry = this.pos - this.mark;
    const want = carry + n;
    // A connection that writes little per turn stays on small blocks from the shared pool.
    const size = this.busy || this.pending + want > FIRST_BLOCK / 2 ? BLOCK : FIRST_BLOCK;
    if (this.buf.length === BLOCK) (this.retired ??= []).push(this.buf);
    const spare = want <= BLOCK && size === BLOCK && this.spares !== null ? this.spares.pop() : undefined;
    const next = spare ?? Buffer.allocUnsafe(Math.max(size, want * 2));
    this.buf.copy(next, 0, this.mark, this.pos);
    if (this.frameStart >= 0) this.frameStart -= this.mark;
    this.buf = next;
    this.pos = carry;
    this.mark = 0;
  }

  /**
   * The socket has written everything handed to it (nothing of ours is still queued or in
   * flight): the blocks it held can be filled again instead of allocating new ones, which
   * matters less for the allocation than for V8, which runs a full collection for every
   * few dozen MB of buffers allocated. Only for a writer whose owner knows this.
   */
  released(): void {
    if (this.retired !== null) {
      const spares = (this.spares ??= []);
      for (const b of this.retired) if (spares.length < MAX_SPARES) spares.push(b);
      this.retired.length = 0;
    }
    if (this.pos === this.mark && this.frameStart < 0 && this.chunks.length === 0) this.pos = this.mark = 0;
  }

  beginFrame(type: number, channel: number): void {
    this.ensure(7);
    const b = this.buf;
    let p = this.pos;
    b[p++] = type;
    b[p++] = channel >>> 8;
    b[p++] = channel & 0xff;
    this.frameStart = p - 3;
    this.pos = p + 4;
  }

  endFrame(): void {
    this.ensure(1);
    const sizePos = this.frameStart + 3;
    const size = this.pos - sizePos - 4;
    put32(this.buf, sizePos, size);
    this.buf[this.pos++] = FRAME_END;
    this.pending += size + 8;
    this.frameStart = -1;
  }

  /** A body frame whose payload is `body[start, end)`; big payloads are not copied. */
  bodyFrame(channel: number, body: Buffer, start: number, end: number): void {
    const len = end - start;
    if (len < EXTERNAL_BODY) {
      this.beginFrame(3, channel);
      this.ensure(len);
      body.copy(this.buf, this.pos, start, end);
      this.pos += len;
      this.endFrame();
      return;
    }
    this.ensure(8);
    const b = this.buf;
    let p = this.pos;
    b[p++] = 3;
    b[p++] = channel >>> 8;
    b[p++] = channel & 0xff;
    b.writeUInt32BE(len, p);
    this.pos = p + 4;
    this.seal();
    this.chunks.push(start === 0 && end === body.length ? body : body.subarray(start, end));
    this.buf[this.pos++] = FRAME_END;
    this.pending += len + 8;
  }

  /**
   * A whole delivery: basic.deliver from its cached `prefix` (see delivery-wire.ts), the
   * content header and the body. Exchange and routing key are copied from `route` when the
   * message has them encoded, else written from the strings. Everything up to a small body
   * is written with one size check and byte stores; bigger bodies go through bodyFrame.
   */
  delivery(
    prefix: Buffer,
    deliveryTag: number,
    redelivered: boolean,
    route: Buffer | null,
    exchange: string,
    routingKey: string,
    props: Buffer,
    body: Buffer,
    maxPayload: number,
    channel: number,
  ): void {
    const bodyLen = body.length;
    const inline = bodyLen < EXTERNAL_BODY && bodyLen <= maxPayload;
    const routeMax = route !== null ? route.length : 2 + 3 * (exchange.length + routingKey.length);
    const headerLen = 12 + props.length;
    this.ensure(prefix.length + 9 + routeMax + 1 + 7 + headerLen + 1 + (inline && bodyLen > 0 ? 8 + bodyLen : 0));
    const b = this.buf;
    const start = this.pos;
    let p = copyInto(prefix, b, start);
    put32(b, p, Math.floor(deliveryTag / 0x100000000) >>> 0);
    put32(b, p + 4, deliveryTag >>> 0);
    b[p + 8] = redelivered ? 1 : 0;
    p += 9;
    if (route !== null) p = copyInto(route, b, p);
    else p = putShortstr(b, putShortstr(b, p, exchange), routingKey);
    const methodLen = p - start - 7;
    put32(b, start + 3, methodLen);
    b[p++] = FRAME_END;
    b[p] = 2;
    b[p + 1] = channel >>> 8;
    b[p + 2] = channel & 0xff;
    put32(b, p + 3, headerLen);
    put32(b, p + 7, 60 << 16); // class basic, weight 0
    put32(b, p + 11, Math.floor(bodyLen / 0x100000000) >>> 0);
    put32(b, p + 15, bodyLen >>> 0);
    p = copyInto(props, b, p + 19);
    b[p++] = FRAME_END;
    this.pending += methodLen + headerLen + 16;
    if (inline) {
      if (bodyLen > 0) {
        b[p] = 3;
        b[p + 1] = channel >>> 8;
        b[p + 2] = channel & 0xff;
        put32(b, p + 3, bodyLen);
        p = copyInto(body, b, p + 7);
        b[p++] = FRAME_END;
        this.pending += bodyLen + 8;
      }
      this.pos = p;
      return;
    }
    this.pos = p;
    for (let off = 0; off < bodyLen; off += maxPayload) this.bodyFrame(channel, body, off, Math.min(off + maxPayload, bodyLen));
  }

  /** Raw bytes that are already a complete frame sequence (e.g. a cached heartbeat). */
  raw(bytes: Buffer): void {
    this.ensure(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
    this.pending += bytes.length;
  }

  private seal(): void {
    if (this.pos > this.mark) this.chunks.push(this.buf.subarray(this.mark, this.pos));
    this.mark = this.pos;
  }

  /** Everything written since the last call, as slices to hand to socket.write. */
  take(): Buffer[] {
    this.seal();
    const out = this.chunks;
    this.chunks = [];
    this.busy = this.pending > FIRST_BLOCK / 2;
    this.pending = 0;
    // A nearly full block would only produce tiny slices: the next write starts a new one.
    // A connection that writes little lets go of its small block (a slice of Node's shared
    // pool) each time, so an idle one pins none: the next small write takes a new slice.
    if ((!this.busy && this.buf.length < BLOCK) || this.buf.length - this.pos < Math.min(1024, this.buf.length >>> 2)) {
      if (this.buf.length === BLOCK) (this.retired ??= []).push(this.buf);
      this.buf = NO_BLOCK;
      this.pos = this.mark = 0;
    }
    // A connection that went quiet keeps no spare blocks.
    if (!this.busy) this.retired = this.spares = null;
    return out;
  }

  get empty(): boolean {
    return this.pos === this.mark && this.chunks.length === 0;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  // u32 and u64 store bytes themselves: Buffer's writeUInt32BE checks its arguments on every
  // call, and these run for every method frame and delivery tag.
  u32(v: number): void {
    this.ensure(4);
    put32(this.buf, this.pos, v >>> 0);
    this.pos += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    put32(this.buf, this.pos, Math.floor(v / 0x100000000) >>> 0);
    put32(this.buf, this.pos + 4, v >>> 0);
    this.pos += 8;
  }
  shortstr(s: string): void {
    const len = s.length;
    // Names are short and mostly ASCII: copying char codes here is cheaper than a call into
    // the native UTF-8 encoder for each of a delivery's three strings.
    if (len < 64) {
      this.ensure(1 + len * 3);
      const b = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[start + i] = c;
      }
      if (i === len) {
        b[this.pos] = len;
        this.pos = start + len;
        return;
      }
    }
    this.ensure(1 + len * 3);
    const n = this.buf.write(s, this.pos + 1, 'utf8');
    if (n > 255) throw new RangeError(`shortstr longer than 255 bytes`);
    this.buf[this.pos] = n;
    this.pos += 1 + n;
  }
  longstr(s: string | Buffer): void {
    if (typeof s === 'string') {
      this.ensure(4 + s.length * 3);
      const n = this.buf.write(s, this.pos + 4, 'utf8');
      this.buf.writeUInt32BE(n, this.pos);
      this.pos += 4 + n;
    } else {
      this.ensure(4 + s.length);
      this.buf.writeUInt32BE(s.length, this.pos);
      s.copy(this.buf, this.pos + 4);
      this.pos += 4 + s.length;
    }
  }
  table(t: FieldTable | undefined): void {
    this.ensure(4);
    const lenRel = this.pos - this.mark;
    this.pos += 4;
    if (t) {
      const types = wireTypes(t);
      for (const key of Object.keys(t)) {
        const v = t[key];
        if (v === undefined) continue;
        this.shortstr(key);
        if (types === undefined || !this.taggedNumber(v, types[key])) this.fieldValue(v);
      }
    }
    // ensure() may have moved the block: the offset from the mark survives that.
    const lenPos = this.mark + lenRel;
    this.buf.writeUInt32BE(this.pos - lenPos - 4, lenPos);
  }
  /**
   * Writes a number with the wire type it was decoded with, when one was recorded and still
   * holds the value (a byte incremented past 127 is written as inferred instead).
   */
  private taggedNumber(v: FieldValue, tag: string | undefined): boolean {
    if (tag === undefined || typeof v !== 'number' || !numberFits(v, tag)) return false;
    this.ensure(9);
    const b = this.buf;
    b[this.pos++] = tag.charCodeAt(0);
    switch (tag) {
      case 'b':
        b.writeInt8(v, this.pos);
        this.pos += 1;
        break;
      case 'B':
        b[this.pos++] = v;
        break;
      case 's':
        b.writeInt16BE(v, this.pos);
        this.pos += 2;
        break;
      case 'u':
        b.writeUInt16BE(v, this.pos);
        this.pos += 2;
        break;
      case 'I':
        b.writeInt32BE(v, this.pos);
        this.pos += 4;
        break;
      case 'i':
        b.writeUInt32BE(v, this.pos);
        this.pos += 4;
        break;
      case 'l':
        b.writeBigInt64BE(BigInt(v), this.pos);
        this.pos += 8;
        break;
      case 'f':
        b.writeFloatBE(v, this.pos);
        this.pos += 4;
        break;
      default: // 'd'
        b.writeDoubleBE(v, this.pos);
        this.pos += 8;
    }
    return true;
  }
  fieldValue(v: FieldValue): void {
    this.ensure(9);
    const b = this.buf;
    switch (typeof v) {
      case 'string':
        b[this.pos++] = 0x53;
        this.longstr(v);
        return;
      case 'boolean':
        b[this.pos++] = 0x74;
        b[this.pos++] = v ? 1 : 0;
        return;
      case 'number':
        if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
          b[this.pos++] = 0x49;
          b.writeInt32BE(v, this.pos);
          this.pos += 4;
        } else if (Number.isSafeInteger(v)) {
          b[this.pos++] = 0x6c;
          b.writeBigInt64BE(BigInt(v), this.pos);
          this.pos += 8;
        } else {
          b[this.pos++] = 0x64;
          b.writeDoubleBE(v, this.pos);
          this.pos += 8;
        }
        return;
      case 'bigint':
        b[this.pos++] = 0x6c;
        b.writeBigInt64BE(v, this.pos);
        this.pos += 8;
        return;
      case 'object':
        if (v === null) {
          b[this.pos++] = 0x56;
        } else if (Buffer.isBuffer(v)) {
          b[this.pos++] = 0x78;
          this.longstr(v);
        } else if (v instanceof Date) {
          b[this.pos++] = 0x54;
          const ms = v.getTime();
          const raw = (v as Date & { [RAW_SECONDS]?: bigint })[RAW_SECONDS];
          b.writeBigInt64BE(Number.isNaN(ms) ? (raw ?? 0n) : BigInt(Math.floor(ms / 1000)), this.pos);
          this.pos += 8;
        } else if (v instanceof Decimal) {
          b[this.pos++] = 0x44;
          b[this.pos++] = v.scale;
          b.writeInt32BE(v.value, this.pos);
          this.pos += 4;
        } else if (Array.isArray(v)) {
          b[this.pos++] = 0x41;
          this.array(v);
        } else {
          b[this.pos++] = 0x46;
          this.table(v);
        }
        return;
      default:
        b[this.pos++] = 0x56;
    }
  }
  array(a: FieldValue[]): void {
    this.ensure(4);
    const lenRel = this.pos - this.mark;
    this.pos += 4;
    const types = wireTypes(a);
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (types === undefined || !this.taggedNumber(v, types[i])) this.fieldValue(v);
    }
    const lenPos = this.mark + lenRel;
    this.buf.writeUInt32BE(this.pos - lenPos - 4, lenPos);
  }
}

function put32(b: Buffer, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** Copies `src` to `dst` at `at` and returns the end; a loop for the few bytes of names and small bodies. */
function copyInto(src: Buffer, dst: Buffer, at: number): number {
  const n = src.length;
  if (n <= 32) {
    for (let i = 0; i < n; i++) dst[at + i] = src[i];
  } else {
    dst.set(src, at);
  }
  return at + n;
}

/** Writes `s` as a shortstr at `at` (room for 1 + 3 × its length is there); returns the end. */
function putShortstr(b: Buffer, at: number, s: string): number {
  const len = s.length;
  let i = 0;
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) break;
    b[at + 1 + i] = c;
  }
  if (i === len) {
    if (len > 255) throw new RangeError(`shortstr longer than 255 bytes`);
    b[at] = len;
    return at + 1 + len;
  }
  const n = b.write(s, at + 1, 'utf8');
  if (n > 255) throw new RangeError(`shortstr longer than 255 bytes`);
  b[at] = n;
  return at + 1 + n;
}
