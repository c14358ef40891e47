import Denque from 'denque';

/** Default size of the leader's replication backlog. */
export const DEFAULT_BACKLOG_BYTES = 64 * 1024 * 1024;
/** The backlog's ops live in slabs of this size (or one op's size, if bigger), reused once emptied. */
const SLAB_BYTES = 4 * 1024 * 1024;
/** Emptied slabs kept for reuse; more are left to the garbage collector. */
const SPARE_SLABS = 2;

/** A slab's ops, each as `u32 length | op`, one after the other: a run of them is an OPS frame's payload as is. */
interface Slab {
  buf: Buffer;
  used: number;
  /** ops in it still held */
  live: number;
}

/**
 * The leader's recent ops, encoded, in LSN order: one bounded log that every follower reads
 * from by LSN (as Redis's replication backlog), so that a slow follower costs the leader no
 * memory beyond it. LSNs are continuous from `firstLsn` to `lastLsn`; the oldest go when the
 * bytes held pass `maxBytes`. A follower whose next LSN went must catch up again.
 *
 * The ops are written into slabs that are reused once their ops are evicted, not into a
 * buffer each: ops live about as long as the backlog takes to turn over (a second or two
 * under load), long enough to reach the old generation, and tens of megabytes a second of
 * such buffers had the leader's garbage collector run full collections back to back.
 * Readers copy out (buildOpsFrame); a view from get() is valid until its op is evicted.
 */
export class OpBacklog {
  /** the LSN of the newest op pushed (0: none yet) */
  lastLsn = 0;
  /** bytes of every op ever pushed: lag in bytes is a difference of two such offsets */
  totalBytes = 0;
  /** bytes held now */
  bytes = 0;
  evicted = 0;
  /** slabs allocated so far (the rest of the time, emptied ones are reused) */
  slabsMade = 0;
  /** where reserve() placed the next op in the slab it returned */
  writeAt = 0;
  /** LSNs a follower's catch-up will stream from (its snapshot point + 1), with counts */
  private readonly pins = new Map<number, number>();
  /** per op held, in LSN order: its slab, and where its length prefix starts there */
  private readonly slabs = new Denque<Slab>();
  private readonly starts = new Denque<number>();
  /** totalBytes after each op held, in the same order */
  private readonly ends = new Denque<number>();
  private current: Slab | null = null;
  private readonly spare: Slab[] = [];

  constructor(readonly maxBytes = DEFAULT_BACKLOG_BYTES) {}

  /** The LSN of the oldest op held (lastLsn + 1 when empty). */
  get firstLsn(): number {
    return this.lastLsn - this.ends.length + 1;
  }

  /**
   * Room for an op of `size` bytes: returns the slab to write it into, at `writeAt`; commit()
   * then makes it op `lsn`. Nothing is held until then.
   */
  reserve(size: number): Buffer {
    let slab = this.current;
    if (slab === null || slab.buf.length - slab.used < size + 4) {
      if (slab !== null && slab.live === 0) this.recycle(slab);
      slab = this.spare.pop() ?? null;
      if (slab === null || slab.buf.length < size + 4) {
        slab = { buf: Buffer.allocUnsafe(Math.max(SLAB_BYTES, size + 4)), used: 0, live: 0 };
        this.slabsMade++;
      }
      this.current = slab;
    }
    slab.buf.writeUInt32BE(size, slab.used);
    this.writeAt = slab.used + 4;
    return slab.buf;
  }

  /** The op of `size` bytes written where reserve() said is op `lsn`. */
  commit(lsn: number, size: number): void {
    if (lsn !== this.lastLsn + 1 && this.lastLsn !== 0) throw new Error(`backlog: op ${lsn} after ${this.lastLsn}`);
    const slab = this.current!;
    this.lastLsn = lsn;
    this.totalBytes += size;
    this.bytes += size;
    this.slabs.push(slab);
    this.starts.push(slab.used);
    this.ends.push(this.totalBytes);
    slab.used += 4 + size;
    slab.live++;
    // Always keep the newest op, however big: a follower in step can still read it. A
    // pinned op stays up to twice the size: a catch-up slower than the backlog covers would
    // otherwise end `lagging` and start again, for ever under a steady load.
    while (this.bytes > this.maxBytes && this.ends.length > 1 && (this.bytes > 2 * this.maxBytes || !this.pinnedAt(this.firstLsn))) {
      this.evictOldest();
    }
  }

  /** Holds a copy of `op` as op `lsn`. */
  push(op: Buffer, lsn: number): void {
    const buf = this.reserve(op.length);
    op.copy(buf, this.writeAt);
    this.commit(lsn, op.length);
  }

  private evictOldest(): void {
    const slab = this.slabs.shift()!;
    const start = this.starts.shift()!;
    this.bytes -= slab.buf.readUInt32BE(start);
    this.ends.shift();
    this.evicted++;
    if (--slab.live === 0 && slab !== this.current) this.recycle(slab);
  }

  private recycle(slab: Slab): void {
    slab.used = 0;
    if (this.spare.length < SPARE_SLABS && slab.buf.length === SLAB_BYTES) this.spare.push(slab);
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

  /** The op `lsn`, as a view valid until it is evicted; undefined when not held. */
  get(lsn: number): Buffer | undefined {
    const i = lsn - this.firstLsn;
    if (i < 0 || i >= this.ends.length) return undefined;
    const slab = this.slabs.peekAt(i)!;
    const start = this.starts.peekAt(i)! + 4;
    return slab.buf.subarray(start, start + slab.buf.readUInt32BE(start - 4));
  }

  /** The size of op `lsn`, which must be held. */
  sizeOf(lsn: number): number {
    const i = lsn - this.firstLsn;
    return this.slabs.peekAt(i)!.buf.readUInt32BE(this.starts.peekAt(i));
  }

  /**
   * Copies ops `from` up to (not including) `to`, each as `u32 length | op`, to `target` at
   * `at`: one copy per run of them in one slab.
   */
  copyOut(from: number, to: number, target: Buffer, at: number): void {
    const first = this.firstLsn;
    let i = from - first;
    const end = to - first;
    while (i < end) {
      const slab = this.slabs.peekAt(i)!;
      const runStart = this.starts.peekAt(i)!;
      let runEnd = runStart;
      while (i < end && this.slabs.peekAt(i) === slab && this.starts.peekAt(i) === runEnd) {
        runEnd += 4 + slab.buf.readUInt32BE(runEnd);
        i++;
      }
      at += slab.buf.copy(target, at, runStart, runEnd);
    }
  }

  /**
   * Bytes of ops after `lsn` (what a follower that holds up to `lsn` lacks); at least the
   * whole backlog when `lsn` was evicted already.
   */
  bytesAfter(lsn: number): number {
    if (lsn >= this.lastLsn) return 0;
    const first = this.firstLsn;
    if (lsn < first - 1 || this.ends.length === 0) return Math.max(this.bytes, this.maxBytes) + 1;
    if (lsn === first - 1) return this.bytes;
    return this.totalBytes - this.ends.peekAt(lsn - first)!;
  }
}
