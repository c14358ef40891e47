import type { Binding, BindingDestination } from './exchange';
import { fieldTablesEqual } from './field-equality';

interface DestinationBindings {
  /** The first destination object seen for this identity; every stored binding uses it. */
  readonly destination: BindingDestination;
  /** routing key -> bindings with that key (differing only in arguments). */
  readonly byKey: Map<string, Binding[]>;
}

function destinationId(dest: BindingDestination): string {
  return (dest.kind === 'queue' ? 'q:' : 'e:') + dest.name;
}

/**
 * The bindings of one exchange, keyed the way RabbitMQ identifies a binding: destination
 * (kind + name), routing key, and arguments compared by value. Every exchange type keeps
 * one of these for identity and listing, next to its own routing index.
 *
 * Callers may pass a fresh `{ kind, name }` object on every bind; the set substitutes one
 * canonical object per destination so that routing indexes (and the `out` Set of
 * `route`, which deduplicates by identity) see a single object per queue or exchange.
 */
export class BindingSet {
  private readonly byDestination = new Map<string, DestinationBindings>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Returns the stored binding (with the canonical destination), or undefined for a duplicate. */
  add(binding: Binding): Binding | undefined {
    const id = destinationId(binding.destination);
    let entry = this.byDestination.get(id);
    if (!entry) {
      entry = { destination: binding.destination, byKey: new Map() };
      this.byDestination.set(id, entry);
    }
    let list = entry.byKey.get(binding.routingKey);
    if (!list) {
      list = [];
      entry.byKey.set(binding.routingKey, list);
    } else if (list.some((b) => fieldTablesEqual(b.args, binding.args))) {
      return undefined;
    }
    const stored = binding.destination === entry.destination ? binding : { ...binding, destination: entry.destination };
    list.push(stored);
    this.count++;
    return stored;
  }

  /** Returns the stored binding that was removed, or undefined if there was none. */
  remove(binding: Binding): Binding | undefined {
    const id = destinationId(binding.destination);
    const entry = this.byDestination.get(id);
    const list = entry?.byKey.get(binding.routingKey);
    if (!entry || !list) return undefined;
    const i = list.findIndex((b) => fieldTablesEqual(b.args, binding.args));
    if (i < 0) return undefined;
    const [stored] = list.splice(i, 1);
    if (list.length === 0) {
      entry.byKey.delete(binding.routingKey);
      if (entry.byKey.size === 0) this.byDestination.delete(id);
    }
    this.count--;
    return stored;
  }

  /** Removes and returns every binding to `dest`. */
  removeDestination(dest: BindingDestination): Binding[] {
    const id = destinationId(dest);
    const entry = this.byDestination.get(id);
    if (!entry) return [];
    this.byDestination.delete(id);
    const removed: Binding[] = [];
    for (const list of entry.byKey.values()) removed.push(...list);
    this.count -= removed.length;
    return removed;
  }

  *[Symbol.iterator](): IterableIterator<Binding> {
    for (const entry of this.byDestination.values()) {
      for (const list of entry.byKey.values()) yield* list;
    }
  }
}
