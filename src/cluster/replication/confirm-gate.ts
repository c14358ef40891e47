import Denque from 'denque';
import type { ReplicationGate } from '../../store/replication-gate';

/** The scheduler's side the gate needs (SyncScheduler has it). */
export interface Releasable {
  release(epoch: number): void;
}

/**
 * Confirms wait for followers (docs/cluster.md, "Confirms"): a round's confirms go once every
 * follower in the ISR has acked (made durable) every op the round covered, the ISR has at least
 * `minIsr` followers, and this node still leads. Waiting for *every* ISR member makes each
 * of them a safe next leader. Per round: one (epoch, LSN) pair queued and one comparison of
 * the watermark; nothing per message.
 */
export class ConfirmGate implements ReplicationGate {
  /** epoch, lsn, epoch, lsn, … of rounds synced here and not released yet */
  private readonly pending = new Denque<number>();
  private isrFollowers: string[] = [];
  /** the ack of each connected follower's current stream */
  private readonly acked = new Map<string, number>();
  released = 0;
  /** the LSN of the newest released round (what a follower must have for it) */
  releasedLsn = 0;

  constructor(
    private readonly scheduler: Releasable,
    /**
     * The last LSN the round just finished covered (the store tap's mark when it started):
     * the round's records are at or before it. Followers sync on their own schedule, in
     * parallel with ours, so they are often there before our round ends.
     */
    private readonly syncedLsn: () => number,
    private minIsr: number,
    /** whether this node still leads */
    private readonly isLeader: () => boolean,
    /** whether what the followers hold can vouch for a release (false holds every confirm) */
    private readonly sound: () => boolean = () => true,
  ) {}

  mayConfirm(): boolean {
    return !this.closed && this.isLeader();
  }

  private closed = false;

  /** Releases nothing ever again (leadership over: what waits is for the clients' reconnect to sort out). */
  close(): void {
    this.closed = true;
    this.pending.clear();
  }

  localSynced(epoch: number): void {
    if (this.closed) return;
    this.pending.push(epoch);
    this.pending.push(this.syncedLsn());
    this.check();
  }

  /** The followers whose acks confirms wait for (the ISR without this node). */
  setIsr(followers: string[]): void {
    this.isrFollowers = followers.slice();
    this.check();
  }

  get isr(): readonly string[] {
    return this.isrFollowers;
  }

  /** A follower's stream acked `lsn` (durable on its disk); -1: it has no stream any more. */
  ack(node: string, lsn: number): void {
    if (lsn < 0) this.acked.delete(node);
    else this.acked.set(node, lsn);
    this.check();
  }

  /** Releases every round the ISR's slowest member has; nothing while the ISR is short or we do not lead. */
  check(): void {
    if (this.closed || this.pending.length === 0 || this.isrFollowers.length < this.minIsr) return;
    let water = Number.MAX_SAFE_INTEGER;
    for (const n of this.isrFollowers) {
      const a = this.acked.get(n) ?? 0;
      if (a < water) water = a;
    }
    if (this.pending.peekAt(1)! > water) return;
    let epoch = 0;
    let lsn = 0;
    while (this.pending.length > 0 && this.pending.peekAt(1)! <= water) {
      epoch = this.pending.shift()!;
      lsn = this.pending.shift()!;
    }
    // Checked last: it may demote us (ClusterNode.isLeader emits `demoted` when its lease ran out).
    if (!this.isLeader() || !this.sound()) {
      this.pending.unshift(lsn);
      this.pending.unshift(epoch);
      return;
    }
    this.released = epoch;
    this.releasedLsn = lsn;
    this.scheduler.release(epoch);
  }
}
