import type { FieldTable } from '../../protocol/types';
import { BindingSet } from './binding-set';
import { DestinationSet } from './destination-set';
import { Exchange, type Binding, type BindingDestination } from './exchange';
import type { RouteTargets } from './route-targets';

/** Routes to the destinations bound with exactly the message's routing key. */
export class DirectExchange extends Exchange {
  readonly type = 'direct';
  private readonly all = new BindingSet();
  private readonly byKey = new Map<string, DestinationSet>();

  bind(binding: Binding): boolean {
    const stored = this.all.add(binding);
    if (!stored) return false;
    let dests = this.byKey.get(stored.routingKey);
    if (!dests) {
      dests = new DestinationSet();
      this.byKey.set(stored.routingKey, dests);
    }
    dests.add(stored.destination);
    return true;
  }

  unbind(binding: Binding): boolean {
    const stored = this.all.remove(binding);
    if (!stored) return false;
    this.release(stored);
    return true;
  }

  unbindDestination(dest: BindingDestination): void {
    for (const stored of this.all.removeDestination(dest)) this.release(stored);
  }

  route(routingKey: string, _headers: FieldTable | undefined, out: RouteTargets): void {
    this.byKey.get(routingKey)?.addTo(out);
  }

  bindings(): Iterable<Binding> {
    return this.all;
  }

  get bindingCount(): number {
    return this.all.size;
  }

  private release(stored: Binding): void {
    const dests = this.byKey.get(stored.routingKey);
    if (dests?.release(stored.destination) && dests.size === 0) this.byKey.delete(stored.routingKey);
  }
}
