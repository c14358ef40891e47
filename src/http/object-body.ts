import type { FieldTable } from '../protocol/types';
import { field } from './body';
import { badRequest } from './errors';

/** A boolean of a request body as RabbitMQ reads it: true/false or their strings; absent is `dflt`. */
export function boolField(b: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = field(b, key);
  if (v === undefined) return dflt;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw badRequest(['not_boolean', typeof v === 'string' ? v : JSON.stringify(v)]);
}

/** `arguments`: a JSON object, whose values are AMQP field values as they stand. */
export function argumentsField(b: Record<string, unknown>, key = 'arguments'): FieldTable {
  const v = field(b, key);
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${key} must be a JSON object`);
  return v as FieldTable;
}

/** A string of a request body; absent is `dflt`. */
export function stringField(b: Record<string, unknown>, key: string, dflt: string): string {
  const v = field(b, key);
  if (v === undefined) return dflt;
  if (typeof v !== 'string') throw badRequest(`${key} must be a string`);
  return v;
}

/** RabbitMQ lists every required key that is missing: "[{key_missing,a},{key_missing,b}]". */
export function requireKeys(b: Record<string, unknown>, keys: readonly string[]): void {
  const missing = keys.filter((k) => field(b, k) === undefined);
  if (missing.length > 0) throw badRequest(`[${missing.map((k) => `{key_missing,${k}}`).join(',')}]`);
}
