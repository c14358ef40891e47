import { join } from 'node:path';
import { storeTap } from './store-tap';
import { fsOps } from './fs-ops';
import { ioCounts } from './io-counters';
import type { Logger } from '../logger';
import type { StorableMessage } from '../broker/storage';
import type { SyncScheduler, SyncTarget } from './sync-scheduler';
import { appendMessageRecord } from './message-record';
import { scanSegment } from './segment-scan';
import { segmentName } from './segment';
import { truncatePath, writePending } from './file-io';
import { PendingWrites } from './pending-writes';
import { keepAside } from './log-recovery';

/** One segment file of the shared body log. */
class SharedSegment {
  /** index records of live messages, in every queue, that name a record of this segment */
  refs = 0;
  /** set while a deletion waits for the acks that released it to be written */
  dropping = false;
  /** appended records not yet written */
  readonly pending = new PendingWrites();

  constructor(
    readonly id: number,
    readonly fd: number,
    /** bytes of the file on disk (written) */
    public written: number,
  ) {}

  get size(): number {
    return this.written + this.pending.length;
  }
}

/**
 * Messages routed to two or more durable queues, stored once (issue 14, scenario n). Each
 * record is a whole message record, as in a queue log; each queue that takes the message
 * appends only a small index record naming it (FLAG_SHARED). A segment is kept while any
 * live index record names it: the queue logs count their references per shared segment and
 * release them as messages are acked, purged, or their queue deleted. The counts live in
 * memory only and are rebuilt at start-up from every queue's live index records; until
 * every queue has been recovered (seal) nothing is deleted.
 *
 * Appends share the queue logs' group commit: the scheduler writes this log first in each
 * round (lead), and a queue log does not write index records while this log still has
 * appends it could not write, so a reference never reaches disk before its body does.
 */
export class SharedBodyLog implements SyncTarget {
  readonly segments = new Map<number, SharedSegment>();
  private current: SharedSegment | null = null;
  private nextId = 1;
  private sealed = false;
  /** Segment and size of the last record stored (fields, so store() makes no result object). */
  lastSegment = 0;
  lastSize = 0;
  /** The message last stored and where: the next queue taking the same message in this turn names the same record. */
  private lastMessage: StorableMessage | null = null;
  private lastOffset = 0;
  /** Set while writes fail (other than a full disk): fanout messages are refused meanwhile. */
  failure: Error | null = null;
  /**
   * Called once before the first record is stored (it marks the data directory as holding
   * shared bodies, so that a broker that cannot read them refuses it); null once done.
   */
  beforeFirstStore: (() => void) | null = null;

  constructor(
    readonly dir: string,
    private readonly scheduler: SyncScheduler,
    private readonly segmentSize: number,
    private readonly log: Logger,
  ) {
    fsOps.mkdirSync(dir, { recursive: true });
    if (storeTap !== null) storeTap.madeDir(dir);
  }

  /** Bytes appended and not yet written: a queue log holds back its index records while there are. */
  unwritten = 0;

  /**
   * Stores a message, or finds the record it was stored in moments ago by another queue
   * (the same message object, routed to several queues in one publish). Returns the
   * record's offset; its segment and size are in lastSegment / lastSize.
   */
  store(msg: StorableMessage, publishedAt: number): number {
    const cur = this.current;
    if (msg === this.lastMessage && cur !== null && cur.id === this.lastSegment) return this.lastOffset;
    let seg = cur;
    if (seg === null || seg.size >= this.segmentSize) seg = this.rolloverOrStay();
    const offset = seg.size;
    const size = appendMessageRecord(seg.pending, msg, publishedAt, 0);
    this.unwritten += size;
    this.lastMessage = msg;
    this.lastSegment = seg.id;
    this.lastSize = size;
    this.lastOffset = offset;
    this.scheduler.markDirty(this, true);
    return offset;
  }

  /**
   * Whether messages can be stored here now: not while writes fail, nor before the data
   * directory could be marked as holding shared bodies. Otherwise a queue stores the whole
   * message itself, as before shared bodies.
   */
  usable(): boolean {
    if (this.failure !== null) return false;
    if (this.beforeFirstStore === null) return true;
    try {
      this.beforeFirstStore();
    } catch (err) {
      this.log.error(
        { err, dir: this.dir },
        'cannot mark the data directory as holding shared bodies; queues store whole messages meanwhile',
      );
      return false;
    }
    this.beforeFirstStore = null;
    return true;
  }

  /** `n` more live index records name a record of `segment`. */
  ref(segment: number, n: number): void {
    const seg = this.segments.get(segment);
    if (seg !== undefined) seg.refs += n;
  }

  /** `n` index records naming `segment` are done with; a segment nothing names goes. */
  release(segment: number, n: number): void {
    const seg = this.segments.get(segment);
    if (seg === undefined) return;
    seg.refs -= n;
    if (seg.refs < 0) {
      this.log.error({ dir: this.dir, segment, refs: seg.refs }, 'shared segment released more often than referenced');
      seg.refs = 0;
    }
    if (seg.refs === 0 && seg !== this.current) this.dropLater(seg);
  }

  /**
   * The record at `offset` of `segment`, `size` bytes, read back (pending bytes included);
   * null when the segment is gone or ends before the record does (cut after a crash).
   * Throws when the file cannot be read (EIO): the caller may try again later.
   */
  read(segment: number, offset: number, size: number): Buffer | null {
    const seg = this.segments.get(segment);
    if (seg === undefined || offset + size > seg.size) return null;
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    const fromFile = Math.max(0, Math.min(size, seg.written - offset));
    while (got < fromFile) {
      const n = fsOps.readSync(seg.fd, buf, got, fromFile - got, offset + got);
      ioCounts.readCount++;
      ioCounts.readBytes += n;
      if (n === 0) return null;
      got += n;
    }
    if (got < size) got += seg.pending.copyOut(offset + got - seg.written, buf, got);
    return got === size ? buf : null;
  }

  /** A shared record found damaged: its bytes are kept aside once, however many queues name it. */
  keepAside(segment: number, offset: number, bytes: Buffer): string | null {
    return keepAside(this.dir, segment, offset, bytes);
  }

  // ---- writing (SyncTarget) ------------------------------------------------------------

  writePending(fds: Set<number>): void {
    // The message is not held past the turn that stored it (a large body would stay in memory).
    this.lastMessage = null;
    for (const seg of this.segments.values()) {
      const n = writePending(seg.fd, seg.pending, seg.written);
      if (n === 0) continue;
      seg.written += n;
      this.unwritten -= n;
      fds.add(seg.fd);
    }
  }

  writeFailed(err: Error | null): void {
    if (err !== null)
      this.log.error(
        { err, dir: this.dir },
        'shared body log writes fail: messages for several durable queues are refused until they work again',
      );
    else if (this.failure !== null) this.log.info({ dir: this.dir }, 'shared body log writes work again');
    this.failure = err;
  }

  private rolloverOrStay(): SharedSegment {
    try {
      const prev = this.current;
      const id = this.nextId;
      const seg = new SharedSegment(id, fsOps.openSync(join(this.dir, `${segmentName(id)}.seg`), 'w+'), 0);
      if (storeTap !== null) storeTap.opened(seg.fd, join(this.dir, `${segmentName(id)}.seg`), true);
      this.nextId++;
      this.segments.set(id, seg);
      this.current = seg;
      if (prev !== null && prev.refs === 0 && this.sealed) this.dropLater(prev);
      return seg;
    } catch (err) {
      if (this.current === null) throw err;
      this.log.error({ err, dir: this.dir }, 'cannot start a new shared segment; appending to the current one');
      return this.current;
    }
  }

  /**
   * Deletes a segment nothing names once the acks that released it are written: were it
   * deleted first, a crash in between would bring back index records naming nothing.
   */
  private dropLater(seg: SharedSegment): void {
    if (!this.sealed || seg.dropping) return;
    seg.dropping = true;
    this.scheduler.afterDurable(() => {
      seg.dropping = false;
      if (seg.refs > 0 || seg === this.current || this.segments.get(seg.id) !== seg) return;
      this.segments.delete(seg.id);
      this.scheduler.retire(seg.fd);
      try {
        fsOps.unlinkSync(join(this.dir, `${segmentName(seg.id)}.seg`));
        if (storeTap !== null) storeTap.removed(join(this.dir, `${segmentName(seg.id)}.seg`));
      } catch {
        // already gone
      }
    });
  }

  // ---- recovery ----------------------------------------------------------------------

  /**
   * Opens the segments found on disk. Only the newest one with data can end in appends a
   * crash cut short (never confirmed, so never named by a confirmed message): it is checked
   * record by record and cut at its last intact record. Older records are checked when
   * read. Nothing is deleted before seal(): the references are not counted yet.
   */
  recover(): void {
    const ids = fsOps
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.seg'))
      .map((f) => Number(f.slice(0, -4)))
      .filter((n) => Number.isSafeInteger(n) && n > 0)
      .sort((a, b) => a - b);
    let newest = ids.length - 1;
    while (newest > 0 && fsOps.statSync(join(this.dir, `${segmentName(ids[newest])}.seg`)).size === 0) newest--;
    for (let i = 0; i < ids.length; i++) {
      const path = join(this.dir, `${segmentName(ids[i])}.seg`);
      let size = fsOps.statSync(path).size;
      if (i >= newest && size > 0) {
        const scan = scanSegment(fsOps.readFileSync(path), true);
        if (scan.end < size) {
          this.log.warn({ segment: path, at: scan.end, size }, 'torn tail of the newest shared segment cut at the last intact record');
          truncatePath(path, scan.end);
          size = scan.end;
        }
      }
      const fd = fsOps.openSync(path, 'r+');
      if (storeTap !== null) storeTap.opened(fd, path, false);
      this.segments.set(ids[i], new SharedSegment(ids[i], fd, size));
    }
    this.nextId = (ids.length > 0 ? ids[ids.length - 1] : 0) + 1;
  }

  /** Every queue has counted its references: segments nothing names go. */
  seal(): void {
    this.sealed = true;
    let dropped = 0;
    for (const seg of [...this.segments.values()]) {
      if (seg.refs > 0 || seg === this.current) continue;
      this.segments.delete(seg.id);
      this.scheduler.retire(seg.fd);
      fsOps.rmSync(join(this.dir, `${segmentName(seg.id)}.seg`), { force: true });
      if (storeTap !== null) storeTap.removed(join(this.dir, `${segmentName(seg.id)}.seg`));
      dropped++;
    }
    if (dropped > 0) this.log.info({ dir: this.dir, segments: dropped }, 'shared segments no queue names any more removed');
  }
}
