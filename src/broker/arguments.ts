import { AmqpError } from '../protocol/errors';
import { INTERNAL_ERROR, PRECONDITION_FAILED } from '../protocol/constants';
import { Decimal, wireTypeOf, type FieldTable, type FieldValue } from '../protocol/types';
import { describeExchange, describeQueue } from './names';
import { erlBinary, erlFormatted } from '../protocol/erlang-terms';

/**
 * Validation of queue.declare, exchange.declare and basic.consume arguments the way
 * RabbitMQ 3.10 does it, with its exact error texts, and parsing of the valid values into a
 * typed object. Pure: no broker state. Every rule here was checked against RabbitMQ 3.10.8.
 *
 * RabbitMQ's texts print the wire type of a value ('signedint', 'byte', 'double', ...). A
 * decoded FieldTable records the tags its values' JS shapes do not imply (see WIRE_TYPES);
 * `types` overrides them (the AMQP type tag of each entry, by key). An entry with neither has
 * its type inferred from the JS value (integers in int32 range as 'signedint', other
 * integers as 'long', non-integers as 'double'), as the writer would send it.
 */

export type QueueType = 'classic' | 'quorum' | 'stream';
export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

export interface QueueArgs {
  queueType: QueueType;
  /** Milliseconds, 0..315360000000. */
  messageTtl?: number;
  /** Milliseconds, 1..315360000000. */
  expires?: number;
  maxLength?: number;
  maxLengthBytes?: number;
  overflow: Overflow;
  deadLetterExchange?: string;
  deadLetterRoutingKey?: string;
  /** 0..255; 0 is accepted by RabbitMQ (a priority queue with a single level). */
  maxPriority?: number;
  singleActiveConsumer: boolean;
  queueMode: 'default' | 'lazy';
  queueVersion?: 1 | 2;
  masterLocator?: string;
  // quorum queues
  deadLetterStrategy?: 'at-most-once' | 'at-least-once';
  maxInMemoryLength?: number;
  maxInMemoryBytes?: number;
  /** Not validated by RabbitMQ: only set when the value is an integer. */
  deliveryLimit?: number;
  quorumInitialGroupSize?: number;
  // streams
  /** Milliseconds. */
  maxAge?: number;
  streamMaxSegmentSizeBytes?: number;
  initialClusterSize?: number;
  /** Quorum queues and streams. */
  leaderLocator?: string;
}

export interface ExchangeArgs {
  alternateExchange?: string;
}

export interface ConsumerArgs {
  /** x-priority, any integer; 0 when absent. */
  priority: number;
  cancelOnHaFailover: boolean;
  /** Streams only: the raw x-stream-offset value. */
  streamOffset?: FieldValue;
}

/**
 * An error as RabbitMQ sends it. `text` is the exact reply text; `detail` is what follows
 * "NAME - " (what AmqpError wants). `connection` marks a connection-level close
 * (RabbitMQ's 541 INTERNAL_ERROR when its own code crashes on a value it did not validate).
 */
export interface ArgsError {
  code: number;
  text: string;
  detail: string;
  connection?: true;
}

export type ArgsResult<T> = { ok: T } | ArgsError;

/** AMQP field type tags ('b', 'I', 'l', 'd', 'S', 'x', ...) of a table's entries, by key. */
export type WireTypes = Readonly<Record<string, string>>;

export interface QueueArgsContext {
  queue: string;
  vhost: string;
  /** The declare's flags; when given, quorum/stream property restrictions are checked too. */
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** The client sent an empty name; `queue` is then the generated amq.gen-... name. */
  serverNamed?: boolean;
  types?: WireTypes;
}

export interface ExchangeArgsContext {
  exchange: string;
  vhost: string;
  types?: WireTypes;
}

export interface ConsumerArgsContext {
  queue: string;
  vhost: string;
  queueType?: QueueType;
  types?: WireTypes;
}

/** RabbitMQ rejects x-message-ttl / x-expires above ten years. */
export const MAX_EXPIRY = 315360000000;
export const MAX_PRIORITY = 255;
export const MAX_STREAM_SEGMENT_SIZE = 3000000000;

/** The queue arguments each queue type accepts (also the keys RabbitMQ compares on redeclare). */
export const QUEUE_TYPE_ARGUMENTS: Readonly<Record<QueueType, readonly string[]>> = {
  classic: [
    'x-expires',
    'x-message-ttl',
    'x-dead-letter-exchange',
    'x-dead-letter-routing-key',
    'x-max-length',
    'x-max-length-bytes',
    'x-max-priority',
    'x-overflow',
    'x-queue-mode',
    'x-queue-version',
    'x-single-active-consumer',
    'x-queue-type',
    'x-queue-master-locator',
  ],
  quorum: [
    'x-expires',
    'x-message-ttl',
    'x-dead-letter-exchange',
    'x-dead-letter-routing-key',
    'x-dead-letter-strategy',
    'x-max-length',
    'x-max-length-bytes',
    'x-max-in-memory-length',
    'x-max-in-memory-bytes',
    'x-overflow',
    'x-single-active-consumer',
    'x-queue-type',
    'x-quorum-initial-group-size',
    'x-delivery-limit',
    'x-queue-leader-locator',
  ],
  stream: [
    'x-max-length-bytes',
    'x-queue-type',
    'x-max-age',
    'x-stream-max-segment-size-bytes',
    'x-initial-cluster-size',
    'x-queue-leader-locator',
  ],
};

const CONSUMER_TYPE_ARGUMENTS: Readonly<Record<QueueType, readonly string[]>> = {
  classic: ['x-priority', 'x-cancel-on-ha-failover'],
  quorum: ['x-priority'],
  stream: ['x-stream-offset'],
};

const KNOWN_QUEUE_ARGS = new Set(Object.values(QUEUE_TYPE_ARGUMENTS).flat());
const KNOWN_CONSUMER_ARGS = new Set(Object.values(CONSUMER_TYPE_ARGUMENTS).flat());

const QUEUE_TYPE_MODULE: Record<QueueType, string> = {
  classic: 'rabbit_classic_queue',
  quorum: 'rabbit_quorum_queue',
  stream: 'rabbit_stream_queue',
};

// ---- wire types ------------------------------------------------------------------------

const TAG_NAMES: Record<string, string> = {
  t: 'bool',
  b: 'byte',
  B: 'unsignedbyte',
  s: 'short',
  u: 'unsignedshort',
  I: 'signedint',
  i: 'unsignedint',
  l: 'long',
  f: 'float',
  d: 'double',
  D: 'decimal',
  S: 'longstr',
  A: 'array',
  T: 'timestamp',
  F: 'table',
  V: 'void',
  x: 'binary',
};

const INTEGER_TYPES = new Set(['byte', 'short', 'signedint', 'long', 'unsignedbyte', 'unsignedshort', 'unsignedint']);

/** The JS shape a decoded value of each RabbitMQ type has: a tag that contradicts the value is ignored. */
function shapeOf(v: FieldValue): string {
  if (typeof v === 'number' || typeof v === 'bigint') return 'number';
  if (typeof v === 'string') return 'longstr';
  if (typeof v === 'boolean') return 'bool';
  if (v === null) return 'void';
  if (Buffer.isBuffer(v)) return 'binary';
  if (v instanceof Date) return 'timestamp';
  if (v instanceof Decimal) return 'decimal';
  if (Array.isArray(v)) return 'array';
  return 'table';
}

/** RabbitMQ's name for a field's type: from the wire tag when known, else inferred. */
export function fieldTypeName(v: FieldValue, tag?: string): string {
  const shape = shapeOf(v);
  const named = tag === undefined ? undefined : TAG_NAMES[tag];
  if (named !== undefined) {
    const numeric = INTEGER_TYPES.has(named) || named === 'float' || named === 'double';
    if (numeric ? shape === 'number' : shape === named) return named;
  }
  if (shape !== 'number') return shape;
  if (typeof v === 'bigint') return 'long';
  const n = v as number;
  if (!Number.isInteger(n)) return 'double';
  return n >= -0x80000000 && n <= 0x7fffffff ? 'signedint' : 'long';
}

// ---- errors ---------------------------------------------------------------------------------

function precondition(detail: string): ArgsError {
  return { code: PRECONDITION_FAILED, text: `PRECONDITION_FAILED - ${detail}`, detail };
}

const INTERNAL: ArgsError = { code: INTERNAL_ERROR, text: 'INTERNAL_ERROR', detail: '', connection: true };

/** An AmqpError whose message is exactly RabbitMQ's reply text. */
export function toAmqpError(e: ArgsError, classId = 0, methodId = 0): AmqpError {
  const err = new AmqpError(e.code, e.detail, classId, methodId);
  err.message = e.text;
  return err;
}

// ---- value checks ---------------------------------------------------------------------------

/** A validator's verdict: undefined, an Erlang error term (already printed), or a crash. */
type Verdict = string | typeof CRASH | undefined;
const CRASH = Symbol('crash');

interface Field {
  value: FieldValue;
  type: string;
}

function intOf(v: FieldValue): bigint {
  return typeof v === 'bigint' ? v : BigInt(v as number);
}

function toNumber(v: FieldValue): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

function checkInt(f: Field): Verdict {
  return INTEGER_TYPES.has(f.type) ? undefined : `"expected integer, got ${f.type}"`;
}

function checkNonNegInt(f: Field): Verdict {
  const e = checkInt(f);
  if (e !== undefined) return e;
  const n = intOf(f.value);
  return n < 0n ? `{value_negative,${n}}` : undefined;
}

function checkExpiry(n: bigint): Verdict {
  if (n < 0n) return `{value_negative,${n}}`;
  if (n > BigInt(MAX_EXPIRY)) return `{value_too_large,${n}}`;
  return undefined;
}

function checkBool(f: Field): Verdict {
  return f.type === 'bool' ? undefined : `{unacceptable_type,${f.type}}`;
}

function checkLongstr(f: Field): Verdict {
  return f.type === 'longstr' ? undefined : `{unacceptable_type,${f.type}}`;
}

function oneOf(f: Field, allowed: readonly string[], error: string): Verdict {
  if (f.type !== 'longstr') return `{unacceptable_type,${f.type}}`;
  return allowed.includes(f.value as string) ? undefined : error;
}

const UNIT_MS: Record<string, number> = { Y: 365 * 86400000, M: 30 * 86400000, D: 86400000, h: 3600000, m: 60000, s: 1000 };

/**
 * RabbitMQ's max-age syntax: digits then a unit (Y M D h m s), matched by "(^[0-9]*)(.*)"
 * (so the unit ends at a newline). No digits at all makes RabbitMQ crash (541).
 */
function parseMaxAge(s: string): number | 'invalid' | typeof CRASH {
  // Erlang's "." stops only at "\n" (JavaScript's also stops at "\r" and U+2028/9).
  const m = /^([0-9]*)([^\n]*)/.exec(s)!;
  if (m[1] === '') return CRASH;
  const n = Number(m[1]);
  if (n <= 0) return 'invalid';
  return Object.hasOwn(UNIT_MS, m[2]) ? n * UNIT_MS[m[2]] : 'invalid';
}

type Validator = (f: Field, args: FieldTable) => Verdict;

/** RabbitMQ's declare validators, in the order it runs them. */
const QUEUE_VALIDATORS: ReadonlyArray<[string, Validator]> = [
  [
    'x-expires',
    (f) => {
      const e = checkInt(f);
      if (e !== undefined) return e;
      const n = intOf(f.value);
      return n === 0n ? '{value_zero,0}' : checkExpiry(n);
    },
  ],
  ['x-message-ttl', (f) => checkInt(f) ?? checkExpiry(intOf(f.value))],
  ['x-dead-letter-exchange', checkLongstr],
  [
    'x-dead-letter-routing-key',
    (f, args) => checkLongstr(f) ?? (args['x-dead-letter-exchange'] === undefined ? 'routing_key_but_no_dlx_defined' : undefined),
  ],
  ['x-dead-letter-strategy', (f) => oneOf(f, ['at-most-once', 'at-least-once'], 'invalid_dlx_strategy')],
  ['x-max-length', checkNonNegInt],
  ['x-max-length-bytes', checkNonNegInt],
  ['x-max-in-memory-length', checkNonNegInt],
  ['x-max-in-memory-bytes', checkNonNegInt],
  [
    'x-max-priority',
    (f) => {
      const e = checkNonNegInt(f);
      if (e !== undefined) return e;
      const n = intOf(f.value);
      return n > BigInt(MAX_PRIORITY) ? `{max_value_exceeded,${n}}` : undefined;
    },
  ],
  ['x-overflow', (f) => oneOf(f, ['drop-head', 'reject-publish', 'reject-publish-dlx'], 'invalid_overflow')],
  [
    'x-queue-mode',
    (f) => {
      if (f.type !== 'longstr') return `{unacceptable_type,${f.type}}`;
      const v = f.value as string;
      return v === 'default' || v === 'lazy' ? undefined : erlFormatted("unsupported queue mode '", v, "'");
    },
  ],
  [
    'x-queue-version',
    (f) => {
      const e = checkNonNegInt(f);
      if (e !== undefined) return e;
      const n = intOf(f.value);
      return n === 1n || n === 2n ? undefined : `"unsupported queue version '${n}'"`;
    },
  ],
  ['x-single-active-consumer', checkBool],
  ['x-queue-type', (f) => checkQueueType(f)],
  ['x-quorum-initial-group-size', checkClusterSize],
  [
    'x-max-age',
    (f) => {
      if (f.type !== 'longstr') return `{unacceptable_type,${f.type}}`;
      const r = parseMaxAge(f.value as string);
      return r === CRASH ? CRASH : r === 'invalid' ? 'invalid_max_age' : undefined;
    },
  ],
  ['x-stream-max-segment-size-bytes', checkNonNegInt],
  ['x-initial-cluster-size', checkClusterSize],
  ['x-queue-leader-locator', (f) => oneOf(f, ['client-local', 'balanced', 'random', 'least-leaders'], 'invalid_queue_locator_arg')],
];

function checkClusterSize(f: Field): Verdict {
  const e = checkNonNegInt(f);
  if (e !== undefined) return e;
  return intOf(f.value) === 0n ? '{value_zero,0}' : undefined;
}

function checkQueueType(f: Field): Verdict {
  if (f.type !== 'longstr') return `{unacceptable_type,${f.type}}`;
  const v = f.value as string;
  return v === 'classic' || v === 'quorum' || v === 'stream' ? undefined : erlFormatted("unsupported queue type '", v, "'");
}

const MASTER_LOCATORS = ['client-local', 'min-masters', 'random'];

function stringish(v: FieldValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

function fieldOf(args: FieldTable, key: string, types: WireTypes | undefined): Field | undefined {
  if (!Object.hasOwn(args, key)) return undefined;
  const value = args[key];
  if (value === undefined) return undefined;
  return { value, type: fieldTypeName(value, types?.[key] ?? wireTypeOf(args, key)) };
}

function invalidArg(key: string, what: string, term: string): ArgsError {
  return precondition(`invalid arg '${key}' for ${what}: ${term}`);
}

function verdictError(key: string, what: string, v: Verdict): ArgsError | undefined {
  if (v === undefined) return undefined;
  if (v === CRASH) return INTERNAL;
  return invalidArg(key, what, v);
}

/** Known arguments the queue type does not take, reported in table order. */
function unsupportedKey(
  args: FieldTable,
  known: ReadonlySet<string>,
  supported: readonly string[],
  what: string,
  type: QueueType,
): ArgsError | undefined {
  for (const key of Object.keys(args)) {
    if (args[key] === undefined || !known.has(key) || supported.includes(key)) continue;
    return precondition(`invalid arg '${key}' for ${what} of queue type ${QUEUE_TYPE_MODULE[type]}`);
  }
  return undefined;
}

// ---- queue.declare --------------------------------------------------------------------------

/**
 * Validates the arguments of a queue.declare that creates a queue, in RabbitMQ's order:
 * the server-named check, the channel's x-dead-letter-exchange type check, x-queue-type,
 * the value validators the queue type takes (in RabbitMQ's fixed order, not table order),
 * then known arguments the type does not take (table order), then, when the flags are
 * given, the quorum/stream property restrictions and the stream segment-size maximum.
 * A redeclare of an existing queue is not validated by RabbitMQ: it only gets the
 * equivalence check.
 */
export function parseQueueArgs(args: FieldTable, ctx: QueueArgsContext): ArgsResult<QueueArgs> {
  const what = describeQueue(ctx.queue, ctx.vhost);
  const get = (key: string): Field | undefined => fieldOf(args, key, ctx.types);

  // rabbit_channel first refuses server-named queues of the replicated types (looking the
  // type up by value, whatever its field type; an unknown one crashes it), ...
  if (ctx.serverNamed === true) {
    const named = stringish(args['x-queue-type']);
    if (named === 'quorum' || named === 'stream') {
      return precondition(`Cannot declare a server-named queue for type ${QUEUE_TYPE_MODULE[named]}`);
    }
    if (args['x-queue-type'] !== undefined && named !== 'classic') return INTERNAL;
  }

  // ... then checks the dead-letter exchange's type, before the other arguments.
  const dlx = get('x-dead-letter-exchange');
  if (dlx !== undefined && dlx.type !== 'longstr') {
    return precondition(`invalid type '${dlx.type}' for arg 'x-dead-letter-exchange' in ${what}`);
  }

  const typeField = get('x-queue-type');
  if (typeField !== undefined) {
    const e = verdictError('x-queue-type', what, checkQueueType(typeField));
    if (e !== undefined) return e;
  }
  const queueType = (typeField?.value as QueueType | undefined) ?? 'classic';
  const supported = QUEUE_TYPE_ARGUMENTS[queueType];

  for (const [key, validate] of QUEUE_VALIDATORS) {
    if (!supported.includes(key)) continue;
    const f = get(key);
    if (f === undefined) continue;
    const e = verdictError(key, what, validate(f, args));
    if (e !== undefined) return e;
  }

  const unsupported = unsupportedKey(args, KNOWN_QUEUE_ARGS, supported, what, queueType);
  if (unsupported !== undefined) return unsupported;

  // Not validated by RabbitMQ 3.10: an unknown locator crashes the classic queue's creation.
  const locator = get('x-queue-master-locator');
  let masterLocator: string | undefined;
  if (queueType === 'classic' && locator !== undefined) {
    masterLocator = stringish(locator.value);
    if (masterLocator === undefined || !MASTER_LOCATORS.includes(masterLocator)) return INTERNAL;
  }

  if (queueType !== 'classic' && (ctx.durable !== undefined || ctx.exclusive !== undefined || ctx.autoDelete !== undefined)) {
    const exclusive = ctx.exclusive === true;
    // RabbitMQ treats an exclusive queue as non-durable whatever the flag says.
    const durable = ctx.durable === true && !exclusive;
    let property: string | undefined;
    if (ctx.autoDelete === true) property = 'auto-delete';
    else if (exclusive) property = 'exclusive-owner';
    else if (!durable) property = 'non-durable';
    if (property !== undefined) return precondition(`invalid property '${property}' for ${what}`);
  }
  // The stream's own declare check, after the properties.
  const segment = queueType === 'stream' ? get('x-stream-max-segment-size-bytes') : undefined;
  if (segment !== undefined && intOf(segment.value) > BigInt(MAX_STREAM_SEGMENT_SIZE)) {
    return precondition('Exceeded max value for x-stream-max-segment-size-bytes');
  }

  const num = (key: string): number | undefined => {
    const f = get(key);
    return f === undefined || !supported.includes(key) ? undefined : toNumber(f.value);
  };
  const str = (key: string): string | undefined => {
    const f = get(key);
    return f === undefined || !supported.includes(key) ? undefined : (f.value as string);
  };

  const out: QueueArgs = {
    queueType,
    overflow: (str('x-overflow') as Overflow | undefined) ?? 'drop-head',
    singleActiveConsumer: supported.includes('x-single-active-consumer') && args['x-single-active-consumer'] === true,
    queueMode: (str('x-queue-mode') as 'default' | 'lazy' | undefined) ?? 'default',
  };
  const set = <K extends keyof QueueArgs>(k: K, v: QueueArgs[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  set('messageTtl', num('x-message-ttl'));
  set('expires', num('x-expires'));
  set('maxLength', num('x-max-length'));
  set('maxLengthBytes', num('x-max-length-bytes'));
  set('deadLetterExchange', str('x-dead-letter-exchange'));
  set('deadLetterRoutingKey', str('x-dead-letter-routing-key'));
  set('maxPriority', num('x-max-priority'));
  set('queueVersion', num('x-queue-version') as 1 | 2 | undefined);
  set('masterLocator', masterLocator);
  set('deadLetterStrategy', str('x-dead-letter-strategy') as QueueArgs['deadLetterStrategy']);
  set('maxInMemoryLength', num('x-max-in-memory-length'));
  set('maxInMemoryBytes', num('x-max-in-memory-bytes'));
  const limit = get('x-delivery-limit');
  if (queueType === 'quorum' && limit !== undefined && INTEGER_TYPES.has(limit.type)) out.deliveryLimit = toNumber(limit.value);
  set('quorumInitialGroupSize', num('x-quorum-initial-group-size'));
  const maxAge = str('x-max-age');
  if (maxAge !== undefined) out.maxAge = parseMaxAge(maxAge) as number;
  set('streamMaxSegmentSizeBytes', num('x-stream-max-segment-size-bytes'));
  set('initialClusterSize', num('x-initial-cluster-size'));
  set('leaderLocator', str('x-queue-leader-locator'));
  return { ok: out };
}

// ---- exchange.declare -----------------------------------------------------------------------

/**
 * RabbitMQ checks only alternate-exchange's type (a longstr; it need not exist), and only
 * when the exchange is created; every other argument is ignored.
 */
export function parseExchangeArgs(args: FieldTable, ctx: ExchangeArgsContext): ArgsResult<ExchangeArgs> {
  const ae = fieldOf(args, 'alternate-exchange', ctx.types);
  if (ae === undefined) return { ok: {} };
  if (ae.type !== 'longstr') {
    return precondition(`invalid type '${ae.type}' for arg 'alternate-exchange' in ${describeExchange(ctx.exchange, ctx.vhost)}`);
  }
  return { ok: { alternateExchange: ae.value as string } };
}

// ---- basic.consume --------------------------------------------------------------------------

const STREAM_OFFSET_NAMES = ['first', 'last', 'next'];

function checkStreamOffset(f: Field): Verdict {
  if (f.type !== 'longstr' || STREAM_OFFSET_NAMES.includes(f.value as string)) return undefined;
  const r = parseMaxAge(f.value as string);
  if (r === CRASH) return CRASH;
  return r === 'invalid' ? `{invalid_stream_offset_arg,{longstr,${erlBinary(f.value as string)}}}` : undefined;
}

/** Offsets a stream consumer accepts; anything else that got past validation crashes (541). */
function streamOffsetUsable(f: Field): boolean {
  const s = stringish(f.value);
  if (s !== undefined && STREAM_OFFSET_NAMES.includes(s)) return true;
  return f.type === 'longstr' || f.type === 'timestamp' || INTEGER_TYPES.has(f.type);
}

const CONSUMER_VALIDATORS: ReadonlyArray<[string, Validator]> = [
  ['x-priority', checkInt],
  ['x-cancel-on-ha-failover', checkBool],
  ['x-stream-offset', checkStreamOffset],
];

/**
 * basic.consume arguments, validated like RabbitMQ: the validators the queue type takes
 * (x-priority any integer; x-cancel-on-ha-failover a bool; x-stream-offset for streams),
 * then known arguments the type does not take, in table order. Unknown ones are ignored.
 */
export function parseConsumerArgs(args: FieldTable, ctx: ConsumerArgsContext): ArgsResult<ConsumerArgs> {
  const what = describeQueue(ctx.queue, ctx.vhost);
  const queueType = ctx.queueType ?? 'classic';
  const supported = CONSUMER_TYPE_ARGUMENTS[queueType];
  const get = (key: string): Field | undefined => fieldOf(args, key, ctx.types);

  for (const [key, validate] of CONSUMER_VALIDATORS) {
    if (!supported.includes(key)) continue;
    const f = get(key);
    if (f === undefined) continue;
    const e = verdictError(key, what, validate(f, args));
    if (e !== undefined) return e;
  }
  const unsupported = unsupportedKey(args, KNOWN_CONSUMER_ARGS, supported, what, queueType);
  if (unsupported !== undefined) return unsupported;

  // x-credit (credit-flow consumers) is not validated: a table is taken (bad contents mean
  // the defaults), anything else crashes the channel, and for a classic queue the queue too.
  const credit = queueType === 'stream' ? undefined : get('x-credit');
  if (credit !== undefined && credit.type !== 'table') return INTERNAL;

  const out: ConsumerArgs = { priority: 0, cancelOnHaFailover: false };
  const priority = supported.includes('x-priority') ? get('x-priority') : undefined;
  if (priority !== undefined) out.priority = toNumber(priority.value);
  if (supported.includes('x-cancel-on-ha-failover') && args['x-cancel-on-ha-failover'] === true) out.cancelOnHaFailover = true;
  const offset = supported.includes('x-stream-offset') ? get('x-stream-offset') : undefined;
  if (offset !== undefined) {
    if (!streamOffsetUsable(offset)) return INTERNAL;
    out.streamOffset = offset.value;
  }
  return { ok: out };
}
