import { fsOps } from './fs-ops';
import { storeTap } from './store-tap';
import { ioCounts } from './io-counters';
import { join } from 'node:path';
import type { Logger } from '../logger';
import type { StorableMessage } from '../broker/storage';
import type { SyncScheduler, SyncTarget } from './sync-scheduler';
import {
  encodeIndexRecord,
  appendMessageRecord,
  FLAG_PAGED,
  FLAG_SHARED,
  indexSegment,
  RECORD_HEADER,
  recordFlags,
  recordIntact,
  recordSize,
} from './message-record';
import { ACK, DELIVERED } from './ack-records';
import { writePending } from './file-io';
import { planCompaction, writeCompactionMarker } from './compaction';
import { keepAside, recoverLog } from './log-recovery';
import { Run, Segment, segmentName } from './segment';
import type { SharedBodyLog } from './shared-log';

/** How much of a segment a purge reads at a time to find where its records start. */
const HEADER_SCAN_BYTES = 64 * 1024;

/** A segment is compacted once fewer than this share of its records are still live. */
const COMPACT_BELOW = 0.1;

/** Where the live records of a compacted segment went, until each is acked. */
interface Forward {
  target: number;
  positions: Map<number, number>;
}

/** What a recovery found damaged, for the start-up summary. */
export interface LogDamage {
  ranges: number;
  bytes: number;
}

/**
 * One queue's messages on disk: append-only segment files of message records, each with
 * a companion file of 8-byte ack/delivered records. A segment whose messages are all acked
 * is deleted. Appends are buffered and written once per event-loop turn by the
 * SyncScheduler, which also fdatasyncs them (group commit). What could not be written
 * stays pending and is written again, at the same offset, on the next try.
 */
export class QueueLog implements SyncTarget {
  readonly segments = new Map<number, Segment>();
  private current: Segment | null = null;
  private nextId = 1;
  private readonly forwards = new Map<number, Forward>();
  private compactQueued = false;
  /** Set by the owner: whether it still reads records of a segment in place (runs). */
  inUse: (segment: number) => boolean = () => false;
  /** Segment and size of the last append (fields, so append allocates no result object). */
  lastSegment = 0;
  lastSize = 0;
  /** The shared segment named by the last append (0: it held the message itself). */
  lastShared = 0;
  /** Index records are pending: they are written only after the bodies they name. */
  private pendingIndex = false;
  /** The sync round an append made now is part of: a confirm for it waits for this. */
  get syncEpoch(): number {
    return this.scheduler.epoch;
  }

  /** Set while this log's writes fail (other than for a full disk): its queue refuses persistent messages. */
  failure: Error | null = null;

  writeFailed(err: Error | null): void {
    if (err !== null)
      this.log.error({ err, dir: this.dir }, 'queue log writes fail: the queue refuses persistent messages until they work again');
    else if (this.failure !== null) this.log.info({ dir: this.dir }, 'queue log writes work again');
    this.failure = err;
  }

  /** Damage found by the last recovery. */
  damage: LogDamage = { ranges: 0, bytes: 0 };

  constructor(
    readonly dir: string,
    private readonly scheduler: SyncScheduler,
    private readonly segmentSize: number,
    private readonly log: Logger,
    /** where messages taken by several durable queues keep their body (null: never shared) */
    readonly shared: SharedBodyLog | null = null,
  ) {
    fsOps.mkdirSync(dir, { recursive: true });
    if (storeTap !== null) storeTap.madeDir(dir);
  }

  // ---- writing ----------------------------------------------------------------------

  /** Appends a message; returns its position (segment and size in lastSegment/lastSize). */
  append(msg: StorableMessage, publishedAt: number, flags: number): number {
    let seg = this.current;
    if (seg === null || seg.size >= this.segmentSize) seg = this.rolloverOrStay();
    const position = seg.size;
    const size = appendMessageRecord(seg.pending, msg, publishedAt, flags);
    seg.live++;
    if ((flags & FLAG_PAGED) === 0) seg.records++;
    this.lastSegment = seg.id;
    this.lastSize = size;
    this.lastShared = 0;
    // Paged copies of transient messages need no fsync: a crash loses them by definition.
    this.scheduler.markDirty(this, (flags & FLAG_PAGED) === 0);
    return position;
  }

  /**
   * Appends an index record naming the message's record in the shared body log (stored
   * there now, or moments ago for another queue the same message was routed to). Returns
   * its position, like append; lastShared names the shared segment.
   */
  appendShared(msg: StorableMessage, publishedAt: number): number {
    const shared = this.shared!;
    const bodyAt = shared.store(msg, publishedAt);
    const target = shared.lastSegment;
    let seg = this.current;
    if (seg === null || seg.size >= this.segmentSize) seg = this.rolloverOrStay();
    const record = encodeIndexRecord(target, bodyAt, shared.lastSize);
    const position = seg.size;
    seg.pending.append(record);
    seg.live++;
    seg.records++;
    addRefs(seg, target, 1);
    shared.ref(target, 1);
    this.pendingIndex = true;
    this.lastSegment = seg.id;
    this.lastSize = record.length;
    this.lastShared = target;
    this.scheduler.markDirty(this, true);
    return position;
  }

  /** `shared`: the shared segment the record names, for an index record (0 otherwise). */
  ack(segment: number, position: number, shared = 0): void {
    const seg = this.segments.get(segment);
    const f = this.forwards.get(segment);
    const to = f?.positions.get(position);
    if (to !== undefined) {
      // Moved by compaction. Ack the original too while its segment lingers, so that a
      // crash before it is deleted brings back neither copy.
      f!.positions.delete(position);
      if (f!.positions.size === 0) this.forwards.delete(segment);
      if (seg !== undefined) this.ackRecord(seg, position, ACK);
      return this.ack(f!.target, to, shared);
    }
    if (seg === undefined) return;
    this.ackRecord(seg, position, ACK);
    if (shared !== 0) this.unref(seg, shared);
    if (--seg.live === 0 && seg !== this.current) this.dropSegment(seg);
    else if (seg !== this.current && seg.live < seg.records * COMPACT_BELOW) this.queueCompaction();
  }

  delivered(segment: number, position: number): void {
    const f = this.forwards.get(segment);
    const to = f?.positions.get(position);
    if (to !== undefined) return this.delivered(f!.target, to);
    const seg = this.segments.get(segment);
    if (seg !== undefined) this.ackRecord(seg, position, DELIVERED);
  }

  /**
   * Acks every message in these runs (a purge) without reading them back: a segment whose
   * live messages are all in the runs goes as a whole; otherwise only the records' headers
   * are read, a chunk at a time, to find where each record starts.
   */
  settleRuns(runs: Run[]): void {
    const bySegment = new Map<number, Run[]>();
    for (const r of runs) {
      let list = bySegment.get(r.segment);
      if (list === undefined) bySegment.set(r.segment, (list = []));
      list.push(r);
    }
    for (const [id, list] of bySegment) {
      const seg = this.segments.get(id);
      if (seg === undefined) continue;
      let count = 0;
      for (const r of list) count += r.count;
      if (count === seg.live) {
        seg.live = 0;
        if (seg === this.current) this.current = null;
        this.dropSegment(seg);
        continue;
      }
      const positions: number[] = [];
      const names: number[] = [];
      for (const r of list) this.recordPositions(r, positions, names);
      seg.live -= positions.length;
      for (const s of names) if (s !== 0) this.unref(seg, s);
      for (let i = 0; i < positions.length; i++) seg.addAck(positions[i], ACK);
      this.scheduler.markDirty(this, false);
    }
  }

  /**
   * The positions of a run's records (less those it skips), found from their headers alone,
   * and in `names` the shared segment each names (0: not an index record).
   */
  private recordPositions(run: Run, out: number[], names: number[]): void {
    let pos = run.position;
    let left = run.count;
    while (left > 0 && pos < run.end) {
      const chunk = this.read(run.segment, pos, Math.min(HEADER_SCAN_BYTES, run.end - pos));
      let off = 0;
      while (left > 0 && off + RECORD_HEADER <= chunk.length) {
        const size = recordSize(chunk, off, chunk.length);
        if (size < 0) return; // a run always ends on a record boundary; anything else is damage
        const index = (recordFlags(chunk, off) & FLAG_SHARED) !== 0;
        if (index && off + size > chunk.length) break; // read it whole with the next chunk
        if (run.skip === null || !run.skip.has(pos + off)) {
          out.push(pos + off);
          // A damaged index record names nothing (recovery did not count it either).
          names.push(index && recordIntact(chunk, off, size) ? indexSegment(chunk, off) : 0);
          left--;
        }
        off += size;
      }
      if (off === 0) return;
      pos += off; // past the last header seen, which may skip a body not in the chunk
    }
  }

  /** An index record in `seg` naming shared segment `shared` is done with. */
  private unref(seg: Segment, shared: number): void {
    const refs = seg.sharedRefs;
    const n = refs?.get(shared);
    if (n === undefined) return;
    if (n <= 1) refs!.delete(shared);
    else refs!.set(shared, n - 1);
    this.shared!.release(shared, 1);
  }

  /** A segment goes: the index records still live in it no longer name anything. */
  private releaseRefs(seg: Segment): void {
    const refs = seg.sharedRefs;
    if (refs === null) return;
    seg.sharedRefs = null;
    for (const [s, n] of refs) this.shared!.release(s, n);
  }

  private ackRecord(seg: Segment, position: number, type: number): void {
    seg.addAck(position, type);
    this.scheduler.markDirty(this, false);
  }

  /**
   * A new segment, or (when its files cannot be created, say on a full disk) the current
   * one grown past its size: the append stays pending in memory until writes succeed.
   */
  private rolloverOrStay(): Segment {
    try {
      return this.rollover();
    } catch (err) {
      if (this.current === null) throw err;
      this.log.error({ err, dir: this.dir }, 'cannot start a new segment; appending to the current one');
      return this.current;
    }
  }

  private rollover(): Segment {
    const prev = this.current;
    const id = this.nextId;
    const fd = fsOps.openSync(join(this.dir, `${segmentName(id)}.seg`), 'w+');
    let ackFd: number;
    try {
      ackFd = fsOps.openSync(join(this.dir, `${segmentName(id)}.ack`), 'w+');
    } catch (err) {
      this.scheduler.retire(fd);
      throw err;
    }
    this.nextId++;
    if (storeTap !== null) {
      storeTap.opened(fd, join(this.dir, `${segmentName(id)}.seg`), true);
      storeTap.opened(ackFd, join(this.dir, `${segmentName(id)}.ack`), true);
    }
    const seg = new Segment(id, fd, ackFd, 0, 0);
    this.segments.set(id, seg);
    this.current = seg;
    if (prev !== null && prev.live === 0) this.dropSegment(prev);
    return seg;
  }

  /**
   * Writes what is pending. A record is dropped from memory only once its write has
   * succeeded; after a failure (full disk, EIO) everything is written again from the same
   * offsets, so a partial write is overwritten, never followed.
   */
  writePending(fds: Set<number>): void {
    if (this.pendingIndex) {
      // A reference must never reach the disk before what it names: while the shared log
      // cannot write, this log waits (and is retried with it).
      if (this.shared!.unwritten > 0) throw Object.assign(new Error('shared body log not written yet'), { code: 'EAGAIN' });
      this.pendingIndex = false;
    }
    for (const seg of this.segments.values()) {
      const n = writePending(seg.fd, seg.pending, seg.written);
      if (n > 0) {
        seg.written += n;
        fds.add(seg.fd);
      }
      seg.ackWritten += writePending(seg.ackFd, seg.acks, seg.ackWritten);
    }
  }

  /**
   * `inOrder`: the files must be gone before the caller's next step (compaction removes its
   * marker only after its source), so they are deleted here and now.
   */
  private dropSegment(seg: Segment, inOrder = false): void {
    this.releaseRefs(seg);
    this.segments.delete(seg.id);
    this.scheduler.retire(seg.fd);
    this.scheduler.retire(seg.ackFd);
    const segFile = join(this.dir, `${segmentName(seg.id)}.seg`);
    const ackFile = join(this.dir, `${segmentName(seg.id)}.ack`);
    if (storeTap !== null) {
      storeTap.removed(segFile);
      storeTap.removed(ackFile);
    }
    if (!inOrder) {
      // In the thread pool: freeing a segment's blocks takes milliseconds. The segment goes
      // before its acks, as below: a crash in between never finds records without their acks.
      fsOps.unlink(segFile, () => fsOps.unlink(ackFile, ignoreMissing));
      return;
    }
    for (const file of [segFile, ackFile]) {
      try {
        fsOps.unlinkSync(file);
      } catch {
        // already gone
      }
    }
  }

  // ---- compaction -------------------------------------------------------------------

  private queueCompaction(): void {
    if (this.compactQueued) return;
    this.compactQueued = true;
    setTimeout(() => this.compactSparse(), 100).unref();
  }

  /** Compacts every old segment whose live records are few. */
  private compactSparse(): void {
    this.compactQueued = false;
    for (const seg of [...this.segments.values()]) {
      if (seg === this.current || seg.compacting || seg.live === 0 || seg.live >= seg.records * COMPACT_BELOW) continue;
      if (this.inUse(seg.id)) continue;
      try {
        this.compact(seg);
      } catch (err) {
        this.log.error({ err, dir: this.dir, segment: seg.id }, 'segment compaction failed; it stays as it is');
      }
    }
  }

  /**
   * Copies a segment's few live records to the current segment and deletes it once the
   * copies are on disk. A marker file written first names the copies, so that after a
   * crash in between, recovery keeps the originals and drops the copies. Each record's
   * checksum is verified before it is copied: a copy gets a fresh checksum, which must
   * never vouch for bytes that were already bad.
   */
  private compact(seg: Segment): void {
    if (seg.pending.length > 0 || seg.acks.length > 0) this.scheduler.writeNow(this);
    const plan = planCompaction(this.dir, seg);
    if ('keep' in plan) {
      if (plan.position !== undefined) this.log.error({ dir: this.dir, segment: seg.id, position: plan.position }, plan.keep);
      return;
    }
    let target = this.current;
    if (target === null || target.size >= this.segmentSize) target = this.rolloverOrStay();
    const start = target.size;
    const marker = writeCompactionMarker(this.dir, seg.id, target.id, start, start + plan.bytes);
    const positions = new Map<number, number>();
    for (let i = 0; i < plan.live.length; i++) {
      const to = target.size;
      target.pending.append(plan.copies[i]);
      positions.set(plan.live[i], to);
      if (plan.delivered.has(plan.live[i])) this.ackRecord(target, to, DELIVERED);
    }
    target.live += plan.live.length;
    target.records += plan.live.length;
    // The copies of index records name the same shared records: the references move along.
    if (seg.sharedRefs !== null) {
      for (const [s, n] of seg.sharedRefs) addRefs(target, s, n);
      seg.sharedRefs = null;
    }
    seg.compacting = true;
    seg.live = 0;
    this.forwards.set(seg.id, { target: target.id, positions });
    this.scheduler.markDirty(this, true);
    this.scheduler.afterDurable(() => {
      this.dropSegment(seg, true);
      fsOps.rmSync(marker, { force: true });
      if (storeTap !== null) storeTap.removed(marker);
    });
    this.log.info({ dir: this.dir, segment: seg.id, moved: plan.live.length, into: target.id }, 'segment compacted');
  }

  // ---- reading ----------------------------------------------------------------------

  /**
   * Up to `max` bytes of a segment from `position` (less if the segment ends sooner).
   * Bytes not yet written come from the pending appends, so reading never has to wait
   * for (or fail with) a write.
   */
  read(segment: number, position: number, max: number): Buffer {
    const seg = this.segments.get(segment);
    if (seg === undefined) throw new Error(`segment ${segment} is gone`);
    const len = Math.max(0, Math.min(max, seg.size - position));
    const buf = Buffer.allocUnsafe(len);
    const fromFile = Math.max(0, Math.min(len, seg.written - position));
    let got = 0;
    while (got < fromFile) {
      const n = fsOps.readSync(seg.fd, buf, got, fromFile - got, position + got);
      ioCounts.readCount++;
      ioCounts.readBytes += n;
      if (n === 0) return buf.subarray(0, got);
      got += n;
    }
    if (got < len) got += seg.pending.copyOut(position + got - seg.written, buf, got);
    return got === len ? buf : buf.subarray(0, got);
  }

  /**
   * A record found damaged when read back (older segments are checked as they are read,
   * not at start-up): it is counted and its bytes kept aside like damage found at start-up.
   */
  damagedRecord(segment: number, position: number, bytes: Buffer): string | null {
    this.damage.ranges++;
    this.damage.bytes += bytes.length;
    return keepAside(this.dir, segment, position, bytes);
  }

  // ---- recovery ---------------------------------------------------------------------

  /** Reads the log back at start-up; returns, as runs, the messages not yet acked. */
  recover(): Run[] {
    const r = recoverLog(this.dir, this.log);
    for (const seg of r.segments) {
      this.segments.set(seg.id, seg);
      if (seg.sharedRefs !== null) for (const [s, n] of seg.sharedRefs) this.shared?.ref(s, n);
    }
    // Voided compaction copies get acked for good, so a later restart needs no marker. The
    // markers go only once those acks are written and synced: a crash before that (before
    // the scheduler's first turn) would otherwise find neither marker nor acks, and bring
    // back each moved message twice. If the write fails, the markers stay and the next
    // start voids the same copies again.
    for (const [seg, p] of r.voided) this.ackRecord(seg, p, ACK);
    try {
      if (r.voided.length > 0) {
        this.scheduler.writeNow(this);
        for (const seg of new Set(r.voided.map(([s]) => s))) fsOps.fdatasyncSync(seg.ackFd);
      }
      for (const m of r.markers) {
        fsOps.rmSync(m, { force: true });
        if (storeTap !== null) storeTap.removed(m);
      }
    } catch (err) {
      this.log.error({ err, dir: this.dir }, 'cannot write the acks of void compaction copies yet; their markers stay');
    }
    this.nextId = r.lastId + 1;
    this.damage = { ranges: r.damagedRanges, bytes: r.damagedBytes };
    return r.runs;
  }

  /** The queue was deleted: its files go. */
  destroy(): void {
    for (const seg of [...this.segments.values()]) {
      this.releaseRefs(seg);
      this.segments.delete(seg.id);
      this.scheduler.retire(seg.fd);
      this.scheduler.retire(seg.ackFd);
    }
    this.current = null;
    fsOps.rmSync(this.dir, { recursive: true, force: true });
    if (storeTap !== null) storeTap.removed(this.dir);
  }
}

function addRefs(seg: Segment, shared: number, n: number): void {
  const refs = (seg.sharedRefs ??= new Map<number, number>());
  refs.set(shared, (refs.get(shared) ?? 0) + n);
}

/** A segment file already gone is what deleting it wanted. */
function ignoreMissing(): void {}
