import { encodeProperties } from '../protocol/properties';
import { isFieldTable } from './exchanges/field-equality';
import type { FieldTable, FieldValue } from '../protocol/types';
import { Message } from './message';

export type DeathReason = 'rejected' | 'expired' | 'maxlen';

/** The routing keys a message was published with: its own and those in its CC header. */
export function publishedRoutingKeys(msg: Message): string[] {
  const cc = msg.headers?.CC;
  const keys = [msg.routingKey];
  if (Array.isArray(cc)) for (const k of cc) if (typeof k === 'string') keys.push(k);
  return keys;
}

/**
 * The message as it is dead-lettered from `queue`: an x-death entry for (queue, reason)
 * counted up or added at the front, the x-first-death-* headers set once, and its
 * per-message expiration moved into the x-death entry so the copy does not expire again.
 */
export function deadLetteredMessage(msg: Message, queue: string, reason: DeathReason, exchange: string, routingKey: string | null): Message {
  const props = { ...msg.properties };
  const headers: FieldTable = { ...(props.headers ?? {}) };
  const deaths = Array.isArray(headers['x-death']) ? [...(headers['x-death'] as FieldValue[])] : [];
  const i = deaths.findIndex((d) => isFieldTable(d) && d.queue === queue && d.reason === reason);
  if (i >= 0) {
    const d = { ...(deaths[i] as FieldTable) };
    d.count = (typeof d.count === 'number' ? d.count : 0) + 1;
    deaths.splice(i, 1);
    deaths.unshift(d);
  } else {
    const d: FieldTable = {
      count: 1,
      reason,
      queue,
      time: new Date(),
      exchange: msg.exchange,
      'routing-keys': publishedRoutingKeys(msg),
    };
    if (props.expiration !== undefined) d['original-expiration'] = props.expiration;
    deaths.unshift(d);
  }
  headers['x-death'] = deaths;
  if (headers['x-first-death-reason'] === undefined) {
    headers['x-first-death-reason'] = reason;
    headers['x-first-death-queue'] = queue;
    headers['x-first-death-exchange'] = msg.exchange;
  }
  // With a dead-letter routing key of its own, the copy's CC header no longer applies.
  if (routingKey !== null) delete headers.CC;
  props.headers = headers;
  delete props.expiration;
  return new Message(exchange, routingKey ?? msg.routingKey, encodeProperties(props), msg.body);
}

/**
 * RabbitMQ breaks dead-letter cycles: a queue the message already died in is skipped
 * unless a client rejected it since (then the loop is deliberate).
 */
export function diedIn(msg: Message, queue: string): boolean {
  const deaths = msg.headers?.['x-death'];
  if (!Array.isArray(deaths)) return false;
  // Newest death first: up to and including the last death in `queue`, a client
  // rejection anywhere makes the loop deliberate.
  for (const d of deaths) {
    if (!isFieldTable(d)) continue;
    if (d.reason === 'rejected') return false;
    if (d.queue === queue) return true;
  }
  return false;
}
