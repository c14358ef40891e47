import { Decimal, type FieldTable, type FieldValue } from '../../protocol/types';

/*
 * Equality of AMQP field values, as binding identity and the headers exchange need it.
 *
 * RabbitMQ keeps every value with its AMQP type and compares typed values, so inside a
 * nested table or array an int 1 and a double 1.0 differ. Our decoded tables keep no
 * integer/float distinction, so within one JS kind we compare by value; that is the one
 * place where Leveret is (slightly) more permissive than RabbitMQ.
 */

/** A nested table: any object that is not one of the other object-shaped field values. */
export function isFieldTable(v: FieldValue | undefined): v is FieldTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date) && !(v instanceof Decimal);
}

/**
 * Strict equality: both values must be of the same kind. Nested tables compare entry by
 * entry in order, because RabbitMQ sorts only the top level of a table (checked against
 * RabbitMQ 3.10: {a:{b,c}} does not match {a:{c,b}} in a headers exchange).
 */
export function fieldValuesEqual(a: FieldValue | undefined, b: FieldValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  switch (typeof a) {
    case 'number':
    case 'bigint':
      // A long decodes to a number or a bigint depending on magnitude; still one AMQP type.
      return (typeof b === 'number' || typeof b === 'bigint') && a == b;
    case 'object':
      break;
    default:
      // string, boolean: a === b already failed.
      return false;
  }
  if (typeof b !== 'object') return false;
  if (Buffer.isBuffer(a)) return Buffer.isBuffer(b) && a.equals(b);
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof Decimal) return b instanceof Decimal && a.scale === b.scale && a.value === b.value;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!fieldValuesEqual(a[i], b[i])) return false;
    return true;
  }
  return isFieldTable(b) && orderedTablesEqual(a, b);
}

function orderedTablesEqual(a: FieldTable, b: FieldTable): boolean {
  const ka = definedKeys(a);
  const kb = definedKeys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i] || !fieldValuesEqual(a[ka[i]], b[kb[i]])) return false;
  }
  return true;
}

/**
 * Top-level table equality ignoring key order: RabbitMQ sorts binding arguments, so
 * binding {a,b} and unbinding {b,a} address the same binding (checked against 3.10).
 * A key holding `undefined` counts as absent.
 */
export function fieldTablesEqual(a: FieldTable, b: FieldTable): boolean {
  if (a === b) return true;
  const ka = definedKeys(a);
  if (ka.length !== definedKeys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !fieldValuesEqual(a[k], b[k])) return false;
  }
  return true;
}

function definedKeys(t: FieldTable): string[] {
  return Object.keys(t).filter((k) => t[k] !== undefined);
}
