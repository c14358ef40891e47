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
 * Typed loosely: http/ does not depend on the protocol layer's types (test/layers.test.ts);
 * a decoded FieldTable is such a record.
 */
export function fieldTableToJson(table: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return tableJson(table, 1);
}

function tableJson(table: Readonly<Record<string, unknown>>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(table)) {
    const v = table[key];
    if (v !== undefined) out[key] = valueJson(v, depth);
  }
  return out;
}

function valueJson(v: unknown, depth: number): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  // JSON has no NaN or infinities; RabbitMQ cannot render them either.
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  // JSON numbers are read as doubles by most clients anyway.
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'object') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : Math.floor(v.getTime() / 1000);
  if (depth >= MAX_JSON_DEPTH) return TOO_DEEP;
  if (Array.isArray(v)) return v.map((x) => valueJson(x, depth + 1));
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto === Object.prototype || proto === null) return tableJson(v as Record<string, unknown>, depth + 1);
  // The decoder's Decimal (a class instance, unlike tables, which are plain objects).
  const d = v as { scale?: unknown; value?: unknown };
  if (typeof d.scale === 'number' && typeof d.value === 'number') return d.value / 10 ** d.scale;
  return String(v);
}
