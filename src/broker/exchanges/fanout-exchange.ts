import type { FieldTable } from '../../protocol/types';
import { BindingSet } from './binding-set';
import { DestinationSet } from './destination-set';
import { Exchange, type Binding, type BindingDestination } from './exchange';
import type { RouteTargets } from './route-targets';

/** Routes to every bound destination; routing keys are kept for identity only. */
export class FanoutExchange extends Exchange {
  readonly type = 'fanout';
  private readonly all = new BindingSet();
  // Counted: two bindings to one queue (different keys or args) still deliver once,
  // and the queue stays routed until both are gone.
  private readonly dests = new DestinationSet();

  bind(binding: Binding): boolean {
    const stored = this.all.add(binding);
    if (!stored) return false;
    this.dests.add(stored.destination);
    return true;
  }

  unbind(binding: Binding): boolean {
    const stored = this.all.remove(binding);
    if (!stored) return false;
    this.dests.release(stored.destination);
    return true;
  }

  unbindDestination(dest: BindingDestination): void {
    for (const stored of this.all.removeDestination(dest)) this.dests.release(stored.destination);
  }

  route(_routingKey: string, _headers: FieldTable | undefined, out: RouteTargets): void {
    this.dests.addTo(out);
  }

  bindings(): Iterable<Binding> {
    return this.all;
  }

  get bindingCount(): number {
    return this.all.size;
  }
}
