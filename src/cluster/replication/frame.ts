import { crc32 } from 'node:zlib';

/**
 * A replication frame on the wire:
 *
 *   u32 payload length | u8 type | u64 term | payload | u32 crc32(type, term, payload)
 *
 * The crc covers everything but the length: a flipped length byte shows up as a crc mismatch
 * (or an over-long frame) because the frame then ends in the wrong place.
 */
export const FRAME_HEADER = 13;
export const FRAME_TRAILER = 4;
/** The copy moves 1 MiB chunks; a data frame carries one plus its 12-byte chunk header. */
export const CHUNK_SIZE = 1024 * 1024;
export const MAX_PAYLOAD = CHUNK_SIZE + 4096;

export const FrameType = {
  HELLO: 1,
  CHALLENGE: 2,
  PROOF: 3,
  WELCOME: 4,
  ERROR: 5,
  MANIFEST_REQUEST: 10,
  MANIFEST: 11,
  MANIFEST_END: 12,
  CHECK: 13,
  CHECKED: 14,
  FETCH: 15,
  DATA: 16,
  FETCH_END: 17,
  GONE: 18,
  /** store ops (store-ops.ts), each as u32 length | op, in LSN order, leader to follower (ops-frame.ts) */
  OPS: 20,
  /** u64 durableLsn: the highest LSN on the follower's disk, follower to leader */
  OPS_ACK: 21,
  /** {from}: after its catch-up (or to resume), the follower asks for the ops from LSN `from` on */
  STREAM: 22,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export function frameTypeName(type: number): string {
  for (const [name, code] of Object.entries(FrameType)) if (code === type) return name;
  return `type ${type}`;
}

export interface Frame {
  type: number;
  term: number;
  payload: Buffer;
}

/**
 * A frame buffer with its header written and room for `payloadLength` bytes at FRAME_HEADER;
 * the caller fills the payload (a file read can land there directly) and calls sealFrame.
 */
export function openFrame(type: number, term: number, payloadLength: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER + payloadLength + FRAME_TRAILER);
  buf.writeUInt32BE(payloadLength, 0);
  buf.writeUInt8(type, 4);
  // Terms are etcd revisions: integers well below 2^53.
  buf.writeUInt32BE(Math.floor(term / 2 ** 32), 5);
  buf.writeUInt32BE(term >>> 0, 9);
  return buf;
}

export function sealFrame(buf: Buffer): Buffer {
  const end = buf.length - FRAME_TRAILER;
  buf.writeUInt32BE(crc32(buf.subarray(4, end)), end);
  return buf;
}

export function encodeFrame(type: number, term: number, payload: Buffer): Buffer {
  const buf = openFrame(type, term, payload.length);
  payload.copy(buf, FRAME_HEADER);
  return sealFrame(buf);
}

export function jsonFrame(type: number, term: number, body: unknown): Buffer {
  return encodeFrame(type, term, Buffer.from(JSON.stringify(body)));
}
