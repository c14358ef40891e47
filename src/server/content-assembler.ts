import { sameBytes } from '../protocol/same-bytes';
import { AmqpError } from '../protocol/errors';
import * as C from '../protocol/constants';
import { BASIC_PUBLISH } from '../protocol/generated';
import { Message } from '../broker/message';
import { routeWire } from '../protocol/delivery-wire';
import { basicPropertiesFit } from '../protocol/reader';
import { erlBinary } from '../protocol/erlang-terms';

/** Bodies smaller than this are copied out of the socket buffer rather than pinning it. */
const COPY_SMALL_BODY = 8 * 1024;
/**
 * Bodies at least this big that arrive in several reads are kept as those pieces (slices of
 * the socket's read buffers, at most 64 KiB each) instead of being copied into a new
 * buffer: no copy, and half the memory allocated per message. That allocation, not the
 * copy, is what costs most: V8 runs a full collection whenever buffers of ~16 MB more than
 * at the last one have been allocated, which for 1 MiB messages was every dozen or so.
 * This relies on every socket read getting a buffer of its own (Node's default for plain
 * and TLS sockets): a socket reading into one reused buffer (net's `onread`) would have to
 * copy.
 */
const KEEP_PIECES = 256 * 1024;
/**
 * ...up to this size. A bigger body is copied into one buffer, which is mapped on its own
 * and given back to the system as soon as it is freed, where its thousand pieces would
 * linger in the allocator's heap: with 64 MiB bodies (scenario k2) pieces used somewhat
 * less CPU, but the broker's RSS stayed up to twice as high after the messages were gone.
 */
const KEEP_PIECES_MAX = 4 * 1024 * 1024;
/** How long a look at the process's RSS stands for (see roomForPieces). */
const RSS_RECHECK_MS = 250;

/** RSS below which large bodies may be kept in pieces; half the memory watermark once the server set it. */
let piecesRssLimit = 1024 * 1024 * 1024;
let rssCheckedAt = -Infinity;
let rssRoom = true;

/**
 * Pieces come from the C allocator's heap in 64 KiB blocks, among everything else; freed,
 * they are kept there for reuse and not handed back to the system, where one buffer per
 * body (large enough to be mapped on its own) is. So pieces are kept only while memory is
 * well below the watermark: what they may leave behind stays below it, and the memory alarm
 * still clears once the messages holding it are acked.
 */
export function keepPiecesBelowRss(bytes: number): void {
  piecesRssLimit = bytes;
  rssCheckedAt = -Infinity;
}

function roomForPieces(): boolean {
  const now = performance.now();
  if (now - rssCheckedAt >= RSS_RECHECK_MS) {
    rssCheckedAt = now;
    rssRoom = process.memoryUsage.rss() < piecesRssLimit;
  }
  return rssRoom;
}

const IDLE = 0;
const HEADER = 1;
const BODY = 2;
const EMPTY = Buffer.alloc(0);

/**
 * Puts a published message together from basic.publish, its content header and its
 * body frames, copying the body at most once (not at all when it came in one piece or is
 * kept in pieces).
 * Frames out of order are AmqpErrors with RabbitMQ's codes and texts.
 */
export class ContentAssembler {
  private state = IDLE;
  private exchange = '';
  private routingKey = '';
  /** exchange and routing key in wire form, shared by the messages of a stream that repeats them */
  private route: Buffer | null = null;
  /** the last basic.publish named the same exchange and routing key as the one before */
  private repeated = false;
  mandatory = false;
  private props: Buffer = EMPTY;
  private body: Buffer = EMPTY;
  private pieces: Buffer[] | null = null;
  private size = 0;
  private received = 0;

  /** The largest body accepted (--max-message-size), checked at the header before any body is kept. */
  /** maxSize: --max-message-size (its default lives with the other settings in config.ts) */
  constructor(private readonly maxSize: number) {}

  get idle(): boolean {
    return this.state === IDLE;
  }

  reset(): void {
    this.state = IDLE;
    this.body = EMPTY;
    this.pieces = null;
  }

  /** basic.publish arrived: a content header must follow. */
  start(exchange: string, routingKey: string, mandatory: boolean): void {
    // Keep the previous strings when they are equal, so queued messages share them.
    if (exchange !== this.exchange || routingKey !== this.routingKey) {
      this.exchange = exchange;
      this.routingKey = routingKey;
      this.route = null;
      this.repeated = false;
    } else {
      this.repeated = true;
    }
    this.mandatory = mandatory;
    this.state = HEADER;
  }

  /** The content header is `buf[start, end)`; returns true when the message is complete (an empty body). */
  header(buf: Buffer, start: number, end: number): boolean {
    if (this.state !== HEADER) throw this.unexpected();
    const len = end - start;
    if (len < 14) throw new AmqpError(C.FRAME_ERROR, 'content header frame too short');
    const classId = (buf[start] << 8) | buf[start + 1];
    if (classId !== 60) throw this.refuseHeader(`got one for class ${classId} instead`);
    // A header with a weight is not a content header as far as RabbitMQ is concerned.
    if (buf[start + 2] !== 0 || buf[start + 3] !== 0) throw this.refuseHeader('got non content header frame instead');
    const sizeHigh = buf.readUInt32BE(start + 4);
    const sizeLow = buf.readUInt32BE(start + 8);
    // Publishers mostly send the same properties every time: share one copy between
    // messages (which also keeps the socket's buffer from being pinned by a slice).
    if (len - 12 !== this.props.length || !sameBytes(buf, start + 12, this.props, this.props.length)) {
      const props = buf.subarray(start + 12, end);
      // Checked once per distinct property list: a short one would fail wherever it is
      // decoded later, which may be a timer or another client's connection.
      if (!basicPropertiesFit(props)) {
        this.reset();
        throw new AmqpError(C.FRAME_ERROR, `cannot decode content header properties ${erlBinary(props.subarray(0, 64))}`, 60, 40);
      }
      this.props = Buffer.from(props);
    }
    if (sizeHigh !== 0 || sizeLow > this.maxSize) {
      this.reset();
      // Printed exactly: a 64-bit size can be beyond what a double holds.
      const exact = (BigInt(sizeHigh) << 32n) | BigInt(sizeLow);
      throw new AmqpError(C.PRECONDITION_FAILED, `message size ${exact} is larger than configured max size ${this.maxSize}`, 60, 40);
    }
    const size = sizeLow;
    this.size = size;
    this.received = 0;
    this.body = EMPTY;
    this.state = size === 0 ? IDLE : BODY;
    return size === 0;
  }

  /** A piece of a body frame; returns true when the body is complete. */
  bodyChunk(chunk: Buffer): boolean {
    if (this.state !== BODY) throw this.unexpected();
    const size = this.size;
    const received = this.received + chunk.length;
    if (received > size) throw new AmqpError(C.FRAME_ERROR, `content body exceeds declared size ${size}`);
    if (this.received === 0) {
      if (received === size) {
        // The whole body arrived in one piece: keep the slice (big) or one compact copy (small).
        this.body = size < COPY_SMALL_BODY ? Buffer.from(chunk) : chunk;
      } else if (size >= KEEP_PIECES && size <= KEEP_PIECES_MAX && roomForPieces()) {
        this.pieces = [chunk];
      } else {
        this.body = Buffer.allocUnsafe(size);
        chunk.copy(this.body, 0);
      }
    } else if (this.pieces !== null) {
      this.pieces.push(chunk);
    } else {
      chunk.copy(this.body, this.received);
    }
    this.received = received;
    if (received !== size) return false;
    this.state = IDLE;
    return true;
  }

  /** The completed message. */
  take(): Message {
    // Encoded once a pair repeats: a stream of ever-changing keys would allocate for nothing.
    if (this.route === null && this.repeated) this.route = routeWire(this.exchange, this.routingKey);
    const pieces = this.pieces;
    const msg = new Message(
      this.exchange,
      this.routingKey,
      this.props,
      this.body,
      this.route,
      pieces === null ? null : { list: pieces, size: this.size },
    );
    this.body = EMPTY;
    this.pieces = null;
    return msg;
  }

  /** A frame of the wrong kind for where the content stands (505). */
  unexpected(): AmqpError {
    const st = this.state;
    if (st === HEADER) return this.refuseHeader('got non content header frame instead');
    this.reset();
    if (st === IDLE) return new AmqpError(C.UNEXPECTED_FRAME, 'expected method frame, got non method frame instead');
    return new AmqpError(
      C.UNEXPECTED_FRAME,
      'expected content body, got non content body frame instead',
      BASIC_PUBLISH >>> 16,
      BASIC_PUBLISH & 0xffff,
    );
  }

  private refuseHeader(got: string): AmqpError {
    this.reset();
    return new AmqpError(C.UNEXPECTED_FRAME, `expected content header for class 60, ${got}`, BASIC_PUBLISH >>> 16, BASIC_PUBLISH & 0xffff);
  }
}
