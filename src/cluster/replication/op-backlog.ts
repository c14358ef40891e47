import Denque from 'denque';

/** Default size of the leader's replication backlog. */
export const DEFAULT_BACKLOG_BYTES = 64 * 1024 * 1024;

/**
 * The leader's recent ops, encoded, in LSN order: one bounded ring that every follower reads
 * from by LSN (as Redis's replication backlog), so that a slow follower costs the leader no
 * memory beyond it. LSNs are continuous from `firstLsn` to `lastLsn`; the oldest go when the
 * bytes held pass `maxBytes`. A follower whose next LSN went must catch up again.
 */
export class OpBacklog {
  /** the LSN of the newest op pushed (0: none yet) */
  lastLsn = 0;
  /** bytes of every op ever pushed: lag in bytes is a difference of two such offsets */
  totalBytes = 0;
  /** bytes held now */
  bytes = 0;
  evicted = 0;
  /** LSNs a follower's catch-up will stream from (its snapshot point + 1), with counts */
  private readonly pins = new Map<number, number>();
  private readonly ops = new Denque<Buffer>();
  /** totalBytes after each op held, in the same order */
  private readonly ends = new Denque<number>();

  constructor(readonly maxBytes = DEFAULT_BACKLOG_BYTES) {}

  /** The LSN of the oldest op held (lastLsn + 1 when empty). */
  get firstLsn(): number {
    return this.lastLsn - this.ops.length + 1;
  }

  push(op: Buffer, lsn: number): void {
    if (lsn !== this.lastLsn + 1 && this.lastLsn !== 0) throw new Error(`backlog: op ${lsn} after ${this.lastLsn}`);
    this.lastLsn = lsn;
    this.totalBytes += op.length;
    this.bytes += op.length;
    this.ops.push(op);
    this.ends.push(this.totalBytes);
    // Always keep the newest op, however big: a follower in step can still read it. A
    // pinned op stays up to twice the size: a catch-up slower than the backlog covers would
    // otherwise end `lagging` and start again, for ever under a steady load.
    while (this.bytes > this.maxBytes && this.ops.length > 1 && (this.bytes > 2 * this.maxBytes || !this.pinnedAt(this.firstLsn))) {
      this.bytes -= this.ops.shift()!.length;
      this.ends.shift();
      this.evicted++;
    }
  }

  /** Keeps the ops from `lsn` on (within twice maxBytes) until the returned function is called. */
  pin(lsn: number): () => void {
    this.pins.set(lsn, (this.pins.get(lsn) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.pins.get(lsn)! - 1;
      if (n === 0) this.pins.delete(lsn);
      else this.pins.set(lsn, n);
    };
  }

  /** Whether evicting the op at `lsn` would take one a catch-up will need. */
  private pinnedAt(lsn: number): boolean {
    if (this.pins.size === 0) return false;
    for (const p of this.pins.keys()) if (p <= lsn) return true;
    return false;
  }

  /** Whether a follower can read on from `lsn` (the next op it needs). */
  has(lsn: number): boolean {
    return lsn >= this.firstLsn && lsn <= this.lastLsn + 1;
  }

  get(lsn: number): Buffer | undefined {
    return this.ops.peekAt(lsn - this.firstLsn);
  }

  /**
   * Bytes of ops after `lsn` (what a follower that holds up to `lsn` lacks); at least the
   * whole backlog when `lsn` was evicted already.
   */
  bytesAfter(lsn: number): number {
    if (lsn >= this.lastLsn) return 0;
    const first = this.firstLsn;
    if (lsn < first - 1 || this.ops.length === 0) return Math.max(this.bytes, this.maxBytes) + 1;
    if (lsn === first - 1) return this.bytes;
    return this.totalBytes - this.ends.peekAt(lsn - first)!;
  }
}
