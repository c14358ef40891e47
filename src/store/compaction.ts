import { join } from 'node:path';
import { storeTap } from './store-tap';
import { fsOps } from './fs-ops';
import { readAcks } from './ack-records';
import { syncPath } from './file-io';
import { FLAG_PAGED, movedRecord, recordFlags, recordIntact, recordSize } from './message-record';
import { segmentName, type Segment } from './segment';

/** What a compaction of one sparse segment will move: its live records, as copies. */
export interface CompactionPlan {
  /** positions of the live records in the source segment */
  live: number[];
  /** a copy of each, naming where it first stood */
  copies: Buffer[];
  bytes: number;
  /** live positions delivered before (their copies are marked delivered too) */
  delivered: Set<number>;
}

/**
 * Reads a sparse segment from disk and plans the copies of its live records. Each live
 * record's checksum is verified first: a copy gets a fresh checksum, which must never
 * vouch for bytes that were already bad. Returns a reason instead when the segment must
 * stay as it is (a damaged record, or not the records we expect).
 */
export function planCompaction(dir: string, seg: Segment): CompactionPlan | { keep: string; position?: number } {
  const data = fsOps.readFileSync(join(dir, `${segmentName(seg.id)}.seg`));
  const { acked, delivered } = readAcks(fsOps.readFileSync(join(dir, `${segmentName(seg.id)}.ack`)));
  const live: number[] = [];
  const copies: Buffer[] = [];
  let bytes = 0;
  for (let p = 0; p < seg.written;) {
    const size = recordSize(data, p, seg.written);
    if (size < 0 || p + size > seg.written) break;
    if ((recordFlags(data, p) & FLAG_PAGED) === 0 && !acked.has(p)) {
      if (!recordIntact(data, p, size)) return { keep: 'damaged record found while compacting; the segment stays as it is', position: p };
      live.push(p);
      const copy = movedRecord(data, p, size, seg.id, p);
      copies.push(copy);
      bytes += copy.length;
    }
    p += size;
  }
  if (live.length !== seg.live) return { keep: 'live records differ from what the log counts; the segment stays as it is' };
  return { live, copies, bytes, delivered };
}

/**
 * Writes (and syncs) the marker naming where a compaction's copies go, before any copy is
 * made: after a crash in between, recovery keeps the originals and voids the copies.
 */
export function writeCompactionMarker(dir: string, source: number, target: number, start: number, end: number): string {
  const marker = join(dir, `${segmentName(source)}.compacting`);
  fsOps.writeFileSync(marker, `${target} ${start} ${end}\n`);
  if (storeTap !== null) storeTap.replaced(marker, Buffer.from(`${target} ${start} ${end}\n`));
  syncPath(marker);
  syncPath(dir);
  return marker;
}
