import type { Consumer } from './consumer';

/**
 * A queue's consumers, highest priority (x-priority) first, in arrival order within a
 * priority. `next` picks who gets the next message: round-robin among the highest
 * priority consumers that can take one, falling back to lower priorities only when all
 * of those are full; with single active consumer, only the first in line.
 */
export class ConsumerRing {
  private list: Consumer[] = [];
  private rr = 0;
  /** all consumers share one priority: plain round-robin */
  private flat = true;

  get length(): number {
    return this.list.length;
  }

  get first(): Consumer | undefined {
    return this.list[0];
  }

  add(c: Consumer): void {
    if (this.list.length === 0) {
      // An array of one: splice into an empty one would make room for seventeen.
      this.list = [c];
      this.flat = true;
      return;
    }
    let i = this.list.length;
    while (i > 0 && this.list[i - 1].priority < c.priority) i--;
    this.list.splice(i, 0, c);
    this.flat = this.list[0].priority === this.list[this.list.length - 1].priority;
  }

  remove(c: Consumer): boolean {
    const i = this.list.indexOf(c);
    if (i < 0) return false;
    this.list.splice(i, 1);
    if (this.list.length > 0) this.flat = this.list[0].priority === this.list[this.list.length - 1].priority;
    return true;
  }

  clear(): Consumer[] {
    const all = this.list;
    this.list = [];
    return all;
  }

  next(singleActive: boolean): Consumer | null {
    const list = this.list;
    const n = list.length;
    if (n === 0) return null;
    if (singleActive) return list[0].canTake() ? list[0] : null;
    if (this.flat) {
      for (let i = 0; i < n; i++) {
        if (this.rr >= n) this.rr = 0;
        const c = list[this.rr++];
        if (c.canTake()) return c;
      }
      return null;
    }
    // Priority groups, highest first; round-robin inside a group.
    for (let start = 0; start < n;) {
      let end = start + 1;
      while (end < n && list[end].priority === list[start].priority) end++;
      const size = end - start;
      for (let i = 0; i < size; i++) {
        const c = list[start + ((this.rr + i) % size)];
        if (c.canTake()) {
          this.rr = (this.rr + i + 1) % size;
          return c;
        }
      }
      start = end;
    }
    return null;
  }

  [Symbol.iterator](): Iterator<Consumer> {
    return this.list[Symbol.iterator]();
  }
}
