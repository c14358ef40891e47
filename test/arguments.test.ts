import { describe, it, expect } from 'vitest';
import {
  fieldTypeName,
  parseConsumerArgs,
  parseExchangeArgs,
  parseQueueArgs,
  toAmqpError,
  type ArgsResult,
  type QueueArgs,
  type QueueArgsContext,
  type WireTypes,
} from '../src/broker/arguments';
import { Decimal, type FieldTable } from '../src/protocol/types';

// Every expectation below was checked against RabbitMQ 3.10.8 with raw frames carrying the
// exact field types named in `types` (the AMQP tags: b B s u I i l f d S x t V T D A F).

const Q = "queue 'q' in vhost '/'";

function declare(args: FieldTable, types?: WireTypes, flags: Partial<QueueArgsContext> = {}): ArgsResult<QueueArgs> {
  return parseQueueArgs(args, { queue: 'q', vhost: '/', types, ...flags });
}

/** The reply text, or 'OK'. */
function text(r: ArgsResult<unknown>): string {
  return 'ok' in r ? 'OK' : r.text;
}

function invalid(key: string, term: string): string {
  return `PRECONDITION_FAILED - invalid arg '${key}' for ${Q}: ${term}`;
}

function unsupported(key: string, type: string): string {
  return `PRECONDITION_FAILED - invalid arg '${key}' for ${Q} of queue type rabbit_${type}_queue`;
}

const QUORUM = { 'x-queue-type': 'quorum' };
const STREAM = { 'x-queue-type': 'stream' };
const DURABLE = { durable: true };

describe('x-message-ttl', () => {
  it('accepts an integer of any integer wire type', () => {
    // checked against RabbitMQ 3.10.8
    for (const t of ['b', 'B', 's', 'u', 'I', 'i', 'l']) expect(text(declare({ 'x-message-ttl': 5 }, { 'x-message-ttl': t }))).toBe('OK');
    const r = declare({ 'x-message-ttl': 1000 });
    expect('ok' in r && r.ok.messageTtl).toBe(1000);
  });

  it('accepts 0 and values up to ten years (315360000000 ms)', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-message-ttl': 0 }))).toBe('OK');
    expect(text(declare({ 'x-message-ttl': 315360000000 }))).toBe('OK');
  });

  it('rejects more than ten years', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-message-ttl': 315360000001 }))).toBe(invalid('x-message-ttl', '{value_too_large,315360000001}'));
    expect(text(declare({ 'x-message-ttl': 9223372036854775807n }))).toBe(
      invalid('x-message-ttl', '{value_too_large,9223372036854775807}'),
    );
  });

  it('rejects a negative value', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-message-ttl': -1 }))).toBe(invalid('x-message-ttl', '{value_negative,-1}'));
    expect(text(declare({ 'x-message-ttl': -5 }, { 'x-message-ttl': 'b' }))).toBe(invalid('x-message-ttl', '{value_negative,-5}'));
  });

  it('rejects a string, even a numeric one', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-message-ttl': '1000' }))).toBe(invalid('x-message-ttl', '"expected integer, got longstr"'));
  });

  it('rejects floats and doubles, even integral ones (needs the wire type)', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-message-ttl': 1.5 }))).toBe(invalid('x-message-ttl', '"expected integer, got double"'));
    expect(text(declare({ 'x-message-ttl': 1.5 }, { 'x-message-ttl': 'f' }))).toBe(
      invalid('x-message-ttl', '"expected integer, got float"'),
    );
    expect(text(declare({ 'x-message-ttl': 1 }, { 'x-message-ttl': 'd' }))).toBe(
      invalid('x-message-ttl', '"expected integer, got double"'),
    );
  });

  it('names every other type in the error', () => {
    // checked against RabbitMQ 3.10.8
    const cases: Array<[FieldTable[string], string]> = [
      [true, 'bool'],
      [null, 'void'],
      [Buffer.from('1000'), 'binary'],
      [new Date(5000), 'timestamp'],
      [new Decimal(1, 5), 'decimal'],
      [[1], 'array'],
      [{ a: 1 }, 'table'],
    ];
    for (const [v, name] of cases) {
      expect(text(declare({ 'x-message-ttl': v }))).toBe(invalid('x-message-ttl', `"expected integer, got ${name}"`));
    }
  });
});

describe('x-expires', () => {
  it('accepts 1', () => {
    // checked against RabbitMQ 3.10.8
    const r = declare({ 'x-expires': 1 });
    expect('ok' in r && r.ok.expires).toBe(1);
  });

  it('rejects 0 whatever its integer type', () => {
    // checked against RabbitMQ 3.10.8
    for (const t of ['I', 'b', 'l', 'u'])
      expect(text(declare({ 'x-expires': 0 }, { 'x-expires': t }))).toBe(invalid('x-expires', '{value_zero,0}'));
  });

  it('rejects negatives, more than ten years and non-integers', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-expires': -1 }))).toBe(invalid('x-expires', '{value_negative,-1}'));
    expect(text(declare({ 'x-expires': 315360000001 }))).toBe(invalid('x-expires', '{value_too_large,315360000001}'));
    expect(text(declare({ 'x-expires': '1000' }))).toBe(invalid('x-expires', '"expected integer, got longstr"'));
    expect(text(declare({ 'x-expires': true }))).toBe(invalid('x-expires', '"expected integer, got bool"'));
  });
});

describe('x-max-length and x-max-length-bytes', () => {
  it('accept 0 and any non-negative long', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-max-length': 0 }))).toBe('OK');
    expect(text(declare({ 'x-max-length-bytes': 0 }))).toBe('OK');
    expect(text(declare({ 'x-max-length': 9223372036854775807n }))).toBe('OK');
    expect(text(declare({ 'x-max-length': 4294967295 }, { 'x-max-length': 'i' }))).toBe('OK');
  });

  it('reject negatives and non-integers', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-max-length': -1 }))).toBe(invalid('x-max-length', '{value_negative,-1}'));
    expect(text(declare({ 'x-max-length-bytes': -1 }))).toBe(invalid('x-max-length-bytes', '{value_negative,-1}'));
    expect(text(declare({ 'x-max-length': '1' }))).toBe(invalid('x-max-length', '"expected integer, got longstr"'));
    expect(text(declare({ 'x-max-length-bytes': false }))).toBe(invalid('x-max-length-bytes', '"expected integer, got bool"'));
  });
});

describe('x-max-priority', () => {
  it('accepts 0 through 255', () => {
    // checked against RabbitMQ 3.10.8
    for (const n of [0, 1, 255]) expect(text(declare({ 'x-max-priority': n }))).toBe('OK');
    const r = declare({ 'x-max-priority': 10 });
    expect('ok' in r && r.ok.maxPriority).toBe(10);
  });

  it('rejects more than 255', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-max-priority': 256 }))).toBe(invalid('x-max-priority', '{max_value_exceeded,256}'));
  });

  it('rejects negatives and non-integers', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-max-priority': -1 }))).toBe(invalid('x-max-priority', '{value_negative,-1}'));
    expect(text(declare({ 'x-max-priority': '10' }))).toBe(invalid('x-max-priority', '"expected integer, got longstr"'));
    expect(text(declare({ 'x-max-priority': 10 }, { 'x-max-priority': 'd' }))).toBe(
      invalid('x-max-priority', '"expected integer, got double"'),
    );
  });
});

describe('dead lettering', () => {
  it('accepts any exchange name, even empty or missing', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-dead-letter-exchange': '' }))).toBe('OK');
    const r = declare({ 'x-dead-letter-exchange': 'no-such-exchange', 'x-dead-letter-routing-key': 'rk' });
    expect('ok' in r && [r.ok.deadLetterExchange, r.ok.deadLetterRoutingKey]).toEqual(['no-such-exchange', 'rk']);
  });

  it('rejects a non-longstr exchange with the channel-level text, before any other check', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-dead-letter-exchange': 5 }))).toBe(
      `PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in ${Q}`,
    );
    expect(text(declare({ 'x-dead-letter-exchange': Buffer.from('dlx') }))).toBe(
      `PRECONDITION_FAILED - invalid type 'binary' for arg 'x-dead-letter-exchange' in ${Q}`,
    );
    expect(text(declare({ 'x-queue-type': 'bogus', 'x-message-ttl': -1, 'x-dead-letter-exchange': true }))).toBe(
      `PRECONDITION_FAILED - invalid type 'bool' for arg 'x-dead-letter-exchange' in ${Q}`,
    );
  });

  it('rejects a routing key without an exchange', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-dead-letter-routing-key': 'rk' }))).toBe(
      invalid('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined'),
    );
    expect(text(declare({ 'x-dead-letter-routing-key': 'rk', 'x-dead-letter-exchange': '' }))).toBe('OK');
  });

  it('rejects a non-longstr routing key', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-dead-letter-routing-key': 5 }))).toBe(invalid('x-dead-letter-routing-key', '{unacceptable_type,signedint}'));
    expect(text(declare({ 'x-dead-letter-routing-key': Buffer.from('rk'), 'x-dead-letter-exchange': 'dlx' }))).toBe(
      invalid('x-dead-letter-routing-key', '{unacceptable_type,binary}'),
    );
  });
});

describe('x-overflow', () => {
  it('accepts the three modes', () => {
    // checked against RabbitMQ 3.10.8
    for (const m of ['drop-head', 'reject-publish', 'reject-publish-dlx']) {
      const r = declare({ 'x-overflow': m });
      expect('ok' in r && r.ok.overflow).toBe(m);
    }
    const r = declare({});
    expect('ok' in r && r.ok.overflow).toBe('drop-head');
  });

  it('rejects anything else, case-sensitively', () => {
    // checked against RabbitMQ 3.10.8
    for (const m of ['bogus', '', 'Drop-Head']) expect(text(declare({ 'x-overflow': m }))).toBe(invalid('x-overflow', 'invalid_overflow'));
    expect(text(declare({ 'x-overflow': Buffer.from('drop-head') }))).toBe(invalid('x-overflow', '{unacceptable_type,binary}'));
    expect(text(declare({ 'x-overflow': 1 }))).toBe(invalid('x-overflow', '{unacceptable_type,signedint}'));
  });
});

describe('x-queue-mode', () => {
  it('accepts default and lazy', () => {
    // checked against RabbitMQ 3.10.8
    const r = declare({ 'x-queue-mode': 'lazy' });
    expect('ok' in r && r.ok.queueMode).toBe('lazy');
    expect(text(declare({ 'x-queue-mode': 'default' }))).toBe('OK');
  });

  it('prints an unknown mode as an Erlang string', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-queue-mode': 'bogus' }))).toBe(invalid('x-queue-mode', `"unsupported queue mode 'bogus'"`));
    expect(text(declare({ 'x-queue-mode': '' }))).toBe(invalid('x-queue-mode', `"unsupported queue mode ''"`));
    expect(text(declare({ 'x-queue-mode': "it's" }))).toBe(invalid('x-queue-mode', `"unsupported queue mode 'it's'"`));
  });

  it('escapes quotes, backslashes and control characters', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-queue-mode': 'a"b' }))).toBe(invalid('x-queue-mode', `"unsupported queue mode 'a\\"b'"`));
    expect(text(declare({ 'x-queue-mode': 'a\\b' }))).toBe(invalid('x-queue-mode', `"unsupported queue mode 'a\\\\b'"`));
    expect(text(declare({ 'x-queue-mode': 'a\nb\tc' }))).toBe(invalid('x-queue-mode', `"unsupported queue mode 'a\\nb\\tc'"`));
    expect(text(declare({ 'x-queue-mode': 'a\r\v\b\f\x1b' }))).toBe(invalid('x-queue-mode', `"unsupported queue mode 'a\\r\\v\\b\\f\\e'"`));
  });

  it('keeps UTF-8 whose bytes are all printable Latin-1, else prints a list of bytes', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-queue-mode': 'é' }))).toBe(invalid('x-queue-mode', `"unsupported queue mode 'é'"`));
    const prefix = [...Buffer.from("unsupported queue mode '")].join(',');
    expect(text(declare({ 'x-queue-mode': '日' }))).toBe(invalid('x-queue-mode', `[${prefix},230,151,165,39]`));
    expect(text(declare({ 'x-queue-mode': 'a\x01' }))).toBe(invalid('x-queue-mode', `[${prefix},97,1,39]`));
  });

  it('rejects non-longstr values', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-queue-mode': Buffer.from('lazy') }))).toBe(invalid('x-queue-mode', '{unacceptable_type,binary}'));
    expect(text(declare({ 'x-queue-mode': 1 }))).toBe(invalid('x-queue-mode', '{unacceptable_type,signedint}'));
  });
});

describe('x-queue-version', () => {
  it('accepts 1 and 2', () => {
    // checked against RabbitMQ 3.10.8
    const r = declare({ 'x-queue-version': 2 }, { 'x-queue-version': 'b' });
    expect('ok' in r && r.ok.queueVersion).toBe(2);
    expect(text(declare({ 'x-queue-version': 1 }))).toBe('OK');
  });

  it('rejects other versions, negatives and non-integers', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-queue-version': 3 }))).toBe(invalid('x-queue-version', `"unsupported queue version '3'"`));
    expect(text(declare({ 'x-queue-version': 0 }))).toBe(invalid('x-queue-version', `"unsupported queue version '0'"`));
    expect(text(declare({ 'x-queue-version': -1 }))).toBe(invalid('x-queue-version', '{value_negative,-1}'));
    expect(text(declare({ 'x-queue-version': '1' }))).toBe(invalid('x-queue-version', '"expected integer, got longstr"'));
  });
});

describe('x-single-active-consumer', () => {
  it('accepts a bool', () => {
    // checked against RabbitMQ 3.10.8
    const r = declare({ 'x-single-active-consumer': true });
    expect('ok' in r && r.ok.singleActiveConsumer).toBe(true);
    const r2 = declare({ 'x-single-active-consumer': false });
    expect('ok' in r2 && r2.ok.singleActiveConsumer).toBe(false);
  });

  it('rejects anything but a bool, naming its wire type', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-single-active-consumer': 1 }))).toBe(invalid('x-single-active-consumer', '{unacceptable_type,signedint}'));
    expect(text(declare({ 'x-single-active-consumer': 1 }, { 'x-single-active-consumer': 'b' }))).toBe(
      invalid('x-single-active-consumer', '{unacceptable_type,byte}'),
    );
    expect(text(declare({ 'x-single-active-consumer': 'true' }))).toBe(invalid('x-single-active-consumer', '{unacceptable_type,longstr}'));
    expect(text(declare({ 'x-single-active-consumer': null }))).toBe(invalid('x-single-active-consumer', '{unacceptable_type,void}'));
  });
});

describe('x-queue-type', () => {
  it('defaults to classic and accepts classic', () => {
    // checked against RabbitMQ 3.10.8
    const r = declare({});
    expect('ok' in r && r.ok.queueType).toBe('classic');
    expect(text(declare({ 'x-queue-type': 'classic' }, undefined, { exclusive: true }))).toBe('OK');
  });

  it('rejects unknown types, case-sensitively', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-queue-type': 'bogus' }))).toBe(invalid('x-queue-type', `"unsupported queue type 'bogus'"`));
    expect(text(declare({ 'x-queue-type': 'Classic' }))).toBe(invalid('x-queue-type', `"unsupported queue type 'Classic'"`));
    expect(text(declare({ 'x-queue-type': '' }))).toBe(invalid('x-queue-type', `"unsupported queue type ''"`));
    expect(text(declare({ 'x-queue-type': Buffer.from('classic') }))).toBe(invalid('x-queue-type', '{unacceptable_type,binary}'));
    expect(text(declare({ 'x-queue-type': true }))).toBe(invalid('x-queue-type', '{unacceptable_type,bool}'));
  });

  it('is checked before the other arguments', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-expires': -1, 'x-queue-type': 'bogus' }))).toBe(invalid('x-queue-type', `"unsupported queue type 'bogus'"`));
  });

  it('quorum and stream queues must be durable, non-exclusive and not auto-delete', () => {
    // checked against RabbitMQ 3.10.8
    const prop = (p: string): string => `PRECONDITION_FAILED - invalid property '${p}' for ${Q}`;
    for (const t of [QUORUM, STREAM]) {
      expect(text(declare(t, undefined, { durable: false }))).toBe(prop('non-durable'));
      expect(text(declare(t, undefined, { durable: true, exclusive: true }))).toBe(prop('exclusive-owner'));
      expect(text(declare(t, undefined, { durable: false, exclusive: true }))).toBe(prop('exclusive-owner'));
      expect(text(declare(t, undefined, { durable: true, autoDelete: true }))).toBe(prop('auto-delete'));
      expect(text(declare(t, undefined, { durable: true, exclusive: true, autoDelete: true }))).toBe(prop('auto-delete'));
      expect(text(declare(t, undefined, DURABLE))).toBe('OK');
    }
  });

  it('checks the properties after the arguments', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ ...QUORUM, 'x-message-ttl': -1 }, undefined, { durable: false }))).toBe(
      invalid('x-message-ttl', '{value_negative,-1}'),
    );
    expect(text(declare({ ...QUORUM, 'x-max-priority': 5 }, undefined, { durable: false }))).toBe(unsupported('x-max-priority', 'quorum'));
  });
});

describe('arguments a queue type does not take', () => {
  it('classic queues refuse the quorum and stream arguments, whatever the value', () => {
    // checked against RabbitMQ 3.10.8
    for (const key of [
      'x-max-in-memory-length',
      'x-max-in-memory-bytes',
      'x-delivery-limit',
      'x-dead-letter-strategy',
      'x-quorum-initial-group-size',
      'x-max-age',
      'x-stream-max-segment-size-bytes',
      'x-initial-cluster-size',
      'x-queue-leader-locator',
    ]) {
      expect(text(declare({ [key]: 5 }))).toBe(unsupported(key, 'classic'));
      expect(text(declare({ [key]: -1 }))).toBe(unsupported(key, 'classic'));
    }
  });

  it('quorum queues refuse x-max-priority, x-queue-mode, x-queue-version, x-queue-master-locator and stream arguments', () => {
    // checked against RabbitMQ 3.10.8
    for (const key of [
      'x-max-priority',
      'x-queue-mode',
      'x-queue-version',
      'x-queue-master-locator',
      'x-max-age',
      'x-initial-cluster-size',
    ]) {
      expect(text(declare({ ...QUORUM, [key]: 'lazy' }, undefined, DURABLE))).toBe(unsupported(key, 'quorum'));
    }
  });

  it('streams refuse the queue arguments, x-dead-letter-exchange included', () => {
    // checked against RabbitMQ 3.10.8
    for (const key of ['x-expires', 'x-message-ttl', 'x-dead-letter-exchange', 'x-max-length', 'x-overflow', 'x-single-active-consumer']) {
      expect(text(declare({ ...STREAM, [key]: 'x' }, undefined, DURABLE))).toBe(unsupported(key, 'stream'));
    }
  });

  it('are reported after every value check, in table order', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-max-in-memory-length': -1, 'x-message-ttl': -1 }))).toBe(invalid('x-message-ttl', '{value_negative,-1}'));
    expect(text(declare({ ...QUORUM, 'x-max-priority': 5, 'x-queue-mode': 'lazy' }, undefined, DURABLE))).toBe(
      unsupported('x-max-priority', 'quorum'),
    );
    expect(text(declare({ ...QUORUM, 'x-queue-mode': 'lazy', 'x-max-priority': 5 }, undefined, DURABLE))).toBe(
      unsupported('x-queue-mode', 'quorum'),
    );
  });

  it('values of other arguments are validated in RabbitMQ order, not table order', () => {
    // checked against RabbitMQ 3.10.8
    expect(text(declare({ 'x-max-length': -1, 'x-expires': -1 }))).toBe(invalid('x-expires', '{value_negative,-1}'));
    expect(text(declare({ 'x-max-priority': -1, 'x-message-ttl': -1 }))).toBe(invalid('x-message-ttl', '{value_negative,-1}'));
    expect(text(declare({ 'x-single-active-consumer': 1, 'x-queue-version': 'x', 'x-queue-mode': 1, 'x-overflow': 1 }))).toBe(
      invalid('x-overflow', '{unacceptable_type,signedint}'),
    );
  });

  it('unknown arguments are ignored', () => {
    // checked against RabbitMQ 3.10.8
    for (const key of ['x-unknown', 'foo', 'x-ha-policy', 'x-max-segment-size', 'x-priority', 'x-cancel-on-ha-failover']) {
      expect(text(declare({ [key]: 'anything' }))).toBe('OK');
    }
  });
});

describe('x-queue-master-locator (classic)', () => {
  it('accepts client-local, min-masters and random, as longstr or binary', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of ['client-local', 'min-masters', 'random']) expect(text(declare({ 'x-queue-master-locator': v }))).toBe('OK');
    expect(text(declare({ 'x-queue-master-locator': Buffer.from('random') }))).toBe('OK');
  });

  it('anything else is not validated and makes RabbitMQ crash: a connection-level 541', () => {
    // checked against RabbitMQ 3.10.8 (a double even hangs the channel there)
    for (const v of ['bogus', 'balanced', 1, null]) {
      const r = declare({ 'x-queue-master-locator': v });
      expect('ok' in r ? r : [r.code, r.text, r.connection]).toEqual([541, 'INTERNAL_ERROR', true]);
    }
    // ...but only after the validation errors.
    expect(text(declare({ 'x-queue-master-locator': 'bogus', 'x-message-ttl': -1 }))).toBe(invalid('x-message-ttl', '{value_negative,-1}'));
    expect(text(declare({ 'x-queue-master-locator': 'bogus', 'x-max-age': '1D' }))).toBe(unsupported('x-max-age', 'classic'));
  });
});

describe('quorum queue arguments', () => {
  const quorum = (args: FieldTable, types?: WireTypes): string => text(declare({ ...QUORUM, ...args }, types, DURABLE));

  it('x-message-ttl and reject-publish-dlx are accepted', () => {
    // checked against RabbitMQ 3.10.8
    expect(quorum({ 'x-message-ttl': 5, 'x-overflow': 'reject-publish-dlx' })).toBe('OK');
  });

  it('x-max-in-memory-length/-bytes must be non-negative integers', () => {
    // checked against RabbitMQ 3.10.8
    expect(quorum({ 'x-max-in-memory-length': 0 })).toBe('OK');
    expect(quorum({ 'x-max-in-memory-length': -1 })).toBe(invalid('x-max-in-memory-length', '{value_negative,-1}'));
    expect(quorum({ 'x-max-in-memory-bytes': '0' })).toBe(invalid('x-max-in-memory-bytes', '"expected integer, got longstr"'));
  });

  it('x-quorum-initial-group-size must be a positive integer', () => {
    // checked against RabbitMQ 3.10.8
    expect(quorum({ 'x-quorum-initial-group-size': 7 })).toBe('OK');
    expect(quorum({ 'x-quorum-initial-group-size': 0 })).toBe(invalid('x-quorum-initial-group-size', '{value_zero,0}'));
    expect(quorum({ 'x-quorum-initial-group-size': -1 })).toBe(invalid('x-quorum-initial-group-size', '{value_negative,-1}'));
    expect(quorum({ 'x-quorum-initial-group-size': '1' })).toBe(invalid('x-quorum-initial-group-size', '"expected integer, got longstr"'));
  });

  it('x-delivery-limit is not validated at all', () => {
    // checked against RabbitMQ 3.10.8
    expect(quorum({ 'x-delivery-limit': -1 })).toBe('OK');
    expect(quorum({ 'x-delivery-limit': true })).toBe('OK');
    expect(quorum({ 'x-delivery-limit': 'x' })).toBe('OK');
  });

  it('x-dead-letter-strategy is at-most-once or at-least-once', () => {
    // checked against RabbitMQ 3.10.8
    expect(quorum({ 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' })).toBe('OK');
    expect(quorum({ 'x-dead-letter-strategy': 'bogus' })).toBe(invalid('x-dead-letter-strategy', 'invalid_dlx_strategy'));
    expect(quorum({ 'x-dead-letter-strategy': 1 })).toBe(invalid('x-dead-letter-strategy', '{unacceptable_type,signedint}'));
  });

  it('x-queue-leader-locator takes client-local, balanced, random, least-leaders', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of ['client-local', 'balanced', 'random', 'least-leaders']) expect(quorum({ 'x-queue-leader-locator': v })).toBe('OK');
    expect(quorum({ 'x-queue-leader-locator': 'bogus' })).toBe(invalid('x-queue-leader-locator', 'invalid_queue_locator_arg'));
    expect(quorum({ 'x-queue-leader-locator': Buffer.from('random') })).toBe(
      invalid('x-queue-leader-locator', '{unacceptable_type,binary}'),
    );
  });

  it('validates in RabbitMQ order: the dead-letter strategy right after the routing key', () => {
    // checked against RabbitMQ 3.10.8
    expect(quorum({ 'x-max-length': null, 'x-dead-letter-strategy': null })).toBe(
      invalid('x-dead-letter-strategy', '{unacceptable_type,void}'),
    );
  });
});

describe('stream arguments', () => {
  const stream = (args: FieldTable): string => text(declare({ ...STREAM, ...args }, undefined, DURABLE));

  it('x-max-age is digits and a unit Y M D h m s', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of ['1D', '10s', '1Y', '1M', '1h', '1m', '01D', '99999999999999999999Y', '1D\nxyz'])
      expect(stream({ 'x-max-age': v })).toBe('OK');
    const r = declare({ ...STREAM, 'x-max-age': '2h' }, undefined, DURABLE);
    expect('ok' in r && r.ok.maxAge).toBe(7200000);
  });

  it('x-max-age rejects zero, missing or unknown units', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of ['0D', '10', '1d', '1Ds', '1.5D', '1Dxyz'])
      expect(stream({ 'x-max-age': v })).toBe(invalid('x-max-age', 'invalid_max_age'));
    expect(stream({ 'x-max-age': 5 })).toBe(invalid('x-max-age', '{unacceptable_type,signedint}'));
  });

  it('x-max-age without leading digits crashes RabbitMQ (541)', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of ['D', '', '-1D', ' 1D']) expect(stream({ 'x-max-age': v })).toBe('INTERNAL_ERROR');
  });

  it('x-stream-max-segment-size-bytes is 0..3000000000', () => {
    // checked against RabbitMQ 3.10.8
    expect(stream({ 'x-stream-max-segment-size-bytes': 0 })).toBe('OK');
    expect(stream({ 'x-stream-max-segment-size-bytes': 3000000000 })).toBe('OK');
    expect(stream({ 'x-stream-max-segment-size-bytes': -1 })).toBe(invalid('x-stream-max-segment-size-bytes', '{value_negative,-1}'));
    expect(stream({ 'x-stream-max-segment-size-bytes': 3000000001 })).toBe(
      'PRECONDITION_FAILED - Exceeded max value for x-stream-max-segment-size-bytes',
    );
    // The maximum is the stream's own check, after the properties.
    expect(text(declare({ ...STREAM, 'x-stream-max-segment-size-bytes': 4000000000 }, undefined, { durable: false }))).toBe(
      `PRECONDITION_FAILED - invalid property 'non-durable' for ${Q}`,
    );
  });

  it('x-initial-cluster-size is a positive integer', () => {
    // checked against RabbitMQ 3.10.8
    expect(stream({ 'x-initial-cluster-size': 2 })).toBe('OK');
    expect(stream({ 'x-initial-cluster-size': 0 })).toBe(invalid('x-initial-cluster-size', '{value_zero,0}'));
    expect(stream({ 'x-initial-cluster-size': -1 })).toBe(invalid('x-initial-cluster-size', '{value_negative,-1}'));
  });
});

describe('server-named queues', () => {
  const gen = (args: FieldTable, flags: Partial<QueueArgsContext> = DURABLE): string =>
    text(parseQueueArgs(args, { queue: 'amq.gen-abc', vhost: '/', serverNamed: true, ...flags }));

  it('use the generated name in texts', () => {
    // checked against RabbitMQ 3.10.8
    expect(gen({ 'x-message-ttl': -1 })).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'amq.gen-abc' in vhost '/': {value_negative,-1}",
    );
    expect(gen({ 'x-queue-type': 'classic' })).toBe('OK');
  });

  it('cannot be quorum queues or streams, checked before everything else', () => {
    // checked against RabbitMQ 3.10.8
    expect(gen({ ...QUORUM, 'x-message-ttl': -1 })).toBe(
      'PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue',
    );
    expect(gen({ ...QUORUM, 'x-dead-letter-exchange': 1 })).toBe(
      'PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue',
    );
    expect(gen(STREAM, { exclusive: true })).toBe('PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_stream_queue');
    expect(gen({ 'x-queue-type': Buffer.from('quorum') })).toBe(
      'PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue',
    );
  });

  it('with an unknown x-queue-type crash RabbitMQ (541)', () => {
    // checked against RabbitMQ 3.10.8
    for (const t of ['bogus', 'Classic', 1, null]) expect(gen({ 'x-queue-type': t })).toBe('INTERNAL_ERROR');
    expect(gen({ 'x-queue-type': Buffer.from('classic') })).toBe(
      "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'amq.gen-abc' in vhost '/': {unacceptable_type,binary}",
    );
  });
});

describe('reply texts', () => {
  it('carry the queue name and vhost as given', () => {
    // checked against RabbitMQ 3.10.8
    const r = parseQueueArgs({ 'x-message-ttl': -1 }, { queue: 'argprobe-日é', vhost: 'v' });
    expect(text(r)).toBe("PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'argprobe-日é' in vhost 'v': {value_negative,-1}");
  });

  it('toAmqpError keeps the exact text', () => {
    const r = declare({ 'x-max-priority': 256 });
    expect('ok' in r ? undefined : toAmqpError(r, 50, 10).message).toBe(invalid('x-max-priority', '{max_value_exceeded,256}'));
    const crash = declare({ 'x-queue-master-locator': 'bogus' });
    expect('ok' in crash ? undefined : [toAmqpError(crash).code, toAmqpError(crash).message]).toEqual([541, 'INTERNAL_ERROR']);
  });
});

describe('type names without wire types', () => {
  it('infers int32 integers as signedint, others as long, fractions as double', () => {
    expect(fieldTypeName(5)).toBe('signedint');
    expect(fieldTypeName(2 ** 31)).toBe('long');
    expect(fieldTypeName(10n)).toBe('long');
    expect(fieldTypeName(1.5)).toBe('double');
    expect(fieldTypeName(5, 'u')).toBe('unsignedshort');
    // A tag that contradicts the decoded value is ignored.
    expect(fieldTypeName('x', 'I')).toBe('longstr');
  });
});

describe('exchange arguments', () => {
  const X = "exchange 'x' in vhost '/'";
  const exchange = (args: FieldTable, types?: WireTypes): string => text(parseExchangeArgs(args, { exchange: 'x', vhost: '/', types }));

  it('alternate-exchange is any longstr; the exchange need not exist', () => {
    // checked against RabbitMQ 3.10.8
    const r = parseExchangeArgs({ 'alternate-exchange': 'nonexistent' }, { exchange: 'x', vhost: '/' });
    expect('ok' in r && r.ok.alternateExchange).toBe('nonexistent');
    expect(exchange({ 'alternate-exchange': '' })).toBe('OK');
  });

  it('alternate-exchange of another type is refused, naming it', () => {
    // checked against RabbitMQ 3.10.8
    const bad = (t: string): string => `PRECONDITION_FAILED - invalid type '${t}' for arg 'alternate-exchange' in ${X}`;
    expect(exchange({ 'alternate-exchange': Buffer.from('ae') })).toBe(bad('binary'));
    expect(exchange({ 'alternate-exchange': 5 })).toBe(bad('signedint'));
    expect(exchange({ 'alternate-exchange': true })).toBe(bad('bool'));
    expect(exchange({ 'alternate-exchange': null })).toBe(bad('void'));
    expect(exchange({ 'alternate-exchange': {} })).toBe(bad('table'));
    expect(exchange({ 'alternate-exchange': [] })).toBe(bad('array'));
    expect(exchange({ 'alternate-exchange': 1.5 })).toBe(bad('double'));
    const tags: Array<[string, string]> = [
      ['b', 'byte'],
      ['B', 'unsignedbyte'],
      ['s', 'short'],
      ['u', 'unsignedshort'],
      ['i', 'unsignedint'],
      ['l', 'long'],
      ['f', 'float'],
    ];
    for (const [tag, name] of tags) expect(exchange({ 'alternate-exchange': 5 }, { 'alternate-exchange': tag })).toBe(bad(name));
    expect(exchange({ 'alternate-exchange': new Date(5000) })).toBe(bad('timestamp'));
    expect(exchange({ 'alternate-exchange': new Decimal(1, 5) })).toBe(bad('decimal'));
  });

  it('other arguments are ignored', () => {
    // checked against RabbitMQ 3.10.8
    expect(exchange({ 'x-bogus': 'x', 'x-message-ttl': -1, 'x-match': 'bogus' })).toBe('OK');
  });
});

describe('consumer arguments', () => {
  const consume = (args: FieldTable, queueType?: 'classic' | 'quorum' | 'stream', types?: WireTypes): string =>
    text(parseConsumerArgs(args, { queue: 'q', vhost: '/', queueType, types }));

  it('x-priority is any integer, negative and long included', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of [5, -5, 9223372036854775807n]) expect(consume({ 'x-priority': v })).toBe('OK');
    expect(consume({ 'x-priority': 1 }, 'classic', { 'x-priority': 'u' })).toBe('OK');
    const r = parseConsumerArgs({ 'x-priority': -5 }, { queue: 'q', vhost: '/' });
    expect('ok' in r && r.ok.priority).toBe(-5);
    const r0 = parseConsumerArgs({}, { queue: 'q', vhost: '/' });
    expect('ok' in r0 && r0.ok.priority).toBe(0);
  });

  it('x-priority of another type is refused', () => {
    // checked against RabbitMQ 3.10.8
    expect(consume({ 'x-priority': '5' })).toBe(invalid('x-priority', '"expected integer, got longstr"'));
    expect(consume({ 'x-priority': 5 }, 'classic', { 'x-priority': 'd' })).toBe(invalid('x-priority', '"expected integer, got double"'));
    expect(consume({ 'x-priority': 5 }, 'classic', { 'x-priority': 'f' })).toBe(invalid('x-priority', '"expected integer, got float"'));
    expect(consume({ 'x-priority': true })).toBe(invalid('x-priority', '"expected integer, got bool"'));
    expect(consume({ 'x-priority': null })).toBe(invalid('x-priority', '"expected integer, got void"'));
    expect(consume({ 'x-priority': Buffer.from('5') })).toBe(invalid('x-priority', '"expected integer, got binary"'));
    expect(consume({ 'x-priority': '5' }, 'quorum')).toBe(invalid('x-priority', '"expected integer, got longstr"'));
  });

  it('x-cancel-on-ha-failover is a bool, on classic queues only', () => {
    // checked against RabbitMQ 3.10.8
    expect(consume({ 'x-cancel-on-ha-failover': true })).toBe('OK');
    expect(consume({ 'x-cancel-on-ha-failover': 1 })).toBe(invalid('x-cancel-on-ha-failover', '{unacceptable_type,signedint}'));
    expect(consume({ 'x-cancel-on-ha-failover': 'true' })).toBe(invalid('x-cancel-on-ha-failover', '{unacceptable_type,longstr}'));
    expect(consume({ 'x-cancel-on-ha-failover': true }, 'quorum')).toBe(unsupported('x-cancel-on-ha-failover', 'quorum'));
  });

  it('x-priority is checked first whatever the table order', () => {
    // checked against RabbitMQ 3.10.8
    expect(consume({ 'x-cancel-on-ha-failover': 1, 'x-priority': '5' })).toBe(invalid('x-priority', '"expected integer, got longstr"'));
    expect(consume({ 'x-stream-offset': 'first', 'x-priority': '5' })).toBe(invalid('x-priority', '"expected integer, got longstr"'));
  });

  it('x-stream-offset is refused on classic and quorum queues, in table order', () => {
    // checked against RabbitMQ 3.10.8
    expect(consume({ 'x-stream-offset': 'first' })).toBe(unsupported('x-stream-offset', 'classic'));
    expect(consume({ 'x-stream-offset': 5 }, 'quorum')).toBe(unsupported('x-stream-offset', 'quorum'));
    expect(consume({ 'x-stream-offset': 'first', 'x-cancel-on-ha-failover': true, 'x-priority': 1 })).toBe(
      unsupported('x-stream-offset', 'classic'),
    );
    expect(consume({ 'x-cancel-on-ha-failover': true, 'x-stream-offset': 'first' }, 'quorum')).toBe(
      unsupported('x-cancel-on-ha-failover', 'quorum'),
    );
  });

  it('unknown consumer arguments are ignored', () => {
    // checked against RabbitMQ 3.10.8
    expect(consume({ 'x-bogus': 'x', 'x-unknown': 5 })).toBe('OK');
    expect(consume({ 'x-bogus': 'x' }, 'quorum')).toBe('OK');
  });

  it('x-credit is taken as a table, whatever it holds; anything else crashes RabbitMQ (541)', () => {
    // checked against RabbitMQ 3.10.8 (a classic queue crashes along with the channel)
    expect(consume({ 'x-credit': { credit: 5, drain: false } })).toBe('OK');
    expect(consume({ 'x-credit': {} }, 'quorum')).toBe('OK');
    for (const v of [5, '1D', true, null, [], Buffer.from('x')]) {
      expect(consume({ 'x-credit': v })).toBe('INTERNAL_ERROR');
      expect(consume({ 'x-credit': v }, 'quorum')).toBe('INTERNAL_ERROR');
    }
    expect(consume({ 'x-credit': 5 }, 'stream')).toBe('OK');
    // ...after the argument checks.
    expect(consume({ 'x-credit': 5, 'x-priority': '5' })).toBe(invalid('x-priority', '"expected integer, got longstr"'));
  });

  it('stream consumers take x-stream-offset but not x-priority', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of ['first', 'last', 'next', '1D', '10s', 5, -5, new Date(1600000000000), Buffer.from('first')]) {
      expect(consume({ 'x-stream-offset': v }, 'stream')).toBe('OK');
    }
    expect(consume({ 'x-priority': 5 }, 'stream')).toBe(unsupported('x-priority', 'stream'));
    expect(consume({ 'x-stream-offset': '0D' }, 'stream')).toBe(
      invalid('x-stream-offset', '{invalid_stream_offset_arg,{longstr,<<"0D">>}}'),
    );
    expect(consume({ 'x-stream-offset': '5' }, 'stream')).toBe(invalid('x-stream-offset', '{invalid_stream_offset_arg,{longstr,<<"5">>}}'));
  });

  it('stream offsets RabbitMQ cannot use crash it (541)', () => {
    // checked against RabbitMQ 3.10.8
    for (const v of ['bogus', Buffer.from('0D'), 1.5, true, null])
      expect(consume({ 'x-stream-offset': v }, 'stream')).toBe('INTERNAL_ERROR');
    // A longstr without digits crashes in validation; the others only after the argument checks.
    expect(consume({ 'x-stream-offset': 'bogus', 'x-priority': 1 }, 'stream')).toBe('INTERNAL_ERROR');
    expect(consume({ 'x-stream-offset': Buffer.from('bogus'), 'x-priority': 1 }, 'stream')).toBe(unsupported('x-priority', 'stream'));
  });
});
