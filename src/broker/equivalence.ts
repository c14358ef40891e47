import { AmqpError } from '../protocol/errors';
import { PRECONDITION_FAILED } from '../protocol/constants';
import { Decimal, type FieldTable, type FieldValue } from '../protocol/types';
import { fieldValuesEqual } from './exchanges/field-equality';
import { QUEUE_TYPE_ARGUMENTS } from './arguments';

/**
 * Redeclaring an existing queue or exchange must name the same properties. RabbitMQ
 * compares only the arguments its queue type understands; others are ignored.
 */
export function queueArgsCompared(args: FieldTable): readonly string[] {
  const t = args['x-queue-type'];
  return QUEUE_TYPE_ARGUMENTS[t === 'quorum' || t === 'stream' ? t : 'classic'];
}

/** An absent x-queue-type is the same as 'classic'. */
export function withClassicDefault(args: FieldTable): FieldTable {
  return args['x-queue-type'] === undefined ? { ...args, 'x-queue-type': 'classic' } : args;
}
export const EXCHANGE_ARGS_COMPARED = ['alternate-exchange'];

export function assertPropertyEquivalent(what: string, arg: string, received: boolean | string, current: boolean | string): void {
  if (received !== current) {
    throw new AmqpError(PRECONDITION_FAILED, `inequivalent arg '${arg}' for ${what}: received '${received}' but current is '${current}'`);
  }
}

export function assertArgsEquivalent(what: string, keys: readonly string[], received: FieldTable, current: FieldTable): void {
  for (const key of keys) {
    const r = received[key];
    const c = current[key];
    if (r === undefined && c === undefined) continue;
    if (r !== undefined && c !== undefined && fieldValuesEqual(r, c)) continue;
    throw new AmqpError(
      PRECONDITION_FAILED,
      // Like RabbitMQ: plain values when both sides have one, typed when one side is missing.
      r !== undefined && c !== undefined
        ? `inequivalent arg '${key}' for ${what}: received '${String(r)}' but current is '${String(c)}'`
        : `inequivalent arg '${key}' for ${what}: received ${describeValue(r)} but current is ${describeValue(c)}`,
    );
  }
}

function describeValue(v: FieldValue | undefined): string {
  if (v === undefined) return 'none';
  return `the value '${String(v)}' of type '${typeName(v)}'`;
}

function typeName(v: FieldValue): string {
  if (typeof v === 'string') return 'longstr';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return 'long';
  if (typeof v === 'number') return Number.isInteger(v) ? (v >= -0x80000000 && v <= 0x7fffffff ? 'signedint' : 'long') : 'double';
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'void';
  if (Buffer.isBuffer(v)) return 'binary';
  if (v instanceof Date) return 'timestamp';
  if (v instanceof Decimal) return 'decimal';
  return 'table';
}
