import type { FieldTable } from '../../protocol/types';
import { BindingSet } from './binding-set';
import { Exchange, type Binding, type BindingDestination } from './exchange';
import { TopicTrie } from './topic-trie';
import type { RouteTargets } from './route-targets';
import { RouteCache } from './route-cache';

/** Routes by matching the routing key against `*` / `#` binding-key patterns. */
export class TopicExchange extends Exchange {
  readonly type = 'topic';
  private readonly all = new BindingSet();
  private readonly trie = new TopicTrie();
  private readonly cache = new RouteCache();

  bind(binding: Binding): boolean {
    const stored = this.all.add(binding);
    if (!stored) return false;
    this.trie.add(stored.routingKey, stored.destination);
    this.cache.forget();
    return true;
  }

  unbind(binding: Binding): boolean {
    const stored = this.all.remove(binding);
    if (!stored) return false;
    this.trie.remove(stored.routingKey, stored.destination);
    this.cache.forget();
    return true;
  }

  unbindDestination(dest: BindingDestination): void {
    for (const stored of this.all.removeDestination(dest)) this.trie.remove(stored.routingKey, stored.destination);
    this.cache.forget();
  }

  route(routingKey: string, _headers: FieldTable | undefined, out: RouteTargets): void {
    const n = this.all.size;
    if (this.cache.lookup(routingKey, n, out)) return;
    const from = out.count;
    this.trie.match(routingKey, out);
    this.cache.remember(routingKey, n, out, from);
  }

  bindings(): Iterable<Binding> {
    return this.all;
  }

  get bindingCount(): number {
    return this.all.size;
  }
}
