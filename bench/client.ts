/**
 * A minimal AMQP 0-9-1 client connection for load generation, built on Leveret's own codec.
 *
 * Setup (declare, bind, consume...) goes through promise-returning RPCs; the hot paths
 * (basic.deliver, basic.ack/nack confirms) are parsed in place from the method frame
 * payload without decoding into objects, and handed to per-channel handlers that are
 * plain objects, so nothing is allocated per message.
 */
import net from 'node:net';
import { FrameParser, type FrameHandler } from '../src/protocol/frame-parser';
import { Reader } from '../src/protocol/reader';
import { Writer } from '../src/protocol/writer';
import { PROTOCOL_HEADER } from '../src/protocol/constants';
import type { FieldTable } from '../src/protocol/types';
import * as M from '../src/protocol/generated';

export interface AmqpUri {
  host: string;
  port: number;
  user: string;
  pass: string;
  vhost: string;
}

export function parseUri(uri: string): AmqpUri {
  const u = new URL(uri);
  if (u.protocol !== 'amqp:') throw new Error(`only amqp:// URIs are supported, got ${uri}`);
  const path = u.pathname;
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: u.port ? Number(u.port) : 5672,
    user: u.username ? decodeURIComponent(u.username) : 'guest',
    pass: u.password ? decodeURIComponent(u.password) : 'guest',
    vhost: path === '' || path === '/' ? '/' : decodeURIComponent(path.slice(1)),
  };
}

/** Receives the content of basic.deliver on one channel. */
export interface DeliveryHandler {
  /** basic.deliver arrived; the header and body follow. */
  onDeliver(deliveryTag: number): void;
  onHeader(bodySize: number): void;
  onBody(chunk: Buffer): void;
}

/** Receives publisher confirms on one channel. */
export interface ConfirmHandler {
  onConfirm(deliveryTag: number, multiple: boolean, nack: boolean): void;
}

/** Thrown (and reported) when the broker closes a channel or the connection. */
export class BrokerClosed extends Error {
  constructor(
    readonly what: string,
    readonly code: number,
    readonly text: string,
    readonly method: string,
  ) {
    super(`${what} closed by the broker: ${code} ${text}${method ? ` (in reply to ${method})` : ''}`);
  }
}

interface Pending {
  expect: number;
  resolve: (m: M.Method) => void;
  reject: (e: Error) => void;
}

const CLIENT_PROPERTIES: FieldTable = {
  product: 'leveret-perf',
  platform: `Node.js ${process.version}`,
  capabilities: {
    publisher_confirms: true,
    'basic.nack': true,
    consumer_cancel_notify: true,
    'connection.blocked': true,
    authentication_failure_close: true,
    exchange_exchange_bindings: true,
  },
};

const FRAME_MAX = 131072;

export class Connection implements FrameHandler {
  readonly socket: net.Socket;
  readonly writer = new Writer();
  private readonly parser: FrameParser;
  private readonly reader = new Reader();
  frameMax = FRAME_MAX;
  channelMax = 2047;
  serverProperties: FieldTable = {};
  /** performance.now() when the chunk being parsed was read: one clock read per TCP read. */
  now = 0;
  /** Heartbeat interval in seconds, as negotiated in connection.tune-ok (0 = none). */
  heartbeat = 0;
  /** Counts writes to the socket, so a heartbeat sweep can tell an idle connection. */
  writes = 0;
  /** Set once the broker sent connection.blocked (and cleared on unblocked). */
  blocked = false;
  /** Called (once) on a fatal error: broker close, socket error, protocol error. */
  onFatal: (err: Error) => void = (err) => {
    throw err;
  };
  onBlocked: (reason: string | null) => void = () => {};
  private pending: Pending[][] = [];
  private deliveryHandlers: (DeliveryHandler | undefined)[] = [];
  private confirmHandlers: (ConfirmHandler | undefined)[] = [];
  private contentTarget: (DeliveryHandler | undefined)[] = [];
  private nextChannel = 1;
  private openResolve: (() => void) | null = null;
  private closing = false;
  private dead = false;
  private flushScheduled = false;

  private constructor(
    readonly uri: AmqpUri,
    readonly name: string,
    /** Heartbeat the client asks for in tune-ok, seconds (0 = none). */
    private readonly heartbeatWanted = 0,
  ) {
    this.parser = new FrameParser(this, FRAME_MAX);
    this.socket = new net.Socket();
  }

  /** A connection that is never connected: frames are pushed with feed() (for microbenchmarks). */
  static detached(name = 'detached'): Connection {
    return new Connection(parseUri('amqp://localhost'), name);
  }

  /** Parses bytes from the broker, as the socket's 'data' handler does (without flushing). */
  feed(chunk: Buffer): void {
    this.now = performance.now();
    this.parser.push(chunk);
  }

  /** Routes basic.deliver on `ch` to `handler` without subscribing (see detached()). */
  setDeliveryHandler(ch: number, handler: DeliveryHandler): void {
    this.deliveryHandlers[ch] = handler;
  }

  static connect(uri: AmqpUri, name = 'perf', heartbeat = 0): Promise<Connection> {
    const c = new Connection(uri, name, heartbeat);
    return c.open();
  }

  private open(): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let settled = false;
      this.onFatal = (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      };
      this.openResolve = () => {
        settled = true;
        this.onFatal = (err) => {
          throw err;
        };
        resolve(this);
      };
      const s = this.socket;
      s.setNoDelay(true);
      s.on('data', (chunk: Buffer) => {
        this.feed(chunk);
        if (!this.writer.empty) this.flush();
      });
      s.on('error', (err) => this.fatal(new Error(`${this.name}: socket error: ${err.message}`)));
      s.on('close', () => {
        if (!this.closing) this.fatal(new Error(`${this.name}: connection closed by the broker without connection.close`));
        this.dead = true;
        for (const list of this.pending) if (list) for (const p of list) p.reject(new Error('connection closed'));
        this.pending = [];
      });
      s.connect(this.uri.port, this.uri.host, () => {
        s.write(PROTOCOL_HEADER);
      });
    });
  }

  private fatal(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.parser.stop();
    this.socket.destroy();
    this.onFatal(err);
  }

  get alive(): boolean {
    return !this.dead;
  }

  // ------------------------------------------------------------------ writing

  /** Sends what the writer holds. Returns false when the socket asks us to wait for 'drain'. */
  flush(): boolean {
    if (this.writer.empty || this.dead) return true;
    const chunks = this.writer.take();
    this.writes++;
    return this.socket.write(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  }

  /** Flushes at the end of this tick, so that many frames go out in one write. */
  flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Writes pre-encoded frames (a publish batch), after whatever the writer holds. */
  writeRaw(buf: Buffer): boolean {
    if (this.dead) return true;
    this.flush();
    this.writes++;
    return this.socket.write(buf);
  }

  // ------------------------------------------------------------------ RPC

  /** Sends a method already encoded into the writer and waits for the reply `expect`. */
  private call(channel: number, expect: number): Promise<M.Method> {
    return new Promise((resolve, reject) => {
      if (this.dead) return reject(new Error('connection closed'));
      (this.pending[channel] ??= []).push({ expect, resolve, reject });
      this.flushSoon();
    });
  }

  async openChannel(): Promise<number> {
    const ch = this.nextChannel++;
    if (ch > this.channelMax) throw new Error(`channel_max ${this.channelMax} reached`);
    M.encodeChannelOpen(this.writer, ch, '');
    await this.call(ch, M.CHANNEL_OPEN_OK);
    return ch;
  }

  async qos(ch: number, prefetch: number): Promise<void> {
    M.encodeBasicQos(this.writer, ch, 0, prefetch, false);
    await this.call(ch, M.BASIC_QOS_OK);
  }

  async confirmSelect(ch: number, handler: ConfirmHandler): Promise<void> {
    this.confirmHandlers[ch] = handler;
    M.encodeConfirmSelect(this.writer, ch, false);
    await this.call(ch, M.CONFIRM_SELECT_OK);
  }

  async exchangeDeclare(ch: number, name: string, type: string, durable: boolean): Promise<void> {
    M.encodeExchangeDeclare(this.writer, ch, 0, name, type, false, durable, false, false, false, undefined);
    await this.call(ch, M.EXCHANGE_DECLARE_OK);
  }

  async exchangeDelete(ch: number, name: string): Promise<void> {
    M.encodeExchangeDelete(this.writer, ch, 0, name, false, false);
    await this.call(ch, M.EXCHANGE_DELETE_OK);
  }

  /** Returns the queue name (server-named when `name` is '') and its message count. */
  async queueDeclare(
    ch: number,
    name: string,
    o: { durable?: boolean; exclusive?: boolean; autoDelete?: boolean; passive?: boolean; args?: FieldTable } = {},
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    M.encodeQueueDeclare(this.writer, ch, 0, name, !!o.passive, !!o.durable, !!o.exclusive, !!o.autoDelete, false, o.args);
    const m = (await this.call(ch, M.QUEUE_DECLARE_OK)) as M.QueueDeclareOk;
    return { queue: m.queue, messageCount: m.messageCount, consumerCount: m.consumerCount };
  }

  async queueDelete(ch: number, name: string): Promise<number> {
    M.encodeQueueDelete(this.writer, ch, 0, name, false, false, false);
    const m = (await this.call(ch, M.QUEUE_DELETE_OK)) as M.QueueDeleteOk;
    return m.messageCount;
  }

  async queuePurge(ch: number, name: string): Promise<number> {
    M.encodeQueuePurge(this.writer, ch, 0, name, false);
    const m = (await this.call(ch, M.QUEUE_PURGE_OK)) as M.QueuePurgeOk;
    return m.messageCount;
  }

  /** Queues a bind; many can be pipelined before awaiting the returned promises. */
  queueBind(ch: number, queue: string, exchange: string, key: string, args?: FieldTable): Promise<M.Method> {
    M.encodeQueueBind(this.writer, ch, 0, queue, exchange, key, false, args);
    return this.call(ch, M.QUEUE_BIND_OK);
  }

  async consume(ch: number, queue: string, tag: string, noAck: boolean, handler: DeliveryHandler): Promise<string> {
    this.deliveryHandlers[ch] = handler;
    M.encodeBasicConsume(this.writer, ch, 0, queue, tag, false, noAck, false, false, undefined);
    const m = (await this.call(ch, M.BASIC_CONSUME_OK)) as M.BasicConsumeOk;
    return m.consumerTag;
  }

  async cancel(ch: number, tag: string): Promise<void> {
    M.encodeBasicCancel(this.writer, ch, tag, false);
    await this.call(ch, M.BASIC_CANCEL_OK);
  }

  /** Closes the connection politely; gives up (and destroys the socket) after `timeoutMs`. */
  close(timeoutMs = 5000): Promise<void> {
    if (this.dead) return Promise.resolve();
    this.closing = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      (this.pending[0] ??= []).push({
        expect: M.CONNECTION_CLOSE_OK,
        resolve: () => this.socket.end(),
        reject: () => {},
      });
      M.encodeConnectionClose(this.writer, 0, 200, 'bye', 0, 0);
      this.flush();
    });
  }

  /** Tears the socket down at once (for the end of a run with unacked traffic in flight). */
  destroy(): void {
    this.closing = true;
    this.dead = true;
    this.parser.stop();
    this.socket.destroy();
  }

  // ------------------------------------------------------------------ FrameHandler

  onMethodFrame(channel: number, buf: Buffer, start: number, end: number): void {
    const payload = buf.subarray(start, end);
    const id = payload.readUInt32BE(0);
    if (id === M.BASIC_DELIVER) {
      // consumer-tag (shortstr), then delivery-tag (u64)
      const p = 5 + payload[4];
      const tag = payload.readUInt32BE(p) * 0x100000000 + payload.readUInt32BE(p + 4);
      const h = this.deliveryHandlers[channel];
      this.contentTarget[channel] = h;
      if (h) h.onDeliver(tag);
      return;
    }
    if (id === M.BASIC_ACK || id === M.BASIC_NACK) {
      const tag = payload.readUInt32BE(4) * 0x100000000 + payload.readUInt32BE(8);
      const multiple = (payload[12] & 1) !== 0;
      const h = this.confirmHandlers[channel];
      if (h) h.onConfirm(tag, multiple, id === M.BASIC_NACK);
      return;
    }
    let m: M.Method;
    try {
      m = M.decodeMethod(this.reader.reset(payload));
    } catch (err) {
      this.fatal(new Error(`${this.name}: cannot decode a method from the broker: ${(err as Error).message}`));
      return;
    }
    this.onControl(channel, m);
  }

  onHeaderFrame(channel: number, buf: Buffer, start: number, end: number): void {
    const payload = buf.subarray(start, end);
    const h = this.contentTarget[channel];
    if (!h) return;
    // class-id (u16), weight (u16), body-size (u64)
    const size = payload.readUInt32BE(4) * 0x100000000 + payload.readUInt32BE(8);
    h.onHeader(size);
  }

  onBodyChunk(channel: number, chunk: Buffer): void {
    const h = this.contentTarget[channel];
    if (h) h.onBody(chunk);
  }

  onHeartbeatFrame(): void {
    // With heartbeat 0 we answer anyway in case the broker insists; with a heartbeat, the
    // sweep (sendHeartbeat) keeps an idle connection alive and this answer costs nothing.
    this.writer.beginFrame(8, 0);
    this.writer.endFrame();
  }

  /** Sends a heartbeat frame now (the caller decides the connection has been quiet). */
  sendHeartbeat(): void {
    if (this.dead) return;
    this.writer.beginFrame(8, 0);
    this.writer.endFrame();
    this.flush();
  }

  onFrameError(code: number, text: string): void {
    this.fatal(new Error(`${this.name}: bad frame from the broker (${code}): ${text}`));
  }

  private onControl(channel: number, m: M.Method): void {
    switch (m.id) {
      case M.CONNECTION_START: {
        const mechs = m.mechanisms.toString().split(' ');
        if (!mechs.includes('PLAIN')) {
          this.fatal(new Error(`${this.name}: broker does not offer PLAIN (offers ${mechs.join(', ')})`));
          return;
        }
        this.serverProperties = m.serverProperties;
        const response = Buffer.from(`\0${this.uri.user}\0${this.uri.pass}`, 'utf8');
        M.encodeConnectionStartOk(this.writer, 0, { ...CLIENT_PROPERTIES, connection_name: this.name }, 'PLAIN', response, 'en_US');
        return;
      }
      case M.CONNECTION_TUNE: {
        this.channelMax = m.channelMax === 0 ? 2047 : Math.min(m.channelMax, 2047);
        this.frameMax = m.frameMax === 0 ? FRAME_MAX : Math.min(m.frameMax, FRAME_MAX);
        this.parser.frameMax = this.frameMax;
        // The client's wish wins when the broker proposes none; otherwise the lower of the two.
        const want = this.heartbeatWanted;
        this.heartbeat = want === 0 ? 0 : m.heartbeat === 0 ? want : Math.min(want, m.heartbeat);
        M.encodeConnectionTuneOk(this.writer, 0, this.channelMax, this.frameMax, this.heartbeat);
        M.encodeConnectionOpen(this.writer, 0, this.uri.vhost, '', false);
        return;
      }
      case M.CONNECTION_OPEN_OK: {
        const r = this.openResolve;
        this.openResolve = null;
        if (r) r();
        return;
      }
      case M.CONNECTION_CLOSE: {
        M.encodeConnectionCloseOk(this.writer, 0);
        this.flush();
        this.closing = true;
        const method = M.METHOD_NAMES[(m.classId << 16) | m.methodId] ?? (m.classId ? `${m.classId}.${m.methodId}` : '');
        this.fatal(new BrokerClosed(`${this.name}: connection`, m.replyCode, m.replyText, method));
        return;
      }
      case M.CHANNEL_CLOSE: {
        M.encodeChannelCloseOk(this.writer, channel);
        this.flush();
        const method = M.METHOD_NAMES[(m.classId << 16) | m.methodId] ?? (m.classId ? `${m.classId}.${m.methodId}` : '');
        this.fatal(new BrokerClosed(`${this.name}: channel ${channel}`, m.replyCode, m.replyText, method));
        return;
      }
      case M.CONNECTION_BLOCKED:
        this.blocked = true;
        this.onBlocked(m.reason);
        return;
      case M.CONNECTION_UNBLOCKED:
        this.blocked = false;
        this.onBlocked(null);
        return;
      case M.BASIC_CANCEL:
        this.fatal(new Error(`${this.name}: the broker cancelled consumer ${m.consumerTag} on channel ${channel}`));
        return;
      case M.BASIC_RETURN:
        // Unroutable mandatory publish: we never set mandatory, so just ignore it.
        return;
      case M.CHANNEL_FLOW:
        M.encodeChannelFlowOk(this.writer, channel, m.active);
        return;
    }
    const list = this.pending[channel];
    const p = list && list[0];
    if (!p || p.expect !== m.id) {
      this.fatal(
        new Error(
          `${this.name}: unexpected ${M.METHOD_NAMES[m.id] ?? m.id} on channel ${channel}` +
            (p ? ` (waiting for ${M.METHOD_NAMES[p.expect]})` : ''),
        ),
      );
      return;
    }
    list.shift();
    p.resolve(m);
  }
}
