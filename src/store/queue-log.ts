import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../logger';
import type { Message } from '../broker/message';
import type { SyncScheduler, SyncTarget } from './sync-scheduler';
import { encodeMessageRecord, FLAG_MOVED, FLAG_PAGED, movedRecord, RECORD_HEADER, recordFlags, recordIntact, recordOrigin, recordSize } from './message-record';

const ACK = 1;
const DELIVERED = 2;
const ACK_RECORD = 8;

/**
 * Stored messages waiting in a queue, as a stretch of one segment: the records from
 * `position` up to `end`, less those in `skip`, `count` in all. A deep queue holds its
 * backlog as a few of these instead of an object per message.
 */
export class Run {
  constructor(
    readonly segment: number,
    public position: number,
    public end: number,
    public count: number,
    /** recovered runs: positions in the stretch to pass over (acked, paged, moved) */
    readonly skip: Set<number> | null = null,
  ) {}
}

export class Segment {
  /** records not yet acked */
  live = 0;
  /** message records it holds (paged copies not counted) */
  records = 0;
  compacting = false;
  /** bytes on disk (written) */
  written: number;
  /** appended records not yet written */
  pending: Buffer[] = [];
  pendingBytes = 0;
  ackPending: Buffer[] = [];
  /** recovered: positions delivered before the restart */
  delivered: Set<number> | null = null;

  constructor(
    readonly id: number,
    readonly fd: number,
    readonly ackFd: number,
    size: number,
  ) {
    this.written = size;
  }

  get size(): number {
    return this.written + this.pendingBytes;
  }
}

const segName = (id: number): string => String(id).padStart(10, '0');

/** A segment is compacted once fewer than this share of its records are still live. */
const COMPACT_BELOW = 0.1;

/** Where the live records of a compacted segment went, until each is acked. */
interface Forward {
  target: number;
  positions: Map<number, number>;
}

/**
 * One queue's messages on disk: append-only segment files of message records, each with
 * a companion file of 8-byte ack/delivered records. A segment whose messages are all acked
 * is deleted. Appends are buffered and written once per event-loop turn by the
 * SyncScheduler, which also fdatasyncs them (group commit).
 */
export class QueueLog implements SyncTarget {
  readonly segments = new Map<number, Segment>();
  private current: Segment | null = null;
  private nextId = 1;
  private readonly forwards = new Map<number, Forward>();
  private compactQueued = false;
  /** Set by the owner: whether it still reads records of a segment in place (runs). */
  inUse: (segment: number) => boolean = () => false;
  /** Segment and size of the last append (fields, so append allocates no result object). */
  lastSegment = 0;
  lastSize = 0;

  constructor(
    readonly dir: string,
    private readonly scheduler: SyncScheduler,
    private readonly segmentSize: number,
    private readonly log: Logger,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  // ---- writing ----------------------------------------------------------------------

  /** Appends a message; returns its position (segment and size in lastSegment/lastSize). */
  append(msg: Message, publishedAt: number, flags: number): number {
    let seg = this.current;
    if (seg === null || seg.size >= this.segmentSize) seg = this.rolloverOrStay();
    const record = encodeMessageRecord(msg, publishedAt, flags);
    const position = seg.size;
    seg.pending.push(record);
    seg.pendingBytes += record.length;
    seg.live++;
    if ((flags & FLAG_PAGED) === 0) seg.records++;
    this.lastSegment = seg.id;
    this.lastSize = record.length;
    // Paged copies of transient messages need no fsync: a crash loses them by definition.
    this.scheduler.markDirty(this, (flags & FLAG_PAGED) === 0);
    return position;
  }

  ack(segment: number, position: number): void {
    const seg = this.segments.get(segment);
    const f = this.forwards.get(segment);
    const to = f?.positions.get(position);
    if (to !== undefined) {
      // Moved by compaction. Ack the original too while its segment lingers, so that a
      // crash before it is deleted brings back neither copy.
      f!.positions.delete(position);
      if (f!.positions.size === 0) this.forwards.delete(segment);
      if (seg !== undefined) this.ackRecord(seg, position, ACK);
      return this.ack(f!.target, to);
    }
    if (seg === undefined) return;
    this.ackRecord(seg, position, ACK);
    if (--seg.live === 0 && seg !== this.current) this.dropSegment(seg);
    else if (seg !== this.current && seg.live < seg.records * COMPACT_BELOW) this.queueCompaction();
  }

  delivered(segment: number, position: number): void {
    const f = this.forwards.get(segment);
    const to = f?.positions.get(position);
    if (to !== undefined) return this.delivered(f!.target, to);
    const seg = this.segments.get(segment);
    if (seg !== undefined) this.ackRecord(seg, position, DELIVERED);
  }

  private queueCompaction(): void {
    if (this.compactQueued) return;
    this.compactQueued = true;
    setTimeout(() => this.compactSparse(), 100).unref();
  }

  /** Compacts every old segment whose live records are few. */
  private compactSparse(): void {
    this.compactQueued = false;
    for (const seg of [...this.segments.values()]) {
      if (seg === this.current || seg.compacting || seg.live === 0 || seg.live >= seg.records * COMPACT_BELOW) continue;
      if (this.inUse(seg.id)) continue;
      try {
        this.compact(seg);
      } catch (err) {
        this.log.error({ err, dir: this.dir, segment: seg.id }, 'segment compaction failed; it stays as it is');
      }
    }
  }

  /**
   * Copies a segment's few live records to the current segment and deletes it once the
   * copies are on disk. A marker file written first names the copies, so that after a
   * crash in between, recovery keeps the originals and drops the copies.
   */
  private compact(seg: Segment): void {
    this.scheduler.writeNow(this);
    const data = readFileSync(join(this.dir, `${segName(seg.id)}.seg`));
    const acks = readFileSync(join(this.dir, `${segName(seg.id)}.ack`));
    const { acked, delivered } = readAcks(acks);
    const live: number[] = [];
    for (let p = 0; p < seg.written; ) {
      const size = recordSize(data, p, seg.written);
      if (size < 0) break;
      if ((recordFlags(data, p) & FLAG_PAGED) === 0 && !acked.has(p)) live.push(p);
      p += size;
    }
    if (live.length !== seg.live) return; // not what we think it is: leave it alone
    let target = this.current;
    if (target === null || target.size >= this.segmentSize) target = this.rolloverOrStay();
    const copies = live.map((p) => movedRecord(data, p, recordSize(data, p, seg.written), seg.id, p));
    let bytes = 0;
    for (const c of copies) bytes += c.length;
    const start = target.size;
    const marker = join(this.dir, `${segName(seg.id)}.compacting`);
    writeFileSync(marker, `${target.id} ${start} ${start + bytes}\n`);
    syncFile(marker);
    syncFile(this.dir);
    const positions = new Map<number, number>();
    for (let i = 0; i < live.length; i++) {
      const to = target.size;
      target.pending.push(copies[i]);
      target.pendingBytes += copies[i].length;
      positions.set(live[i], to);
      if (delivered.has(live[i])) this.ackRecord(target, to, DELIVERED);
    }
    target.live += live.length;
    target.records += live.length;
    seg.compacting = true;
    seg.live = 0;
    this.forwards.set(seg.id, { target: target.id, positions });
    this.scheduler.markDirty(this, true);
    this.scheduler.afterDurable(() => {
      this.dropSegment(seg);
      rmSync(marker, { force: true });
    });
    this.log.info({ dir: this.dir, segment: seg.id, moved: live.length, into: target.id }, 'segment compacted');
  }

  private ackRecord(seg: Segment, position: number, type: number): void {
    const r = Buffer.allocUnsafe(ACK_RECORD);
    r.writeUInt32BE(position, 0);
    r[4] = type;
    r.writeUIntBE(crc32(r.subarray(0, 5)) & 0xffffff, 5, 3);
    seg.ackPending.push(r);
    this.scheduler.markDirty(this, false);
  }

  /**
   * A new segment, or (when its files cannot be created, say on a full disk) the current
   * one grown past its size: the append stays pending in memory until writes succeed.
   */
  private rolloverOrStay(): Segment {
    try {
      return this.rollover();
    } catch (err) {
      if (this.current === null) throw err;
      this.log.error({ err, dir: this.dir }, 'cannot start a new segment; appending to the current one');
      return this.current;
    }
  }

  private rollover(): Segment {
    const prev = this.current;
    const id = this.nextId++;
    const fd = openSync(join(this.dir, `${segName(id)}.seg`), 'w+');
    const ackFd = openSync(join(this.dir, `${segName(id)}.ack`), 'w+');
    const seg = new Segment(id, fd, ackFd, 0);
    this.segments.set(id, seg);
    this.current = seg;
    if (prev !== null && prev.live === 0) this.dropSegment(prev);
    return seg;
  }

  writePending(fds: Set<number>): void {
    for (const seg of this.segments.values()) {
      if (seg.pending.length > 0) {
        const data = seg.pending.length === 1 ? seg.pending[0] : Buffer.concat(seg.pending, seg.pendingBytes);
        writeFully(seg.fd, data, seg.written);
        seg.written += data.length;
        seg.pending = [];
        seg.pendingBytes = 0;
        fds.add(seg.fd);
      }
      if (seg.ackPending.length > 0) {
        const data = Buffer.concat(seg.ackPending);
        seg.ackPending = [];
        writeFully(seg.ackFd, data, -1);
      }
    }
  }

  private dropSegment(seg: Segment): void {
    this.segments.delete(seg.id);
    this.scheduler.retire(seg.fd);
    this.scheduler.retire(seg.ackFd);
    for (const ext of ['seg', 'ack']) {
      try {
        unlinkSync(join(this.dir, `${segName(seg.id)}.${ext}`));
      } catch {
        // already gone
      }
    }
  }

  // ---- reading ----------------------------------------------------------------------

  /** Up to `max` bytes of a segment from `position` (less if the segment ends sooner). */
  read(segment: number, position: number, max: number): Buffer {
    const seg = this.segments.get(segment);
    if (seg === undefined) throw new Error(`segment ${segment} is gone`);
    if (seg.pendingBytes > 0) this.scheduler.writeNow(this);
    const len = Math.min(max, seg.written - position);
    const buf = Buffer.allocUnsafe(Math.max(len, 0));
    let got = 0;
    while (got < len) {
      const n = readSync(seg.fd, buf, got, len - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got === len ? buf : buf.subarray(0, got);
  }

  // ---- recovery ---------------------------------------------------------------------

  /**
   * Reads every segment in order and returns, as runs, the messages not yet acked. A torn
   * or corrupt tail of the newest segment is cut off (with a warning); appends then go to
   * a fresh segment. Paged copies of transient messages are dropped.
   */
  recover(): Run[] {
    const ids = readdirSync(this.dir)
      .filter((f) => f.endsWith('.seg'))
      .map((f) => Number(f.slice(0, -4)))
      .filter((n) => Number.isSafeInteger(n))
      .sort((a, b) => a - b);
    // A compaction cut short: while its source segment is still there, the copies it made
    // are void (the originals count); once the source is gone, the copies are the messages.
    const void_ = new Map<number, Array<[number, number]>>();
    for (const f of readdirSync(this.dir).filter((n) => n.endsWith('.compacting'))) {
      const source = Number(f.slice(0, -'.compacting'.length));
      const [target, start, end] = readFileSync(join(this.dir, f), 'utf8').trim().split(' ').map(Number);
      if (ids.includes(source)) {
        let list = void_.get(target);
        if (list === undefined) void_.set(target, (list = []));
        list.push([start, end]);
      }
    }
    // Runs come back in the order the messages were first stored: compaction copies sort
    // by the place they were copied from, not by where they stand now.
    const keyed: Array<[number, number, Run]> = [];
    for (let i = 0; i < ids.length; i++) this.recoverSegment(ids[i], i === ids.length - 1, void_.get(ids[i]) ?? null, keyed);
    keyed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const runs = keyed.map((k) => k[2]);
    for (const f of readdirSync(this.dir).filter((n) => n.endsWith('.compacting'))) rmSync(join(this.dir, f), { force: true });
    this.nextId = (ids.length > 0 ? ids[ids.length - 1] : 0) + 1;
    return runs;
  }

  private recoverSegment(id: number, newest: boolean, voided: Array<[number, number]> | null, out: Array<[number, number, Run]>): void {
    const segPath = join(this.dir, `${segName(id)}.seg`);
    const ackPath = join(this.dir, `${segName(id)}.ack`);
    const data = readFileSync(segPath);
    const live = new Set<number>();
    let records = 0;
    let pos = 0;
    while (pos < data.length) {
      const size = recordSize(data, pos, data.length);
      // Only the newest segment can have been cut short by a crash, so only there is a
      // full checksum pass worth its cost; older segments are checked when read.
      if (size < 0 || pos + size > data.length || (newest && !recordIntact(data, pos, size))) break;
      if ((recordFlags(data, pos) & FLAG_PAGED) === 0) {
        records++;
        if (voided === null || !voided.some(([a, b]) => pos >= a && pos < b)) live.add(pos);
      }
      pos += size;
    }
    const end = pos;
    if (end < data.length) {
      this.log.warn({ segment: segPath, at: end, size: data.length }, 'torn or corrupt record: segment cut at the last intact record');
      truncate(segPath, end);
    }
    let delivered = new Set<number>();
    if (existsSync(ackPath)) {
      const acks = readFileSync(ackPath);
      const r = readAcks(acks);
      for (const at of r.acked) live.delete(at);
      delivered = r.delivered;
      if (r.whole !== acks.length) truncate(ackPath, r.whole);
    }
    if (live.size === 0) {
      rmSync(segPath, { force: true });
      rmSync(ackPath, { force: true });
      return;
    }
    const seg = new Segment(id, openSync(segPath, 'r+'), openSync(ackPath, 'a+'), end);
    seg.live = live.size;
    seg.records = records;
    // Voided copies get acked for good, so a later restart does not need the marker.
    if (voided !== null) {
      for (let p = 0; p < end; p += recordSize(data, p, end)) {
        if (!live.has(p) && voided.some(([a, b]) => p >= a && p < b)) this.ackRecord(seg, p, ACK);
      }
    }
    // One run over the segment's own records, skipping the rest; a run of one for each
    // compaction copy, to be put back where the message first stood.
    const skip = new Set<number>();
    let first = -1;
    let own = 0;
    for (let p = 0; p < end; ) {
      const size = recordSize(data, p, end);
      if (live.has(p) && (recordFlags(data, p) & FLAG_MOVED) !== 0) {
        const [oseg, opos] = recordOrigin(data, p);
        out.push([oseg, opos, new Run(id, p, p + size, 1)]);
        if (first >= 0) skip.add(p);
      } else if (live.has(p)) {
        if (first < 0) first = p;
        own++;
      } else if (first >= 0) skip.add(p);
      p += size;
    }
    for (const d of delivered) if (!live.has(d)) delivered.delete(d);
    seg.delivered = delivered.size > 0 ? delivered : null;
    this.segments.set(id, seg);
    if (own > 0) out.push([id, first, new Run(id, first, end, own, skip.size > 0 ? skip : null)]);
  }

  /** The queue was deleted: its files go. */
  destroy(): void {
    for (const seg of [...this.segments.values()]) {
      this.segments.delete(seg.id);
      this.scheduler.retire(seg.fd);
      this.scheduler.retire(seg.ackFd);
    }
    this.current = null;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function readAcks(acks: Buffer): { acked: Set<number>; delivered: Set<number>; whole: number } {
  const acked = new Set<number>();
  const delivered = new Set<number>();
  const whole = acks.length - (acks.length % ACK_RECORD);
  for (let p = 0; p < whole; p += ACK_RECORD) {
    if ((crc32(acks.subarray(p, p + 5)) & 0xffffff) !== acks.readUIntBE(p + 5, 3)) continue;
    const at = acks.readUInt32BE(p);
    if (acks[p + 4] === ACK) acked.add(at);
    else if (acks[p + 4] === DELIVERED) delivered.add(at);
  }
  for (const a of acked) delivered.delete(a);
  return { acked, delivered, whole };
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

function truncate(path: string, length: number): void {
  const fd = openSync(path, 'r+');
  ftruncateSync(fd, length);
  closeSync(fd);
}

/** Writes all of `data` at `position` (or appends when -1). */
function writeFully(fd: number, data: Buffer, position: number): void {
  let off = 0;
  while (off < data.length) {
    off += writeSync(fd, data, off, data.length - off, position < 0 ? null : position + off);
  }
}
