import { ACK_RECORD, putAckRecord } from './ack-records';
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
  /** appended records not yet written */
  pending: Buffer[] = [];
  pendingBytes = 0;
  /** bytes of the ack file on disk */
  ackWritten: number;
  /**
   * Ack records not yet written: bytes [0, ackPendingLength) of ackPending, one buffer for
   * a turn's records instead of one per record; kept until a write of them succeeds.
   */
  ackPending: Buffer = NO_ACKS;
  ackPendingLength = 0;
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

  get size(): number {
    return this.written + this.pendingBytes;
  }

  addAck(position: number, type: number): void {
    this.ensureAckRoom(ACK_RECORD);
    putAckRecord(this.ackPending, this.ackPendingLength, position, type);
    this.ackPendingLength += ACK_RECORD;
  }

  /** The ack records are written: the buffer goes (most turns write a few, some many). */
  acksWritten(): void {
    this.ackPending = NO_ACKS;
    this.ackPendingLength = 0;
  }

  private ensureAckRoom(n: number): void {
    const need = this.ackPendingLength + n;
    if (need <= this.ackPending.length) return;
    const next = Buffer.allocUnsafe(Math.max(512, need, this.ackPending.length * 2));
    this.ackPending.copy(next, 0, 0, this.ackPendingLength);
    this.ackPending = next;
  }
}

export const segmentName = (id: number): string => String(id).padStart(10, '0');

const NO_ACKS = Buffer.alloc(0);
