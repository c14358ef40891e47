import type { Queue } from '../broker/queue';
import type { QueueEntry } from '../broker/queue-entry';
import { FLAG_PRIORITY } from '../protocol/generated';
import type { QueueStore } from './queue-store';

/**
 * x-max-priority: one store per priority level, the highest non-empty one served first,
 * FIFO within a level. Levels are made when a message of that priority first arrives.
 */
export class PriorityQueueStore implements QueueStore {
  /** index = priority; null until used */
  private readonly levels: Array<QueueStore | null>;
  /** the levels made so far, highest first */
  private made: QueueStore[] = [];
  private madePriorities: number[] = [];
  private queue: Queue | null = null;

  constructor(
    private readonly max: number,
    private readonly makeLevel: (priority: number) => QueueStore,
  ) {
    this.levels = new Array<QueueStore | null>(max + 1).fill(null);
  }

  attach(queue: Queue): void {
    this.queue = queue;
    for (const l of this.made) l.attach(queue);
  }

  /** The store of one level, made on first use. */
  level(priority: number): QueueStore {
    let l = this.levels[priority];
    if (l === null) {
      l = this.levels[priority] = this.makeLevel(priority);
      if (this.queue !== null) l.attach(this.queue);
      let i = 0;
      while (i < this.madePriorities.length && this.madePriorities[i] > priority) i++;
      this.made.splice(i, 0, l);
      this.madePriorities.splice(i, 0, priority);
    }
    return l;
  }

  private levelOf(entry: QueueEntry): QueueStore {
    const m = entry.message;
    if ((m.rawProperties.readUInt16BE(0) & FLAG_PRIORITY) === 0) return this.level(0);
    const p = m.properties.priority ?? 0;
    return this.level(p > this.max ? this.max : p);
  }

  get length(): number {
    let n = 0;
    for (const l of this.made) n += l.length;
    return n;
  }

  get bytes(): number {
    let n = 0;
    for (const l of this.made) n += l.bytes;
    return n;
  }

  accept(entry: QueueEntry): void {
    this.levelOf(entry).accept(entry);
  }

  push(entry: QueueEntry): void {
    this.levelOf(entry).push(entry);
  }

  shift(): QueueEntry | undefined {
    for (const l of this.made) if (l.length > 0) return l.shift();
    return undefined;
  }

  peek(): QueueEntry | undefined {
    for (const l of this.made) if (l.length > 0) return l.peek();
    return undefined;
  }

  requeue(entries: QueueEntry[]): void {
    const byLevel = new Map<QueueStore, QueueEntry[]>();
    for (const e of entries) {
      const l = this.levelOf(e);
      let list = byLevel.get(l);
      if (list === undefined) byLevel.set(l, (list = []));
      list.push(e);
    }
    for (const [l, list] of byLevel) l.requeue(list);
  }

  purge(): number {
    let n = 0;
    for (const l of this.made) n += l.purge();
    return n;
  }

  delivered(entry: QueueEntry): void {
    this.levelOf(entry).delivered(entry);
  }

  settle(entry: QueueEntry): void {
    this.levelOf(entry).settle(entry);
  }

  destroy(): void {
    for (const l of this.made) l.destroy();
  }

  /** The levels made so far (for recovery). */
  get levelStores(): readonly QueueStore[] {
    return this.made;
  }
}
