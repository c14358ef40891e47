import { AmqpError } from '../protocol/errors';
import { PRECONDITION_FAILED } from '../protocol/constants';
import { copyTable, wireTypeOf, type FieldTable, type FieldValue } from '../protocol/types';
import { fieldValuesEqual } from './exchanges/field-equality';
import { fieldTypeName, QUEUE_TYPE_ARGUMENTS } from './arguments';

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
  if (args['x-queue-type'] !== undefined) return args;
  const out = copyTable(args);
  out['x-queue-type'] = 'classic';
  return out;
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
        ? // eslint-disable-next-line @typescript-eslint/no-base-to-string -- RabbitMQ's text; tables print as they do there
          `inequivalent arg '${key}' for ${what}: received '${String(r)}' but current is '${String(c)}'`
        : `inequivalent arg '${key}' for ${what}: received ${describeValue(r, wireTypeOf(received, key))} but current is ${describeValue(c, wireTypeOf(current, key))}`,
    );
  }
}

function describeValue(v: FieldValue | undefined, tag: string | undefined): string {
  if (v === undefined) return 'none';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- RabbitMQ's text
  return `the value '${String(v)}' of type '${fieldTypeName(v, tag)}'`;
}
