import { FLAG_PRIORITY } from '../protocol/generated';
import type { QueueEntry } from './queue-entry';
import type { QueueStorage, QueueStore, QueueStoreOwner } from './storage';

type Level = QueueStore<QueueEntry>;

/**
 * x-max-priority: one store per priority level, the highest non-empty one served first,
 * FIFO within a level. Levels are made when a message of that priority first arrives.
 */
export class PriorityQueueStore implements QueueStore<QueueEntry> {
  /** index = priority; null until used */
  private readonly levels: Array<Level | null>;
  /** the levels made so far, highest first */
  private made: Level[] = [];
  private madePriorities: number[] = [];
  private owner: QueueStoreOwner<QueueEntry> | null = null;

  constructor(
    private readonly max: number,
    private readonly storage: QueueStorage,
  ) {
    this.levels = new Array<Level | null>(max + 1).fill(null);
  }

  attach(owner: QueueStoreOwner<QueueEntry>): void {
    this.owner = owner;
    for (const l of this.made) l.attach(owner);
  }

  /** The store of one level, made on first use. */
  level(priority: number): Level {
    let l = this.levels[priority];
    if (l === null) {
      l = this.levels[priority] = this.storage.open<QueueEntry>(priority);
      if (this.owner !== null) l.attach(this.owner);
      let i = 0;
      while (i < this.madePriorities.length && this.madePriorities[i] > priority) i++;
      this.made.splice(i, 0, l);
      this.madePriorities.splice(i, 0, priority);
    }
    return l;
  }

  private levelOf(entry: QueueEntry): Level {
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

  accept(entry: QueueEntry): number {
    return this.levelOf(entry).accept(entry);
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
    const byLevel = new Map<Level, QueueEntry[]>();
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

  /** Each level stored on disk comes back as its own store. */
  recover(): number {
    let n = 0;
    for (const p of this.storage.storedLevels()) if (p <= this.max) n += this.level(p).recover();
    return n;
  }
}
