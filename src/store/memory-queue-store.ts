import Denque from 'denque';
import type { QueueEntry } from '../broker/queue-entry';
import type { QueueStore } from './queue-store';

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
    entries.sort(bySeq);
    for (const e of entries) this.bytes += e.message.body.length;
    const front = this.items.peekFront();
    // The usual case: everything requeued is older than everything still queued.
    if (front === undefined || entries[entries.length - 1].seq < front.seq) {
      for (let i = entries.length - 1; i >= 0; i--) this.items.unshift(entries[i]);
      return;
    }
    const merged: QueueEntry[] = [];
    const rest = this.items.toArray();
    let i = 0;
    let j = 0;
    while (i < entries.length || j < rest.length) {
      if (j >= rest.length || (i < entries.length && entries[i].seq < rest[j].seq)) merged.push(entries[i++]);
      else merged.push(rest[j++]);
    }
    this.items.clear();
    for (const e of merged) this.items.push(e);
  }

  accept(_entry: QueueEntry): void {}
  delivered(_entry: QueueEntry): void {}
  settle(_entry: QueueEntry): void {}
  destroy(): void {}

  drain(): QueueEntry[] {
    const all = this.items.toArray();
    this.items.clear();
    this.bytes = 0;
    return all;
  }
}

function bySeq(a: QueueEntry, b: QueueEntry): number {
  return a.seq - b.seq;
}
