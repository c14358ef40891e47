import { ACK_RECORD, putAckRecord } from './ack-records';
import { PendingWrites } from './pending-writes';
/**
 * Stored messages waiting in a queue, as a stretch of one segment: the records from
 * `position` up to `end`, less those in `skip`, `count` in all. A deep queue holds its
 * backlog as a few of these instead of an object per message.
 */
export class Run {
  /**
   * Bytes the run's index records stand for beyond their own size (each weighs what the
   * shared record it names does), so that a queue's byte count does not shrink when its
   * backlog is shared.
   */
  extra = 0;

  constructor(
    readonly segment: number,
    public position: number,
    public end: number,
    public count: number,
    /** recovered runs: positions in the stretch to pass over (acked, paged, moved) */
    readonly skip: Set<number> | null = null,
  ) {}
}

/** One segment file of a queue log and its ack file, as the log keeps track of them. */
export class Segment {
  /** records not yet acked */
  live = 0;
  /** message records it holds (paged copies not counted) */
  records = 0;
  compacting = false;
  /** bytes of the segment file on disk (written) */
  written: number;
  /** appended records not yet written (kept until a write of them succeeds) */
  readonly pending = new PendingWrites();
  /** bytes of the ack file on disk */
  ackWritten: number;
  /** ack records not yet written (kept until a write of them succeeds) */
  readonly acks = new PendingWrites();
  /** recovered: positions delivered before the restart */
  delivered: Set<number> | null = null;
  /** live index records in this segment, by the shared segment they name (null: none) */
  sharedRefs: Map<number, number> | null = null;

  constructor(
    readonly id: number,
    readonly fd: number,
    readonly ackFd: number,
    size: number,
    ackSize: number,
  ) {
    this.written = size;
    this.ackWritten = ackSize;
  }

  get pendingBytes(): number {
    return this.pending.length;
  }

  get size(): number {
    return this.written + this.pending.length;
  }

  addAck(position: number, type: number): void {
    const acks = this.acks;
    const at = acks.reserve(ACK_RECORD); // before reading .buf: reserving may replace it
    putAckRecord(acks.buf, at, position, type);
  }
}

export const segmentName = (id: number): string => String(id).padStart(10, '0');
