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
  r.writeUInt32BE(position, 0);
  r[4] = type;
  r.writeUIntBE(crc32(r.subarray(0, 5)) & 0xffffff, 5, 3);
  return r;
}

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
