import { AmqpError } from '../protocol/errors';
import { ACCESS_REFUSED, COMMAND_INVALID, NOT_FOUND, PRECONDITION_FAILED, RESOURCE_LOCKED } from '../protocol/constants';
import { copyTable, type FieldTable } from '../protocol/types';
import { bindingArgumentsError, createExchange, EXCHANGE_TYPES } from './exchanges';
import { parseExchangeArgs, parseQueueArgs, toAmqpError } from './arguments';
import { assertArgsEquivalent, assertPropertyEquivalent, EXCHANGE_ARGS_COMPARED, queueArgsCompared, withClassicDefault } from './equivalence';
import { describeExchange, describeQueue, isReservedName } from './names';

/*
 * What Vhost.declareQueue, declareExchange and bindQueue/bindExchange would refuse, asked
 * without declaring anything, against queues and exchanges that may exist only on paper
 * (a definitions import checks a whole document before it applies any of it). The checks
 * and their order are the Vhost's; each answers RabbitMQ's reply text, or null.
 */

export interface QueueShape {
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly args: FieldTable;
  /** owned by a connection (an existing exclusive queue) */
  readonly exclusive: boolean;
}

export interface ExchangeShape {
  readonly type: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly args: FieldTable;
}

function textOf(check: () => void): string | null {
  try {
    check();
    return null;
  } catch (err) {
    if (err instanceof AmqpError) return err.message;
    throw err;
  }
}

function locked(what: string): AmqpError {
  return new AmqpError(
    RESOURCE_LOCKED,
    `cannot obtain exclusive access to locked ${what}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
  );
}

/** The arguments a durable, non-exclusive queue gets from its vhost's default queue type (as Vhost does). */
export function withDefaultQueueType(defaultQueueType: string | null, args: FieldTable, durable: boolean): FieldTable {
  if (defaultQueueType === null || defaultQueueType === 'classic' || Object.hasOwn(args, 'x-queue-type') || !durable) return args;
  const patched = copyTable(args);
  patched['x-queue-type'] = defaultQueueType;
  return patched;
}

/** A non-exclusive declaration of queue `name` (args already with the vhost's default type). */
export function queueDeclarationError(vhost: string, name: string, durable: boolean, autoDelete: boolean, args: FieldTable, existing: QueueShape | undefined): string | null {
  const what = describeQueue(name, vhost);
  return textOf(() => {
    if (name === '') throw new AmqpError(PRECONDITION_FAILED, 'a queue name must be given');
    // An existing server-named (amq.gen-) queue is there already: only the equivalence counts.
    if (existing === undefined && isReservedName(name)) throw new AmqpError(ACCESS_REFUSED, `queue name '${name}' contains reserved prefix 'amq.*'`);
    if (existing !== undefined) {
      if (existing.exclusive) throw locked(what);
      assertPropertyEquivalent(what, 'durable', durable, existing.durable);
      assertPropertyEquivalent(what, 'auto_delete', autoDelete, existing.autoDelete);
      assertArgsEquivalent(what, queueArgsCompared(existing.args), withClassicDefault(args), withClassicDefault(existing.args));
      return;
    }
    const parsed = parseQueueArgs(args, { queue: name, vhost, durable, exclusive: false, autoDelete });
    if ('code' in parsed) throw toAmqpError(parsed);
    if (parsed.ok.queueType === 'stream') throw new AmqpError(PRECONDITION_FAILED, `invalid arg 'x-queue-type' for ${what}: stream queues are not supported by Leveret`);
  });
}

export function exchangeDeclarationError(vhost: string, name: string, declared: ExchangeShape, existing: ExchangeShape | undefined): string | null {
  const what = describeExchange(name, vhost);
  return textOf(() => {
    if (!EXCHANGE_TYPES.includes(declared.type)) throw new AmqpError(COMMAND_INVALID, `invalid exchange type '${declared.type}'`);
    if (name === '') throw new AmqpError(ACCESS_REFUSED, 'operation not permitted on the default exchange');
    if (existing !== undefined) {
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
  });
}

/**
 * A binding from exchange `source` to a queue or exchange; `dest` is undefined when the
 * destination does not exist, else whether it is a queue owned by a connection.
 */
export function bindingError(
  vhost: string,
  source: string,
  src: ExchangeShape | undefined,
  kind: 'queue' | 'exchange',
  destination: string,
  dest: { exclusive: boolean } | undefined,
  args: FieldTable,
): string | null {
  return textOf(() => {
    if (source === '' || (kind === 'exchange' && destination === '')) throw new AmqpError(ACCESS_REFUSED, 'operation not permitted on the default exchange');
    if (src === undefined) throw new AmqpError(NOT_FOUND, `no ${describeExchange(source, vhost)}`);
    const what = kind === 'queue' ? describeQueue(destination, vhost) : describeExchange(destination, vhost);
    if (dest === undefined) throw new AmqpError(NOT_FOUND, `no ${what}`);
    if (dest.exclusive) throw locked(what);
    // Only the source's type matters (headers checks x-match): a stand-in of that type answers.
    const error = bindingArgumentsError(createExchange(src.type, source, false, false, false, {})!, args);
    if (error !== undefined) throw new AmqpError(PRECONDITION_FAILED, error);
  });
}
