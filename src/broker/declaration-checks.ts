import { AmqpError } from '../protocol/errors';
import { ACCESS_REFUSED, COMMAND_INVALID, NOT_FOUND, PRECONDITION_FAILED, RESOURCE_LOCKED } from '../protocol/constants';
import { copyTable, type FieldTable } from '../protocol/types';
import type { Exchange } from './exchanges/exchange';
import { bindingArgumentsError, createExchange, EXCHANGE_TYPES } from './exchanges';
import { parseExchangeArgs, parseQueueArgs, toAmqpError, type QueueArgs } from './arguments';
import {
  assertArgsEquivalent,
  assertPropertyEquivalent,
  EXCHANGE_ARGS_COMPARED,
  queueArgsCompared,
  withClassicDefault,
} from './equivalence';
import { describeExchange, describeQueue, isReservedName } from './names';

/*
 * The refusals of exchange.declare, queue.declare and queue.bind/exchange.bind (and their
 * unbinds), in RabbitMQ's order and words: the one place they are written. Vhost calls the
 * check* functions before it changes anything; a definitions import calls the *Error forms
 * to check a whole document before it applies any of it, against queues and exchanges that
 * may exist only on paper. They take shapes, which a Queue and an Exchange fit as they are.
 */

export interface QueueShape {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly args: FieldTable;
  /** the connection an exclusive queue belongs to (opaque), else null */
  readonly exclusiveOwner: object | null;
}

export interface ExchangeShape {
  readonly type: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly args: FieldTable;
}

/** Another connection's exclusive queue: `owner` (the one asking, null for none) may not use it. */
export const lockedAgainst = (q: QueueShape, owner: object | null): boolean => q.exclusiveOwner !== null && q.exclusiveOwner !== owner;

export function lockedError(what: string): AmqpError {
  return new AmqpError(
    RESOURCE_LOCKED,
    `cannot obtain exclusive access to locked ${what}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
  );
}

const defaultExchangeRefused = (): AmqpError => new AmqpError(ACCESS_REFUSED, 'operation not permitted on the default exchange');

/**
 * The vhost's default queue type, as RabbitMQ applies it: a durable, non-exclusive queue
 * declared without `x-queue-type` gets the default's type; any other declaration stays
 * classic.
 */
export function withDefaultQueueType(defaultQueueType: string | null, args: FieldTable, durable: boolean, exclusive = false): FieldTable {
  if (defaultQueueType === null || defaultQueueType === 'classic' || Object.hasOwn(args, 'x-queue-type') || !durable || exclusive)
    return args;
  const patched = copyTable(args);
  patched['x-queue-type'] = defaultQueueType;
  return patched;
}

// ---- the checks, as the model throws them ------------------------------------------------

/** A queue name a client chose (RabbitMQ checks it before anything else, existing or not). */
export function checkQueueName(name: string): void {
  if (isReservedName(name)) throw new AmqpError(ACCESS_REFUSED, `queue name '${name}' contains reserved prefix 'amq.*'`);
}

/**
 * A non-passive queue.declare once its name is settled (and checked) and its arguments
 * carry the vhost's default type: against `existing`, the exclusivity and then the
 * equivalence; else the arguments, which RabbitMQ validates only when the queue is
 * created. Returns a new queue's parsed arguments, null for an existing queue.
 */
export function checkQueueDeclaration(
  vhost: string,
  name: string,
  declared: QueueShape & { serverNamed?: boolean },
  existing: QueueShape | undefined,
): QueueArgs | null {
  const what = describeQueue(name, vhost);
  if (existing !== undefined) {
    // Strict, as RabbitMQ: the declaration's exclusivity must match the queue's owner.
    if (existing.exclusiveOwner !== declared.exclusiveOwner) throw lockedError(what);
    assertPropertyEquivalent(what, 'durable', declared.durable, existing.durable);
    assertPropertyEquivalent(what, 'auto_delete', declared.autoDelete, existing.autoDelete);
    assertArgsEquivalent(what, queueArgsCompared(existing.args), withClassicDefault(declared.args), withClassicDefault(existing.args));
    return null;
  }
  const { durable, autoDelete, serverNamed } = declared;
  const parsed = parseQueueArgs(declared.args, {
    queue: name,
    vhost,
    durable,
    exclusive: declared.exclusiveOwner !== null,
    autoDelete,
    serverNamed,
  });
  if ('code' in parsed) throw toAmqpError(parsed);
  if (parsed.ok.queueType === 'stream')
    throw new AmqpError(PRECONDITION_FAILED, `invalid arg 'x-queue-type' for ${what}: stream queues are not supported by Leveret`);
  return parsed.ok;
}

/** A non-passive exchange.declare: the type, the default exchange, then the name and arguments only if it is new. */
export function checkExchangeDeclaration(vhost: string, name: string, declared: ExchangeShape, existing: ExchangeShape | undefined): void {
  if (!EXCHANGE_TYPES.includes(declared.type)) throw new AmqpError(COMMAND_INVALID, `invalid exchange type '${declared.type}'`);
  if (name === '') throw defaultExchangeRefused();
  if (existing !== undefined) {
    const what = describeExchange(name, vhost);
    assertPropertyEquivalent(what, 'type', declared.type, existing.type);
    assertPropertyEquivalent(what, 'durable', declared.durable, existing.durable);
    assertPropertyEquivalent(what, 'auto_delete', declared.autoDelete, existing.autoDelete);
    assertPropertyEquivalent(what, 'internal', declared.internal, existing.internal);
    assertArgsEquivalent(what, EXCHANGE_ARGS_COMPARED, declared.args, existing.args);
    return;
  }
  if (isReservedName(name)) throw new AmqpError(ACCESS_REFUSED, `exchange name '${name}' contains reserved prefix 'amq.*'`);
  const parsed = parseExchangeArgs(declared.args, { exchange: name, vhost });
  if ('code' in parsed) throw toAmqpError(parsed);
}

/**
 * The ends of a binding (or unbinding) from exchange `source` to a queue or exchange:
 * `src` and `dest` are undefined when missing; `locked`, the destination is a queue the
 * one asking may not use (checked first, as RabbitMQ looks the queue up before the rest).
 */
export function checkBindingEnds(
  vhost: string,
  source: string,
  src: ExchangeShape | undefined,
  kind: 'queue' | 'exchange',
  destination: string,
  dest: QueueShape | ExchangeShape | undefined,
  locked: boolean,
): void {
  if (locked) throw lockedError(describeQueue(destination, vhost));
  if (source === '' || (kind === 'exchange' && destination === '')) throw defaultExchangeRefused();
  if (src === undefined) throw new AmqpError(NOT_FOUND, `no ${describeExchange(source, vhost)}`);
  if (dest === undefined)
    throw new AmqpError(NOT_FOUND, `no ${kind === 'queue' ? describeQueue(destination, vhost) : describeExchange(destination, vhost)}`);
}

/** A binding's arguments, which only the source exchange's type judges (headers checks x-match). */
export function checkBindingArguments(src: Exchange, args: FieldTable): void {
  const error = bindingArgumentsError(src, args);
  if (error !== undefined) throw new AmqpError(PRECONDITION_FAILED, error);
}

// ---- the same checks as texts, for a document checked before it is applied ----------------

function textOf(check: () => void): string | null {
  try {
    check();
    return null;
  } catch (err) {
    if (err instanceof AmqpError) return err.message;
    throw err;
  }
}

/** A non-exclusive declaration of queue `name` (args already with the vhost's default type). */
export function queueDeclarationError(
  vhost: string,
  name: string,
  durable: boolean,
  autoDelete: boolean,
  args: FieldTable,
  existing: QueueShape | undefined,
): string | null {
  return textOf(() => {
    // A document cannot ask for a server-named queue (over AMQP an empty name makes one).
    if (name === '') throw new AmqpError(PRECONDITION_FAILED, 'a queue name must be given');
    // An existing server-named (amq.gen-) queue is there already: only the equivalence counts.
    if (existing === undefined) checkQueueName(name);
    checkQueueDeclaration(vhost, name, { durable, autoDelete, args, exclusiveOwner: null }, existing);
  });
}

export function exchangeDeclarationError(
  vhost: string,
  name: string,
  declared: ExchangeShape,
  existing: ExchangeShape | undefined,
): string | null {
  return textOf(() => checkExchangeDeclaration(vhost, name, declared, existing));
}

/** A binding asked for by no connection: any exclusive queue is locked to it. */
export function bindingError(
  vhost: string,
  source: string,
  src: ExchangeShape | undefined,
  kind: 'queue' | 'exchange',
  destination: string,
  dest: QueueShape | ExchangeShape | undefined,
  args: FieldTable,
): string | null {
  return textOf(() => {
    const locked = kind === 'queue' && dest !== undefined && lockedAgainst(dest as QueueShape, null);
    checkBindingEnds(vhost, source, src, kind, destination, dest, locked);
    // A stand-in of the source's type judges the arguments as the source would.
    checkBindingArguments(createExchange(src!.type, source, false, false, false, {})!, args);
  });
}
