import Denque from 'denque';
import { Message } from '../broker/message';
import type { QueueEntry } from '../broker/queue-entry';
import type { Logger } from '../logger';
import type { QueueStore } from './queue-store';
import type { QueueLog } from './queue-log';
import { requeueBySeq } from './requeue';

/** Stands in for the message of an entry whose body waits on disk. */
export const UNLOADED = new Message('', '', Buffer.from([0, 0]), Buffer.alloc(0));
/** How much is read from a segment at once when the head of a deep queue is on disk. */
const READ_AHEAD_BYTES = 1024 * 1024;

/**
 * A durable queue's store: persistent messages are appended to the queue's log when the
 * queue accepts them and acked there when settled. Ready messages beyond a memory budget
 * keep only their entry (a few numbers) in the heap; their bodies are read back, a run
 * at a time, as they near the head of the queue.
 */
export class DurableQueueStore implements QueueStore {
  private readonly items = new Denque<QueueEntry>();
  bytes = 0;
  /** Body bytes of ready entries whose message is in memory. */
  private loadedBytes = 0;

  constructor(
    readonly log: QueueLog,
    private readonly memoryBudget: number,
    private readonly logger: Logger,
  ) {}

  get length(): number {
    return this.items.length;
  }

  accept(entry: QueueEntry): void {
    if (!entry.message.persistent) return;
    entry.position = this.log.append(entry.message, Date.now());
    entry.segment = this.log.lastSegment;
    entry.size = this.log.lastSize;
  }

  /** Puts a message found on disk at start-up at the end of the queue, body not loaded. */
  pushRecovered(entry: QueueEntry): void {
    this.items.push(entry);
    this.bytes += entry.size;
  }

  push(entry: QueueEntry): void {
    this.items.push(entry);
    const n = entry.message.body.length;
    this.bytes += n;
    if (entry.segment !== 0 && this.loadedBytes + n > this.memoryBudget) {
      entry.message = UNLOADED;
      this.bytes += entry.size - n;
    } else {
      this.loadedBytes += n;
    }
  }

  shift(): QueueEntry | undefined {
    let e = this.items.peekFront();
    if (e === undefined) return undefined;
    if (e.message === UNLOADED && !this.loadRun()) {
      // Unreadable (corrupt) messages were dropped by loadRun: look again.
      return this.shift();
    }
    e = this.items.shift()!;
    this.bytes -= e.message.body.length;
    this.loadedBytes -= e.message.body.length;
    return e;
  }

  peek(): QueueEntry | undefined {
    const e = this.items.peekFront();
    if (e !== undefined && e.message === UNLOADED && !this.loadRun()) return this.peek();
    return e;
  }

  /**
   * Loads the run of unloaded entries at the head that lie back to back in one segment,
   * up to READ_AHEAD_BYTES, with one read. Returns false if the head was unreadable.
   */
  private loadRun(): boolean {
    const first = this.items.peekFront()!;
    let count = 0;
    let bytes = 0;
    const n = this.items.length;
    while (count < n) {
      const e = this.items.peekAt(count)!;
      if (e.message !== UNLOADED || e.segment !== first.segment || e.position !== first.position + bytes) break;
      if (count > 0 && bytes + e.size > READ_AHEAD_BYTES) break;
      bytes += e.size;
      count++;
    }
    let buf: Buffer;
    try {
      buf = this.log.readRun(first.segment, first.position, bytes);
    } catch (err) {
      this.logger.error({ err, dir: this.log.dir }, 'cannot read stored messages; dropping them');
      for (let i = 0; i < count; i++) this.dropHead();
      return false;
    }
    let off = 0;
    let ok = true;
    for (let i = 0; i < count; i++) {
      const e = this.items.peekAt(i)!;
      const msg = this.log.decode(buf, off, e.size);
      off += e.size;
      if (msg === null) {
        ok = ok && i > 0;
        continue;
      }
      e.message = msg;
      this.bytes += msg.body.length - e.size;
      this.loadedBytes += msg.body.length;
    }
    if (!ok || this.items.peekFront()!.message === UNLOADED) {
      this.logger.error({ dir: this.log.dir, segment: first.segment, position: first.position }, 'corrupt stored message dropped');
      this.dropHead();
      return false;
    }
    return true;
  }

  private dropHead(): void {
    const e = this.items.shift()!;
    this.bytes -= e.message === UNLOADED ? e.size : e.message.body.length;
    if (e.message !== UNLOADED) this.loadedBytes -= e.message.body.length;
    this.log.ack(e.segment, e.position);
  }

  requeue(entries: QueueEntry[]): void {
    if (entries.length === 0) return;
    for (const e of entries) {
      this.bytes += e.message.body.length;
      this.loadedBytes += e.message.body.length;
    }
    requeueBySeq(this.items, entries);
  }

  drain(): QueueEntry[] {
    const all = this.items.toArray();
    this.items.clear();
    this.bytes = 0;
    this.loadedBytes = 0;
    return all;
  }

  delivered(entry: QueueEntry): void {
    if (entry.segment !== 0) this.log.delivered(entry.segment, entry.position);
  }

  settle(entry: QueueEntry): void {
    if (entry.segment !== 0) {
      this.log.ack(entry.segment, entry.position);
      entry.segment = 0;
    }
  }

  destroy(): void {
    this.log.destroy();
  }
}
