import { Decimal, MAX_FIELD_DEPTH, defineEntry, type FieldTable, type FieldValue } from '../../protocol/types';

/**
 * How deep the API renders nested tables and arrays: as deep as the AMQP decoder accepts
 * (so whatever a client declared renders whole), and well under where V8's JSON.stringify
 * overflows its stack (about 4,500 levels). Deeper input (a JSON body) is refused or cut,
 * and the cut is said in words. RabbitMQ's own UI dies on such a queue.
 */
export const MAX_JSON_DEPTH = MAX_FIELD_DEPTH;
export const TOO_DEEP = `(nested deeper than ${MAX_JSON_DEPTH} levels)`;

/**
 * AMQP field values as RabbitMQ's management API renders them in JSON: tables as objects,
 * arrays as lists, byte strings as text, timestamps as seconds, decimals and 64-bit
 * integers as numbers (beyond 2^53 they lose their low bits, as in any JSON reader).
 */
export function fieldJson(v: FieldValue | undefined, depth = 0): unknown {
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
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return Math.floor(v.getTime() / 1000);
  if (v instanceof Decimal) return v.value / 10 ** v.scale;
  if (depth >= MAX_JSON_DEPTH) return TOO_DEEP;
  if (Array.isArray(v)) return v.map((x) => fieldJson(x, depth + 1));
  return tableJson(v, depth + 1);
}

export function tableJson(t: FieldTable, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (depth > MAX_JSON_DEPTH) return out;
  for (const k of Object.keys(t)) {
    const value = fieldJson(t[k], depth);
    // `__proto__` as a key must stay a key, not become the object's prototype.
    if (k === '__proto__') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    else out[k] = value;
  }
  return out;
}

/**
 * The table a JSON object describes (a declare's or an import's arguments); null when
 * something in it has no AMQP shape or it nests deeper than the API renders. A JSON
 * integer stays an integer and a fraction a double, so what a queue declare would refuse
 * stays refused.
 */
export function jsonToTable(o: unknown, depth = 0): FieldTable | null {
  if (o === null || typeof o !== 'object' || Array.isArray(o) || depth > MAX_JSON_DEPTH) return null;
  const out: FieldTable = {};
  for (const [key, raw] of Object.entries(o)) {
    const v = jsonToValue(raw, depth + 1);
    if (v === undefined) return null;
    defineEntry(out, key, v);
  }
  return out;
}

function jsonToValue(raw: unknown, depth: number): FieldValue | undefined {
  if (raw === null || typeof raw === 'string' || typeof raw === 'boolean' || typeof raw === 'number') return raw;
  if (depth > MAX_JSON_DEPTH) return undefined;
  if (Array.isArray(raw)) {
    const items = raw.map((x) => jsonToValue(x, depth + 1));
    return items.includes(undefined) ? undefined : (items as FieldValue[]);
  }
  return jsonToTable(raw, depth) ?? undefined;
}
