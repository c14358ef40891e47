import type { FieldTable } from '../../protocol/types';
import { DirectExchange } from './direct-exchange';
import type { Exchange } from './exchange';
import { FanoutExchange } from './fanout-exchange';
import { HeadersExchange, headersBindingError } from './headers-exchange';
import { TopicExchange } from './topic-exchange';

export { Exchange, type Binding, type BindingDestination } from './exchange';
export { DirectExchange, FanoutExchange, HeadersExchange, TopicExchange };

/** The exchange types `exchange.declare` accepts. */
export const EXCHANGE_TYPES: readonly string[] = ['direct', 'fanout', 'topic', 'headers'];

/** A new exchange of the given type, or undefined if the type is unknown (a 503 COMMAND_INVALID in RabbitMQ). */
export function createExchange(
  type: string,
  name: string,
  durable: boolean,
  autoDelete: boolean,
  internal: boolean,
  args: FieldTable,
): Exchange | undefined {
  switch (type) {
    case 'direct':
      return new DirectExchange(name, durable, autoDelete, internal, args);
    case 'fanout':
      return new FanoutExchange(name, durable, autoDelete, internal, args);
    case 'topic':
      return new TopicExchange(name, durable, autoDelete, internal, args);
    case 'headers':
      return new HeadersExchange(name, durable, autoDelete, internal, args);
    default:
      return undefined;
  }
}

/**
 * Why a binding with these arguments must be refused (RabbitMQ answers 406
 * PRECONDITION_FAILED), or undefined. Only the headers exchange checks anything: x-match
 * must be one of all, any, all-with-x, any-with-x.
 */
export function bindingArgumentsError(exchange: Exchange, args: FieldTable): string | undefined {
  return exchange instanceof HeadersExchange ? headersBindingError(args) : undefined;
}
