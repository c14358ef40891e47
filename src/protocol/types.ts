/**
 * JavaScript shapes of AMQP field values. Integers decode to numbers (64-bit ones beyond
 * 2^53 to bigint); the AMQP types that have no natural JS shape get small classes so that a
 * table decoded and encoded again keeps its meaning.
 */
export class Decimal {
  constructor(
    readonly scale: number,
    readonly value: number,
  ) {}
}

export type FieldValue = boolean | number | bigint | string | Buffer | Date | Decimal | null | FieldValue[] | FieldTable;

export interface FieldTable {
  [key: string]: FieldValue | undefined;
}

/**
 * The wire types of a decoded table's (or array's) entries, by key (or index), kept so that
 * the broker re-encodes a byte as a byte and 1000.0 as a double. Only entries whose type
 * differs from what `inferredType` makes of their JS value are recorded, and the record is
 * created on the first such entry, so tables of strings and int32s carry nothing.
 *
 * It is a non-enumerable symbol property: Object.keys, JSON and equality never see it, and a
 * spread `{...t}` drops it (use `copyTable` / `copyArray` to keep it).
 */
export const WIRE_TYPES: unique symbol = Symbol('leveret.wireTypes');

/** Type tags ('b', 'B', 's', 'u', 'i', 'l', 'f', 'd', ...) by key or array index. */
export type WireTypeRecord = Record<string, string>;

type Typed = { [WIRE_TYPES]?: WireTypeRecord };

/** The container's record of tags, if it has one. */
export function wireTypes(container: FieldTable | FieldValue[]): WireTypeRecord | undefined {
  return (container as Typed)[WIRE_TYPES];
}

/** The tag recorded for `key` of a decoded table or array (undefined: the inferred one). */
export function wireTypeOf(container: FieldTable | FieldValue[], key: string | number): string | undefined {
  return (container as Typed)[WIRE_TYPES]?.[key];
}

/** Records `tag` for `key`, or forgets it when the tag is what the value infers anyway. */
export function setWireType(container: FieldTable | FieldValue[], key: string | number, tag: string | undefined): void {
  const typed = container as Typed;
  const value = Array.isArray(container) ? container[key as number] : container[key];
  if (tag === undefined || value === undefined || tag === inferredType(value)) {
    if (typed[WIRE_TYPES] !== undefined) delete typed[WIRE_TYPES][key];
    return;
  }
  wireTypesFor(container)[key] = tag;
}

/** The container's record, created (non-enumerable) when it has none yet. */
export function wireTypesFor(container: FieldTable | FieldValue[]): WireTypeRecord {
  const typed = container as Typed;
  let types = typed[WIRE_TYPES];
  if (types === undefined) {
    types = Object.create(null) as WireTypeRecord;
    Object.defineProperty(container, WIRE_TYPES, { value: types, enumerable: false, writable: true, configurable: true });
  }
  return types;
}

/** A shallow copy that keeps the wire types (nested tables and arrays are shared). */
export function copyTable(t: FieldTable): FieldTable {
  const out: FieldTable = {};
  for (const key of Object.keys(t)) defineEntry(out, key, t[key]);
  copyWireTypes(t, out);
  return out;
}

/** A shallow copy of an array that keeps the wire types of its elements. */
export function copyArray(a: readonly FieldValue[]): FieldValue[] {
  const out = a.slice();
  copyWireTypes(a as FieldValue[], out);
  return out;
}

function copyWireTypes(from: FieldTable | FieldValue[], to: FieldTable | FieldValue[]): void {
  const types = (from as Typed)[WIRE_TYPES];
  if (types !== undefined) Object.assign(wireTypesFor(to), types);
}

/** Sets a table entry; a key named __proto__ stays a key instead of replacing the prototype. */
export function defineEntry(t: FieldTable, key: string, value: FieldValue | undefined): void {
  if (key === '__proto__') Object.defineProperty(t, key, { value, enumerable: true, writable: true, configurable: true });
  else t[key] = value;
}

/**
 * The tag the writer gives a value that has none recorded: int32-range integers 'I', other
 * safe integers and bigints 'l', other numbers 'd'; the other shapes have one type each.
 */
export function inferredType(v: FieldValue): string {
  switch (typeof v) {
    case 'number':
      return inferredNumberType(v);
    case 'string':
      return 'S';
    case 'boolean':
      return 't';
    case 'bigint':
      return 'l';
    default:
      if (v === null) return 'V';
      if (Buffer.isBuffer(v)) return 'x';
      if (v instanceof Date) return 'T';
      if (v instanceof Decimal) return 'D';
      return Array.isArray(v) ? 'A' : 'F';
  }
}

export function inferredNumberType(n: number): string {
  // -0 counts as an integer here (and is sent as 'I' 0); a decoded double -0 records its 'd'.
  if (Number.isInteger(n)) {
    if (n >= -0x80000000 && n <= 0x7fffffff) return 'I';
    if (Number.isSafeInteger(n)) return 'l';
  }
  return 'd';
}

/** Whether a number can be encoded with a numeric tag without changing its value. */
export function numberFits(n: number, tag: string): boolean {
  switch (tag) {
    case 'b':
      return Number.isInteger(n) && n >= -0x80 && n <= 0x7f;
    case 'B':
      return Number.isInteger(n) && n >= 0 && n <= 0xff;
    case 's':
      return Number.isInteger(n) && n >= -0x8000 && n <= 0x7fff;
    case 'u':
      return Number.isInteger(n) && n >= 0 && n <= 0xffff;
    case 'I':
      return Number.isInteger(n) && n >= -0x80000000 && n <= 0x7fffffff;
    case 'i':
      return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
    case 'l':
      return Number.isSafeInteger(n);
    case 'f':
      return Number.isNaN(n) || Math.fround(n) === n;
    case 'd':
      return true;
    default:
      return false;
  }
}

/**
 * How many tables and arrays a field table may nest inside itself. Decoding (and every
 * later walk over a table: encoding, comparing, rendering) recurses once per level, and
 * V8's stack gives out a few thousand levels down, so a client sending tables nested
 * thousands deep would otherwise reach a stack overflow instead of a protocol error.
 * RabbitMQ sets no limit (Erlang's stack grows on the heap); no client nests anywhere
 * near this. It equals the management API's MAX_JSON_DEPTH so that what one side
 * accepts the other renders whole, and what the API stores the protocol reads back.
 */
export const MAX_FIELD_DEPTH = 1500;

/** On a decoded timestamp too large for a Date: the seconds as sent. */
export const RAW_SECONDS = Symbol('raw timestamp seconds');
