/**
 * Valid client traffic, encoded with the broker's own codec: the handshake and, for every
 * method a client may send, frames with plausible arguments. The mutators start from these.
 */
import { Writer } from '../src/protocol/writer';
import * as M from '../src/protocol/generated';
import { Decimal, type FieldTable, type FieldValue } from '../src/protocol/types';
import type { Rng } from './rng';

export const PROTOCOL_HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');

function take(w: Writer): Buffer {
  return Buffer.concat(w.take());
}

/** One frame from an encoder call. */
export function encode(fn: (w: Writer) => void): Buffer {
  const w = new Writer();
  fn(w);
  return take(w);
}

const QUEUES = ['fz.q0', 'fz.q1', 'fz.q2', 'fz.q3', 'fz.dlq', ''];
const EXCHANGES = ['', 'amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'fz.x0', 'fz.x1'];
const TYPES = ['direct', 'fanout', 'topic', 'headers'];
const KEYS = ['', 'k', 'fz.q0', 'fz.q1', 'a.b.c', '#', '*.b', 'fz.dlq'];

export interface Handshake {
  startOk: Buffer;
  tuneOk: Buffer;
  open: Buffer;
}

export function handshake(frameMax = 131072, channelMax = 2047): Handshake {
  const response = Buffer.from('\0guest\0guest');
  return {
    startOk: encode((w) =>
      M.encodeConnectionStartOk(
        w,
        0,
        { product: 'leveret-fuzz', capabilities: { 'connection.blocked': true, authentication_failure_close: true } },
        'PLAIN',
        response,
        'en_US',
      ),
    ),
    tuneOk: encode((w) => M.encodeConnectionTuneOk(w, 0, channelMax, frameMax, 0)),
    open: encode((w) => M.encodeConnectionOpen(w, 0, '/', '', false)),
  };
}

export function channelOpen(ch: number): Buffer {
  return encode((w) => M.encodeChannelOpen(w, ch, ''));
}

/** A field value of any AMQP type, nested at most `depth` more levels. */
export function fieldValue(rng: Rng, depth: number): FieldValue {
  switch (rng.int(depth > 0 ? 12 : 10)) {
    case 0:
      return rng.chance(0.5);
    case 1:
      return rng.range(-0x80000000, 0x7fffffff);
    case 2:
      return rng.u32() * 1024 + rng.int(1024);
    case 3:
      return rng.u32() / 7;
    case 4:
      return 'v' + rng.u32().toString(36);
    case 5:
      return rng.bytes(rng.int(16));
    case 6:
      return new Date(rng.int(2_000_000_000) * 1000);
    case 7:
      return new Decimal(rng.int(10), rng.range(-1000, 1000));
    case 8:
      return null;
    case 9:
      return BigInt(rng.u32()) << 30n;
    case 10:
      return Array.from({ length: rng.int(4) }, () => fieldValue(rng, depth - 1));
    default:
      return randomTable(rng, depth - 1);
  }
}

export function randomTable(rng: Rng, depth = 2): FieldTable {
  const t: FieldTable = {};
  for (let i = rng.int(4); i > 0; i--) t['k' + rng.int(100)] = fieldValue(rng, depth);
  return t;
}

/** Queue arguments Leveret acts on (timers, dead-lettering, limits), or random ones. */
function queueArgs(rng: Rng): FieldTable {
  const a: FieldTable = {};
  if (rng.chance(0.3)) a['x-message-ttl'] = rng.int(50);
  if (rng.chance(0.3)) {
    a['x-dead-letter-exchange'] = rng.pick(['', 'fz.x0', 'amq.fanout']);
    if (rng.chance(0.5)) a['x-dead-letter-routing-key'] = rng.pick(KEYS);
  }
  if (rng.chance(0.15)) a['x-max-priority'] = rng.int(12);
  if (rng.chance(0.15)) a['x-max-length'] = rng.int(5);
  if (rng.chance(0.1)) a['x-overflow'] = rng.pick(['drop-head', 'reject-publish', 'reject-publish-dlx', 'bogus']);
  if (rng.chance(0.1)) a['x-expires'] = rng.range(1, 2000);
  if (rng.chance(0.05)) a['x-queue-mode'] = 'lazy';
  if (rng.chance(0.1)) Object.assign(a, randomTable(rng, 3));
  return a;
}

function properties(rng: Rng): M.BasicProperties {
  const p: M.BasicProperties = {};
  if (rng.chance(0.3)) p.contentType = 'text/plain';
  if (rng.chance(0.3)) p.deliveryMode = rng.pick([1, 2, 2, 0, 3]);
  if (rng.chance(0.2)) p.priority = rng.int(12);
  if (rng.chance(0.2)) p.expiration = rng.pick(['0', '10', '1000', '-1', 'x', '']);
  if (rng.chance(0.2)) p.headers = randomTable(rng, 2);
  if (rng.chance(0.05)) p.headers = { CC: ['fz.q1', 'fz.q2'], BCC: ['fz.q3'] };
  if (rng.chance(0.1)) p.replyTo = rng.pick(['amq.rabbitmq.reply-to', 'fz.q1']);
  if (rng.chance(0.1)) p.userId = rng.pick(['guest', 'other']);
  if (rng.chance(0.1)) p.timestamp = rng.int(2_000_000_000);
  if (rng.chance(0.1)) p.messageId = 'm' + rng.int(1000);
  return p;
}

/** A content header frame: class 60, weight 0, body size, properties. */
export function contentHeader(ch: number, bodySize: number, props: M.BasicProperties): Buffer {
  return encode((w) => {
    w.beginFrame(2, ch);
    w.u16(60);
    w.u16(0);
    w.u64(bodySize);
    M.encodeBasicProperties(w, props);
    w.endFrame();
  });
}

export function contentBody(ch: number, body: Buffer): Buffer {
  return encode((w) => w.bodyFrame(ch, body, 0, body.length));
}

/** basic.publish with its content: header and the body in 0..3 body frames. */
export function publish(rng: Rng, ch: number, exchange = rng.pick(EXCHANGES), key = rng.pick(KEYS)): Buffer[] {
  const body = rng.bytes(rng.pick([0, 1, 10, 100, 5000]));
  const frames = [
    encode((w) => M.encodeBasicPublish(w, ch, 0, exchange, key, rng.chance(0.2), false)),
    contentHeader(ch, body.length, properties(rng)),
  ];
  let at = 0;
  while (at < body.length) {
    const n = Math.min(body.length - at, rng.chance(0.5) ? body.length : 1 + rng.int(body.length));
    frames.push(contentBody(ch, body.subarray(at, at + n)));
    at += n;
  }
  return frames;
}

/** A method a client may send, as a unit of one or more frames, on channel `ch`. */
export function clientMethod(rng: Rng, ch: number): Buffer[] {
  const q = rng.pick(QUEUES);
  const x = rng.pick(EXCHANGES);
  const k = rng.pick(KEYS);
  const nowait = rng.chance(0.2);
  const tag = rng.range(1, 20);
  const one = (fn: (w: Writer) => void): Buffer[] => [encode(fn)];
  // Only methods that keep the connection open: the ones that break the state (closing a
  // channel, opening an open one, a refused secret) are sent by the wrong-state mutation.
  switch (rng.int(27)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return publish(rng, ch, x, k);
    case 4:
      return one((w) =>
        M.encodeQueueDeclare(w, ch, 0, q, rng.chance(0.1), rng.chance(0.2), rng.chance(0.3), rng.chance(0.3), nowait, queueArgs(rng)),
      );
    case 5:
      return one((w) =>
        M.encodeExchangeDeclare(
          w,
          ch,
          0,
          rng.pick(['fz.x0', 'fz.x1', 'amq.direct']),
          rng.pick(TYPES),
          rng.chance(0.1),
          rng.chance(0.2),
          rng.chance(0.2),
          rng.chance(0.1),
          nowait,
          rng.chance(0.2) ? randomTable(rng) : {},
        ),
      );
    case 6:
      return one((w) =>
        M.encodeQueueBind(
          w,
          ch,
          0,
          q,
          x,
          k,
          nowait,
          rng.chance(0.3) ? { 'x-match': rng.pick(['all', 'any', 'bad']), ...randomTable(rng, 1) } : {},
        ),
      );
    case 7:
      return one((w) => M.encodeQueueUnbind(w, ch, 0, q, x, k, {}));
    case 8:
      return one((w) =>
        M.encodeBasicConsume(
          w,
          ch,
          0,
          q,
          rng.chance(0.5) ? '' : 'ct' + rng.int(5),
          false,
          rng.chance(0.5),
          rng.chance(0.1),
          nowait,
          rng.chance(0.2) ? { 'x-priority': rng.int(10) } : {},
        ),
      );
    case 9:
      return one((w) => M.encodeBasicCancel(w, ch, 'ct' + rng.int(5), nowait));
    case 10:
      return one((w) => M.encodeBasicGet(w, ch, 0, q, rng.chance(0.5)));
    case 11:
    case 12:
      return one((w) => M.encodeBasicAck(w, ch, tag, rng.chance(0.3)));
    case 13:
      return one((w) => M.encodeBasicNack(w, ch, tag, rng.chance(0.3), rng.chance(0.5)));
    case 14:
      return one((w) => M.encodeBasicReject(w, ch, tag, rng.chance(0.5)));
    case 15:
      return one((w) => M.encodeBasicQos(w, ch, 0, rng.int(10), rng.chance(0.3)));
    case 16:
      return one((w) => (rng.chance(0.5) ? M.encodeBasicRecover(w, ch, rng.chance(0.5)) : M.encodeBasicRecoverAsync(w, ch, true)));
    case 17:
      return one((w) => M.encodeQueuePurge(w, ch, 0, q, nowait));
    case 18:
      return one((w) => M.encodeQueueDelete(w, ch, 0, q, rng.chance(0.3), rng.chance(0.3), nowait));
    case 19:
      return one((w) => M.encodeExchangeDelete(w, ch, 0, rng.pick(['fz.x0', 'fz.x1', 'amq.direct', 'nope']), rng.chance(0.3), nowait));
    case 20:
      return one((w) =>
        rng.chance(0.5)
          ? M.encodeExchangeBind(w, ch, 0, 'fz.x1', x, k, nowait, {})
          : M.encodeExchangeUnbind(w, ch, 0, 'fz.x1', x, k, nowait, {}),
      );
    case 21:
      return one((w) => M.encodeTxSelect(w, ch));
    case 22:
      return one((w) => (rng.chance(0.5) ? M.encodeTxCommit(w, ch) : M.encodeTxRollback(w, ch)));
    case 23:
      return one((w) => M.encodeConfirmSelect(w, ch, nowait));
    case 24:
      return one((w) => M.encodeChannelFlow(w, ch, true));
    case 25:
      return one((w) => M.encodeAccessRequest(w, ch, '/data', false, false, true, true, true));
    default:
      return one((w) => M.encodeConnectionUpdateSecret(w, 0, 'guest', 'fuzz'));
  }
}

/** Methods only a server sends, or sends in another state: valid bytes in the wrong place. */
export function misplacedMethod(rng: Rng, ch: number): Buffer {
  const hs = handshake();
  switch (rng.int(15)) {
    case 10:
      return encode((w) => M.encodeChannelClose(w, ch, 200, 'bye', 0, 0));
    case 11:
      return encode((w) => M.encodeChannelOpen(w, ch, ''));
    case 12:
      return encode((w) => M.encodeChannelCloseOk(w, ch));
    case 13:
      return encode((w) => M.encodeChannelFlow(w, ch, false));
    case 14:
      return encode((w) => M.encodeConnectionUpdateSecret(w, 0, 'wrong', 'fuzz'));
    case 0:
      return encode((w) => M.encodeConnectionStart(w, ch, 0, 9, {}, Buffer.from('PLAIN'), Buffer.from('en_US')));
    case 1:
      return encode((w) => M.encodeConnectionTune(w, ch, 2047, 131072, 60));
    case 2:
      return encode((w) => M.encodeBasicDeliver(w, ch, 'ct', 1, false, 'x', 'k'));
    case 3:
      return encode((w) => M.encodeQueueDeclareOk(w, ch, 'q', 0, 0));
    case 4:
      return encode((w) => M.encodeConnectionCloseOk(w, ch));
    case 5:
      return encode((w) => M.encodeChannelOpenOk(w, ch, ''));
    case 6:
      return rng.pick([hs.startOk, hs.tuneOk, hs.open]);
    case 7:
      return encode((w) => M.encodeConnectionBlocked(w, ch, 'fuzz'));
    case 8:
      return encode((w) => M.encodeBasicReturn(w, ch, 312, 'NO_ROUTE', 'x', 'k'));
    default:
      return encode((w) => M.encodeChannelFlowOk(w, ch, true));
  }
}
