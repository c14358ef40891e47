import type { Socket } from 'node:net';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Broker } from '../broker/broker';
import type { Vhost } from '../broker/vhost';
import type { Queue } from '../broker/queue';
import type { User } from '../auth/users';
import { FrameParser, type FrameHandler } from '../protocol/frame-parser';
import { Reader } from '../protocol/reader';
import { Writer } from '../protocol/writer';
import { AmqpError, replyText } from '../protocol/errors';
import * as C from '../protocol/constants';
import * as M from '../protocol/generated';
import type { FieldTable } from '../protocol/types';
import { Channel } from './channel';
import type { PublisherConfirms } from './publisher-confirms';
import { authenticate, MECHANISMS } from './auth-mechanisms';
import { serverProperties } from './server-properties';

const S_HEADER = 0;
const S_START_OK = 1;
const S_TUNE_OK = 2;
const S_OPEN = 3;
const S_RUNNING = 4;
const S_CLOSING = 5;
const S_CLOSED = 6;

/**
 * Bytes read from one socket per event-loop turn before it is paused until the next turn.
 * libuv reads a busy socket many times per turn; without a budget one fast publisher keeps
 * the loop to itself and consumers' acks wait, so deliveries crawl while queues grow.
 */
const READ_BUDGET = 64 * 1024;
/** Longest a publisher is held back by flow control at a time. */
const FLOW_MAX_PAUSE_MS = 1000;
/** Bytes buffered for the socket beyond which deliveries pause until it drains. */
const HIGH_WATER = 256 * 1024;
const HEARTBEAT_FRAME = Buffer.from([C.FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, C.FRAME_END]);
/** How long we wait for close-ok after sending connection.close. */
const CLOSE_TIMEOUT_MS = 3000;

export interface ConnectionCounters {
  recvBytes: number;
  sentBytes: number;
  recvFrames: number;
}

let nextId = 1;

/**
 * One client connection: the handshake, channel 0, heartbeats, and the coalesced output
 * buffer that every channel writes into. Frames for channels 1..n are handed to their
 * Channel objects.
 */
export class Connection implements FrameHandler {
  readonly id = nextId++;
  readonly name: string;
  readonly writer = new Writer();
  readonly counters: ConnectionCounters = { recvBytes: 0, sentBytes: 0, recvFrames: 0 };
  readonly reader = new Reader();
  readonly channels = new Map<number, Channel>();
  user: User | null = null;
  vhost: Vhost | null = null;
  clientProperties: FieldTable = {};
  frameMax: number;
  channelMax: number;
  heartbeat = 0;
  /** Publisher confirms to send out at the next flush. */
  readonly confirmQueue: PublisherConfirms[] = [];
  private state = S_HEADER;
  private readonly parser: FrameParser;
  private headerBuf: Buffer | null = null;
  private flushScheduled = false;
  private socketFull = false;
  private handshakeTimer: NodeJS.Timeout | null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  private recvTicks = 0;
  private sentSinceTick = false;
  private silentTicks = 0;
  private readonly flushBound = (): void => this.flush();
  private turnBytes = 0;
  private blockedReason: string | null = null;
  private readingBlocked = false;
  private flowPaused = false;
  private flowTimer: NodeJS.Timeout | null = null;
  private readonly flowResumeBound = (): void => this.flowResume();
  private readonly resumeBound = (): void => this.resumeReading();

  constructor(
    readonly socket: Socket,
    readonly broker: Broker,
    readonly config: Config,
    readonly log: Logger,
    private readonly onGone: (c: Connection) => void,
  ) {
    this.name = `${socket.remoteAddress}:${socket.remotePort} -> ${socket.localAddress}:${socket.localPort}`;
    this.frameMax = config.frameMax;
    this.channelMax = config.channelMax;
    this.parser = new FrameParser(this, config.frameMax);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.log.debug({ conn: this.name, err: err.message }, 'socket error'));
    socket.on('close', () => this.onSocketClosed());
    this.handshakeTimer = setTimeout(() => this.onHandshakeTimeout(), config.handshakeTimeout);
  }

  get clientCapabilities(): FieldTable {
    const caps = this.clientProperties.capabilities;
    return caps !== null && typeof caps === 'object' && !Array.isArray(caps) && !Buffer.isBuffer(caps) ? (caps as FieldTable) : {};
  }

  // ---- input -----------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.counters.recvBytes += chunk.length;
    this.recvTicks++;
    this.turnBytes += chunk.length;
    if (this.turnBytes >= READ_BUDGET) {
      this.socket.pause();
      setImmediate(this.resumeBound);
    }
    if (this.state === S_HEADER) {
      chunk = this.readProtocolHeader(chunk);
      if (chunk.length === 0) return;
    }
    if (this.state === S_CLOSED) return;
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.internalError(err);
    }
  }

  /** Consumes the 8-byte protocol header; returns what follows it. */
  private readProtocolHeader(chunk: Buffer): Buffer {
    const have = this.headerBuf === null ? chunk : Buffer.concat([this.headerBuf, chunk]);
    if (have.length < 8) {
      // A header that already differs from ours need not wait for the rest.
      if (!C.PROTOCOL_HEADER.subarray(0, have.length).equals(have)) return this.refuseProtocol();
      this.headerBuf = have;
      return EMPTY;
    }
    this.headerBuf = null;
    if (!C.PROTOCOL_HEADER.equals(have.subarray(0, 8))) return this.refuseProtocol();
    this.state = S_START_OK;
    M.encodeConnectionStart(this.writer, 0, 0, 9, serverProperties(), MECHANISMS, 'en_US');
    this.flush();
    return have.subarray(8);
  }

  private refuseProtocol(): Buffer {
    this.state = S_CLOSED;
    this.socket.end(C.PROTOCOL_HEADER);
    return EMPTY;
  }

  onMethodFrame(channel: number, payload: Buffer): void {
    this.counters.recvFrames++;
    if (this.state === S_CLOSED) return;
    let method: M.Method;
    try {
      method = M.decodeMethod(this.reader.reset(payload));
    } catch (err) {
      if (err instanceof AmqpError && err.classId === 0 && payload.length >= 4) {
        err.classId = payload.readUInt16BE(0);
        err.methodId = payload.readUInt16BE(2);
      }
      // A frame we cannot decode is a connection error whatever channel it came on.
      return err instanceof AmqpError ? this.closeWithError(err) : this.internalError(err);
    }
    if (channel === 0) return this.onConnectionMethod(method);
    if (this.state !== S_RUNNING) {
      if (this.state === S_CLOSING) return; // after connection.close only close/close-ok matter
      return this.closeWith(C.COMMAND_INVALID, `expected connection method, got ${M.METHOD_NAMES[method.id]}`, method.id);
    }
    let ch = this.channels.get(channel);
    if (ch === undefined) {
      if (method.id !== M.CHANNEL_OPEN) {
        return this.closeWith(C.CHANNEL_ERROR, `expected 'channel.open'`, method.id);
      }
      if (channel > this.channelMax) {
        return this.closeWith(C.CHANNEL_ERROR, `channel number ${channel} exceeds channel_max ${this.channelMax}`, method.id);
      }
      ch = new Channel(this, channel);
      this.channels.set(channel, ch);
      M.encodeChannelOpenOk(this.writer, channel, '');
      this.scheduleFlush();
      return;
    }
    ch.onMethod(method);
  }

  onHeaderFrame(channel: number, payload: Buffer): void {
    this.counters.recvFrames++;
    if (this.state !== S_RUNNING) return;
    const ch = this.channels.get(channel);
    if (ch === undefined) return this.closeWith(C.UNEXPECTED_FRAME, `content header frame on unopened channel ${channel}`);
    ch.onHeader(payload);
  }

  onBodyChunk(channel: number, chunk: Buffer): void {
    if (this.state !== S_RUNNING) return;
    const ch = this.channels.get(channel);
    if (ch === undefined) return this.closeWith(C.UNEXPECTED_FRAME, `content body frame on unopened channel ${channel}`);
    ch.onBody(chunk);
  }

  onHeartbeatFrame(channel: number): void {
    if (channel !== 0) this.closeWith(C.FRAME_ERROR, `heartbeat frame on channel ${channel}`);
  }

  onFrameError(code: number, text: string): void {
    // The byte stream is no longer in step, so no close-ok can be read: close after sending.
    this.closeWith(code, text);
    this.socket.end();
  }

  /** Turns an error thrown while handling a frame into the right close. */
  protocolError(err: unknown, channel: number): void {
    if (!(err instanceof AmqpError)) return this.internalError(err);
    if (C.isHardError(err.code) || channel === 0) return this.closeWithError(err);
    const ch = this.channels.get(channel);
    if (ch === undefined) return this.closeWithError(err);
    ch.closeWithError(err);
  }

  private internalError(err: unknown): void {
    this.log.error({ conn: this.name, err }, 'internal error');
    this.closeWith(C.INTERNAL_ERROR, 'internal error');
  }

  // ---- channel 0 -------------------------------------------------------------------

  private onConnectionMethod(m: M.Method): void {
    try {
      switch (m.id) {
        case M.CONNECTION_START_OK:
          return this.onStartOk(m);
        case M.CONNECTION_TUNE_OK:
          return this.onTuneOk(m);
        case M.CONNECTION_OPEN:
          return this.onOpen(m);
        case M.CONNECTION_CLOSE:
          M.encodeConnectionCloseOk(this.writer, 0);
          this.flush();
          this.state = S_CLOSED;
          this.teardown();
          this.socket.end();
          return;
        case M.CONNECTION_CLOSE_OK:
          if (this.state === S_CLOSING) this.socket.end();
          return;
        case M.CONNECTION_UPDATE_SECRET:
          if (this.state !== S_RUNNING) break;
          // Only password-less mechanisms take a new secret; for PLAIN the secret is moot.
          M.encodeConnectionUpdateSecretOk(this.writer, 0);
          this.scheduleFlush();
          return;
        case M.CONNECTION_BLOCKED:
        case M.CONNECTION_UNBLOCKED:
          return;
      }
      if (this.state === S_CLOSING) return;
      this.closeWith(C.COMMAND_INVALID, `unexpected method ${M.METHOD_NAMES[m.id]} on channel 0`, m.id);
    } catch (err) {
      this.protocolError(err, 0);
    }
  }

  private onStartOk(m: M.ConnectionStartOk): void {
    if (this.state !== S_START_OK) throw new AmqpError(C.COMMAND_INVALID, 'unexpected connection.start-ok', 10, 11);
    this.clientProperties = m.clientProperties;
    const result = authenticate(m.mechanism, m.response, this.broker.users);
    if (result.error !== null) throw new AmqpError(C.ACCESS_REFUSED, result.error, 10, 11);
    const user = result.user!;
    if (!this.broker.users.allowedFrom(user, this.socket.remoteAddress)) {
      this.log.warn({ conn: this.name, user: user.name }, 'user can only log in via localhost');
      throw new AmqpError(C.ACCESS_REFUSED, `Login was refused using authentication mechanism ${m.mechanism}. For details see the broker logfile.`, 10, 11);
    }
    this.user = user;
    this.state = S_TUNE_OK;
    M.encodeConnectionTune(this.writer, 0, this.config.channelMax, this.config.frameMax, this.config.heartbeat);
    this.flush();
  }

  private onTuneOk(m: M.ConnectionTuneOk): void {
    if (this.state !== S_TUNE_OK) throw new AmqpError(C.COMMAND_INVALID, 'unexpected connection.tune-ok', 10, 31);
    const ourFrameMax = this.config.frameMax;
    const frameMax = m.frameMax === 0 ? ourFrameMax : m.frameMax;
    if (frameMax > ourFrameMax) {
      throw new AmqpError(C.NOT_ALLOWED, `frame_max=${frameMax} > ${ourFrameMax} max size`, 10, 31);
    }
    if (frameMax < C.FRAME_MIN_SIZE) {
      throw new AmqpError(C.NOT_ALLOWED, `frame_max=${frameMax} < ${C.FRAME_MIN_SIZE} min size`, 10, 31);
    }
    this.frameMax = frameMax;
    this.parser.frameMax = frameMax;
    this.channelMax = m.channelMax === 0 ? this.config.channelMax : Math.min(m.channelMax, this.config.channelMax);
    this.heartbeat = m.heartbeat;
    this.state = S_OPEN;
    if (this.heartbeat > 0) this.heartbeatTimer = setInterval(() => this.onHeartbeatTick(), (this.heartbeat * 1000) / 2);
  }

  private onOpen(m: M.ConnectionOpen): void {
    if (this.state !== S_OPEN) throw new AmqpError(C.COMMAND_INVALID, 'unexpected connection.open', 10, 40);
    const vhost = this.broker.vhosts.get(m.virtualHost);
    if (vhost === undefined) throw new AmqpError(C.NOT_ALLOWED, `vhost ${m.virtualHost} not found`, 10, 40);
    if (!this.broker.permissions.canAccessVhost(this.user!, vhost.name)) {
      throw new AmqpError(C.NOT_ALLOWED, `access to vhost '${vhost.name}' refused for user '${this.user!.name}'`, 10, 40);
    }
    this.vhost = vhost;
    this.state = S_RUNNING;
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    M.encodeConnectionOpenOk(this.writer, 0, '');
    if (this.blockedReason !== null) this.setBlocked(this.blockedReason);
    this.flush();
    this.log.debug({ conn: this.name, user: this.user!.name, vhost: vhost.name }, 'connection opened');
  }

  // ---- closing ---------------------------------------------------------------------

  closeWith(code: number, detail: string, methodId = 0): void {
    this.closeWithError(new AmqpError(code, detail, methodId >>> 16, methodId & 0xffff));
  }

  closeWithError(err: AmqpError): void {
    if (this.state === S_CLOSING || this.state === S_CLOSED) return;
    this.log.info({ conn: this.name, code: err.code, reason: err.message }, 'closing connection');
    // Before the handshake is through the client may not understand connection.close
    // (RabbitMQ only sends it on failed auth when the client says it can take it).
    const canTakeClose =
      this.state >= S_TUNE_OK || (this.state === S_START_OK && this.clientCapabilities.authentication_failure_close === true);
    this.teardown();
    if (!canTakeClose) {
      this.parser.stop();
      this.state = S_CLOSED;
      this.flush();
      this.socket.end();
      return;
    }
    this.state = S_CLOSING;
    M.encodeConnectionClose(this.writer, 0, err.code, replyText(err.message), err.classId, err.methodId);
    this.flush();
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
  }

  /** Server-initiated close (shutdown); resolves once the socket is closed. */
  forceClose(reason: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      if (this.state === S_RUNNING || this.state === S_OPEN) {
        this.closeWith(C.CONNECTION_FORCED, `broker forced connection closure with reason '${reason}'`);
      } else {
        this.socket.destroy();
      }
    });
  }

  /** Releases everything the connection holds in the model; safe to call twice. */
  private teardown(): void {
    for (const ch of this.channels.values()) ch.teardown();
    this.channels.clear();
    if (this.vhost !== null) this.vhost.ownerClosed(this);
    this.clearTimers();
  }

  private clearTimers(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.flowTimer !== null) clearTimeout(this.flowTimer);
    this.flowTimer = null;
    this.handshakeTimer = this.heartbeatTimer = null;
  }

  private onSocketClosed(): void {
    this.state = S_CLOSED;
    this.teardown();
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.onGone(this);
  }

  private onHandshakeTimeout(): void {
    this.handshakeTimer = null;
    if (this.state < S_RUNNING) {
      this.log.info({ conn: this.name }, 'handshake timeout');
      this.state = S_CLOSED;
      this.socket.destroy();
    }
  }

  private onHeartbeatTick(): void {
    // Ticks come twice per interval: a peer silent for four ticks missed two heartbeats.
    if (this.recvTicks === 0) {
      if (++this.silentTicks >= 4) {
        this.log.info({ conn: this.name, timeout: this.heartbeat }, 'missed heartbeats from client');
        this.state = S_CLOSED;
        this.socket.destroy();
        return;
      }
    } else {
      this.silentTicks = 0;
    }
    this.recvTicks = 0;
    if (!this.sentSinceTick) {
      this.writer.raw(HEARTBEAT_FRAME);
      this.flush();
    }
    this.sentSinceTick = false;
  }

  /** Tells a client that publishing is blocked (reason) or unblocked (null), if it can hear it. */
  setBlocked(reason: string | null): void {
    this.blockedReason = reason;
    if (reason === null && this.readingBlocked) {
      this.readingBlocked = false;
      this.resumeReading();
    }
    if (this.state !== S_RUNNING || this.clientCapabilities['connection.blocked'] !== true) return;
    if (reason !== null) M.encodeConnectionBlocked(this.writer, 0, reason);
    else M.encodeConnectionUnblocked(this.writer, 0);
    this.scheduleFlush();
  }

  /**
   * Called when a channel sees basic.publish: while the broker is blocked (a failing
   * disk), a publishing connection is not read from until it is unblocked, as in
   * RabbitMQ. Connections that only consume carry on.
   */
  publishing(): void {
    if (this.blockedReason === null || this.readingBlocked) return;
    this.readingBlocked = true;
    this.socket.pause();
  }

  /**
   * Flow control: a queue we publish to is falling behind its consumers, so stop reading
   * from this connection until the queue has caught up (or a second has passed), instead
   * of letting the backlog and the broker's memory grow. RabbitMQ throttles publishers
   * the same way (credit flow).
   */
  flowPause(queue: Queue): void {
    if (this.flowPaused) return;
    this.flowPaused = true;
    this.socket.pause();
    queue.waitForFlow(this);
    this.flowTimer = setTimeout(this.flowResumeBound, FLOW_MAX_PAUSE_MS);
  }

  flowResume(): void {
    if (!this.flowPaused) return;
    this.flowPaused = false;
    if (this.flowTimer !== null) clearTimeout(this.flowTimer);
    this.flowTimer = null;
    this.resumeReading();
  }

  // ---- output ----------------------------------------------------------------------

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushBound);
  }

  /** Whether consumers on this connection may be given more messages now. */
  canWrite(): boolean {
    if (this.socketFull) return false;
    if (this.writer.pending >= HIGH_WATER) this.flush();
    return !this.socketFull;
  }

  flush(): void {
    this.flushScheduled = false;
    const confirms = this.confirmQueue;
    if (confirms.length > 0) {
      for (let i = 0; i < confirms.length; i++) confirms[i].flush();
      confirms.length = 0;
    }
    if (this.writer.empty) return;
    const chunks = this.writer.take();
    if (this.socket.destroyed || !this.socket.writable) return;
    this.sentSinceTick = true;
    let ok = true;
    if (chunks.length === 1) {
      this.counters.sentBytes += chunks[0].length;
      ok = this.socket.write(chunks[0]);
    } else {
      this.socket.cork();
      for (const c of chunks) {
        this.counters.sentBytes += c.length;
        ok = this.socket.write(c);
      }
      this.socket.uncork();
    }
    if (!ok) this.socketFull = true;
  }

  private resumeReading(): void {
    this.turnBytes = 0;
    if (!this.socket.destroyed && !this.readingBlocked && !this.flowPaused) this.socket.resume();
  }

  private onDrain(): void {
    this.socketFull = false;
    for (const ch of this.channels.values()) ch.resumeDelivery();
  }
}

const EMPTY = Buffer.alloc(0);
