import { crc32 } from 'node:zlib';

/**
 * A segment's companion file of 8-byte records, one per settlement or first delivery:
 *   u32 position of the message record | u8 type | u24 crc32 of the first five bytes
 * A record that fails its checksum is skipped alone: at worst one acked message comes
 * back (at-least-once), never one unacked message goes missing.
 */
export const ACK = 1;
export const DELIVERED = 2;
export const ACK_RECORD = 8;

export function encodeAckRecord(position: number, type: number): Buffer {
  const r = Buffer.allocUnsafe(ACK_RECORD);
  putAckRecord(r, 0, position, type);
  return r;
}

/**
 * Writes an ack record at `at`. One runs per acked or first-delivered persistent message:
 * the five bytes' CRC-32 (the same as zlib's) is computed here from a table rather than by
 * a call into zlib, and nothing is allocated.
 */
export function putAckRecord(b: Buffer, at: number, position: number, type: number): void {
  const b0 = position >>> 24;
  const b1 = (position >>> 16) & 0xff;
  const b2 = (position >>> 8) & 0xff;
  const b3 = position & 0xff;
  let c = 0xffffffff;
  c = CRC_TABLE[(c ^ b0) & 0xff] ^ (c >>> 8);
  c = CRC_TABLE[(c ^ b1) & 0xff] ^ (c >>> 8);
  c = CRC_TABLE[(c ^ b2) & 0xff] ^ (c >>> 8);
  c = CRC_TABLE[(c ^ b3) & 0xff] ^ (c >>> 8);
  c = CRC_TABLE[(c ^ type) & 0xff] ^ (c >>> 8);
  c = (c ^ 0xffffffff) >>> 0;
  b[at] = b0;
  b[at + 1] = b1;
  b[at + 2] = b2;
  b[at + 3] = b3;
  b[at + 4] = type;
  b[at + 5] = (c >>> 16) & 0xff;
  b[at + 6] = (c >>> 8) & 0xff;
  b[at + 7] = c & 0xff;
}

/** CRC-32 (IEEE, reflected, as zlib computes it), one entry per byte value. */
const CRC_TABLE = ((): Int32Array => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

export interface AckScan {
  acked: Set<number>;
  /** delivered and not acked */
  delivered: Set<number>;
  /** bytes of whole records: a torn last record is cut off here */
  whole: number;
  /** records that failed their checksum */
  damaged: number;
}

export function readAcks(acks: Buffer): AckScan {
  const acked = new Set<number>();
  const delivered = new Set<number>();
  const whole = acks.length - (acks.length % ACK_RECORD);
  let damaged = 0;
  for (let p = 0; p < whole; p += ACK_RECORD) {
    const type = acks[p + 4];
    if ((crc32(acks.subarray(p, p + 5)) & 0xffffff) !== acks.readUIntBE(p + 5, 3) || (type !== ACK && type !== DELIVERED)) {
      damaged++;
      continue;
    }
    const at = acks.readUInt32BE(p);
    if (type === ACK) acked.add(at);
    else delivered.add(at);
  }
  for (const a of acked) delivered.delete(a);
  return { acked, delivered, whole, damaged };
}
