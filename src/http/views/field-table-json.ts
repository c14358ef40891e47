import { Decimal, type FieldTable, type FieldValue } from '../../protocol/types';

/**
 * How deep tables and arrays are rendered. A client may send tables nested thousands deep
 * (the decoder takes them); the management API must still answer without exhausting the
 * stack, so what lies deeper is shown as this marker.
 */
export const MAX_JSON_DEPTH = 64;
export const TOO_DEEP = '...';

/**
 * An AMQP field table as RabbitMQ's management API shows it (client_properties, arguments,
 * headers): booleans, numbers and strings as themselves, tables as objects, arrays as
 * lists, byte strings as text, timestamps as seconds since the epoch, decimals as numbers.
 */
export function fieldTableToJson(table: FieldTable): Record<string, unknown> {
  return tableJson(table, 1);
}

function tableJson(table: FieldTable, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(table)) {
    const v = table[key];
    if (v !== undefined) out[key] = valueJson(v, depth);
  }
  return out;
}

function valueJson(v: FieldValue, depth: number): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  // JSON has no NaN or infinities; RabbitMQ cannot render them either.
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  // JSON numbers are read as doubles by most clients anyway.
  if (typeof v === 'bigint') return Number(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : Math.floor(v.getTime() / 1000);
  if (v instanceof Decimal) return v.value / 10 ** v.scale;
  if (depth >= MAX_JSON_DEPTH) return TOO_DEEP;
  if (Array.isArray(v)) return v.map((x) => valueJson(x, depth + 1));
  return tableJson(v, depth + 1);
}
