import Denque from 'denque';
import type { Logger } from '../logger';
import { NO_SYNC, REFUSED, type QueueStore, type QueueStoreOwner, type StoredEntry } from '../broker/storage';
import { requeueBySeq } from '../broker/requeue';
import type { QueueLog } from './queue-log';
import type { MemoryBudget } from './memory-budget';
import { Run } from './segment';
import { SegmentPosition } from './segment-position';
import {
  decodeMessageRecord,
  FLAG_PAGED,
  FLAG_SHARED,
  indexTarget,
  recordFlags,
  recordIntact,
  recordPublishedAt,
  recordSize,
  messageRecordSize,
} from './message-record';

/** Heap an in-memory entry costs beyond its body (entry, message, buffer objects). */
const ENTRY_OVERHEAD = 300;
/** How much of a segment is read at once when the head of a deep queue is on disk. */
const READ_AHEAD_BYTES = 1024 * 1024;
/** How long a queue waits before it reads again from a segment that failed to read. */
const READ_RETRY_MS = 1000;

/**
 * A queue's messages, in memory while the queue is short and on disk once it grows past
 * its memory budget. Persistent messages of a durable queue are appended to the queue's
 * log when accepted and acked there when settled. Ready messages beyond the budget are
 * kept as runs of records in a log (persistent ones where they already are, transient
 * ones paged out to it), not as objects: the heap holds a few numbers per run, whatever
 * the depth. They are read back in order, a chunk at a time, as they reach the head, and
 * handed to the queue to make entries of: the store makes no model objects itself.
 */
export class PagedQueueStore<E extends StoredEntry> implements QueueStore<E> {
  /**
   * NO_ITEMS (shared, always empty) until the first message is kept in memory. Never push
   * to `items` or `runs` directly: ownItems()/ownRuns() first, or another queue's messages
   * land in the shared empty ring (a merge once did that; test/crash-cycles caught it).
   */
  private items: Denque<E> = NO_ITEMS;
  /** NO_RUNS (shared, always empty) until the first message goes to disk. */
  private runs: Denque<Run> = NO_RUNS;
  private runCount = 0;
  bytes = 0;
  /** Estimated heap held by `items`. */
  private memory = 0;
  private owner: QueueStoreOwner<E> | null = null;
  /** true once a non-durable queue has opened a paging log */
  private paging = false;
  /** Set while a failed read waits to be tried again. */
  private readRetry: NodeJS.Timeout | null = null;
  /** What compaction asks of the log (made when there is a log). */
  private readsInPlaceBound: ((segment: number) => boolean) | null = null;

  constructor(
    /** the queue's durable log, or null for a queue whose messages are never stored */
    private log: QueueLog | null,
    /** opens a throw-away log to page transient messages to (non-durable queues) */
    private readonly openPagingLog: () => QueueLog,
    private readonly budget: number,
    private readonly logger: Logger,
    /** what all queues together may keep in memory */
    private readonly node: MemoryBudget,
  ) {
    if (log !== null) log.inUse = this.inUseCheck();
  }

  private inUseCheck(): (segment: number) => boolean {
    return (this.readsInPlaceBound ??= (segment) => this.readsInPlace(segment));
  }

  private ownItems(): Denque<E> {
    if (this.items === NO_ITEMS) this.items = new Denque<E>();
    return this.items;
  }

  private ownRuns(): Denque<Run> {
    if (this.runs === NO_RUNS) this.runs = new Denque<Run>();
    return this.runs;
  }

  attach(owner: QueueStoreOwner<E>): void {
    this.owner = owner;
  }

  /** Compaction must leave alone a segment that runs still read from. */
  private readsInPlace(segment: number): boolean {
    for (let i = 0; i < this.runs.length; i++) if (this.runs.peekAt(i)!.segment === segment) return true;
    return false;
  }

  get length(): number {
    return this.items.length + this.runCount;
  }

  accept(entry: E): number {
    const log = this.log;
    const message = entry.message;
    if (log === null || this.paging || !message.persistent) return NO_SYNC;
    if (log.failure !== null) return REFUSED;
    // Routed to several durable queues: the body is stored once, each queue names it.
    if (message.durableTargets! > 1 && log.shared !== null && log.shared.usable()) {
      const offset = log.appendShared(message, Date.now());
      entry.stored = new SegmentPosition(log.lastSegment, offset, log.lastSize, log.lastShared);
      return log.syncEpoch;
    }
    const offset = log.append(message, Date.now(), 0);
    entry.stored = new SegmentPosition(log.lastSegment, offset, log.lastSize, 0);
    return log.syncEpoch;
  }

  recover(): number {
    if (this.log === null) return 0;
    let n = 0;
    for (const r of this.log.recover()) {
      this.ownRuns().push(r);
      this.runCount += r.count;
      this.bytes += r.end - r.position + r.extra;
      n += r.count;
    }
    return n;
  }

  push(entry: E): void {
    const body = entry.message.bodySize;
    const cost = body + ENTRY_OVERHEAD;
    if (this.runs.length === 0 && this.memory + cost <= this.budget && this.node.fits(cost)) {
      this.ownItems().push(entry);
      this.memory += cost;
      this.node.used += cost;
      this.bytes += body;
      return;
    }
    // Past the budget (or behind messages already on disk, to keep the order): to disk.
    let log = this.log;
    if (log === null) {
      log = this.log = this.openPagingLog();
      log.inUse = this.inUseCheck();
      this.paging = true;
    }
    let at = entry.stored;
    if (at === null) {
      const offset = log.append(entry.message, Date.now(), FLAG_PAGED);
      at = new SegmentPosition(log.lastSegment, offset, log.lastSize, 0);
    }
    // An index record weighs what the shared record it names does (see Run.extra).
    const extra = (at as SegmentPosition).shared === 0 ? 0 : messageRecordSize(entry.message) - at.size;
    let last = this.runs.peekBack();
    if (last !== undefined && last.segment === at.segment && last.end === at.offset) {
      last.end += at.size;
      last.count++;
    } else {
      this.ownRuns().push((last = new Run(at.segment, at.offset, at.offset + at.size, 1)));
    }
    last.extra += extra;
    this.runCount++;
    this.bytes += at.size + extra;
  }

  shift(): E | undefined {
    if (this.items.length === 0 && this.runCount > 0) this.load();
    const e = this.items.shift();
    if (e !== undefined) {
      const cost = e.message.bodySize + ENTRY_OVERHEAD;
      this.memory -= cost;
      this.node.used -= cost;
      this.bytes -= e.message.bodySize;
    }
    return e;
  }

  peek(): E | undefined {
    if (this.items.length === 0 && this.runCount > 0) this.load();
    return this.items.peekFront();
  }

  /** Reads the next chunk of the first run back into memory. */
  private load(): void {
    if (this.readRetry !== null) return;
    const log = this.log!;
    while (this.items.length === 0 && this.runs.length > 0) {
      const run = this.runs.peekFront()!;
      let buf: Buffer;
      try {
        buf = log.read(run.segment, run.position, Math.min(READ_AHEAD_BYTES, run.end - run.position));
        const first = recordSize(buf, 0, buf.length);
        if (first > buf.length) buf = log.read(run.segment, run.position, first);
      } catch (err) {
        // A read that fails (EIO) may work later: the messages stay where they are and
        // the queue tries again in a while, instead of dropping them.
        this.readFailed(err, run.segment);
        return;
      }
      const used = this.loadRecords(run, buf);
      if (this.readRetry !== null) {
        // A shared body could not be read: what was loaded stays loaded, the rest waits.
        run.position += used;
        return;
      }
      if (used === 0 && run.count > 0) {
        this.logger.error({ dir: log.dir, segment: run.segment, position: run.position }, 'stored messages cut short; dropped');
        this.dropRun();
        continue;
      }
      run.position += used;
      if (run.count === 0 || run.position >= run.end) {
        this.runCount -= run.count;
        this.runs.shift();
      }
    }
  }

  /** Makes entries of the whole records in `buf` (read from the head of `run`); returns the bytes used. */
  private loadRecords(run: Run, buf: Buffer): number {
    const log = this.log!;
    const owner = this.owner!;
    const delivered = log.segments.get(run.segment)?.delivered;
    let off = 0;
    // Shared bodies read for index records: a chunk of small index records may name far
    // more than a chunk of bodies, so reading stops once a chunk's worth is in memory.
    let sharedBytes = 0;
    while (off < buf.length && run.count > 0 && sharedBytes < READ_AHEAD_BYTES) {
      const size = recordSize(buf, off, buf.length);
      if (size < 0 || off + size > buf.length) break;
      const at = off;
      const pos = run.position + off;
      if (run.skip?.has(pos)) {
        off += size;
        continue;
      }
      const intact = recordIntact(buf, at, size);
      if (intact && (recordFlags(buf, at) & FLAG_SHARED) !== 0) {
        let body: Buffer | null;
        const [segment, offset, length] = indexTarget(buf, at);
        try {
          body = log.shared!.read(segment, offset, length);
        } catch (err) {
          this.readFailed(err, run.segment);
          return off;
        }
        off += size;
        run.count--;
        this.runCount--;
        // The record weighed what it names (Run.extra): its body's bytes replace that.
        run.extra -= length - size;
        this.bytes -= length - size;
        this.loadShared(run.segment, pos, size, segment, offset, body, delivered);
        sharedBytes += length;
        continue;
      }
      off += size;
      run.count--;
      this.runCount--;
      if (!intact) {
        const copy = log.damagedRecord(run.segment, pos, buf.subarray(at, at + size));
        this.logger.error(
          { dir: log.dir, segment: run.segment, position: pos, copy },
          'damaged stored message dropped; its bytes are kept aside',
        );
        log.ack(run.segment, pos);
        continue;
      }
      const fields = decodeMessageRecord(buf, at, size);
      const paged = (recordFlags(buf, at) & FLAG_PAGED) !== 0;
      // A paged transient message is done with on disk once it is back in memory.
      if (paged) log.ack(run.segment, pos);
      const e = owner.entryLoaded({
        exchange: fields.exchange,
        routingKey: fields.routingKey,
        rawProperties: fields.rawProperties,
        body: fields.body,
        publishedAt: recordPublishedAt(buf, at),
        stored: paged ? null : new SegmentPosition(run.segment, pos, size, 0),
        redelivered: !paged && delivered?.delete(pos) === true,
      });
      this.ownItems().push(e);
      this.memory += fields.body.length + ENTRY_OVERHEAD;
      this.node.used += fields.body.length + ENTRY_OVERHEAD;
      this.bytes += fields.body.length - size;
    }
    return off;
  }

  /**
   * Makes an entry of a message whose index record (at `pos`, `size` bytes, in `segment`)
   * names a shared record, read back as `body` (null: not there). A shared record that is
   * missing or damaged costs only the messages that name it: each is counted and logged
   * like a damaged record of the queue's own, and its bytes are kept aside once.
   */
  private loadShared(
    segment: number,
    pos: number,
    size: number,
    shared: number,
    offset: number,
    body: Buffer | null,
    delivered: Set<number> | null | undefined,
  ): void {
    const log = this.log!;
    if (body === null || recordSize(body, 0, body.length) !== body.length || !recordIntact(body, 0, body.length)) {
      log.damage.ranges++;
      log.damage.bytes += size;
      const copy = body === null ? null : log.shared!.keepAside(shared, offset, body);
      this.logger.error(
        { dir: log.dir, segment, position: pos, shared: { dir: log.shared!.dir, segment: shared, offset }, copy },
        body === null
          ? 'stored message names a shared body that is not there; dropped'
          : 'stored message names a damaged shared body; dropped, its bytes are kept aside',
      );
      log.ack(segment, pos, shared);
      return;
    }
    const fields = decodeMessageRecord(body, 0, body.length);
    const e = this.owner!.entryLoaded({
      exchange: fields.exchange,
      routingKey: fields.routingKey,
      rawProperties: fields.rawProperties,
      body: fields.body,
      publishedAt: recordPublishedAt(body, 0),
      stored: new SegmentPosition(segment, pos, size, shared),
      redelivered: delivered?.delete(pos) === true,
    });
    this.ownItems().push(e);
    this.memory += fields.body.length + ENTRY_OVERHEAD;
    this.node.used += fields.body.length + ENTRY_OVERHEAD;
    // The run counted the index record's bytes; from now on the body's count.
    this.bytes += fields.body.length - size;
  }

  private readFailed(err: unknown, segment: number): void {
    this.logger.error({ err, dir: this.log!.dir, segment }, 'stored messages unreadable for now; will try again');
    this.readRetry = setTimeout(() => {
      this.readRetry = null;
      this.owner?.dispatch();
    }, READ_RETRY_MS);
    this.readRetry.unref();
  }

  private dropRun(): void {
    const run = this.runs.shift()!;
    this.runCount -= run.count;
  }

  requeue(entries: E[]): void {
    if (entries.length === 0) return;
    for (const e of entries) {
      this.bytes += e.message.bodySize;
      this.memory += e.message.bodySize + ENTRY_OVERHEAD;
      this.node.used += e.message.bodySize + ENTRY_OVERHEAD;
    }
    requeueBySeq(this.ownItems(), entries);
  }

  /**
   * Settles every ready message. Those on disk are settled where they lie, without being
   * read back into memory: a whole segment at once when nothing else in it is live.
   */
  purge(): number {
    let n = this.items.length;
    for (let e = this.items.shift(); e !== undefined; e = this.items.shift()) this.settle(e);
    this.node.used -= this.memory;
    this.memory = 0;
    if (this.runs.length > 0) {
      n += this.runCount;
      this.log!.settleRuns(this.runs.toArray());
      this.runs.clear();
      this.runCount = 0;
    }
    this.bytes = 0;
    return n;
  }

  delivered(entry: E): void {
    const at = entry.stored;
    if (at !== null && !this.paging) this.log!.delivered(at.segment, at.offset);
  }

  settle(entry: E): void {
    const at = entry.stored;
    if (at !== null) {
      this.log!.ack(at.segment, at.offset, (at as SegmentPosition).shared);
      entry.stored = null;
    }
  }

  destroy(): void {
    if (this.readRetry !== null) clearTimeout(this.readRetry);
    this.readRetry = null;
    this.items.clear();
    this.node.used -= this.memory;
    this.memory = 0;
    this.runs.clear();
    this.runCount = 0;
    this.log?.destroy();
  }
}

/**
 * Shared by every queue that has not held a message yet (most server-named queues of idle
 * consumers): only ever read, so each queue makes its own at its first message instead of
 * two ring buffers at its declaration.
 */
const NO_ITEMS = new Denque<never>();
const NO_RUNS = new Denque<Run>();
