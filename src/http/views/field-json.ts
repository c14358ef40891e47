import type { Queue } from '../../broker/queue';

/** The model's AMQP field tables and values (the management API does not reach into the protocol layer). */
export type FieldTable = Queue['args'];
export type FieldValue = Exclude<FieldTable[string], undefined>;

/** An AMQP decimal as the model holds it. */
const isDecimal = (v: object): v is { scale: number; value: number } => 'scale' in v && 'value' in v && Object.keys(v).length === 2 && v.constructor !== Object;

/**
 * AMQP field values as RabbitMQ's management API renders them in JSON: tables as objects,
 * arrays as lists, byte strings as text, timestamps as seconds, 64-bit integers as numbers.
 * Depth is not limited: a table nested a thousand levels deep still renders.
 */
export function fieldJson(v: FieldValue | undefined): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return Number.isFinite(v) ? v : String(v);
    case 'bigint':
      return Number(v);
    default:
      break;
  }
  if (Array.isArray(v)) return v.map(fieldJson);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return Math.floor(v.getTime() / 1000);
  if (isDecimal(v)) return v.value / 10 ** v.scale;
  return tableJson(v as FieldTable);
}

export function tableJson(t: FieldTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(t)) {
    const value = fieldJson(t[k]);
    // `__proto__` as a key must stay a key, not become the object's prototype.
    if (k === '__proto__') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    else out[k] = value;
  }
  return out;
}
