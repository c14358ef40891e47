import type { Socket } from 'node:net';
import { Writer } from '../protocol/writer';
import { NextTurn } from './next-turn';
import type { Message } from '../broker/message';

/** Bytes buffered for the socket beyond which deliveries pause until it drains. */
const HIGH_WATER = 256 * 1024;
/**
 * Bytes waiting for a socket beyond which the connection is not read from until they
 * drain. Deliveries stop at HIGH_WATER; this bounds what a client that does not read
 * can make us write by what it sends (basic.return of its unroutable mandatory
 * messages, basic.get-ok, replies): otherwise all of it would pile up in memory.
 */
const INPUT_HOLD = 1024 * 1024;

/** What a SocketOutput tells its connection. */
export interface OutputHost {
  /** more than INPUT_HOLD bytes wait for the socket: stop reading until 'drain' */
  outputBackedUp(): void;
  /** an exception while flushing at the end of a turn (a bug): the connection closes with 541 */
  internalError(err: unknown): void;
  /** test-only (fault injection): runs before each turn-end flush when `faults` is set */
  flushFault(): void;
  /** whether the confirms due may be sent (a cluster leader: whether it still leads) */
  mayConfirm(): boolean;
}

/** Outputs written to in this turn, flushed together at its end. */
const turnEndFlushes = new NextTurn<SocketOutput>((o) => o.turnEnd());

/**
 * A connection's way out: every channel writes frames into one coalescing buffer, which
 * goes to the socket once per event-loop turn (or sooner when it grows large). Publisher
 * confirms due by then are coalesced into one basic.ack each, just before.
 */
export class SocketOutput {
  readonly writer = new Writer();
  sentBytes = 0;
  /** socket writes */
  sentCount = 0;
  /** Set whenever bytes go out (the heartbeat monitor clears it). */
  wrote = false;
  private flushScheduled = false;
  private full = false;
  private readonly confirmsDue: { flush(): void }[] = [];

  constructor(
    private readonly socket: Socket,
    private readonly host: OutputHost,
    /** test-only: call host.flushFault before each turn-end flush; false in production */
    private readonly faults = false,
  ) {}

  /** The turn-end flush runs outside any handler of the connection: what it throws goes to the host. */
  turnEnd(): void {
    try {
      if (this.faults) this.host.flushFault();
      this.flush();
    } catch (err) {
      this.host.internalError(err);
    }
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    turnEndFlushes.add(this);
  }
  /** Registers confirms to coalesce into one basic.ack at the next flush. */
  confirms(c: { flush(): void }): void {
    this.confirmsDue.push(c);
    this.scheduleFlush();
  }

  /** Whether more may be written now (the socket has not backed up). */
  canWrite(): boolean {
    if (this.full) return false;
    if (this.writer.pending >= HIGH_WATER) this.flush();
    return !this.full;
  }

  /** The socket took what was buffered: writing may go on. */
  drained(): void {
    this.full = false;
  }

  flush(): void {
    this.flushScheduled = false;
    const confirms = this.confirmsDue;
    if (confirms.length > 0) {
      // Fenced: never sent, and the channels ask no more (each still counts itself queued);
      // the demotion closes the connection with 320 next.
      if (this.host.mayConfirm()) for (let i = 0; i < confirms.length; i++) confirms[i].flush();
      confirms.length = 0;
    }
    if (this.writer.empty) return;
    const chunks = this.writer.take();
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    this.wrote = true;
    this.sentCount++;
    let ok = true;
    if (chunks.length === 1) {
      this.sentBytes += chunks[0].length;
      ok = socket.write(chunks[0]);
    } else {
      socket.cork();
      for (const c of chunks) {
        this.sentBytes += c.length;
        ok = socket.write(c);
      }
      socket.uncork();
    }
    if (!ok) {
      this.full = true;
      if (socket.writableLength > INPUT_HOLD) this.host.outputBackedUp();
    } else if (socket.writableLength === 0) {
      // Written through to the kernel already (the usual case): the writer's blocks are free.
      this.writer.released();
    }
  }
}

/**
 * A message's body as body frames of at most `max` payload bytes. A body kept in pieces is
 * sent as it is held: a frame ends where a piece or frame_max does (frames need not be
 * full), so no piece is copied or joined, and the pieces go to the socket by reference.
 */
export function writeBodyFrames(w: Writer, channel: number, msg: Message, max: number): void {
  const pieces = msg.bodyPieces;
  if (pieces === null) {
    const body = msg.body;
    const size = body.length;
    for (let off = 0; off < size; off += max) w.bodyFrame(channel, body, off, Math.min(off + max, size));
    return;
  }
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    const size = piece.length;
    for (let off = 0; off < size; off += max) w.bodyFrame(channel, piece, off, Math.min(off + max, size));
  }
}
