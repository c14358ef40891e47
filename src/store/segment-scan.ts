import { recordIntact, recordSize, RECORD_HEADER } from './message-record';

/** What recovery finds in a segment file. */
export interface SegmentScan {
  /** start of every record found intact (or well-formed, where checksums were not checked), in order */
  records: number[];
  /** byte ranges holding no intact record, each followed by an intact record */
  damaged: Array<[number, number]>;
  /** end of the last intact record: beyond it is a tail with no intact record in it */
  end: number;
}

/**
 * Walks a segment's records. `verify` checks every checksum (the newest segment, where a
 * crash can leave a torn tail); otherwise only the chain of lengths is followed, which is
 * cheap, and a chain that does not end exactly at the end of the file makes the whole
 * segment be checked record by record. A bad record followed by intact ones is damage to
 * skip, not a tail to cut: everything intact after it is still found.
 */
export function scanSegment(data: Buffer, verify: boolean): SegmentScan {
  const records: number[] = [];
  let pos = walk(data, 0, verify, records);
  if (pos === data.length) return { records, damaged: [], end: pos };
  if (!verify) return scanSegment(data, true);
  const damaged: Array<[number, number]> = [];
  for (;;) {
    const next = findIntactRecord(data, pos + 1);
    if (next < 0) return { records, damaged, end: pos };
    damaged.push([pos, next]);
    pos = walk(data, next, true, records);
    if (pos === data.length) return { records, damaged, end: pos };
  }
}

/** Follows records from `pos` while they hold together; returns where that stopped. */
function walk(data: Buffer, pos: number, verify: boolean, out: number[]): number {
  const len = data.length;
  while (pos < len) {
    const size = recordSize(data, pos, len);
    if (size < 0 || pos + size > len || (verify && !recordIntact(data, pos, size))) break;
    out.push(pos);
    pos += size;
  }
  return pos;
}

/** The first position at or after `from` where an intact record starts, or -1. */
function findIntactRecord(data: Buffer, from: number): number {
  const len = data.length;
  for (let p = from; p + RECORD_HEADER <= len; p++) {
    const size = recordSize(data, p, len);
    if (size > 0 && p + size <= len && recordIntact(data, p, size)) return p;
  }
  return -1;
}
