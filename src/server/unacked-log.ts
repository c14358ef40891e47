import type { QueueEntry } from '../broker/queue-entry';

const INITIAL = 16;
const NO_TAGS = new Float64Array(0);

/**
 * A channel's deliveries awaiting ack, in delivery-tag order. Tags only grow, so a ring of
 * entries with their tags beside them does what a Map did without hashing: a delivery is an
 * append, an ack of the oldest (the usual case, and every multiple-ack) is a step of the
 * head, and an ack out of order is a binary search that leaves a hole the head skips later.
 */
export class UnackedLog {
  // Nothing is allocated until the first delivery: many channels never receive one.
  private entries: (QueueEntry | null)[] = [];
  private tags = NO_TAGS;
  private mask = 0;
  /** ring positions of the oldest slot and one past the newest; `tail - head` slots in use (holes included) */
  private head = 0;
  private tail = 0;
  /** live entries (slots that are not holes) */
  size = 0;

  push(tag: number, entry: QueueEntry): void {
    if (this.tail - this.head === this.entries.length) this.grow();
    const i = this.tail & this.mask;
    this.entries[i] = entry;
    this.tags[i] = tag;
    this.tail++;
    this.size++;
  }

  has(tag: number): boolean {
    return this.find(tag) >= 0;
  }

  /** Removes and returns the delivery with this tag. */
  take(tag: number): QueueEntry | undefined {
    const at = this.find(tag);
    if (at < 0) return undefined;
    const i = at & this.mask;
    const e = this.entries[i]!;
    this.entries[i] = null;
    this.size--;
    this.skipHoles();
    return e;
  }

  /** Removes and returns the oldest delivery if its tag is at most `tag` (0: any), else undefined. */
  takeOldest(tag: number): QueueEntry | undefined {
    if (this.size === 0) return undefined;
    const i = this.head & this.mask;
    if (tag !== 0 && this.tags[i] > tag) return undefined;
    const e = this.entries[i]!;
    this.entries[i] = null;
    this.head++;
    this.size--;
    this.skipHoles();
    return e;
  }

  /** The oldest delivery, without removing it. */
  oldest(): QueueEntry | undefined {
    return this.size === 0 ? undefined : this.entries[this.head & this.mask]!;
  }

  /** Every delivery, oldest first (not for the per-message path). */
  values(): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let p = this.head; p < this.tail; p++) {
      const e = this.entries[p & this.mask];
      if (e !== null) out.push(e);
    }
    return out;
  }

  /** Empties the log and returns what it held, oldest first. */
  drain(): QueueEntry[] {
    const out = this.values();
    this.entries = [];
    this.tags = NO_TAGS;
    this.mask = 0;
    this.head = this.tail = 0;
    this.size = 0;
    return out;
  }

  /** The ring position holding a live entry with this tag, or -1. */
  private find(tag: number): number {
    let lo = this.head;
    let hi = this.tail - 1;
    while (lo <= hi) {
      const mid = lo + ((hi - lo) >>> 1);
      const t = this.tags[mid & this.mask];
      if (t < tag) lo = mid + 1;
      else if (t > tag) hi = mid - 1;
      else return this.entries[mid & this.mask] === null ? -1 : mid;
    }
    return -1;
  }

  private skipHoles(): void {
    while (this.head < this.tail && this.entries[this.head & this.mask] === null) this.head++;
    if (this.head === this.tail) this.head = this.tail = 0;
  }

  /** Makes room: drops the holes, and doubles the ring unless they were half of it. Oldest first at slot 0. */
  private grow(): void {
    const len = this.entries.length;
    const cap = len === 0 ? INITIAL : this.size * 2 > len ? len * 2 : len;
    const entries = new Array<QueueEntry | null>(cap).fill(null);
    const tags = new Float64Array(cap);
    let n = 0;
    for (let p = this.head; p < this.tail; p++) {
      const e = this.entries[p & this.mask];
      if (e === null) continue;
      entries[n] = e;
      tags[n] = this.tags[p & this.mask];
      n++;
    }
    this.entries = entries;
    this.tags = tags;
    this.mask = cap - 1;
    this.head = 0;
    this.tail = n;
  }
}
