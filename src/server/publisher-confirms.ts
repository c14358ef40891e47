import Denque from 'denque';
import * as M from '../protocol/generated';
import type { SyncScheduler, SyncWaiter } from '../store/sync-scheduler';
import type { ConfirmSink } from './channel-host';
import { NO_SYNC } from '../broker/storage';

/**
 * One channel's publisher confirms (confirm.select) and the tx.commit-oks that wait for
 * the disk. Confirms go out in publish order, coalesced into one basic.ack (multiple)
 * per flush; a publish whose writes must be synced first holds back every later confirm
 * until its group commit lands.
 */
export class PublisherConfirms implements SyncWaiter {
  enabled = false;
  private seq = 0;
  private confirmedUpTo = 0;
  private sentUpTo = 0;
  /** acks and nacks sent, one per message (RabbitMQ's confirm count) */
  confirmCount = 0;
  private queued = false;
  private closed = false;
  /** Confirms waiting on the store: seq (negative for a nack), epoch, seq, epoch, … */
  private readonly waits = new Denque<number>();
  /** Epochs that tx.commit-oks wait for, in order. */
  private readonly commitWaits: number[] = [];
  private waiting = false;

  constructor(
    private readonly conn: ConfirmSink,
    private readonly channel: number,
    private readonly scheduler: SyncScheduler | null,
  ) {}

  /** Whether the store cannot write at the moment. */
  get storeFailing(): boolean {
    return this.scheduler?.failure != null;
  }

  /**
   * A publish was routed: `epoch` is the sync round its durable writes are part of (what
   * the queues' enqueue returned; NO_SYNC when nothing was written), `refused` if a queue
   * would not take it (a nack).
   */
  published(epoch: number, refused: boolean): void {
    if (!this.enabled) return;
    const seq = ++this.seq;
    const s = this.scheduler;
    if (!refused && s !== null && epoch !== NO_SYNC && epoch > s.syncedEpoch) {
      this.wait(seq, epoch);
    } else if (this.waits.length > 0) {
      // Nothing of ours to sync, but it must not go out before those ahead of it.
      this.wait(refused ? -seq : seq, this.waits.peekBack()!);
    } else if (refused) {
      this.nack(seq);
    } else {
      this.ack(seq);
    }
  }

  /** The disk is failing: the publish is refused without being routed. */
  refuseNow(): void {
    const seq = ++this.seq;
    this.storeFailed();
    this.nack(seq);
  }

  /** tx.commit: answers now, or once what the commit wrote (sync round `epoch`) is synced. */
  committed(epoch: number): void {
    const s = this.scheduler;
    if (s !== null && epoch !== NO_SYNC && epoch > s.syncedEpoch) {
      this.commitWaits.push(epoch);
      this.watchStore();
    } else if (this.commitWaits.length > 0) {
      this.commitWaits.push(this.commitWaits[this.commitWaits.length - 1]);
    } else {
      M.encodeTxCommitOk(this.conn.writer, this.channel);
    }
  }

  private wait(seq: number, epoch: number): void {
    this.waits.push(seq);
    this.waits.push(epoch);
    this.watchStore();
  }

  private watchStore(): void {
    if (this.waiting || this.scheduler === null) return;
    this.waiting = true;
    this.scheduler.addWaiter(this);
  }

  storeSynced(epoch: number): void {
    if (this.closed) return;
    const waits = this.waits;
    while (waits.length > 0 && waits.peekAt(1)! <= epoch) {
      const seq = waits.shift()!;
      waits.shift();
      if (seq > 0) this.ack(seq);
      else this.nack(-seq);
    }
    while (this.commitWaits.length > 0 && this.commitWaits[0] <= epoch) {
      this.commitWaits.shift();
      M.encodeTxCommitOk(this.conn.writer, this.channel);
      this.conn.scheduleFlush();
    }
    if (waits.length === 0 && this.commitWaits.length === 0) this.unwatch();
  }

  /** Writes are failing: what waits for the disk is nacked rather than left hanging. */
  storeFailed(): void {
    if (this.closed || this.waits.length === 0) return;
    let last = 0;
    while (this.waits.length > 0) {
      last = Math.abs(this.waits.shift()!);
      this.waits.shift();
    }
    this.flush();
    M.encodeBasicNack(this.conn.writer, this.channel, last, last - this.sentUpTo > 1, false);
    this.confirmCount += last - this.sentUpTo;
    this.sentUpTo = this.confirmedUpTo = last;
    this.conn.scheduleFlush();
  }

  private ack(seq: number): void {
    this.confirmedUpTo = seq;
    if (!this.queued) {
      this.queued = true;
      this.conn.confirmsDue(this);
    }
  }

  /** Sends every ack due before `seq`, then the nack for it. */
  private nack(seq: number): void {
    this.confirmedUpTo = seq - 1;
    this.flush();
    M.encodeBasicNack(this.conn.writer, this.channel, seq, false, false);
    this.confirmCount++;
    this.sentUpTo = this.confirmedUpTo = seq;
    this.conn.scheduleFlush();
  }

  /** Called at flush time: one ack covering every confirm since the last. */
  flush(): void {
    this.queued = false;
    const upTo = this.confirmedUpTo;
    if (upTo === this.sentUpTo || this.closed) return;
    M.encodeBasicAck(this.conn.writer, this.channel, upTo, upTo - this.sentUpTo > 1);
    this.confirmCount += upTo - this.sentUpTo;
    this.sentUpTo = upTo;
  }

  private unwatch(): void {
    if (!this.waiting) return;
    this.waiting = false;
    this.scheduler?.removeWaiter(this);
  }

  /** Publishes not yet acked or nacked to the client (RabbitMQ's messages_unconfirmed). */
  get unconfirmed(): number {
    return this.seq - this.sentUpTo;
  }

  /** The channel is closing: nothing more goes out. */
  close(): void {
    this.closed = true;
    this.unwatch();
  }
}
