// A small raw AMQP 0-9-1 socket client for wire-level tests.
// It hand-encodes the few methods needed for a handshake and a handful of
// others, and parses incoming frames (type, channel, size, payload, 0xCE end).
import net from 'node:net';

export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;

export const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]); // "AMQP" 0 0 9 1

export interface Frame {
  type: number; // 1 method, 2 header, 3 body, 8 heartbeat, or -1 for a protocol header reply
  channel: number;
  size: number;
  payload: Buffer;
  end: number;
  classId?: number; // method frames only
  methodId?: number;
  args?: Buffer; // method arguments (payload after class/method ids)
  at?: number; // performance.now() when it was parsed
}

export interface CloseInfo {
  channel: number;
  code: number;
  text: string;
  classId: number;
  methodId: number;
}

// ---------------------------------------------------------------- encoding

export function shortstr(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 255) throw new Error('shortstr too long');
  return Buffer.concat([Buffer.from([b.length]), b]);
}

export function longstr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

export function u8(n: number): Buffer {
  return Buffer.from([n & 0xff]);
}
export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/**
 * A field value with an explicit AMQP type tag (b B s u I i l f d D T S x t V A F), for tests
 * that check wire types. D takes [scale, value]; T takes seconds; A and F take TableValues.
 */
export class Typed {
  constructor(
    readonly tag: string,
    readonly value: number | bigint | string | boolean | Buffer | [number, number] | TableValue[] | { [k: string]: TableValue } | null,
  ) {}
}

export function typed(tag: string, value: Typed['value']): Typed {
  return new Typed(tag, value);
}

export type TableValue = string | number | boolean | Buffer | Typed | TableValue[] | { [k: string]: TableValue } | null;

function fixed(tag: string, size: number, write: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(1 + size);
  b.write(tag);
  write(b);
  return b;
}

function encodeTyped(t: Typed): Buffer {
  const v = t.value;
  switch (t.tag) {
    case 'b':
      return fixed('b', 1, (b) => b.writeInt8(v as number, 1));
    case 'B':
      return fixed('B', 1, (b) => b.writeUInt8(v as number, 1));
    case 's':
      return fixed('s', 2, (b) => b.writeInt16BE(v as number, 1));
    case 'u':
      return fixed('u', 2, (b) => b.writeUInt16BE(v as number, 1));
    case 'I':
      return fixed('I', 4, (b) => b.writeInt32BE(v as number, 1));
    case 'i':
      return fixed('i', 4, (b) => b.writeUInt32BE(v as number, 1));
    case 'l':
      return fixed('l', 8, (b) => b.writeBigInt64BE(BigInt(v as number | bigint), 1));
    case 'f':
      return fixed('f', 4, (b) => b.writeFloatBE(v as number, 1));
    case 'd':
      return fixed('d', 8, (b) => b.writeDoubleBE(v as number, 1));
    case 'T':
      return fixed('T', 8, (b) => b.writeBigUInt64BE(BigInt(v as number | bigint), 1));
    case 'D': {
      const [scale, n] = v as [number, number];
      return fixed('D', 5, (b) => {
        b.writeUInt8(scale, 1);
        b.writeInt32BE(n, 2);
      });
    }
    case 'S':
      return Buffer.concat([Buffer.from('S'), longstr(v as string)]);
    case 'x':
      return Buffer.concat([Buffer.from('x'), longstr(v as Buffer)]);
    case 't':
      return Buffer.from([0x74, v ? 1 : 0]);
    case 'V':
      return Buffer.from('V');
    case 'A':
      return encodeValue(v as TableValue[]);
    case 'F':
      return encodeValue(v as { [k: string]: TableValue });
    default:
      throw new Error(`no encoding for type tag ${t.tag}`);
  }
}

function encodeValue(v: TableValue): Buffer {
  if (v instanceof Typed) return encodeTyped(v);
  if (v === null) return Buffer.from('V');
  if (typeof v === 'string') return Buffer.concat([Buffer.from('S'), longstr(v)]);
  if (typeof v === 'boolean') return Buffer.from([0x74, v ? 1 : 0]);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
      const b = Buffer.alloc(5);
      b.write('I');
      b.writeInt32BE(v, 1);
      return b;
    }
    const b = Buffer.alloc(9);
    b.write('d');
    b.writeDoubleBE(v, 1);
    return b;
  }
  if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from('x'), longstr(v)]);
  if (Array.isArray(v)) {
    const body = Buffer.concat(v.map(encodeValue));
    return Buffer.concat([Buffer.from('A'), u32(body.length), body]);
  }
  return Buffer.concat([Buffer.from('F'), table(v)]);
}

/** Encodes a field table (with its 4-byte length prefix). */
export function table(obj: Record<string, TableValue>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(obj)) parts.push(shortstr(k), encodeValue(v));
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
}

export function frame(type: number, channel: number, payload: Buffer, end = FRAME_END): Buffer {
  const h = Buffer.alloc(7);
  h.writeUInt8(type, 0);
  h.writeUInt16BE(channel, 1);
  h.writeUInt32BE(payload.length, 3);
  return Buffer.concat([h, payload, Buffer.from([end])]);
}

export function method(channel: number, classId: number, methodId: number, args: Buffer = Buffer.alloc(0)): Buffer {
  return frame(FRAME_METHOD, channel, Buffer.concat([u16(classId), u16(methodId), args]));
}

export function heartbeat(): Buffer {
  return frame(FRAME_HEARTBEAT, 0, Buffer.alloc(0));
}

export function plainResponse(user: string, pass: string): Buffer {
  return Buffer.from(`\0${user}\0${pass}`, 'utf8');
}

/** AMQPLAIN response: a field table without its length prefix. */
export function amqplainResponse(user: string, pass: string): Buffer {
  return table({ LOGIN: user, PASSWORD: pass }).subarray(4);
}

export function startOk(mechanism: string, response: Buffer, clientProps: Record<string, TableValue> = {}): Buffer {
  const props = {
    product: 'leveret-raw-test',
    capabilities: { authentication_failure_close: true, connection_blocked: true },
    ...clientProps,
  };
  return method(0, 10, 11, Buffer.concat([table(props), shortstr(mechanism), longstr(response), shortstr('en_US')]));
}

export function tuneOk(channelMax: number, frameMax: number, heartbeatSecs: number): Buffer {
  return method(0, 10, 31, Buffer.concat([u16(channelMax), u32(frameMax), u16(heartbeatSecs)]));
}

export function connectionOpen(vhost = '/'): Buffer {
  return method(0, 10, 40, Buffer.concat([shortstr(vhost), shortstr(''), u8(0)]));
}

export function connectionClose(code = 200, text = 'bye'): Buffer {
  return method(0, 10, 50, Buffer.concat([u16(code), shortstr(text), u16(0), u16(0)]));
}

export function connectionCloseOk(): Buffer {
  return method(0, 10, 51);
}

export function updateSecret(secret: string, reason: string): Buffer {
  return method(0, 10, 70, Buffer.concat([longstr(secret), shortstr(reason)]));
}

export function channelOpen(channel: number): Buffer {
  return method(channel, 20, 10, shortstr(''));
}

export function channelFlow(channel: number, active: boolean): Buffer {
  return method(channel, 20, 20, u8(active ? 1 : 0));
}

export function channelCloseOk(channel: number): Buffer {
  return method(channel, 20, 41);
}

export function queueDeclare(
  channel: number,
  name: string,
  flags: { passive?: boolean; durable?: boolean; exclusive?: boolean; autoDelete?: boolean } = {},
  args: Record<string, TableValue> = {},
): Buffer {
  const bits = (flags.passive ? 1 : 0) | (flags.durable ? 2 : 0) | (flags.exclusive ? 4 : 0) | (flags.autoDelete ? 8 : 0);
  return method(channel, 50, 10, Buffer.concat([u16(0), shortstr(name), u8(bits), table(args)]));
}

export function basicPublish(channel: number, exchange: string, routingKey: string, mandatory = false): Buffer {
  return method(channel, 60, 40, Buffer.concat([u16(0), shortstr(exchange), shortstr(routingKey), u8(mandatory ? 1 : 0)]));
}

export function basicConsume(
  channel: number,
  queue: string,
  opts: { tag?: string; noAck?: boolean; exclusive?: boolean } = {},
  args: Record<string, TableValue> = {},
): Buffer {
  const bits = (opts.noAck ? 2 : 0) | (opts.exclusive ? 4 : 0);
  return method(channel, 60, 20, Buffer.concat([u16(0), shortstr(queue), shortstr(opts.tag ?? ''), u8(bits), table(args)]));
}

export function exchangeDeclare(channel: number, name: string, type: string, args: Record<string, TableValue> = {}): Buffer {
  return method(channel, 40, 10, Buffer.concat([u16(0), shortstr(name), shortstr(type), u8(0), table(args)]));
}

export function basicAck(channel: number, deliveryTag: number, multiple = false): Buffer {
  return method(channel, 60, 80, Buffer.concat([u64(deliveryTag), u8(multiple ? 1 : 0)]));
}

export function basicRecoverAsync(channel: number, requeue: boolean): Buffer {
  return method(channel, 60, 100, u8(requeue ? 1 : 0));
}

export function basicRecover(channel: number, requeue: boolean): Buffer {
  return method(channel, 60, 110, u8(requeue ? 1 : 0));
}

/** Content header frame with no properties. */
export function contentHeader(channel: number, bodySize: number | bigint, classId = 60): Buffer {
  return frame(FRAME_HEADER, channel, Buffer.concat([u16(classId), u16(0), u64(bodySize), u16(0)]));
}

/** Content properties this client can send: headers as an already encoded table, and a few shortstrs. */
export interface RawProperties {
  headers?: Buffer;
  replyTo?: string;
  expiration?: string;
}

/** Content header frame carrying the given properties. */
export function contentHeaderWith(channel: number, bodySize: number, props: RawProperties): Buffer {
  let flags = 0;
  const parts: Buffer[] = [];
  if (props.headers !== undefined) {
    flags |= 1 << 13;
    parts.push(props.headers);
  }
  if (props.replyTo !== undefined) {
    flags |= 1 << 9;
    parts.push(shortstr(props.replyTo));
  }
  if (props.expiration !== undefined) {
    flags |= 1 << 8;
    parts.push(shortstr(props.expiration));
  }
  return frame(FRAME_HEADER, channel, Buffer.concat([u16(60), u16(0), u64(bodySize), u16(flags), ...parts]));
}

export function channelClose(channel: number, code = 200, text = 'bye', classId = 0, methodId = 0): Buffer {
  return method(channel, 20, 40, Buffer.concat([u16(code), shortstr(text), u16(classId), u16(methodId)]));
}

export function contentBody(channel: number, body: Buffer): Buffer {
  return frame(FRAME_BODY, channel, body);
}

// ---------------------------------------------------------------- decoding

export class Reader {
  constructor(
    public buf: Buffer,
    public pos = 0,
  ) {}
  u8(): number {
    return this.buf.readUInt8(this.pos++);
  }
  u16(): number {
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  shortstr(): string {
    const n = this.u8();
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  longstrBuf(): Buffer {
    const n = this.u32();
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  longstr(): string {
    return this.longstrBuf().toString('utf8');
  }
  table(): Record<string, unknown> {
    const len = this.u32();
    const end = this.pos + len;
    const out: Record<string, unknown> = {};
    while (this.pos < end) {
      const k = this.shortstr();
      out[k] = this.value();
    }
    return out;
  }
  value(): unknown {
    const t = String.fromCharCode(this.u8());
    const b = this.buf;
    switch (t) {
      case 't':
        return this.u8() !== 0;
      case 'b': {
        const v = b.readInt8(this.pos);
        this.pos += 1;
        return v;
      }
      case 'B':
        return this.u8();
      case 's': {
        const v = b.readInt16BE(this.pos);
        this.pos += 2;
        return v;
      }
      case 'u':
        return this.u16();
      case 'I': {
        const v = b.readInt32BE(this.pos);
        this.pos += 4;
        return v;
      }
      case 'i':
        return this.u32();
      case 'l': {
        const v = b.readBigInt64BE(this.pos);
        this.pos += 8;
        return v;
      }
      case 'L': {
        const v = b.readBigUInt64BE(this.pos);
        this.pos += 8;
        return v;
      }
      case 'f': {
        const v = b.readFloatBE(this.pos);
        this.pos += 4;
        return v;
      }
      case 'd': {
        const v = b.readDoubleBE(this.pos);
        this.pos += 8;
        return v;
      }
      case 'D': {
        const scale = this.u8();
        const v = b.readInt32BE(this.pos);
        this.pos += 4;
        return v / 10 ** scale;
      }
      case 'S':
        return this.longstr();
      case 'x':
        return Buffer.from(this.longstrBuf());
      case 'T': {
        const v = b.readBigUInt64BE(this.pos);
        this.pos += 8;
        return v;
      }
      case 'F':
        return this.table();
      case 'V':
        return null;
      case 'A': {
        const len = this.u32();
        const end = this.pos + len;
        const arr: unknown[] = [];
        while (this.pos < end) arr.push(this.value());
        return arr;
      }
      default:
        throw new Error(`unknown field type ${JSON.stringify(t)}`);
    }
  }
}

/** The basic content properties of a header frame's payload, headers kept as raw bytes. */
export interface ReceivedProperties {
  flags: number;
  /** The headers table as sent, with its 4-byte length. */
  headers?: Buffer;
  replyTo?: string;
  expiration?: string;
}

export function decodeContentHeader(payload: Buffer): ReceivedProperties {
  const r = new Reader(payload, 12);
  const flags = r.u16();
  const out: ReceivedProperties = { flags };
  const has = (bit: number): boolean => (flags & (1 << bit)) !== 0;
  if (has(15)) r.shortstr();
  if (has(14)) r.shortstr();
  if (has(13)) {
    const start = r.pos;
    r.table();
    out.headers = payload.subarray(start, r.pos);
  }
  if (has(12)) r.u8();
  if (has(11)) r.u8();
  if (has(10)) r.shortstr();
  if (has(9)) out.replyTo = r.shortstr();
  if (has(8)) out.expiration = r.shortstr();
  return out;
}

/** Each entry of an encoded table (with its length): key -> its value's bytes, type tag first. */
export function tableEntries(buf: Buffer): Map<string, Buffer> {
  const r = new Reader(buf);
  const end = 4 + r.u32();
  const out = new Map<string, Buffer>();
  while (r.pos < end) {
    const key = r.shortstr();
    const start = r.pos;
    r.value();
    out.set(key, buf.subarray(start, r.pos));
  }
  return out;
}

export interface StartInfo {
  versionMajor: number;
  versionMinor: number;
  serverProperties: Record<string, unknown>;
  mechanisms: string;
  locales: string;
}

export function decodeStart(args: Buffer): StartInfo {
  const r = new Reader(args);
  return { versionMajor: r.u8(), versionMinor: r.u8(), serverProperties: r.table(), mechanisms: r.longstr(), locales: r.longstr() };
}

export interface TuneInfo {
  channelMax: number;
  frameMax: number;
  heartbeat: number;
}

export function decodeTune(args: Buffer): TuneInfo {
  const r = new Reader(args);
  return { channelMax: r.u16(), frameMax: r.u32(), heartbeat: r.u16() };
}

export function decodeClose(f: Frame): CloseInfo {
  const r = new Reader(f.args!);
  return { channel: f.channel, code: r.u16(), text: r.shortstr(), classId: r.u16(), methodId: r.u16() };
}

export interface DeliverInfo {
  consumerTag: string;
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
}

export function decodeDeliver(args: Buffer): DeliverInfo {
  const r = new Reader(args);
  const consumerTag = r.shortstr();
  const deliveryTag = Number(args.readBigUInt64BE(r.pos));
  r.pos += 8;
  return { consumerTag, deliveryTag, redelivered: r.u8() !== 0, exchange: r.shortstr(), routingKey: r.shortstr() };
}

export function isMethod(f: Frame, classId: number, methodId: number): boolean {
  return f.type === FRAME_METHOD && f.classId === classId && f.methodId === methodId;
}

export function isClose(f: Frame): boolean {
  return isMethod(f, 10, 50) || isMethod(f, 20, 40);
}

// ---------------------------------------------------------------- client

export interface HandshakeOptions {
  user?: string;
  pass?: string;
  mechanism?: 'PLAIN' | 'AMQPLAIN';
  vhost?: string;
  channelMax?: number;
  frameMax?: number; // 0 = take the server's value
  heartbeat?: number; // undefined = take the server's value
}

export interface HandshakeResult {
  start: StartInfo;
  tune: TuneInfo;
}

export class RawClient {
  readonly socket: net.Socket;
  /** Every byte received, in order. */
  received: Buffer = Buffer.alloc(0);
  /** Every frame received, in order (including ones already consumed). */
  readonly frames: Frame[] = [];
  closed = false;
  /** performance.now() of the peer's FIN ('end'), of a socket error (e.g. ECONNRESET = RST), and of 'close'. */
  endAt?: number;
  errorAt?: number;
  errorCode?: string;
  closedAt?: number;
  readonly closedPromise: Promise<void>;
  private pending: Buffer = Buffer.alloc(0);
  private queue: Frame[] = [];
  private waiters: Array<() => void> = [];
  private parseError?: Error;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.closedAt = performance.now();
        this.closed = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      // surfaced through close; kept for callers that tell FIN from RST
      if (this.errorAt === undefined) {
        this.errorAt = performance.now();
        this.errorCode = e.code ?? e.message;
      }
    });
    socket.on('end', () => {
      this.endAt = performance.now();
    });
    socket.on('data', (d: Buffer) => this.onData(d));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host });
      s.setNoDelay(true);
      const onErr = (e: Error) => reject(e);
      s.once('error', onErr);
      s.once('connect', () => {
        s.off('error', onErr);
        resolve(new RawClient(s));
      });
    });
  }

  send(data: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  private onData(d: Buffer): void {
    this.received = Buffer.concat([this.received, d]);
    this.pending = Buffer.concat([this.pending, d]);
    try {
      for (;;) {
        if (this.pending.length >= 8 && this.pending.subarray(0, 4).toString('latin1') === 'AMQP') {
          const payload = this.pending.subarray(0, 8);
          this.pending = this.pending.subarray(8);
          this.push({ type: -1, channel: 0, size: 8, payload, end: 0 });
          continue;
        }
        if (this.pending.length < 7) break;
        const size = this.pending.readUInt32BE(3);
        if (this.pending.length < 7 + size + 1) break;
        const type = this.pending.readUInt8(0);
        const channel = this.pending.readUInt16BE(1);
        const payload = Buffer.from(this.pending.subarray(7, 7 + size));
        const end = this.pending.readUInt8(7 + size);
        this.pending = this.pending.subarray(8 + size);
        if (end !== FRAME_END) throw new Error(`bad frame end 0x${end.toString(16)} from server`);
        const f: Frame = { type, channel, size, payload, end };
        if (type === FRAME_METHOD && size >= 4) {
          f.classId = payload.readUInt16BE(0);
          f.methodId = payload.readUInt16BE(2);
          f.args = payload.subarray(4);
        }
        this.push(f);
      }
    } catch (e) {
      this.parseError = e as Error;
      this.wake();
    }
  }

  private push(f: Frame): void {
    f.at = performance.now();
    this.frames.push(f);
    this.queue.push(f);
    this.wake();
  }

  /** Next unconsumed frame, or null if the socket closed first. Throws on timeout. */
  async nextFrame(timeoutMs = 5000): Promise<Frame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.parseError) throw this.parseError;
      const f = this.queue.shift();
      if (f) return f;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for a frame`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /**
   * Waits for a given method, skipping heartbeats and other frames. If a
   * connection.close / channel.close arrives instead, throws with its code and text.
   */
  async expectMethod(classId: number, methodId: number, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (!f) throw new Error(`socket closed while waiting for method ${classId}.${methodId}`);
      if (isMethod(f, classId, methodId)) return f;
      if (isClose(f)) {
        const c = decodeClose(f);
        throw new Error(`got close ${c.code} ${c.text} while waiting for method ${classId}.${methodId}`);
      }
    }
  }

  /** Waits for a connection.close or channel.close (skipping other frames); null if the socket closed without one. */
  async expectClose(timeoutMs = 5000): Promise<CloseInfo | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      if (!f) return null;
      if (isClose(f)) return decodeClose(f);
    }
  }

  /** Resolves true if the socket is closed within timeoutMs, false otherwise. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    if (this.closed) return true;
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      t = setTimeout(() => resolve(false), timeoutMs);
    });
    const r = await Promise.race([this.closedPromise.then(() => true), timeout]);
    clearTimeout(t);
    return r;
  }

  /** Sends the protocol header and waits for connection.start. */
  async start(): Promise<StartInfo> {
    this.send(PROTOCOL_HEADER);
    const f = await this.expectMethod(10, 10);
    return decodeStart(f.args!);
  }

  /** Runs the whole handshake up to connection.open-ok. */
  async handshake(opts: HandshakeOptions = {}): Promise<HandshakeResult> {
    const user = opts.user ?? 'guest';
    const pass = opts.pass ?? 'guest';
    const mechanism = opts.mechanism ?? 'PLAIN';
    const start = await this.start();
    const response = mechanism === 'PLAIN' ? plainResponse(user, pass) : amqplainResponse(user, pass);
    this.send(startOk(mechanism, response));
    const tf = await this.expectMethod(10, 30);
    const tune = decodeTune(tf.args!);
    const frameMax = opts.frameMax || tune.frameMax;
    const hb = opts.heartbeat ?? tune.heartbeat;
    this.send(tuneOk(opts.channelMax ?? tune.channelMax, frameMax, hb));
    this.send(connectionOpen(opts.vhost ?? '/'));
    await this.expectMethod(10, 41);
    return { start, tune };
  }

  async openChannel(channel: number): Promise<void> {
    this.send(channelOpen(channel));
    await this.expectMethod(20, 11);
  }
}
