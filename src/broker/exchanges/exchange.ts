import type { FieldTable } from '../../protocol/types';
import type { RouteTargets } from './route-targets';

/**
 * Anything a binding can point at: a queue, or another exchange (exchange-to-exchange
 * bindings). Only identity matters to an exchange.
 */
export interface BindingDestination {
  readonly name: string;
  readonly kind: 'queue' | 'exchange';
}

export interface Binding {
  readonly source: string;
  readonly destination: BindingDestination;
  readonly routingKey: string;
  readonly args: FieldTable;
}

/**
 * Base of every exchange type. Subclasses keep their own index of bindings and answer
 * `route`, which must add every matching destination to `out` (a Set, so a destination
 * bound twice still receives one copy).
 */
export abstract class Exchange implements BindingDestination {
  abstract readonly type: string;
  readonly kind = 'exchange' as const;
  /** Where messages this exchange cannot route go (alternate-exchange argument or policy). */
  alternateExchange: string | null = null;
  /** publish_in: messages published to it; publish_out: those it routed to at least one destination */
  publishIn = 0;
  publishOut = 0;

  constructor(
    readonly name: string,
    readonly durable: boolean,
    readonly autoDelete: boolean,
    readonly internal: boolean,
    readonly args: FieldTable,
  ) {
    const ae = args['alternate-exchange'];
    if (typeof ae === 'string') this.alternateExchange = ae;
  }

  /** Adds a binding; returns false if an identical binding already existed. */
  abstract bind(binding: Binding): boolean;
  /** Removes a binding; returns false if no identical binding existed. */
  abstract unbind(binding: Binding): boolean;
  /** Adds the destinations that a message with this key and these headers reaches. */
  abstract route(routingKey: string, headers: FieldTable | undefined, out: RouteTargets): void;
  /** Every binding whose source is this exchange. */
  abstract bindings(): Iterable<Binding>;
  abstract get bindingCount(): number;
  /** Drops every binding to a destination (used when a queue or exchange is deleted). */
  abstract unbindDestination(dest: BindingDestination): void;
}
