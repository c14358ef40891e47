import { ReplicationError } from './errors';
import { FrameType } from './frame';
import type { FramedConnection } from './framed-connection';
import type { OpBacklog } from './op-backlog';
import { emptyOpsFrame, readAck, type OpsFrames } from './ops-frame';

/** Bytes queued in a follower's socket before the stream waits for it to drain. */
const SEND_BUFFER = 4 * 1024 * 1024;
/** An idle stream sends an empty OPS frame this often, so a follower can tell an idle leader from a dead one. */
export const KEEPALIVE_MS = 1000;

/** What the leader's replication hub hears from a stream. */
export interface StreamEvents {
  acked(s: LeaderStream): void;
  ended(s: LeaderStream, why: ReplicationError): void;
}

/**
 * The leader's side of one follower's live stream: sends the backlog's ops from the
 * follower's next LSN on, in OPS frames, when pumped (once per event-loop turn with new
 * ops, and when the socket drains), and reads the follower's OPS_ACKs. A follower slower
 * than the stream fills its socket buffer, then stays behind in the backlog; once its next
 * op is evicted it is told `lagging` and must catch up again.
 */
export class LeaderStream {
  /** the next LSN to send */
  next: number;
  /** the LSN the follower last acked as durable (0: none yet on this stream) */
  acked = 0;
  lastAckAt = Date.now();
  /** the leader's LSN when the stream started: acked past it, the follower has caught up */
  readonly startLsn: number;
  readonly startedAt = Date.now();
  bytesSent = 0;
  private lastSendAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    readonly conn: FramedConnection,
    readonly node: string,
    private readonly backlog: OpBacklog,
    private readonly frames: OpsFrames,
    private readonly term: number,
    from: number,
    private readonly events: StreamEvents,
  ) {
    this.next = from;
    this.startLsn = backlog.lastLsn;
  }

  /** Runs until the connection ends; rejects with why. */
  async run(): Promise<void> {
    if (!this.backlog.has(this.next)) {
      throw this.fail(
        new ReplicationError(
          'lagging',
          `${this.conn.peer} asked for ops from ${this.next}; the backlog holds ${this.backlog.firstLsn}..${this.backlog.lastLsn}: catch up again`,
        ),
      );
    }
    const pump = () => this.pump();
    this.conn.socket.on('drain', pump);
    this.timer = setInterval(() => this.keepAlive(), KEEPALIVE_MS / 2);
    this.timer.unref();
    this.pump();
    try {
      for (;;) {
        const f = await this.conn.next(0);
        if (f.term !== this.term) throw this.fail(new ReplicationError('term', `${this.conn.peer} sent a frame of term ${f.term}`));
        if (f.type !== FrameType.OPS_ACK) throw this.fail(this.conn.unexpected(f, 'OPS_ACK'));
        let lsn: number;
        try {
          lsn = readAck(f.payload);
        } catch (err) {
          throw this.fail(new ReplicationError('protocol', `${this.conn.peer}: ${(err as Error).message}`));
        }
        if (lsn > this.backlog.lastLsn)
          throw this.fail(new ReplicationError('protocol', `${this.conn.peer} acked ${lsn}, beyond our ${this.backlog.lastLsn}`));
        this.acked = lsn;
        this.lastAckAt = Date.now();
        this.events.acked(this);
      }
    } catch (err) {
      throw this.fail(err as ReplicationError);
    } finally {
      this.conn.socket.off('drain', pump);
    }
  }

  /** Sends what the backlog has for this follower, as far as its socket takes it. */
  pump(): void {
    if (this.ended || this.conn.closed) return;
    const socket = this.conn.socket;
    if (socket.writableLength >= SEND_BUFFER) return;
    if (this.next < this.backlog.firstLsn) {
      this.fail(
        new ReplicationError(
          'lagging',
          `${this.conn.peer} fell out of the backlog (needs op ${this.next}, the oldest kept is ${this.backlog.firstLsn}): catch up again`,
        ),
      );
      return;
    }
    if (this.next > this.backlog.lastLsn) return;
    // One writev for the frames of this turn.
    socket.cork();
    while (socket.writableLength < SEND_BUFFER) {
      const built = this.frames.from(this.next);
      if (built === null) break;
      this.conn.send(built.frame);
      this.bytesSent += built.frame.length;
      this.next = built.next;
    }
    socket.uncork();
    this.lastSendAt = Date.now();
  }

  private keepAlive(): void {
    if (this.ended || this.conn.closed) return;
    if (Date.now() - this.lastSendAt < KEEPALIVE_MS || this.conn.socket.writableLength > 0) return;
    this.conn.send(emptyOpsFrame(this.term));
    this.lastSendAt = Date.now();
  }

  /** Ends the stream (and the connection, telling the follower why); returns the reason to throw. */
  fail(why: ReplicationError): ReplicationError {
    if (this.ended) return why;
    this.ended = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.conn.close(why);
    this.events.ended(this, why);
    return why;
  }
}
