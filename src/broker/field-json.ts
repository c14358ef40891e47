import { Decimal, defineEntry, type FieldTable, type FieldValue } from '../protocol/types';

/**
 * AMQP argument tables as the management API writes and reads them, the way RabbitMQ
 * does: strings, numbers, booleans, nested tables (objects) and arrays (lists) map one to
 * one; the AMQP types JSON lacks are written as their nearest JSON value (byte arrays as
 * text, timestamps as seconds, decimals as numbers). Read back, a JSON integer is an
 * integer and a fraction a double, so what a queue declare would refuse stays refused.
 */
export function tableToJson(t: FieldTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(t)) {
    const v = t[key];
    if (v !== undefined) defineJson(out, key, valueToJson(v));
  }
  return out;
}

function valueToJson(v: FieldValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  // A JSON number cannot be refused here: a 64-bit integer beyond 2^53 loses its low bits, as in any JSON reader.
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return Math.floor(v.getTime() / 1000);
  if (v instanceof Decimal) return v.value / 10 ** v.scale;
  if (Array.isArray(v)) return v.map(valueToJson);
  return tableToJson(v);
}

/** The table a JSON object describes; null when something in it has no AMQP shape. */
export function jsonToTable(o: unknown): FieldTable | null {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return null;
  const out: FieldTable = {};
  for (const [key, raw] of Object.entries(o)) {
    const v = jsonToValue(raw);
    if (v === undefined) return null;
    defineEntry(out, key, v);
  }
  return out;
}

function jsonToValue(raw: unknown): FieldValue | undefined {
  if (raw === null || typeof raw === 'string' || typeof raw === 'boolean' || typeof raw === 'number') return raw;
  if (Array.isArray(raw)) {
    const items = raw.map(jsonToValue);
    return items.includes(undefined) ? undefined : (items as FieldValue[]);
  }
  return jsonToTable(raw) ?? undefined;
}

function defineJson(o: Record<string, unknown>, key: string, v: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
  else o[key] = v;
}
