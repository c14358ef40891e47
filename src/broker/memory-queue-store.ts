import Denque from 'denque';
import { NO_SYNC, type QueueStorage, type QueueStore, type QueueStoreOwner, type StoredEntry } from './storage';
import { requeueBySeq } from './requeue';

/** Ready messages held in the heap, in a ring buffer: the store of a broker without a disk. */
export class MemoryQueueStore<E extends StoredEntry> implements QueueStore<E> {
  private readonly items = new Denque<E>();
  bytes = 0;

  get length(): number {
    return this.items.length;
  }

  push(entry: E): void {
    this.items.push(entry);
    this.bytes += entry.message.bodySize;
  }

  shift(): E | undefined {
    const e = this.items.shift();
    if (e !== undefined) this.bytes -= e.message.bodySize;
    return e;
  }

  peek(): E | undefined {
    return this.items.peekFront();
  }

  requeue(entries: E[]): void {
    if (entries.length === 0) return;
    for (const e of entries) this.bytes += e.message.bodySize;
    requeueBySeq(this.items, entries);
  }

  attach(_owner: QueueStoreOwner<E>): void {}
  accept(_entry: E): number {
    return NO_SYNC;
  }
  delivered(_entry: E): void {}
  settle(_entry: E): void {}
  recover(): number {
    return 0;
  }
  destroy(): void {}

  purge(): number {
    const n = this.items.length;
    this.items.clear();
    this.bytes = 0;
    return n;
  }
}

/** Storage for queues when nothing is stored (model tests, a broker without a store). */
export const MEMORY_STORAGE: QueueStorage = {
  open: () => new MemoryQueueStore(),
  storedLevels: () => [],
};
