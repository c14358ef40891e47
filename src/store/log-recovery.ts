import { fsOps } from './fs-ops';
import { storeTap } from './store-tap';
import { join } from 'node:path';
import type { Logger } from '../logger';
import { readAcks } from './ack-records';
import { truncatePath } from './file-io';
import {
  FLAG_MOVED,
  FLAG_PAGED,
  FLAG_SHARED,
  indexSegment,
  indexTarget,
  recordFlags,
  recordIntact,
  recordOrigin,
  recordSize,
} from './message-record';
import { Run, Segment, segmentName } from './segment';
import { scanSegment, type SegmentScan } from './segment-scan';

/** What recovery hands back to a queue log. */
export interface RecoveredLog {
  segments: Segment[];
  /** the messages not yet acked, as runs in the order they were first stored */
  runs: Run[];
  /** the highest segment id seen on disk */
  lastId: number;
  /** compaction copies made void by a compaction cut short: ack them for good */
  voided: Array<[Segment, number]>;
  /** markers of compactions cut short: the caller removes them once the void copies' acks are written */
  markers: string[];
  /** damaged stretches skipped and message records lost in them (unknown count: bytes) */
  damagedRanges: number;
  damagedBytes: number;
}

/** Where a damaged stretch of a segment is copied for someone to look at. */
const DAMAGED_DIR = 'damaged';

/**
 * Reads every segment of a queue log in order and rebuilds what it holds. A torn tail of
 * the newest segment with data (appends a crash cut short, never confirmed) is cut; a damaged
 * record anywhere else is skipped, copied aside, counted and logged, and every intact
 * record after it recovered. Paged copies of transient messages are dropped.
 */
export function recoverLog(dir: string, log: Logger): RecoveredLog {
  const ids = fsOps
    .readdirSync(dir)
    .filter((f) => f.endsWith('.seg'))
    .map((f) => Number(f.slice(0, -4)))
    .filter((n) => Number.isSafeInteger(n))
    .sort((a, b) => a - b);
  const voidRanges = compactionsCutShort(dir, ids);
  const out: RecoveredLog = {
    segments: [],
    runs: [],
    lastId: ids.length > 0 ? ids[ids.length - 1] : 0,
    voided: [],
    markers: [],
    damagedRanges: 0,
    damagedBytes: 0,
  };
  // Runs come back in the order the messages were first stored: compaction copies sort
  // by the place they were copied from, not by where they stand now.
  const keyed: Array<[number, number, Run]> = [];
  // A new segment file is created (empty) as soon as an append finds the current one full,
  // before that segment's last appends are written at the end of the event-loop turn; a
  // kill during that write leaves its tail torn behind empty newer files. So the segment
  // that may end in a torn tail is the last one with bytes in it, not the last one.
  let newest = ids.length - 1;
  while (newest > 0 && fsOps.statSync(join(dir, `${segmentName(ids[newest])}.seg`)).size === 0) newest--;
  for (let i = 0; i < ids.length; i++) {
    recoverSegment(dir, ids[i], i >= newest, voidRanges.get(ids[i]) ?? null, keyed, out, log);
  }
  keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  out.runs = keyed.map((k) => k[2]);
  // Not removed here: while a marker is there, the next start voids its copies again. Were
  // it removed before the acks of the void copies are written, a crash in between (say the
  // process dies recovering another queue) would bring both copies back.
  out.markers = fsOps
    .readdirSync(dir)
    .filter((n) => n.endsWith('.compacting'))
    .map((f) => join(dir, f));
  return out;
}

/**
 * A compaction cut short: while its source segment is still there, the copies it made are
 * void (the originals count); once the source is gone, the copies are the messages.
 */
function compactionsCutShort(dir: string, ids: number[]): Map<number, Array<[number, number]>> {
  const voided = new Map<number, Array<[number, number]>>();
  for (const f of fsOps.readdirSync(dir).filter((n) => n.endsWith('.compacting'))) {
    const source = Number(f.slice(0, -'.compacting'.length));
    const [target, start, end] = fsOps.readFileSync(join(dir, f), 'utf8').trim().split(' ').map(Number);
    if (!ids.includes(source)) continue;
    let list = voided.get(target);
    if (list === undefined) voided.set(target, (list = []));
    list.push([start, end]);
  }
  return voided;
}

function recoverSegment(
  dir: string,
  id: number,
  newest: boolean,
  voided: Array<[number, number]> | null,
  keyed: Array<[number, number, Run]>,
  out: RecoveredLog,
  log: Logger,
): void {
  const segPath = join(dir, `${segmentName(id)}.seg`);
  const ackPath = join(dir, `${segmentName(id)}.ack`);
  const data = fsOps.readFileSync(segPath);
  // Only the newest segment can end in appends a crash cut short, so only there is a full
  // checksum pass worth its cost up front; older segments are checked when read.
  const scan = scanSegment(data, newest);
  reportDamage(dir, id, data, scan, newest, out, log);
  if (scan.end < data.length) truncatePath(segPath, scan.end);

  const isVoid = (p: number): boolean => voided !== null && voided.some(([a, b]) => p >= a && p < b);
  const live = new Set<number>();
  let records = 0;
  for (const p of scan.records) {
    if ((recordFlags(data, p) & FLAG_PAGED) !== 0) continue;
    records++;
    if (!isVoid(p)) live.add(p);
  }
  let delivered = new Set<number>();
  let ackSize = 0;
  if (fsOps.existsSync(ackPath)) {
    const acks = fsOps.readFileSync(ackPath);
    const r = readAcks(acks);
    if (r.damaged > 0) log.error({ file: ackPath, records: r.damaged }, 'damaged ack records skipped: those messages may come back');
    for (const at of r.acked) live.delete(at);
    delivered = r.delivered;
    if (r.whole !== acks.length) truncatePath(ackPath, r.whole);
    ackSize = r.whole;
  }
  if (live.size === 0) {
    fsOps.rmSync(segPath, { force: true });
    fsOps.rmSync(ackPath, { force: true });
    if (storeTap !== null) {
      storeTap.removed(segPath);
      storeTap.removed(ackPath);
    }
    return;
  }
  const segFd = fsOps.openSync(segPath, 'r+');
  const ackFd = fsOps.openSync(ackPath, fsOps.existsSync(ackPath) ? 'r+' : 'w+');
  if (storeTap !== null) {
    storeTap.opened(segFd, segPath, false);
    storeTap.opened(ackFd, ackPath, false);
  }
  const seg = new Segment(id, segFd, ackFd, scan.end, ackSize);
  seg.live = live.size;
  seg.records = records;
  for (const p of scan.records) if (!live.has(p) && isVoid(p)) out.voided.push([seg, p]);
  for (const d of delivered) if (!live.has(d)) delivered.delete(d);
  seg.delivered = delivered.size > 0 ? delivered : null;
  countSharedRefs(seg, data, scan.end, live);
  out.segments.push(seg);
  buildRuns(seg, data, scan, live, keyed);
}

/**
 * The references the segment's live index records hold on shared segments, so that the
 * shared log keeps what they name. An index record is checked here (it is small): a
 * damaged one names nothing, and is dropped as damage when its queue reads it.
 */
function countSharedRefs(seg: Segment, data: Buffer, end: number, live: Set<number>): void {
  for (const p of live) {
    if ((recordFlags(data, p) & FLAG_SHARED) === 0) continue;
    const size = recordSize(data, p, end);
    if (!recordIntact(data, p, size)) continue;
    const s = indexSegment(data, p);
    const refs = (seg.sharedRefs ??= new Map<number, number>());
    refs.set(s, (refs.get(s) ?? 0) + 1);
  }
}

/**
 * One run per unbroken stretch of the segment's own records (a damaged stretch breaks a
 * run, as records are read back one after the other), skipping what is not live; a run of
 * one for each compaction copy, to be put back where the message first stood.
 */
function buildRuns(seg: Segment, data: Buffer, scan: SegmentScan, live: Set<number>, keyed: Array<[number, number, Run]>): void {
  let skip = new Set<number>();
  let first = -1;
  let own = 0;
  let extra = 0;
  let prevEnd = 0;
  const close = (): void => {
    if (own > 0) {
      const run = new Run(seg.id, first, prevEnd, own, skip.size > 0 ? skip : null);
      run.extra = extra;
      keyed.push([seg.id, first, run]);
    }
    skip = new Set<number>();
    first = -1;
    own = 0;
    extra = 0;
  };
  for (const p of scan.records) {
    if (p !== prevEnd) close(); // a damaged stretch lies between
    const size = recordSize(data, p, scan.end);
    if (live.has(p) && (recordFlags(data, p) & FLAG_MOVED) !== 0) {
      const [oseg, opos] = recordOrigin(data, p);
      const run = new Run(seg.id, p, p + size, 1);
      run.extra = sharedExtra(data, p, size);
      keyed.push([oseg, opos, run]);
      if (first >= 0) skip.add(p);
    } else if (live.has(p)) {
      if (first < 0) first = p;
      own++;
      extra += sharedExtra(data, p, size);
    } else if (first >= 0) {
      skip.add(p);
    }
    prevEnd = p + size;
  }
  close();
}

/** What an index record weighs beyond its own size: the size of the shared record it names, less its own. */
function sharedExtra(data: Buffer, p: number, size: number): number {
  return (recordFlags(data, p) & FLAG_SHARED) === 0 ? 0 : indexTarget(data, p)[2] - size;
}

function reportDamage(dir: string, id: number, data: Buffer, scan: SegmentScan, newest: boolean, out: RecoveredLog, log: Logger): void {
  const segment = join(dir, `${segmentName(id)}.seg`);
  for (const [from, to] of scan.damaged) {
    out.damagedRanges++;
    out.damagedBytes += to - from;
    const copy = keepAside(dir, id, from, data.subarray(from, to));
    log.error({ segment, from, to, copy }, 'damaged record skipped; the intact records after it are recovered');
  }
  if (scan.end === data.length) return;
  if (newest) {
    // Appends a crash cut short: never synced, so never confirmed. Not kept aside, or
    // every kill -9 would leave a file behind.
    log.warn({ segment, at: scan.end, size: data.length }, 'torn tail of the newest segment cut at the last intact record');
    return;
  }
  // An older segment was complete once: what follows its last intact record is damage.
  out.damagedRanges++;
  out.damagedBytes += data.length - scan.end;
  const copy = keepAside(dir, id, scan.end, data.subarray(scan.end));
  log.error({ segment, at: scan.end, size: data.length, copy }, 'damaged end of a segment cut at the last intact record');
}

/** Copies damaged bytes under the queue's folder; a copy made at an earlier start stays. */
export function keepAside(dir: string, id: number, from: number, bytes: Buffer): string | null {
  const path = join(dir, DAMAGED_DIR, `${segmentName(id)}-${from}.bin`);
  try {
    if (fsOps.existsSync(path)) return path;
    fsOps.mkdirSync(join(dir, DAMAGED_DIR), { recursive: true });
    fsOps.writeFileSync(path, bytes);
    if (storeTap !== null) {
      storeTap.madeDir(join(dir, DAMAGED_DIR));
      storeTap.replaced(path, bytes);
    }
    return path;
  } catch {
    return null; // a full disk must not stop recovery for want of a copy
  }
}
