import Denque from 'denque';
import type { Queue } from '../broker/queue';
import { QueueEntry } from '../broker/queue-entry';
import type { Logger } from '../logger';
import type { QueueStore } from './queue-store';
import type { QueueLog } from './queue-log';
import { Run } from './segment';
import { decodeMessageRecord, FLAG_PAGED, recordFlags, recordIntact, recordPublishedAt, recordSize } from './message-record';
import { requeueBySeq } from './requeue';

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
 * the depth. They are read back in order, a chunk at a time, as they reach the head.
 */
export class PagedQueueStore implements QueueStore {
  private readonly items = new Denque<QueueEntry>();
  private readonly runs = new Denque<Run>();
  private runCount = 0;
  bytes = 0;
  /** Estimated heap held by `items`. */
  private memory = 0;
  private queue: Queue | null = null;

  constructor(
    /** the queue's durable log, or null for a queue whose messages are never stored */
    public log: QueueLog | null,
    /** opens a throw-away log to page transient messages to (non-durable queues) */
    private readonly openPagingLog: () => QueueLog,
    private readonly budget: number,
    private readonly logger: Logger,
  ) {}

  attach(queue: Queue): void {
    this.queue = queue;
    if (this.log !== null) this.log.inUse = this.readsInPlace;
  }

  /** Compaction must leave alone a segment that runs still read from. */
  private readonly readsInPlace = (segment: number): boolean => {
    for (let i = 0; i < this.runs.length; i++) if (this.runs.peekAt(i)!.segment === segment) return true;
    return false;
  };

  get length(): number {
    return this.items.length + this.runCount;
  }

  /** Set while a failed read waits to be tried again. */
  private readRetry: NodeJS.Timeout | null = null;
  /** true once a non-durable queue has opened a paging log */
  private paging = false;

  accept(entry: QueueEntry): void {
    if (this.log === null || this.paging || !entry.message.persistent) return;
    entry.position = this.log.append(entry.message, Date.now(), 0);
    entry.segment = this.log.lastSegment;
    entry.size = this.log.lastSize;
  }

  /** Messages found on disk at start-up, in order. */
  recover(runs: Run[]): void {
    for (const r of runs) {
      this.runs.push(r);
      this.runCount += r.count;
      this.bytes += r.end - r.position;
    }
  }

  push(entry: QueueEntry): void {
    const body = entry.message.body.length;
    const cost = body + ENTRY_OVERHEAD;
    if (this.runs.length === 0 && this.memory + cost <= this.budget) {
      this.items.push(entry);
      this.memory += cost;
      this.bytes += body;
      return;
    }
    // Past the budget (or behind messages already on disk, to keep the order): to disk.
    let log = this.log;
    if (log === null) {
      log = this.log = this.openPagingLog();
      log.inUse = this.readsInPlace;
      this.paging = true;
    }
    if (entry.segment === 0) {
      entry.position = log.append(entry.message, Date.now(), FLAG_PAGED);
      entry.segment = log.lastSegment;
      entry.size = log.lastSize;
    }
    const last = this.runs.peekBack();
    if (last !== undefined && last.segment === entry.segment && last.end === entry.position) {
      last.end += entry.size;
      last.count++;
    } else {
      this.runs.push(new Run(entry.segment, entry.position, entry.position + entry.size, 1));
    }
    this.runCount++;
    this.bytes += entry.size;
  }

  shift(): QueueEntry | undefined {
    if (this.items.length === 0 && this.runCount > 0) this.load();
    const e = this.items.shift();
    if (e !== undefined) {
      this.memory -= e.message.body.length + ENTRY_OVERHEAD;
      this.bytes -= e.message.body.length;
    }
    return e;
  }

  peek(): QueueEntry | undefined {
    if (this.items.length === 0 && this.runCount > 0) this.load();
    return this.items.peekFront();
  }

  /** Reads the next chunk of the first run back into memory. */
  private load(): void {
    if (this.readRetry !== null) return;
    const log = this.log!;
    const queue = this.queue!;
    while (this.items.length === 0 && this.runs.length > 0) {
      const run = this.runs.peekFront()!;
      const seg = log.segments.get(run.segment);
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
      let off = 0;
      while (off < buf.length && run.count > 0) {
        const size = recordSize(buf, off, buf.length);
        if (size < 0 || off + size > buf.length) break;
        const pos = run.position + off;
        off += size;
        if (run.skip?.has(pos)) continue;
        run.count--;
        this.runCount--;
        if (!recordIntact(buf, off - size, size)) {
          this.logger.error({ dir: log.dir, segment: run.segment, position: pos }, 'corrupt stored message dropped');
          log.ack(run.segment, pos);
          continue;
        }
        const msg = decodeMessageRecord(buf, off - size, size);
        const e = new QueueEntry(msg, queue.nextSeq++, queue);
        if ((recordFlags(buf, off - size) & FLAG_PAGED) !== 0) {
          // A paged transient message is done with on disk once it is back in memory.
          log.ack(run.segment, pos);
        } else {
          e.segment = run.segment;
          e.position = pos;
          e.size = size;
          if (seg?.delivered?.delete(pos)) e.redelivered = true;
        }
        queue.entryLoaded(e, recordPublishedAt(buf, off - size));
        this.items.push(e);
        this.memory += msg.body.length + ENTRY_OVERHEAD;
        this.bytes += msg.body.length - size;
      }
      if (off === 0 && run.count > 0) {
        this.logger.error({ dir: log.dir, segment: run.segment, position: run.position }, 'stored messages cut short; dropped');
        this.dropRun();
        continue;
      }
      run.position += off;
      if (run.count === 0 || run.position >= run.end) {
        this.runCount -= run.count;
        this.runs.shift();
      }
    }
  }

  private readFailed(err: unknown, segment: number): void {
    this.logger.error({ err, dir: this.log!.dir, segment }, 'stored messages unreadable for now; will try again');
    this.readRetry = setTimeout(() => {
      this.readRetry = null;
      this.queue?.dispatch();
    }, READ_RETRY_MS);
    this.readRetry.unref();
  }

  private dropRun(): void {
    const run = this.runs.shift()!;
    this.runCount -= run.count;
  }

  requeue(entries: QueueEntry[]): void {
    if (entries.length === 0) return;
    for (const e of entries) {
      this.bytes += e.message.body.length;
      this.memory += e.message.body.length + ENTRY_OVERHEAD;
    }
    requeueBySeq(this.items, entries);
  }

  purge(): number {
    let n = 0;
    for (let e = this.shift(); e !== undefined; e = this.shift()) {
      this.settle(e);
      n++;
    }
    return n;
  }

  delivered(entry: QueueEntry): void {
    if (entry.segment !== 0 && !this.paging) this.log!.delivered(entry.segment, entry.position);
  }

  settle(entry: QueueEntry): void {
    if (entry.segment !== 0) {
      this.log!.ack(entry.segment, entry.position);
      entry.segment = 0;
    }
  }

  destroy(): void {
    if (this.readRetry !== null) clearTimeout(this.readRetry);
    this.readRetry = null;
    this.items.clear();
    this.runs.clear();
    this.runCount = 0;
    this.log?.destroy();
  }
}
