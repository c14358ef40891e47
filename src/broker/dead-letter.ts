import { encodeProperties } from '../protocol/properties';
import { isFieldTable } from './exchanges/field-equality';
import { copyTable, setWireType, wireTypeOf, type FieldTable, type FieldValue } from '../protocol/types';
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
 * The headers are copied with their wire types, so the copy carries them as published.
 */
export function deadLetteredMessage(
  msg: Message,
  queue: string,
  reason: DeathReason,
  exchange: string,
  routingKey: string | null,
): Message {
  const props = { ...msg.properties };
  const headers: FieldTable = props.headers !== undefined ? copyTable(props.headers) : {};
  headers['x-death'] = xDeathWith(headers['x-death'], msg, queue, reason, props.expiration);
  // A non-array x-death was replaced by an array: whatever tag it had no longer applies.
  setWireType(headers, 'x-death', undefined);
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

/** The x-death array with this death first: a fresh entry, or the matching one counted up. */
function xDeathWith(
  prior: FieldValue | undefined,
  msg: Message,
  queue: string,
  reason: DeathReason,
  expiration: string | undefined,
): FieldValue[] {
  const deaths = Array.isArray(prior) ? prior : [];
  const i = deaths.findIndex((d) => isFieldTable(d) && d.queue === queue && d.reason === reason);
  const out: FieldValue[] = [i >= 0 ? countedAgain(deaths[i] as FieldTable) : newDeath(msg, queue, reason, expiration)];
  for (let j = 0; j < deaths.length; j++) {
    if (j === i) continue;
    out.push(deaths[j]);
    // Elements move up by one (or stay, behind the moved one): their tags go with them.
    setWireType(out, out.length - 1, wireTypeOf(deaths, j));
  }
  return out;
}

function newDeath(msg: Message, queue: string, reason: DeathReason, expiration: string | undefined): FieldTable {
  const d: FieldTable = {
    count: 1,
    reason,
    queue,
    time: new Date(),
    exchange: msg.exchange,
    'routing-keys': publishedRoutingKeys(msg),
  };
  setWireType(d, 'count', 'l');
  if (expiration !== undefined) d['original-expiration'] = expiration;
  return d;
}

function countedAgain(death: FieldTable): FieldTable {
  const d = copyTable(death);
  d.count = (typeof d.count === 'number' ? d.count : 0) + 1;
  // RabbitMQ sends the count as a long, whatever type it had.
  setWireType(d, 'count', 'l');
  return d;
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
