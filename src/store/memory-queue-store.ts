import Denque from 'denque';
import type { QueueEntry } from '../broker/queue-entry';
import type { Queue } from '../broker/queue';
import type { QueueStore } from './queue-store';
import { requeueBySeq } from './requeue';

/** Ready messages held in the heap, in a ring buffer. */
export class MemoryQueueStore implements QueueStore {
  private readonly items = new Denque<QueueEntry>();
  bytes = 0;

  get length(): number {
    return this.items.length;
  }

  push(entry: QueueEntry): void {
    this.items.push(entry);
    this.bytes += entry.message.body.length;
  }

  shift(): QueueEntry | undefined {
    const e = this.items.shift();
    if (e !== undefined) this.bytes -= e.message.body.length;
    return e;
  }

  peek(): QueueEntry | undefined {
    return this.items.peekFront();
  }

  requeue(entries: QueueEntry[]): void {
    if (entries.length === 0) return;
    for (const e of entries) this.bytes += e.message.body.length;
    requeueBySeq(this.items, entries);
  }

  attach(_queue: Queue): void {}
  accept(_entry: QueueEntry): void {}
  delivered(_entry: QueueEntry): void {}
  settle(_entry: QueueEntry): void {}
  destroy(): void {}

  purge(): number {
    const n = this.items.length;
    this.items.clear();
    this.bytes = 0;
    return n;
  }
}
