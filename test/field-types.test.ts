// Field tables keep the wire type of every value: what a publisher sent as a byte, a float or
// an integral double reaches consumers as that type even when the broker re-encodes the
// headers (dead-lettering, BCC removal, direct reply-to), and argument errors name it.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import * as raw from './helpers/raw';
import { typed, type TableValue } from './helpers/raw';
import { Reader } from '../src/protocol/reader';
import { Writer } from '../src/protocol/writer';
import { copyArray, copyTable, setWireType, WIRE_TYPES, wireTypeOf, type FieldTable, type FieldValue } from '../src/protocol/types';
import { parseConsumerArgs, parseExchangeArgs, parseQueueArgs } from '../src/broker/arguments';
import { deadLetteredMessage } from '../src/broker/dead-letter';
import { senderSelected } from '../src/broker/sender-selected';
import { Message } from '../src/broker/message';
import { encodeProperties } from '../src/protocol/properties';

const HOOK_TIMEOUT = 20_000; // startBroker waits up to 10 s, stop() up to 5 s

/** One value of every AMQP 0-9-1 field type RabbitMQ knows, several where the JS value is ambiguous. */
const EVERY_TYPE: Record<string, TableValue> = {
  bool: typed('t', true),
  byte: typed('b', -5),
  'unsigned-byte': typed('B', 200),
  short: typed('s', -300),
  'unsigned-short': typed('u', 60000),
  int: typed('I', -70000),
  'unsigned-int': typed('i', 3000000000),
  'unsigned-int-small': typed('i', 7),
  'long-small': typed('l', 5),
  'long-big': typed('l', 2n ** 40n),
  'long-huge': typed('l', 2n ** 62n + 1n),
  float: typed('f', 1.5),
  'float-integral': typed('f', 3),
  'double-integral': typed('d', 1000),
  'double-fraction': typed('d', 0.25),
  'double-negative-zero': typed('d', -0),
  decimal: typed('D', [2, 12345]),
  timestamp: typed('T', 1700000000),
  longstr: typed('S', 'text'),
  binary: typed('x', Buffer.from([0, 1, 255])),
  void: typed('V', null),
  array: typed('A', [typed('b', 1), typed('f', 2.5), typed('d', 3), 'str', typed('u', 9), typed('l', 2)]),
  table: typed('F', {
    b: typed('b', 7),
    d: typed('d', 2),
    nested: typed('F', { s: typed('s', 3), i: typed('i', 1) }),
    arr: typed('A', [typed('B', 4), typed('F', { f: typed('f', 0.5) })]),
  }),
};

function encodedTable(t: Record<string, TableValue>): Buffer {
  return raw.table(t);
}

function encode(t: FieldTable): Buffer {
  const w = new Writer();
  w.table(t);
  return Buffer.concat(w.take());
}

function decode(b: Buffer): FieldTable {
  return new Reader().reset(b).table();
}

// ---- Reader / Writer -------------------------------------------------------------------

describe('field table round trip', () => {
  it('re-encodes a decoded table of every type to the same bytes', () => {
    const bytes = encodedTable(EVERY_TYPE);
    expect(encode(decode(bytes)).equals(bytes)).toBe(true);
  });

  it('re-encodes each type on its own, also inside arrays and nested tables', () => {
    for (const [key, value] of Object.entries(EVERY_TYPE)) {
      const shapes: Record<string, TableValue>[] = [{ [key]: value }, { a: typed('A', [value]) }, { t: typed('F', { [key]: value }) }];
      for (const shape of shapes) {
        const bytes = encodedTable(shape);
        expect(encode(decode(bytes)).toString('hex'), key).toBe(bytes.toString('hex'));
      }
    }
  });

  it('a timestamp beyond what a Date holds is re-encoded unchanged instead of failing', () => {
    const t = Buffer.concat([Buffer.from([0, 0, 0, 11, 1, 0x74, 0x54]), Buffer.from('7ffffffffffffff0', 'hex')]);
    const decoded = new Reader().reset(t).table();
    const w = new Writer();
    w.table(decoded);
    expect(Buffer.concat(w.take())).toEqual(t);
  });

  it('records no types for tables whose values are all of the inferred type', () => {
    const t = decode(encodedTable({ s: 'x', n: 5, big: typed('l', 2n ** 40n), d: 0.5, a: ['x', 1], f: { n: 1 }, b: true, v: null }));
    expect(Object.getOwnPropertySymbols(t)).toEqual([]);
    expect(Object.getOwnPropertySymbols(t.a as object)).toEqual([]);
    expect(Object.getOwnPropertySymbols(t.f as object)).toEqual([]);
  });

  it('keeps the types out of sight: keys, JSON and spreads see plain values', () => {
    const t = decode(encodedTable({ b: typed('b', 1), d: typed('d', 2) }));
    expect(Object.keys(t)).toEqual(['b', 'd']);
    expect(JSON.stringify(t)).toBe('{"b":1,"d":2}');
    expect(t).toEqual({ b: 1, d: 2 });
    expect(wireTypeOf(t, 'b')).toBe('b');
    expect(wireTypeOf(t, 'd')).toBe('d');
  });

  it('falls back to the inferred type when a changed value no longer fits the recorded one', () => {
    const t = decode(encodedTable({ b: typed('b', 127), f: typed('f', 1.5), u: typed('u', 1) }));
    t.b = 128; // out of a byte's range
    t.f = 0.1; // not a float
    t.u = 2; // still fits
    expect(encode(t).equals(encodedTable({ b: 128, f: 0.1, u: typed('u', 2) }))).toBe(true);
  });

  it('a repeated key keeps the type of its last value', () => {
    const bytes = Buffer.concat([raw.shortstr('k'), Buffer.from([0x62, 1]), raw.shortstr('k'), Buffer.from('I'), raw.u32(1)]);
    const t = decode(Buffer.concat([raw.u32(bytes.length), bytes]));
    expect(encode(t).equals(encodedTable({ k: 1 }))).toBe(true);
  });

  it('copyTable and copyArray keep the types; setWireType records only what inference would lose', () => {
    const t = decode(encodedTable({ b: typed('b', 1), a: typed('A', [typed('s', 2)]) }));
    const c = copyTable(t);
    expect(encode(c).equals(encode(t))).toBe(true);
    const a = copyArray(t.a as FieldValue[]);
    a.push(3);
    setWireType(a, 1, 'B');
    expect(wireTypeOf(a, 0)).toBe('s');
    expect(wireTypeOf(a, 1)).toBe('B');
    expect(wireTypeOf(t.a as FieldValue[], 1)).toBeUndefined();
    setWireType(c, 'b', 'I'); // the inferred type: nothing to record
    expect(wireTypeOf(c, 'b')).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(c, WIRE_TYPES)?.enumerable).toBe(false);
  });

  it('encodes content properties with the headers typed as decoded', () => {
    const headers = decode(encodedTable(EVERY_TYPE));
    const rawProps = encodeProperties({ headers, replyTo: 'r' });
    const back = new Message('', 'k', rawProps, Buffer.alloc(0)).properties;
    expect(encode(back.headers!).equals(encodedTable(EVERY_TYPE))).toBe(true);
  });
});

// ---- message copies made by the broker (unit level) ---------------------------------------

function typedMessage(headers: Record<string, TableValue>, routingKey = 'k'): Message {
  return new Message('ex', routingKey, encodeProperties({ headers: decode(encodedTable(headers)) }), Buffer.from('x'));
}

function headersOf(msg: Message): Map<string, Buffer> {
  return raw.tableEntries(encode(msg.properties.headers!));
}

describe('broker copies of a message keep header types', () => {
  const published = raw.tableEntries(encodedTable(EVERY_TYPE));

  it('dead-lettering keeps the published headers and types x-death like RabbitMQ', () => {
    const once = deadLetteredMessage(typedMessage(EVERY_TYPE), 'q1', 'expired', '', null);
    const twice = deadLetteredMessage(once, 'q1', 'expired', '', null);
    for (const m of [once, twice]) {
      const got = headersOf(m);
      for (const [k, v] of published) expect(got.get(k)?.toString('hex'), k).toBe(v.toString('hex'));
    }
    const deaths = twice.properties.headers!['x-death'] as FieldTable[];
    expect(deaths[0].count).toBe(2);
    expect(wireTypeOf(deaths[0], 'count')).toBe('l');
  });

  it('dead-lettering keeps the types inside an x-death array it did not write', () => {
    const prior = typed('A', [typed('F', { count: typed('l', 1), reason: 'rejected', queue: 'q0', extra: typed('b', 3) }), typed('s', 9)]);
    const dead = deadLetteredMessage(typedMessage({ 'x-death': prior }), 'q1', 'expired', '', null);
    const deaths = dead.properties.headers!['x-death'] as FieldValue[];
    expect(deaths.length).toBe(3);
    expect(wireTypeOf(deaths[1] as FieldTable, 'extra')).toBe('b');
    expect(wireTypeOf(deaths, 2)).toBe('s');
    // A second death in q0 counts up the entry a client wrote, keeping its other types.
    const again = deadLetteredMessage(typedMessage({ 'x-death': prior }), 'q0', 'rejected', '', null);
    const first = (again.properties.headers!['x-death'] as FieldTable[])[0];
    expect(first.count).toBe(2);
    expect(wireTypeOf(first, 'count')).toBe('l');
    expect(wireTypeOf(first, 'extra')).toBe('b');
  });

  it('BCC removal keeps the other headers typed', () => {
    const r = senderSelected(typedMessage({ ...EVERY_TYPE, CC: ['a'], BCC: ['b'] }))!;
    const got = headersOf(r.message);
    expect(got.has('BCC')).toBe(false);
    for (const [k, v] of published) expect(got.get(k)?.toString('hex'), k).toBe(v.toString('hex'));
  });
});

// ---- over the wire ------------------------------------------------------------------------

const uniq = (): string => `ft-${randomBytes(6).toString('hex')}`;

interface Delivery {
  exchange: string;
  routingKey: string;
  props: raw.ReceivedProperties;
}

async function connect(port: number, channels = 1): Promise<raw.RawClient> {
  const c = await raw.RawClient.connect(port);
  await c.handshake();
  for (let ch = 1; ch <= channels; ch++) await c.openChannel(ch);
  return c;
}

async function declareQueue(c: raw.RawClient, name: string, args: Record<string, TableValue> = {}, ch = 1): Promise<void> {
  c.send(raw.queueDeclare(ch, name, { exclusive: true }, args));
  await c.expectMethod(50, 11);
}

async function consume(c: raw.RawClient, queue: string, ch = 1): Promise<void> {
  c.send(raw.basicConsume(ch, queue, { noAck: true }));
  await c.expectMethod(60, 21);
}

function publish(c: raw.RawClient, routingKey: string, props: raw.RawProperties, ch = 1): void {
  const body = Buffer.from('body');
  c.send(Buffer.concat([raw.basicPublish(ch, '', routingKey), raw.contentHeaderWith(ch, body.length, props), raw.contentBody(ch, body)]));
}

async function nextDelivery(c: raw.RawClient): Promise<Delivery> {
  const m = await c.expectMethod(60, 60);
  const d = raw.decodeDeliver(m.args!);
  const h = await c.nextFrame();
  if (h === null || h.type !== raw.FRAME_HEADER) throw new Error('expected a content header frame');
  const props = raw.decodeContentHeader(h.payload);
  const b = await c.nextFrame();
  if (b === null || b.type !== raw.FRAME_BODY) throw new Error('expected a content body frame');
  return { exchange: d.exchange, routingKey: d.routingKey, props };
}

/** Every published header arrives with the same bytes, type tag included. */
function expectSameEntries(received: Buffer | undefined, sent: Record<string, TableValue>): Map<string, Buffer> {
  expect(received).toBeDefined();
  const got = raw.tableEntries(received!);
  for (const [key, bytes] of raw.tableEntries(encodedTable(sent))) {
    expect(got.get(key)?.toString('hex'), `header '${key}'`).toBe(bytes.toString('hex'));
  }
  return got;
}

/** The elements of an encoded field array value ('A' + length + values), as raw value bytes. */
function arrayElements(value: Buffer): Buffer[] {
  expect(String.fromCharCode(value[0])).toBe('A');
  const r = new raw.Reader(value, 1);
  const end = 5 + r.u32();
  const out: Buffer[] = [];
  while (r.pos < end) {
    const start = r.pos;
    r.value();
    out.push(value.subarray(start, r.pos));
  }
  return out;
}

const tagOf = (value: Buffer | undefined): string => (value === undefined ? 'missing' : String.fromCharCode(value[0]));

describe('header types on delivery', () => {
  let broker: StartedBroker;
  let c: raw.RawClient;

  beforeAll(async () => {
    broker = await startBroker();
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    await broker?.stop();
  }, HOOK_TIMEOUT);

  it('a plain delivery carries the headers as published', async () => {
    c = await connect(broker.port);
    const q = uniq();
    await declareQueue(c, q);
    await consume(c, q);
    publish(c, q, { headers: encodedTable(EVERY_TYPE) });
    const d = await nextDelivery(c);
    expectSameEntries(d.props.headers, EVERY_TYPE);
    c.destroy();
  });

  it('a dead-lettered message keeps the published types; x-death is typed like RabbitMQ', async () => {
    c = await connect(broker.port);
    const [q1, q2, q3] = [uniq(), uniq(), uniq()];
    await declareQueue(c, q3);
    await declareQueue(c, q2, { 'x-message-ttl': 0, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q3 });
    await declareQueue(c, q1, { 'x-message-ttl': 0, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q2 });
    await consume(c, q3);
    publish(c, q1, { headers: encodedTable(EVERY_TYPE) });
    const d = await nextDelivery(c);
    const got = expectSameEntries(d.props.headers, EVERY_TYPE);
    const deaths = arrayElements(got.get('x-death')!);
    expect(deaths.map(tagOf)).toEqual(['F', 'F']);
    for (const death of deaths) {
      const entry = raw.tableEntries(death.subarray(1));
      expect(tagOf(entry.get('count'))).toBe('l');
      expect(tagOf(entry.get('reason'))).toBe('S');
      expect(tagOf(entry.get('queue'))).toBe('S');
      expect(tagOf(entry.get('exchange'))).toBe('S');
      expect(tagOf(entry.get('time'))).toBe('T');
      expect(tagOf(entry.get('routing-keys'))).toBe('A');
    }
    for (const k of ['x-first-death-reason', 'x-first-death-queue', 'x-first-death-exchange']) expect(tagOf(got.get(k)), k).toBe('S');
    c.destroy();
  });

  it('a message published with CC and BCC loses BCC and keeps the other types', async () => {
    c = await connect(broker.port);
    const [qa, qb, qc] = [uniq(), uniq(), uniq()];
    for (const q of [qa, qb, qc]) await declareQueue(c, q);
    const headers = { ...EVERY_TYPE, CC: typed('A', [qb]), BCC: typed('A', [qc]) };
    publish(c, qa, { headers: encodedTable(headers) });
    const { BCC: _bcc, ...delivered } = headers;
    for (const q of [qa, qb, qc]) {
      await consume(c, q);
      const d = await nextDelivery(c);
      const got = expectSameEntries(d.props.headers, delivered);
      expect(got.has('BCC')).toBe(false);
    }
    c.destroy();
  });

  it('direct reply-to: the request and the reply keep their header types', async () => {
    const server = await connect(broker.port);
    const client = await connect(broker.port);
    const service = uniq();
    await declareQueue(server, service);
    await consume(server, service);
    await consume(client, 'amq.rabbitmq.reply-to');

    publish(client, service, { headers: encodedTable(EVERY_TYPE), replyTo: 'amq.rabbitmq.reply-to' });
    const request = await nextDelivery(server);
    expect(request.props.replyTo).toMatch(/^amq\.rabbitmq\.reply-to\./);
    expectSameEntries(request.props.headers, EVERY_TYPE);

    const reply = { ...EVERY_TYPE, answer: typed('s', 42) };
    publish(server, request.props.replyTo!, { headers: encodedTable(reply) });
    const answer = await nextDelivery(client);
    expectSameEntries(answer.props.headers, reply);
    server.destroy();
    client.destroy();
  });
});

// ---- arguments: error texts name the wire type --------------------------------------------

describe('argument wire types (unit)', () => {
  const queue = (args: Record<string, TableValue>): string => {
    const r = parseQueueArgs(decode(encodedTable(args)), { queue: 'q', vhost: '/' });
    return 'ok' in r ? 'OK' : r.text;
  };

  it('reads the types recorded on the decoded table', () => {
    expect(queue({ 'x-message-ttl': typed('d', 1000) })).toBe(
      `PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got double"`,
    );
    expect(queue({ 'x-overflow': typed('b', 1) })).toBe(
      `PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,byte}`,
    );
    expect(queue({ 'x-max-length': typed('b', 5), 'x-message-ttl': typed('l', 1000), 'x-max-priority': typed('B', 10) })).toBe('OK');
    const ex = parseExchangeArgs(decode(encodedTable({ 'alternate-exchange': typed('s', 1) })), { exchange: 'x', vhost: '/' });
    expect('ok' in ex ? 'OK' : ex.text).toBe(
      `PRECONDITION_FAILED - invalid type 'short' for arg 'alternate-exchange' in exchange 'x' in vhost '/'`,
    );
    const co = parseConsumerArgs(decode(encodedTable({ 'x-priority': typed('f', 2) })), { queue: 'q', vhost: '/' });
    expect('ok' in co ? 'OK' : co.text).toBe(
      `PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'q' in vhost '/': "expected integer, got float"`,
    );
  });
});

describe('argument wire types (over the wire)', () => {
  let broker: StartedBroker;
  let c: raw.RawClient;
  let channel = 0;

  beforeAll(async () => {
    broker = await startBroker();
    c = await connect(broker.port, 0);
  }, HOOK_TIMEOUT);
  afterAll(async () => {
    c?.destroy();
    await broker?.stop();
  }, HOOK_TIMEOUT);

  /** Sends a method on a fresh channel; the reply text of the channel.close it gets, or 'OK'. */
  async function outcome(make: (ch: number) => Buffer, okClass: number, okMethod: number): Promise<string> {
    const ch = ++channel;
    await c.openChannel(ch);
    c.send(make(ch));
    for (;;) {
      const f = await c.nextFrame();
      if (f === null) throw new Error('connection closed');
      if (raw.isClose(f)) {
        const info = raw.decodeClose(f);
        if (info.channel === ch) c.send(raw.channelCloseOk(ch));
        return `${info.code} ${info.text}`;
      }
      if (f.channel === ch && raw.isMethod(f, okClass, okMethod)) return 'OK';
    }
  }

  const declare = (name: string, args: Record<string, TableValue>): Promise<string> =>
    outcome((ch) => raw.queueDeclare(ch, name, { exclusive: true }, args), 50, 11);

  it('refuses an integral double x-message-ttl as RabbitMQ 3.10 does', async () => {
    const q = uniq();
    expect(await declare(q, { 'x-message-ttl': typed('d', 1000) })).toBe(
      `406 PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue '${q}' in vhost '/': "expected integer, got double"`,
    );
  });

  it('names byte, unsigned byte and short in argument errors', async () => {
    let q = uniq();
    expect(await declare(q, { 'x-overflow': typed('b', 1) })).toBe(
      `406 PRECONDITION_FAILED - invalid arg 'x-overflow' for queue '${q}' in vhost '/': {unacceptable_type,byte}`,
    );
    q = uniq();
    expect(await declare(q, { 'x-single-active-consumer': typed('B', 1) })).toBe(
      `406 PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue '${q}' in vhost '/': {unacceptable_type,unsignedbyte}`,
    );
    q = uniq();
    expect(await declare(q, { 'x-dead-letter-exchange': typed('s', 1) })).toBe(
      `406 PRECONDITION_FAILED - invalid type 'short' for arg 'x-dead-letter-exchange' in queue '${q}' in vhost '/'`,
    );
    q = uniq();
    expect(await declare(q, { 'x-max-length': typed('b', -1) })).toBe(
      `406 PRECONDITION_FAILED - invalid arg 'x-max-length' for queue '${q}' in vhost '/': {value_negative,-1}`,
    );
  });

  it('accepts integers of the small and long integer types', async () => {
    expect(
      await declare(uniq(), {
        'x-max-length': typed('b', 5),
        'x-message-ttl': typed('l', 1000),
        'x-max-priority': typed('B', 10),
        'x-expires': typed('u', 60000),
      }),
    ).toBe('OK');
  });

  it('names the type of an exchange argument', async () => {
    const x = uniq();
    expect(await outcome((ch) => raw.exchangeDeclare(ch, x, 'direct', { 'alternate-exchange': typed('B', 1) }), 40, 11)).toBe(
      `406 PRECONDITION_FAILED - invalid type 'unsignedbyte' for arg 'alternate-exchange' in exchange '${x}' in vhost '/'`,
    );
  });

  it('checks consumer arguments by wire type', async () => {
    const q = uniq();
    expect(await declare(q, {})).toBe('OK');
    const consume = (args: Record<string, TableValue>): Promise<string> =>
      outcome((ch) => raw.basicConsume(ch, q, { noAck: true }, args), 60, 21);
    expect(await consume({ 'x-priority': typed('d', 5) })).toBe(
      `406 PRECONDITION_FAILED - invalid arg 'x-priority' for queue '${q}' in vhost '/': "expected integer, got double"`,
    );
    expect(await consume({ 'x-priority': typed('b', 3) })).toBe('OK');
    expect(await consume({ 'x-cancel-on-ha-failover': typed('B', 1) })).toBe(
      `406 PRECONDITION_FAILED - invalid arg 'x-cancel-on-ha-failover' for queue '${q}' in vhost '/': {unacceptable_type,unsignedbyte}`,
    );
  });
});
