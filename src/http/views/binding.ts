import type { Binding } from '../../broker/exchanges/exchange';
import type { Vhost } from '../../broker/vhost';
import type { FieldTable, FieldValue } from '../../protocol/types';
import { fieldJson, tableJson } from './field-json';

type Obj = Record<string, unknown>;

/**
 * RabbitMQ's quote_plus: letters, digits and `-._` stay, a space becomes `+`, every other
 * byte of the UTF-8 text becomes %XX (upper case).
 */
export function quotePlus(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9._-]/.test(c)) out += c;
    else if (byte === 0x20) out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Arguments in a form that does not depend on key order (tables compare by value). */
function canonical(v: FieldValue | undefined): unknown {
  const j = fieldJson(v);
  return canonicalJson(j);
}

function canonicalJson(j: unknown): unknown {
  if (Array.isArray(j)) return j.map(canonicalJson);
  if (j !== null && typeof j === 'object') {
    const o = j as Obj;
    return Object.keys(o)
      .sort()
      .map((k) => [k, canonicalJson(o[k])]);
  }
  return j;
}

/**
 * A short hash of binding arguments. RabbitMQ hashes the Erlang term of the arguments
 * (erlang:phash2), which cannot be reproduced here; this is our own stable scheme of the
 * same shape: 32-bit FNV-1a over the arguments in key order, base64url, 6 characters.
 */
export function argsHash(args: FieldTable): string {
  const text = JSON.stringify(canonical(args));
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(h);
  return buf.toString('base64url');
}

/**
 * RabbitMQ's properties_key, which names a binding in paths: the quoted routing key ("~"
 * for an empty one) when there are no arguments, else the quoted key, "~" and a hash of
 * the arguments.
 */
export function propertiesKey(routingKey: string, args: FieldTable): string {
  const hasArgs = Object.keys(args).some((k) => args[k] !== undefined);
  if (!hasArgs) return routingKey === '' ? '~' : quotePlus(routingKey);
  return `${quotePlus(routingKey)}~${argsHash(args)}`;
}

const sortedKeys = (o: Obj): Obj => {
  const out: Obj = {};
  for (const k of Object.keys(o).sort())
    Object.defineProperty(out, k, { value: o[k], enumerable: true, writable: true, configurable: true });
  return out;
};

/** Where a new binding is, relative to the request's path: RabbitMQ quotes `~` in keys but not here. */
export const bindingLocation = (destination: string, propsKey: string): string =>
  `${quotePlus(destination)}/${quotePlus(propsKey).replace(/%7E/g, '~')}`;

/** A binding as the management API shows it. */
export function bindingJson(
  vhost: string,
  source: string,
  destination: string,
  destinationType: 'queue' | 'exchange',
  routingKey: string,
  args: FieldTable,
): Obj {
  return {
    source,
    vhost,
    destination,
    destination_type: destinationType,
    routing_key: routingKey,
    // RabbitMQ keeps binding arguments sorted by key.
    arguments: sortedKeys(tableJson(args)),
    properties_key: propertiesKey(routingKey, args),
  };
}

export const storedBindingJson = (vhost: string, b: Binding): Obj =>
  bindingJson(vhost, b.source, b.destination.name, b.destination.kind, b.routingKey, b.args);

/**
 * Every binding of a vhost, the default exchange's implicit ones included (each queue is
 * bound to "" by its own name), optionally only those matching `keep`.
 */
export function vhostBindings(
  v: Vhost,
  keep: (source: string, destKind: 'queue' | 'exchange', dest: string) => boolean = () => true,
): Obj[] {
  const out: Obj[] = [];
  for (const q of v.queues.values()) {
    if (keep('', 'queue', q.name)) out.push(bindingJson(v.name, '', q.name, 'queue', q.name, {}));
  }
  for (const ex of v.exchanges.values()) {
    if (ex.name === '') continue;
    for (const b of ex.bindings()) if (keep(b.source, b.destination.kind, b.destination.name)) out.push(storedBindingJson(v.name, b));
  }
  return out;
}

/** RabbitMQ's order: by source, then destination (kind, name), then key and arguments. */
export const BINDING_SORT = ['vhost', 'source', 'destination_type', 'destination', 'routing_key', 'properties_key'];
