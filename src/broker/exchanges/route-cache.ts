import type { BindingDestination } from './exchange';
import type { RouteTargets } from './route-targets';

/** Below this many bindings, matching is as cheap as a lookup: nothing is cached. */
const MIN_BINDINGS = 32;
/** Routing keys remembered per exchange; when full, the cache starts over. */
const MAX_KEYS = 1024;
/** Routes looked up without the cache after a fill that hit less often than it missed. */
const REST = 64 * 1024;

const NOTHING: readonly BindingDestination[] = [];

/**
 * Remembers where routing keys went, for an exchange whose matching walks a structure
 * (the topic trie): publishers mostly repeat a bounded set of keys, and one Map lookup of
 * the key costs less than cutting it into words and walking the trie word by word.
 * Any change of bindings forgets everything. Keys that never repeat (ids in the key)
 * would only churn the cache, so after a fill with more misses than hits it rests.
 */
export class RouteCache {
  private readonly routes = new Map<string, readonly BindingDestination[]>();
  private hits = 0;
  private misses = 0;
  private resting = 0;

  /** Adds the cached destinations of `key` to `out`; false when the caller must match it. */
  lookup(key: string, bindingCount: number, out: RouteTargets): boolean {
    if (bindingCount < MIN_BINDINGS) return false;
    if (this.resting > 0) {
      this.resting--;
      return false;
    }
    const dests = this.routes.get(key);
    if (dests === undefined) {
      this.misses++;
      return false;
    }
    this.hits++;
    for (let i = 0; i < dests.length; i++) out.add(dests[i]);
    return true;
  }

  /** After a miss: `out` from `from` on holds what matching `key` found. */
  remember(key: string, bindingCount: number, out: RouteTargets, from: number): void {
    if (bindingCount < MIN_BINDINGS || this.resting > 0) return;
    if (this.routes.size >= MAX_KEYS) {
      if (this.hits < this.misses) this.resting = REST;
      this.routes.clear();
      this.hits = this.misses = 0;
      if (this.resting > 0) return;
    }
    const n = out.count - from;
    if (n === 0) {
      this.routes.set(key, NOTHING);
      return;
    }
    const dests = new Array<BindingDestination>(n);
    for (let i = 0; i < n; i++) dests[i] = out.at(from + i);
    this.routes.set(key, dests);
  }

  /** Bindings changed: what was remembered may be wrong. */
  forget(): void {
    this.routes.clear();
    this.hits = this.misses = 0;
    this.resting = 0;
  }
}
