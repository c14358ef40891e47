import { crc32 } from 'node:zlib';
import type { StorableMessage } from '../broker/storage';
import type { PendingWrites } from './pending-writes';

/**
 * A message as stored in a queue's segment file (and in the shared body log):
 *   u32 payload length | u32 crc32(payload) | payload
 *   payload = u8 flags | [u32 origin segment | u32 origin position, if MOVED]
 *             | u64 published-at (ms) | shortstr exchange | shortstr routing key
 *             | u32 properties length | properties | body
 * or, flagged SHARED, an index record naming the message in the shared body log (below).
 * The checksum lets recovery tell a torn or corrupted record from a good one. Records
 * without the SHARED flag are what every earlier version wrote, and read as before.
 */
export const RECORD_HEADER = 8;
/** flags: a transient message paged out of memory; never recovered after a restart */
export const FLAG_PAGED = 1;
/** flags: a copy made by compaction; it names where the message first stood, for order */
export const FLAG_MOVED = 2;
/**
 * flags: an index record. The message (exchange, routing key, properties, body and
 * published-at) is one record of the shared body log, stored once for every durable queue
 * it was routed to; the queue's record only names it:
 *   payload = u8 flags | [origin, if MOVED] | u32 shared segment | u32 offset | u32 size
 */
export const FLAG_SHARED = 4;
/** An index record's payload without an origin: flags and the three u32s. */
const INDEX_PAYLOAD = 1 + 4 + 4 + 4;
/** Bytes of an index record as first written (a compaction copy adds 8 for its origin). */
export const INDEX_RECORD = RECORD_HEADER + INDEX_PAYLOAD;

export function encodeIndexRecord(segment: number, offset: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(INDEX_RECORD);
  buf[RECORD_HEADER] = FLAG_SHARED;
  buf.writeUInt32BE(segment, RECORD_HEADER + 1);
  buf.writeUInt32BE(offset, RECORD_HEADER + 5);
  buf.writeUInt32BE(size, RECORD_HEADER + 9);
  buf.writeUInt32BE(INDEX_PAYLOAD, 0);
  buf.writeUInt32BE(crc32(buf.subarray(RECORD_HEADER)), 4);
  return buf;
}

/** Where the shared record an index record names lies: [segment, offset, size]. */
export function indexTarget(buf: Buffer, pos: number): [number, number, number] {
  const p = pos + RECORD_HEADER + 1 + ((buf[pos + RECORD_HEADER] & FLAG_MOVED) !== 0 ? 8 : 0);
  return [buf.readUInt32BE(p), buf.readUInt32BE(p + 4), buf.readUInt32BE(p + 8)];
}

/** The shared segment an index record names (without making an array). */
export function indexSegment(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos + RECORD_HEADER + 1 + ((buf[pos + RECORD_HEADER] & FLAG_MOVED) !== 0 ? 8 : 0));
}

/** The size of the record putMessageRecord writes for `msg` (without an origin). */
export function messageRecordSize(msg: StorableMessage): number {
  const route = msg.route;
  const names = route != null ? route.length : 2 + Buffer.byteLength(msg.exchange) + Buffer.byteLength(msg.routingKey);
  return RECORD_HEADER + 1 + 8 + names + 4 + msg.rawProperties.length + msg.bodySize;
}

/** A message record in a buffer of its own (compaction and tests; appends use putMessageRecord). */
export function encodeMessageRecord(msg: StorableMessage, publishedAt: number, flags: number): Buffer {
  const size = messageRecordSize(msg);
  const buf = Buffer.allocUnsafe(size);
  putMessageRecord(buf, 0, size, msg, publishedAt, flags);
  return buf;
}

/** Appends the message's record to a file's pending bytes; returns its size. */
export function appendMessageRecord(pending: PendingWrites, msg: StorableMessage, publishedAt: number, flags: number): number {
  const size = messageRecordSize(msg);
  // Reserve first: growing may replace the buffer, so it is read only afterwards.
  const at = pending.reserve(size);
  putMessageRecord(pending.buf, at, size, msg, publishedAt, flags);
  return size;
}

/**
 * Writes the message's record, `size` bytes (messageRecordSize), at `at` in `buf`. The
 * exchange and routing key are copied from the publish's wire bytes when it kept them
 * (the same two shortstrs the record holds), else encoded.
 */
export function putMessageRecord(buf: Buffer, at: number, size: number, msg: StorableMessage, publishedAt: number, flags: number): void {
  const props = msg.rawProperties;
  let p = at + RECORD_HEADER;
  buf[p++] = flags;
  buf.writeUInt32BE(Math.floor(publishedAt / 0x100000000), p);
  buf.writeUInt32BE(publishedAt >>> 0, p + 4);
  p += 8;
  const route = msg.route;
  if (route != null) {
    p += route.copy(buf, p);
  } else {
    const ex = buf.write(msg.exchange, p + 1, 'utf8');
    buf[p] = ex;
    p += 1 + ex;
    const rk = buf.write(msg.routingKey, p + 1, 'utf8');
    buf[p] = rk;
    p += 1 + rk;
  }
  buf.writeUInt32BE(props.length, p);
  p += 4;
  p += props.copy(buf, p);
  msg.copyBody(buf, p);
  buf.writeUInt32BE(size - RECORD_HEADER, at);
  buf.writeUInt32BE(crc32(buf.subarray(at + RECORD_HEADER, at + size)), at + 4);
}

/**
 * The least a payload holds: an index record's (flags and three u32s); a message record's
 * (flags, published-at, two shortstr lengths, properties length) is longer.
 */
const MIN_PAYLOAD = INDEX_PAYLOAD;

/**
 * Size of the whole record starting at `pos`; -1 if the header is not all there or names
 * a payload too short to be a message (zeros from a preallocated or torn tail).
 */
export function recordSize(buf: Buffer, pos: number, end: number): number {
  if (end - pos < RECORD_HEADER) return -1;
  const len = buf.readUInt32BE(pos);
  return len < MIN_PAYLOAD ? -1 : RECORD_HEADER + len;
}

export function recordIntact(buf: Buffer, pos: number, size: number): boolean {
  return crc32(buf.subarray(pos + RECORD_HEADER, pos + size)) === buf.readUInt32BE(pos + 4);
}

/** The record's flags (PAGED, MOVED, SHARED). */
export function recordFlags(buf: Buffer, pos: number): number {
  return buf[pos + RECORD_HEADER];
}

/** A compaction copy of the record at `pos`, naming its first place (kept across moves). */
export function movedRecord(buf: Buffer, pos: number, size: number, segment: number, position: number): Buffer {
  const flags = recordFlags(buf, pos);
  if (flags & FLAG_MOVED) return Buffer.from(buf.subarray(pos, pos + size));
  const rest = buf.subarray(pos + RECORD_HEADER + 1, pos + size);
  const out = Buffer.allocUnsafe(size + 8);
  out[RECORD_HEADER] = flags | FLAG_MOVED;
  out.writeUInt32BE(segment, RECORD_HEADER + 1);
  out.writeUInt32BE(position, RECORD_HEADER + 5);
  rest.copy(out, RECORD_HEADER + 9);
  out.writeUInt32BE(size + 8 - RECORD_HEADER, 0);
  out.writeUInt32BE(crc32(out.subarray(RECORD_HEADER)), 4);
  return out;
}

/** When the message was first stored (ms), for TTLs that outlive a restart. */
export function recordPublishedAt(buf: Buffer, pos: number): number {
  const p = pos + RECORD_HEADER + 1 + ((buf[pos + RECORD_HEADER] & FLAG_MOVED) !== 0 ? 8 : 0);
  return buf.readUInt32BE(p) * 0x100000000 + buf.readUInt32BE(p + 4);
}

/** [segment, position] where a moved record first stood. */
export function recordOrigin(buf: Buffer, pos: number): [number, number] {
  return [buf.readUInt32BE(pos + RECORD_HEADER + 1), buf.readUInt32BE(pos + RECORD_HEADER + 5)];
}

/** The fields of a stored message. */
export interface MessageFields {
  exchange: string;
  routingKey: string;
  rawProperties: Buffer;
  body: Buffer;
}

/** Decodes a record already known to be intact. Body and properties are copied out of `buf`. */
export function decodeMessageRecord(buf: Buffer, pos: number, size: number): MessageFields {
  let p = pos + RECORD_HEADER + 1 + ((buf[pos + RECORD_HEADER] & FLAG_MOVED) !== 0 ? 8 : 0) + 8;
  const end = pos + size;
  const exLen = buf[p++];
  const exchange = buf.toString('utf8', p, p + exLen);
  p += exLen;
  const rkLen = buf[p++];
  const routingKey = buf.toString('utf8', p, p + rkLen);
  p += rkLen;
  const propsLen = buf.readUInt32BE(p);
  p += 4;
  const rawProperties = Buffer.from(buf.subarray(p, p + propsLen));
  p += propsLen;
  const body = Buffer.from(buf.subarray(p, end));
  return { exchange, routingKey, rawProperties, body };
}
