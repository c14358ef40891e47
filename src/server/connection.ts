import { sameBytes } from '../protocol/same-bytes';
import type { Socket } from 'node:net';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Broker } from '../broker/broker';
import type { SyncScheduler } from '../store/sync-scheduler';
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
import type { ChannelHost } from './channel-host';
import { authenticate, verifySecret, mechanismsFor } from './auth-mechanisms';
import { TLSSocket } from 'node:tls';
import { serverProperties } from './server-properties';
import { HeartbeatMonitor, type HeartbeatPeer } from './heartbeat-monitor';
import { SocketOutput, type OutputHost } from './socket-output';
import { flatString } from '../flat-string';
import { ReadGate } from './read-gate';
import { unexpectedFrame } from './frame-errors';
import { frameSnippet } from '../protocol/frame-snippet';
import { erlBinary } from '../protocol/erlang-terms';
import { assertNever } from '../assert-never';
import { FAULTS_ENABLED, injectFault } from './fault-injection';

/**
 * Where a connection stands. The handshake states name what we wait for; `closing`: we
 * sent connection.close and wait for close-ok; `closed`: the close handshake is over (or
 * the handshake failed) and only the TCP connection is left to go.
 */
type ConnectionState = 'header' | 'start-ok' | 'tune-ok' | 'open' | 'running' | 'closing' | 'closed';

/**
 * After the close handshake the client is the one to drop TCP (as with RabbitMQ, which
 * keeps answering connection.close meanwhile); one that does not is cut off after this.
 */
const CLOSE_LINGER_MS = 30_000;
/** After a framing error the socket goes this long after connection.close, close-ok or not. */
const FRAME_ERROR_LINGER_MS = 3000;
/**
 * RabbitMQ keeps a client whose handshake failed (a refused login among others) waiting
 * this long before it drops the socket, which slows down password guessing. Only the
 * socket is held meanwhile.
 */
const HANDSHAKE_FAILURE_DELAY_MS = 3000;

/** RabbitMQ's names for where a connection stands, as its error texts print them. */
const RABBIT_STATE_NAMES: Record<ConnectionState, string> = {
  header: 'starting',
  'start-ok': 'starting',
  'tune-ok': 'tuning',
  open: 'opening',
  running: 'running',
  closing: 'closing',
  closed: 'closed',
};

export interface ConnectionCounters {
  recvBytes: number;
  /** socket reads (RabbitMQ's recv_cnt) */
  recvCount: number;
  recvFrames: number;
}

let nextId = 1;

interface ConnectionEnding {
  by: 'client' | 'server';
  code: number;
  reason: string;
}

/** A client property that is text (clients send longstr; some as bytes), for the log. */
function textProperty(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

/**
 * One client connection: the handshake, channel 0, heartbeats, the channel map, and the
 * coalesced output buffer that every channel writes into. Frames for channels 1..n are
 * handed to their Channel objects; opening and closing channels is decided here.
 */
export class Connection implements FrameHandler, ChannelHost, HeartbeatPeer, OutputHost {
  readonly id = nextId++;
  readonly name: string;
  readonly counters: ConnectionCounters = { recvBytes: 0, recvCount: 0, recvFrames: 0 };
  /** when the TCP connection was accepted (ms since the epoch) */
  readonly connectedAt = Date.now();
  /** the SASL mechanism the client logged in with */
  authMechanism = '';
  /** The client's address and port. */
  readonly peer: string;
  /**
   * The last basic.publish decoded, and its bytes: publishers mostly repeat one (same
   * exchange, routing key and flags), and then it is reused instead of decoded again, so
   * no strings or method object are made per message. Made at the first publish.
   */
  private lastPublishRaw: Buffer = EMPTY;
  private lastPublishLen = 0;
  private lastPublish: M.Method | null = null;
  private readonly channels = new Map<number, Channel>();
  private authUser: User | null = null;
  vhost: Vhost | null = null;
  clientProperties: FieldTable = {};
  frameMax: number;
  channelMax: number;
  heartbeat = 0;
  private state: ConnectionState = 'header';
  private readonly parser: FrameParser;
  private readonly output: SocketOutput;
  private readonly gate: ReadGate;
  private readonly heartbeats: HeartbeatMonitor;
  private headerBuf: Buffer | null = null;
  private handshakeTimer: NodeJS.Timeout | null;
  private closeTimer: NodeJS.Timeout | null = null;
  /** Set once a framing error closed the connection. */
  private frameError = false;
  private blockedReason: string | null = null;
  /** The user this connection counts against in the limits (from connection.open until teardown). */
  private countedAs: string | null = null;
  /** Who ended the connection and why, for the one line logged when its socket closes. */
  private ending: ConnectionEnding | null = null;

  constructor(
    readonly socket: Socket,
    readonly broker: Broker,
    readonly syncScheduler: SyncScheduler | null,
    readonly config: Config,
    readonly log: Logger,
    private readonly onGone: (c: Connection) => void,
  ) {
    // Flat strings: a concatenation kept as it is holds one heap object per piece.
    this.peer = flatString(`${socket.remoteAddress}:${socket.remotePort}`);
    this.name = flatString(`${this.peer} -> ${socket.localAddress}:${socket.localPort}`);
    this.frameMax = config.frameMax;
    this.channelMax = config.channelMax;
    this.parser = new FrameParser(this, config.frameMax);
    this.heartbeats = new HeartbeatMonitor(this);
    this.output = new SocketOutput(socket, this, FAULTS_ENABLED);
    this.gate = new ReadGate(socket);
    socket.setNoDelay(true);
    // Shared listeners that find the connection on the socket: closures made here would
    // be kept for the connection's whole life, a few hundred bytes per idle connection.
    (socket as OwnedSocket)[CONNECTION] = this;
    socket.on('data', socketData);
    socket.on('drain', socketDrain);
    socket.on('error', socketError);
    socket.on('close', socketClose);
    this.handshakeTimer = setTimeout(handshakeTimeout, config.handshakeTimeout, this);
    this.log.info({ conn: this.name, peer: this.peer, tls: socket instanceof TLSSocket }, 'connection accepted');
  }

  /** Remembers the first reason the connection ends; later ones (a close crossing ours) are consequences. */
  private ended(by: ConnectionEnding['by'], code: number, reason: string): void {
    this.ending ??= { by, code, reason };
  }

  /** The authenticated user; channels exist only after the handshake, so it is set. */
  get user(): User {
    return this.authUser!;
  }

  get clientCapabilities(): FieldTable {
    const caps = this.clientProperties.capabilities;
    return caps !== null && typeof caps === 'object' && !Array.isArray(caps) && !Buffer.isBuffer(caps) ? (caps as FieldTable) : {};
  }

  /** The coalesced output buffer every channel writes frames into. */
  get writer(): Writer {
    return this.output.writer;
  }

  // ---- input -----------------------------------------------------------------------

  /** @internal (the shared socket listeners below) */
  onData(chunk: Buffer): void {
    // Everything a frame sets off runs inside this call: a bug anywhere in it must close
    // this connection, not reach the process (which would drop every other connection).
    try {
      this.counters.recvBytes += chunk.length;
      this.counters.recvCount++;
      this.heartbeats.received = true;
      this.gate.read(chunk.length);
      if (this.state === 'header') {
        chunk = this.readProtocolHeader(chunk);
        if (chunk.length === 0) return;
      }
      // After the close handshake frames are still parsed, to answer further closes; a
      // handshake that failed has stopped the parser.
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
    this.state = 'start-ok';
    M.encodeConnectionStart(this.writer, 0, 0, 9, serverProperties(), mechanismsFor(this.socket), 'en_US');
    this.flush();
    return have.subarray(8);
  }

  private refuseProtocol(): Buffer {
    this.ended('server', 0, 'unsupported protocol header');
    this.state = 'closed';
    this.socket.end(C.PROTOCOL_HEADER);
    return EMPTY;
  }

  onMethodFrame(channel: number, buf: Buffer, start: number, end: number): void {
    this.counters.recvFrames++;
    if (this.state === 'closed' && channel !== 0) return;
    const method = this.decodeMethod(buf, start, end);
    if (method === null) return;
    if (channel === 0) return this.onConnectionMethod(method);
    switch (this.state) {
      case 'running':
        return this.onChannelMethod(channel, method);
      case 'closing':
      case 'closed':
        return; // only connection.close and close-ok matter now
      case 'header':
      case 'start-ok':
      case 'tune-ok':
      case 'open':
        return this.closeWithError(unexpectedFrame(C.FRAME_METHOD, buf.subarray(start, end)));
      default:
        return assertNever(this.state);
    }
  }

  /** The method a frame holds, or null when it cannot be decoded (the connection is closing). */
  private decodeMethod(buf: Buffer, start: number, end: number): M.Method | null {
    const len = end - start;
    if (len < 4) {
      this.closeWith(C.FRAME_ERROR, `${frameSnippet(C.FRAME_METHOD, buf.subarray(start, end))}: unknown_frame`);
      return null;
    }
    if (len === this.lastPublishLen && sameBytes(buf, start, this.lastPublishRaw, len)) return this.lastPublish;
    try {
      // Decoded in place: no view of the frame is made unless it is refused.
      const m = M.decodeMethod(READER.reset(buf, start, end));
      if (m.id === M.BASIC_PUBLISH && len <= LAST_PUBLISH_MAX) {
        if (this.lastPublishRaw === EMPTY) this.lastPublishRaw = Buffer.alloc(LAST_PUBLISH_MAX);
        buf.copy(this.lastPublishRaw, 0, start, end);
        this.lastPublishLen = len;
        this.lastPublish = m;
      }
      return m;
    } catch (err) {
      if (!(err instanceof AmqpError)) {
        this.internalError(err);
      } else if (err.code === C.NOT_IMPLEMENTED) {
        // A method no spec knows: RabbitMQ drops such a peer without a word.
        this.log.info({ conn: this.name, reason: err.message }, 'unknown method; connection dropped');
        this.ended('server', err.code, err.message);
        this.dropSocket();
      } else {
        // The peer's fault, not ours: a warning with the decoder's reason, no stack.
        const payload = buf.subarray(start, end);
        this.log.warn({ conn: this.name, method: payload.readUInt32BE(0), reason: err.message }, 'undecodable method frame');
        this.closeWith(C.FRAME_ERROR, `cannot decode ${erlBinary(payload.subarray(4))}`, payload.readUInt32BE(0));
      }
      return null;
    }
  }

  onHeaderFrame(channel: number, buf: Buffer, start: number, end: number): void {
    this.counters.recvFrames++;
    const ch = this.channelForContent(C.FRAME_HEADER, channel, buf, start, end);
    if (ch !== null) ch.onHeader(buf, start, end);
  }

  onBodyChunk(channel: number, chunk: Buffer): void {
    const ch = this.channelForContent(C.FRAME_BODY, channel, chunk, 0, chunk.length);
    if (ch !== null) ch.onBody(chunk);
  }

  /** The open channel a content frame belongs to, or null when the frame is dropped or refused. */
  private channelForContent(type: number, channel: number, buf: Buffer, start: number, end: number): Channel | null {
    if (this.state !== 'running' || channel === 0) {
      if (this.state !== 'closing' && this.state !== 'closed') this.closeWithError(unexpectedFrame(type, buf.subarray(start, end)));
      return null;
    }
    const ch = this.channels.get(channel);
    if (ch === undefined) {
      this.closeWith(C.UNEXPECTED_FRAME, 'expected method frame, got non method frame instead');
      return null;
    }
    // Content for a channel we are closing is dropped, as RabbitMQ does.
    return ch.state === 'open' ? ch : null;
  }

  onHeartbeatFrame(channel: number): void {
    if (channel !== 0) this.closeWithError(unexpectedFrame(C.FRAME_HEARTBEAT, EMPTY));
  }

  onFrameError(code: number, text: string, inStep: boolean): void {
    this.closeWith(code, text);
    if (inStep) return;
    // The byte stream is no longer in step: nothing more is read, and (as RabbitMQ does)
    // the socket goes a while after the close whether or not a close-ok could be sent.
    this.frameError = true;
    this.parser.stop();
    this.lingerThenDrop(FRAME_ERROR_LINGER_MS);
  }

  /** A hard error (or a bug) anywhere closes the connection. */
  connectionError(err: unknown): void {
    if (err instanceof AmqpError) this.closeWithError(err);
    else this.internalError(err);
  }

  /** Test-only: one injected exception at the first turn-end flush (a later flush sends the 541). */
  private flushFaulted = false;
  flushFault(): void {
    if (this.flushFaulted || this.state !== 'running') return;
    this.flushFaulted = true;
    injectFault(this.clientProperties, 'flush');
  }

  /** An exception we did not expect (a bug): logged with its stack, and 541 for this connection only. */
  internalError(err: unknown): void {
    this.log.error({ conn: this.name, err }, 'internal error');
    try {
      this.closeWith(C.INTERNAL_ERROR, 'internal error');
    } catch (again) {
      // Closing failed too: give up on the handshake and drop the socket.
      this.log.error({ conn: this.name, err: again }, 'internal error while closing');
      this.state = 'closed';
      this.socket.destroy();
    }
  }

  // ---- channels --------------------------------------------------------------------

  private onChannelMethod(id: number, m: M.Method): void {
    injectFault(this.clientProperties, 'method');
    const ch = this.channels.get(id);
    if (ch === undefined) return this.openChannel(id, m);
    switch (ch.state) {
      case 'open':
        if (m.id === M.CHANNEL_CLOSE) return this.channelClosedByClient(ch);
        return ch.onMethod(m);
      case 'closing':
        // We sent channel.close. The client's own close may cross ours: answer it and keep
        // waiting for close-ok; anything else is dropped, as RabbitMQ does, but for an open
        // of the channel, which is a second open of a channel that is not closed yet.
        if (m.id === M.CHANNEL_CLOSE_OK) this.channels.delete(id);
        else if (m.id === M.CHANNEL_CLOSE) {
          M.encodeChannelCloseOk(this.writer, id);
          this.scheduleFlush();
        } else if (m.id === M.CHANNEL_OPEN) {
          this.closeWith(C.CHANNEL_ERROR, `second 'channel.open' seen`, m.id);
        }
        return;
      case 'closed':
        // Only the connection's teardown closes a channel for good, and it empties the map.
        this.channels.delete(id);
        return this.openChannel(id, m);
      default:
        return assertNever(ch.state);
    }
  }

  private openChannel(id: number, m: M.Method): void {
    if (m.id !== M.CHANNEL_OPEN) return this.closeWith(C.CHANNEL_ERROR, `expected 'channel.open'`, m.id);
    // As RabbitMQ: channel_max limits how many are open, not the numbers they use.
    if (this.channels.size >= this.channelMax) {
      const n = this.channels.size;
      return this.closeWith(C.NOT_ALLOWED, `number of channels opened (${n}) has reached the negotiated channel_max (${this.channelMax})`);
    }
    const overUserLimit = this.broker.limits.channelRefusal(this.user.name);
    if (overUserLimit !== null) return this.closeWith(C.NOT_ALLOWED, overUserLimit);
    this.channels.set(id, new Channel(this, this.vhost!, id));
    this.broker.nodeCounters.channelsOpened++;
    M.encodeChannelOpenOk(this.writer, id, '');
    this.scheduleFlush();
  }

  private channelClosedByClient(ch: Channel): void {
    ch.teardown();
    this.channels.delete(ch.id);
    M.encodeChannelCloseOk(this.writer, ch.id);
    this.scheduleFlush();
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
          return this.onClose(m);
        case M.CONNECTION_CLOSE_OK:
          return this.onCloseOk();
        case M.CONNECTION_UPDATE_SECRET:
          return this.onUpdateSecret(m);
        case M.CONNECTION_BLOCKED:
        case M.CONNECTION_UNBLOCKED:
          if (this.state === 'running') return;
          break;
      }
      throw this.unexpectedMethod(m.id);
    } catch (err) {
      this.connectionError(err);
    }
  }

  private expectState(want: ConnectionState, methodId: number): void {
    if (this.state !== want) throw this.unexpectedMethod(methodId);
  }

  /** A method on channel 0 that has no place where the connection stands (RabbitMQ's 504). */
  private unexpectedMethod(methodId: number): AmqpError {
    return new AmqpError(
      C.CHANNEL_ERROR,
      `unexpected method in connection state ${RABBIT_STATE_NAMES[this.state]}`,
      methodId >>> 16,
      methodId & 0xffff,
    );
  }

  private onStartOk(m: M.ConnectionStartOk): void {
    this.expectState('start-ok', m.id);
    this.clientProperties = m.clientProperties;
    const result = authenticate(m.mechanism, m.response, this.broker.users, this.socket, this.config.tlsCertLoginFrom);
    // The user name and the mechanism only: never the response, which holds the password.
    if (result.error !== null) {
      this.log.warn(
        { conn: this.name, peer: this.peer, user: result.username, mechanism: m.mechanism, reason: result.detail ?? result.error },
        'login refused',
      );
    }
    // RabbitMQ names no method in a refused login (class 0, method 0).
    if (result.error !== null) throw new AmqpError(result.code, result.error);
    const user = result.user!;
    if (!this.broker.users.allowedFrom(user, this.socket.remoteAddress)) {
      this.log.warn({ conn: this.name, peer: this.peer, user: user.name, mechanism: m.mechanism }, 'user can only log in via localhost');
      throw new AmqpError(
        C.ACCESS_REFUSED,
        `Login was refused using authentication mechanism ${m.mechanism}. For details see the broker logfile.`,
      );
    }
    this.authUser = user;
    this.authMechanism = m.mechanism;
    this.state = 'tune-ok';
    M.encodeConnectionTune(this.writer, 0, this.config.channelMax, this.config.frameMax, this.config.heartbeat);
    this.flush();
  }

  private onTuneOk(m: M.ConnectionTuneOk): void {
    this.expectState('tune-ok', m.id);
    // As RabbitMQ: 0 ("no limit") is above any limit we have, so it is refused too.
    negotiated('frame_max', m.frameMax, C.FRAME_MIN_SIZE, this.config.frameMax);
    negotiated('channel_max', m.channelMax, 1, this.config.channelMax);
    this.frameMax = m.frameMax;
    this.parser.frameMax = m.frameMax;
    this.channelMax = m.channelMax;
    this.heartbeat = m.heartbeat;
    this.state = 'open';
    this.heartbeats.start(this.heartbeat);
  }

  private onOpen(m: M.ConnectionOpen): void {
    this.expectState('open', m.id);
    const vhost = this.broker.vhosts.get(m.virtualHost);
    if (vhost === undefined) throw new AmqpError(C.NOT_ALLOWED, `vhost ${m.virtualHost} not found`, 10, 40);
    // As RabbitMQ: the node's, the vhost's and the user's connection limits come before permissions.
    const refused = this.broker.limits.connectionRefusal(vhost.name, this.user.name);
    if (refused !== null) throw new AmqpError(C.NOT_ALLOWED, refused, 10, 40);
    if (!this.broker.permissions.canAccessVhost(this.user, vhost.name)) {
      throw new AmqpError(C.NOT_ALLOWED, `access to vhost '${vhost.name}' refused for user '${this.user.name}'`, 10, 40);
    }
    this.vhost = vhost;
    this.state = 'running';
    this.countedAs = this.user.name;
    this.broker.limits.connectionOpened(this, vhost.name, this.countedAs);
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    M.encodeConnectionOpenOk(this.writer, 0, '');
    this.flush();
    const p = this.clientProperties;
    this.log.info(
      {
        conn: this.name,
        peer: this.peer,
        user: this.user.name,
        vhost: vhost.name,
        mechanism: this.authMechanism,
        product: textProperty(p.product),
        version: textProperty(p.version),
        platform: textProperty(p.platform),
        connectionName: textProperty(p.connection_name),
        heartbeat: this.heartbeat,
        frameMax: this.frameMax,
        channelMax: this.channelMax,
      },
      'connection opened',
    );
  }

  /**
   * connection.update-secret: the new secret must prove the same user again (its password,
   * or a PLAIN response naming it); the connection then holds the freshly checked user.
   */
  private onUpdateSecret(m: M.ConnectionUpdateSecret): void {
    this.expectState('running', m.id);
    const user = verifySecret(m.newSecret, this.user, this.broker.users);
    if (user === null) {
      this.log.warn({ conn: this.name, user: this.user.name, reason: m.reason }, 'connection.update-secret refused');
      throw new AmqpError(C.NOT_ALLOWED, 'New secret was refused by one of the backends', 10, 70);
    }
    this.authUser = user;
    this.log.info({ conn: this.name, user: user.name, reason: m.reason }, 'connection secret updated');
    M.encodeConnectionUpdateSecretOk(this.writer, 0);
    this.scheduleFlush();
  }

  // ---- closing ---------------------------------------------------------------------

  /** The client's connection.close: answered in every state, also when it crosses ours. */
  private onClose(m: M.ConnectionClose): void {
    switch (this.state) {
      case 'closing':
      case 'closed':
        // A close crossing ours, or one more close from a client that sent several.
        M.encodeConnectionCloseOk(this.writer, 0);
        this.flush();
        return;
      case 'header':
      case 'start-ok':
      case 'tune-ok':
        throw this.unexpectedMethod(M.CONNECTION_CLOSE);
      case 'open':
      case 'running':
        this.ended('client', m.replyCode, m.replyText);
        this.teardown();
        this.state = 'closed';
        M.encodeConnectionCloseOk(this.writer, 0);
        this.flush();
        // The client drops TCP once it has read close-ok, as with RabbitMQ.
        this.lingerThenDrop(this.closeLingerMs());
        return;
      default:
        return assertNever(this.state);
    }
  }

  private onCloseOk(): void {
    switch (this.state) {
      case 'closing':
        this.state = 'closed';
        // After a framing error RabbitMQ keeps to its timer even when close-ok comes.
        if (!this.frameError) this.dropSocket();
        return;
      case 'closed':
        return;
      case 'header':
      case 'start-ok':
      case 'tune-ok':
      case 'open':
      case 'running':
        throw this.unexpectedMethod(M.CONNECTION_CLOSE_OK);
      default:
        return assertNever(this.state);
    }
  }

  closeWith(code: number, detail: string, methodId = 0): void {
    this.closeWithError(new AmqpError(code, detail, methodId >>> 16, methodId & 0xffff));
  }

  closeWithError(err: AmqpError): void {
    switch (this.state) {
      case 'closing':
      case 'closed':
        return;
      case 'header':
      case 'start-ok':
      case 'tune-ok':
        // Before connection.open the client may not understand connection.close: RabbitMQ
        // only sends it for a refused login to a client that says it can take it, and
        // otherwise goes silent for a while before it drops the socket.
        if (this.state === 'start-ok' && err.code === C.ACCESS_REFUSED && this.clientCapabilities.authentication_failure_close === true) {
          return this.sendClose(err, HANDSHAKE_FAILURE_DELAY_MS);
        }
        return this.closeSilently(err);
      case 'open':
      case 'running':
        return this.sendClose(err, this.closeLingerMs());
      default:
        return assertNever(this.state);
    }
  }

  private sendClose(err: AmqpError, lingerMs: number): void {
    // A forced close (shutdown, the API, a deleted user) is the operator's doing; other codes are errors.
    const line = { conn: this.name, user: this.authUser?.name, vhost: this.vhost?.name, code: err.code, reason: err.message };
    if (err.code === C.CONNECTION_FORCED) this.log.info(line, 'closing connection');
    else this.log.warn({ ...line, classId: err.classId, methodId: err.methodId }, 'closing connection');
    this.ended('server', err.code, err.message);
    this.teardown();
    this.state = 'closing';
    M.encodeConnectionClose(this.writer, 0, err.code, replyText(err.message), err.classId, err.methodId);
    this.flush();
    this.lingerThenDrop(lingerMs);
  }

  private closeSilently(err: AmqpError): void {
    this.log.info({ conn: this.name, code: err.code, reason: err.message }, 'handshake failed; closing the socket after a delay');
    this.ended('server', err.code, err.message);
    this.teardown();
    this.state = 'closed';
    this.parser.stop();
    this.lingerThenDrop(HANDSHAKE_FAILURE_DELAY_MS);
  }

  /**
   * How long a closed connection waits for the client to drop TCP: RabbitMQ's 30 s, or
   * the heartbeat interval when that is shorter.
   */
  private closeLingerMs(): number {
    return this.heartbeat > 0 && this.heartbeat < 30 ? this.heartbeat * 1000 : CLOSE_LINGER_MS;
  }

  /** Leaves the socket to the client for `ms`, then drops it ourselves. */
  private lingerThenDrop(ms: number): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.closeTimer = setTimeout(() => this.dropSocket(), ms);
  }

  /** Ends the TCP connection as RabbitMQ does once it is done with a peer: with a reset. */
  private dropSocket(): void {
    if (this.socket.destroyed) return;
    // A TLS socket cannot be reset (its handle is not a TCP one); it is closed instead.
    if (this.socket instanceof TLSSocket) this.socket.destroy();
    else this.socket.resetAndDestroy();
  }

  /** Server-initiated close (shutdown); resolves once the socket is closed. */
  forceClose(reason: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      if (this.state === 'running' || this.state === 'open') {
        this.closeWith(C.CONNECTION_FORCED, `broker forced connection closure with reason '${reason}'`);
      } else {
        this.ended('server', C.CONNECTION_FORCED, reason);
        this.socket.destroy();
      }
    });
  }

  /** Releases everything the connection holds in the model; safe to call twice. */
  private teardown(): void {
    for (const ch of this.channels.values()) ch.teardown();
    this.channels.clear();
    if (this.vhost !== null) this.vhost.ownerClosed(this);
    if (this.countedAs !== null) this.broker.limits.connectionClosed(this, this.vhost!.name, this.countedAs);
    this.countedAs = null;
    this.clearTimers();
  }

  private clearTimers(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.gate.close();
    this.heartbeats.stop();
    this.handshakeTimer = null;
  }

  /** @internal (the shared socket listeners below) */
  onSocketClosed(): void {
    this.logClosed();
    this.state = 'closed';
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    try {
      injectFault(this.clientProperties, 'socket-close');
      this.teardown();
    } catch (err) {
      // The peer is gone already; what it held may be left half released, which is
      // logged, but the broker and its other connections carry on.
      this.log.error({ conn: this.name, err }, 'internal error releasing a closed connection');
    }
    this.onGone(this);
  }

  /**
   * One line per connection when its socket goes: who ended it (client: connection.close;
   * server: an error, a forced close, a timeout; socket: TCP dropped without a close) and
   * how long it lived.
   */
  private logClosed(): void {
    if (this.state === 'header' && this.ending === null && this.counters.recvBytes === 0) {
      // A port probe (a health check, a load balancer) that sent nothing: not worth a line at info.
      this.log.debug({ conn: this.name, peer: this.peer }, 'connection closed before the protocol header');
      return;
    }
    const e = this.ending;
    const line = {
      conn: this.name,
      peer: this.peer,
      user: this.authUser?.name,
      vhost: this.vhost?.name,
      by: e?.by ?? 'socket',
      code: e?.code,
      reason: e?.reason ?? 'client unexpectedly closed TCP connection',
      durationMs: Date.now() - this.connectedAt,
    };
    if (e === null && this.state === 'running') this.log.warn(line, 'connection closed');
    else this.log.info(line, 'connection closed');
  }

  /** @internal (the shared socket listeners below) */
  onHandshakeTimeout(): void {
    this.handshakeTimer = null;
    switch (this.state) {
      case 'header':
      case 'start-ok':
      case 'tune-ok':
      case 'open':
        this.log.info({ conn: this.name }, 'handshake timeout');
        this.ended('server', 0, 'handshake timeout');
        this.state = 'closed';
        this.dropSocket();
        return;
      case 'running':
      case 'closing':
      case 'closed':
        return;
      default:
        return assertNever(this.state);
    }
  }

  // ---- heartbeats --------------------------------------------------------------------

  takeWrote(): boolean {
    const wrote = this.output.wrote;
    this.output.wrote = false;
    return wrote;
  }

  // Timer callbacks: an exception here would otherwise reach the process.
  sendHeartbeat(frame: Buffer): void {
    try {
      injectFault(this.clientProperties, 'heartbeat');
      this.writer.raw(frame);
      this.flush();
    } catch (err) {
      this.internalError(err);
    }
  }

  heartbeatTimeout(): void {
    try {
      this.log.info({ conn: this.name, timeout: this.heartbeat }, 'missed heartbeats from client');
      this.ended('server', 0, 'missed heartbeats from client');
      this.state = 'closed';
      this.dropSocket();
    } catch (err) {
      this.internalError(err);
    }
  }

  // ---- flow ------------------------------------------------------------------------

  /**
   * An alarm was raised (reason) or cleared (null). As in RabbitMQ, a connection hears
   * connection.blocked only once it publishes while an alarm is on (publishing()), so
   * connections that only consume are never told; one that was told hears
   * connection.unblocked when the last alarm clears.
   */
  setBlocked(reason: string | null): void {
    this.blockedReason = reason;
    // Only a connection that published during the alarm was blocked, and told so if it can hear it.
    if (reason !== null || !this.gate.blocked) return;
    this.heartbeats.suspended = this.gate.outputHeld;
    this.gate.unblock();
    if (this.state !== 'running' || !this.hearsBlocked) return;
    M.encodeConnectionUnblocked(this.writer, 0);
    this.log.info({ conn: this.name, user: this.user.name }, 'connection unblocked');
    this.scheduleFlush();
  }

  private get hearsBlocked(): boolean {
    return this.clientCapabilities['connection.blocked'] === true;
  }

  /**
   * Called when a channel sees basic.publish: while an alarm is on, a publishing
   * connection is told connection.blocked (if it can hear it) and not read from until the
   * alarm clears, as in RabbitMQ. Connections that only consume carry on.
   */
  publishing(): void {
    if (this.blockedReason === null || this.gate.blocked) return;
    // Its heartbeats will go unread while it is not read from: silence is not counted.
    this.heartbeats.suspended = true;
    this.gate.block();
    // One connection.blocked per blocking, as RabbitMQ: a second alarm joining the first finds
    // the connection blocked already (not read from), so it says nothing new.
    if (!this.hearsBlocked) return;
    M.encodeConnectionBlocked(this.writer, 0, this.blockedReason);
    this.log.info({ conn: this.name, user: this.user.name, reason: this.blockedReason }, 'connection blocked');
    this.scheduleFlush();
  }

  /**
   * Flow control: a queue we publish to is falling behind its consumers, so stop reading
   * from this connection until the queue has caught up (or a second has passed), instead
   * of letting the backlog and the broker's memory grow. RabbitMQ throttles publishers
   * the same way (credit flow).
   */
  flowPause(queue: Queue): void {
    if (this.gate.flowPause()) queue.waitForFlow(this);
  }

  flowResume(): void {
    this.gate.flowResume();
  }

  // ---- output ----------------------------------------------------------------------

  scheduleFlush(): void {
    this.output.scheduleFlush();
  }

  confirmsDue(confirms: { flush(): void }): void {
    this.output.confirms(confirms);
  }

  mayConfirm(): boolean {
    const gate = this.syncScheduler?.gate ?? null;
    return gate === null || gate.mayConfirm();
  }

  /** Whether consumers on this connection may be given more messages now. */
  canWrite(): boolean {
    return this.output.canWrite();
  }

  flush(): void {
    this.output.flush();
  }

  get sentBytes(): number {
    return this.output.sentBytes;
  }

  /** socket writes (RabbitMQ's send_cnt) */
  get sentCount(): number {
    return this.output.sentCount;
  }

  /** Channels open (or closing) on this connection, as the user's max-channels limit counts them. */
  get channelCount(): number {
    return this.channels.size;
  }

  /** The open channels, for the management API. */
  openChannels(): IterableIterator<Channel> {
    return this.channels.values();
  }

  /** RabbitMQ's connection state as the management API shows it. */
  get apiState(): 'starting' | 'running' | 'blocking' | 'blocked' | 'flow' | 'closing' | 'closed' {
    switch (this.state) {
      case 'header':
      case 'start-ok':
      case 'tune-ok':
      case 'open':
        return 'starting';
      case 'closing':
        return 'closing';
      case 'closed':
        return 'closed';
      case 'running':
        if (this.gate.blocked) return 'blocked';
        if (this.blockedReason !== null) return 'blocking';
        return this.gate.flowing ? 'flow' : 'running';
      default:
        return assertNever(this.state);
    }
  }

  /** The client is not reading what we write: stop reading it too (its silence is not its fault). */
  outputBackedUp(): void {
    this.gate.holdForOutput();
    this.heartbeats.suspended = true;
  }

  /** @internal (the shared socket listeners below) */
  onDrain(): void {
    try {
      injectFault(this.clientProperties, 'drain');
      this.output.drained();
      if (this.gate.outputHeld) {
        this.heartbeats.suspended = this.gate.blocked;
        this.gate.outputDrained();
      }
      for (const ch of this.channels.values()) ch.resumeDelivery();
    } catch (err) {
      this.internalError(err);
    }
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Decodes every connection's methods: decoding is synchronous and never re-entered, so
 * one cursor serves all (and no connection keeps the last payload it read alive).
 */
const READER = new Reader();

/** The socket's back-reference to its connection, for the shared listeners. */
const CONNECTION = Symbol('leveret.connection');
type OwnedSocket = Socket & { [CONNECTION]?: Connection };

function socketData(this: Socket, chunk: Buffer): void {
  (this as OwnedSocket)[CONNECTION]!.onData(chunk);
}

function socketDrain(this: Socket): void {
  (this as OwnedSocket)[CONNECTION]!.onDrain();
}

function socketError(this: Socket, err: Error): void {
  const conn = (this as OwnedSocket)[CONNECTION]!;
  conn.log.debug({ conn: conn.name, err: err.message }, 'socket error');
}

function socketClose(this: Socket): void {
  (this as OwnedSocket)[CONNECTION]!.onSocketClosed();
}

function handshakeTimeout(conn: Connection): void {
  conn.onHandshakeTimeout();
}

/** A value the client chose in tune-ok must lie between our minimum and the maximum we offered. */
function negotiated(field: string, value: number, min: number, max: number): void {
  if (value !== 0 && value < min) throw new AmqpError(C.NOT_ALLOWED, `${field}=${value} < ${min} min size`, 10, 31);
  if (value === 0 || value > max) throw new AmqpError(C.NOT_ALLOWED, `${field}=${value} > ${max} max size`, 10, 31);
}

/** basic.publish payloads longer than this (long names) are decoded every time. */
const LAST_PUBLISH_MAX = 96;
