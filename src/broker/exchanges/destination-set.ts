import type { BindingDestination } from './exchange';
import type { RouteTargets } from './route-targets';

/** Above this size, membership goes through a Map instead of a linear scan. */
const INDEX_THRESHOLD = 16;

/**
 * The destinations reached through one routing entry (a direct key, a topic trie node, a
 * fanout exchange), each with the number of bindings that put it there. Several bindings
 * can share an entry (same destination and key, different arguments), and the
 * destination must stay routed until the last of them goes.
 *
 * Destinations are compared by object identity: the owning exchange hands in the one
 * canonical object it keeps per destination (see BindingSet).
 *
 * Kept as parallel arrays so that `addTo`, which runs for every published message, is a
 * plain indexed loop with no iterator allocation.
 */
export class DestinationSet {
  private readonly items: BindingDestination[] = [];
  private readonly counts: number[] = [];
  /** Built only once the set grows large; most sets hold one or two destinations. */
  private index: Map<BindingDestination, number> | undefined;

  get size(): number {
    return this.items.length;
  }

  add(dest: BindingDestination): void {
    const i = this.indexOf(dest);
    if (i >= 0) {
      this.counts[i]++;
      return;
    }
    this.items.push(dest);
    this.counts.push(1);
    if (this.index) this.index.set(dest, this.items.length - 1);
    else if (this.items.length > INDEX_THRESHOLD) this.buildIndex();
  }

  /** Drops one binding's reference; returns true if the destination is now gone. */
  release(dest: BindingDestination): boolean {
    const i = this.indexOf(dest);
    if (i < 0) return false;
    if (--this.counts[i] > 0) return false;
    this.removeAt(i);
    return true;
  }

  addTo(out: RouteTargets): void {
    const items = this.items;
    for (let i = 0; i < items.length; i++) out.add(items[i]);
  }

  private indexOf(dest: BindingDestination): number {
    if (this.index) return this.index.get(dest) ?? -1;
    return this.items.indexOf(dest);
  }

  /** Swap-remove: delivery order across queues carries no meaning, O(1) removal does. */
  private removeAt(i: number): void {
    const last = this.items.length - 1;
    const removed = this.items[i];
    if (i !== last) {
      this.items[i] = this.items[last];
      this.counts[i] = this.counts[last];
      this.index?.set(this.items[i], i);
    }
    this.items.pop();
    this.counts.pop();
    this.index?.delete(removed);
  }

  private buildIndex(): void {
    this.index = new Map();
    for (let i = 0; i < this.items.length; i++) this.index.set(this.items[i], i);
  }
}
