/**
 * Mutations of valid frames, one kind at a time, each named so that the summary can say
 * how often each was sent. A mutation takes the unit of frames a method was sent as
 * (basic.publish comes with its content) and returns the bytes to send instead.
 */
import type { Rng } from './rng';
import { contentBody, contentHeader, encode, misplacedMethod, publish } from './corpus';
import * as M from '../src/protocol/generated';

const FRAME_END = 0xce;

export interface Mutated {
  kind: string;
  frames: Buffer[];
}

function frame(type: number, ch: number, payload: Buffer, end = FRAME_END): Buffer {
  const b = Buffer.allocUnsafe(8 + payload.length);
  b[0] = type;
  b.writeUInt16BE(ch, 1);
  b.writeUInt32BE(payload.length, 3);
  payload.copy(b, 7);
  b[7 + payload.length] = end;
  return b;
}

const payloadOf = (f: Buffer): Buffer => f.subarray(7, f.length - 1);
const withPayload = (f: Buffer, payload: Buffer): Buffer => frame(f[0], f.readUInt16BE(1), payload, f[f.length - 1]);

/** A table `levels` deep ({a: {a: ...}}), built without recursion; a 4-byte length leads. */
export function nestedTable(levels: number, tag = 'F'): Buffer {
  let t = Buffer.from([0, 0, 0, 0]);
  for (let i = 0; i < levels; i++) {
    const entry = tag === 'F' ? Buffer.concat([Buffer.from([1, 0x61]), Buffer.from(tag), t]) : Buffer.concat([Buffer.from(tag), t]);
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(entry.length);
    t = Buffer.concat([len, entry]);
  }
  return t;
}

/** A table with a lie in it: a wrong length, an unknown tag, a string running past its end... */
function badTable(rng: Rng, frameMax: number): Buffer {
  const u32 = (n: number): Buffer => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  switch (rng.int(8)) {
    case 0:
      return nestedTable(rng.range(1490, 1510));
    case 1:
      return nestedTable(rng.range(1, 4000), rng.chance(0.5) ? 'F' : 'A');
    case 2: // unknown field type
      return Buffer.concat([u32(3), Buffer.from([1, 0x61, rng.pick([0x00, 0x4c, 0x55, 0x7a, 0xff])])]);
    case 3: // long string claiming more than there is
      return Buffer.concat([u32(7), Buffer.from([1, 0x61, 0x53]), u32(rng.pick([5, 0xffff, 0xffffffff]))]);
    case 4: // table length past the frame
      return Buffer.concat([u32(rng.pick([1, 1000, 0x7fffffff, 0xffffffff])), rng.bytes(rng.int(8))]);
    case 5: // an entry cut in the middle
      return Buffer.concat([u32(6), Buffer.from([1, 0x61, 0x49, 0, 0, 0])]);
    case 6: {
      // as large as the frame allows: one long string
      const n = Math.max(0, frameMax - 64 - rng.int(64));
      return Buffer.concat([u32(n + 7), Buffer.from([1, 0x61, 0x53]), u32(n), Buffer.alloc(n, 0x61)]);
    }
    default:
      return Buffer.concat([u32(20), rng.bytes(20)]);
  }
}

/** Method frame carrying `table` where a method's arguments table goes. */
function methodWithTable(rng: Rng, ch: number, table: Buffer): Buffer {
  const sstr = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
  const id = Buffer.allocUnsafe(4);
  switch (rng.int(4)) {
    case 0: // queue.declare: ticket, queue, flags, arguments
      id.writeUInt32BE(M.QUEUE_DECLARE);
      return frame(1, ch, Buffer.concat([id, Buffer.from([0, 0]), sstr('fz.q0'), Buffer.from([0]), table]));
    case 1: // exchange.declare: ticket, exchange, type, flags, arguments
      id.writeUInt32BE(M.EXCHANGE_DECLARE);
      return frame(1, ch, Buffer.concat([id, Buffer.from([0, 0]), sstr('fz.x0'), sstr('direct'), Buffer.from([0]), table]));
    case 2: // basic.consume: ticket, queue, tag, flags, arguments
      id.writeUInt32BE(M.BASIC_CONSUME);
      return frame(1, ch, Buffer.concat([id, Buffer.from([0, 0]), sstr('fz.q0'), sstr(''), Buffer.from([0]), table]));
    default: // queue.bind: ticket, queue, exchange, key, flags, arguments
      id.writeUInt32BE(M.QUEUE_BIND);
      return frame(1, ch, Buffer.concat([id, Buffer.from([0, 0]), sstr('fz.q0'), sstr('amq.direct'), sstr('k'), Buffer.from([0]), table]));
  }
}

/** A content header with raw property bytes (flags and list) as given. */
function rawHeader(ch: number, size: bigint, props: Buffer): Buffer {
  const p = Buffer.allocUnsafe(12);
  p.writeUInt16BE(60, 0);
  p.writeUInt16BE(0, 2);
  p.writeBigUInt64BE(size, 4);
  return frame(2, ch, Buffer.concat([p, props]));
}

export interface MutationContext {
  rng: Rng;
  /** channels open on this connection */
  channels: number[];
  frameMax: number;
  channelMax: number;
}

type Mutator = (unit: Buffer[], c: MutationContext) => Buffer[];

const MUTATORS: Record<string, Mutator> = {
  'size-lie': (u, { rng, frameMax }) => {
    const f = Buffer.from(rng.pick(u));
    const size = f.readUInt32BE(3);
    f.writeUInt32BE(
      rng.pick([0, size - 1, size + 1, size + rng.range(2, 64), Math.max(0, size - rng.range(2, 64)), frameMax + 1, 0xffffffff]) >>> 0,
      3,
    );
    return [f];
  },
  'frame-end': (u, { rng }) =>
    u.map((f, i) => (i === u.length - 1 ? Buffer.concat([f.subarray(0, f.length - 1), Buffer.from([rng.int(0xce)])]) : f)),
  'frame-type': (u, { rng }) => {
    const f = Buffer.from(rng.pick(u));
    f[0] = rng.pick([0, 4, 5, 6, 7, 9, 10, 65, 0xce, 0xff, 1, 2, 3, 8]);
    return [f];
  },
  channel: (u, { rng, channelMax }) => {
    const ch = rng.pick([0, channelMax, channelMax + 1, 65535, rng.range(1, 65535)]);
    return u.map((f) => {
      const g = Buffer.from(f);
      g.writeUInt16BE(ch, 1);
      return g;
    });
  },
  'byte-flip': (u, { rng }) => {
    const i = rng.int(u.length);
    const f = Buffer.from(u[i]);
    for (let n = rng.range(1, 4); n > 0; n--) {
      const at = 7 + rng.int(Math.max(1, f.length - 8));
      f[at] = rng.chance(0.5) ? f[at] ^ (1 << rng.int(8)) : rng.int(256);
    }
    return u.map((g, j) => (j === i ? f : g));
  },
  truncate: (u, { rng }) => {
    const f = rng.pick(u);
    const p = payloadOf(f);
    return [withPayload(f, p.subarray(0, rng.int(p.length + 1)))];
  },
  extend: (u, { rng }) => {
    const f = rng.pick(u);
    return [withPayload(f, Buffer.concat([payloadOf(f), rng.bytes(rng.range(1, 32))]))];
  },
  'method-id': (u, { rng }) => {
    const f = Buffer.from(u[0]);
    if (f.length >= 12)
      f.writeUInt32BE(rng.chance(0.5) ? rng.u32() : (rng.pick([10, 20, 30, 40, 50, 60, 85, 90, 99]) << 16) | rng.int(120), 7);
    return [f];
  },
  'bad-table': (_u, { rng, channels, frameMax }) => [methodWithTable(rng, rng.pick(channels), badTable(rng, frameMax))],
  'bad-properties': (_u, { rng, channels, frameMax }) => {
    const ch = rng.pick(channels);
    const props = rng.pick([
      () => Buffer.from([0x20, 0x00]).subarray(0, rng.int(2)),
      () => Buffer.concat([Buffer.from([0x20, 0x00]), badTable(rng, frameMax - 64)]),
      () => Buffer.from([rng.int(256), rng.int(256) | 1]), // flags with more flag words promised
      () => Buffer.concat([Buffer.from([rng.int(256), rng.int(256) & 0xfe]), rng.bytes(rng.int(12))]),
      () => Buffer.from([0x00, 0x04]), // cluster-id announced, absent
    ])();
    return [
      encode((w) => M.encodeBasicPublish(w, ch, 0, '', 'fz.q0', false, false)),
      rawHeader(ch, 1n, props),
      contentBody(ch, Buffer.from('x')),
    ];
  },
  'content-order': (_u, { rng, channels }) => {
    const ch = rng.pick(channels);
    const pub = publish(rng, ch, '', 'fz.q0');
    const hdr = contentHeader(ch, 3, {});
    const body = contentBody(ch, Buffer.from('abc'));
    return rng.pick([
      () => [hdr, body], // content without publish
      () => [body],
      () => [pub[0], body], // body before header
      () => [pub[0], pub[0], hdr, body],
      () => [pub[0], hdr, hdr, body],
      () => [pub[0], hdr, contentBody(ch, Buffer.from('abcdef'))], // more than declared
      () => [pub[0], contentHeader(ch, 3, {}).fill(0x32, 7, 9), body], // header of class 50
      () => [pub[0], hdr, pub[0]], // method while the body is due
      () => [pub[0], hdr, encode((w) => M.encodeChannelClose(w, ch, 200, '', 0, 0))],
    ])();
  },
  'huge-body-size': (_u, { rng, channels }) => {
    const ch = rng.pick(channels);
    const size = rng.pick([2n ** 62n, 2n ** 64n - 1n, 128n * 1024n * 1024n + 1n, 128n * 1024n * 1024n, 2n ** 32n, 10_000_000n]);
    return [
      encode((w) => M.encodeBasicPublish(w, ch, 0, '', 'fz.q0', false, false)),
      rawHeader(ch, size, Buffer.from([0, 0])),
      contentBody(ch, Buffer.from('abc')),
    ];
  },
  'wrong-state': (_u, { rng, channels }) => [misplacedMethod(rng, rng.chance(0.5) ? 0 : rng.pick(channels))],
  'random-bytes': (_u, { rng }) => [rng.bytes(rng.range(1, 200))],
  'random-frame': (_u, { rng, channels }) => [
    frame(rng.pick([1, 2, 3, 8]), rng.chance(0.8) ? rng.pick(channels) : rng.int(65536), rng.bytes(rng.int(64))),
  ],
  heartbeat: (_u, { rng, channels }) => [
    frame(8, rng.chance(0.5) ? 0 : rng.pick(channels), rng.chance(0.5) ? Buffer.alloc(0) : rng.bytes(rng.range(1, 8))),
  ],
  oversized: (_u, { rng, frameMax, channels }) => [
    frame(rng.pick([1, 2, 3]), rng.pick(channels), Buffer.alloc(frameMax + rng.range(1, 16))),
  ],
};

export const MUTATION_KINDS = Object.keys(MUTATORS);

/** A mutation of `unit` (the frames of one valid method), of a kind picked at random. */
export function mutate(unit: Buffer[], c: MutationContext): Mutated {
  const kind = c.rng.pick(MUTATION_KINDS);
  return { kind, frames: MUTATORS[kind](unit, c) };
}
