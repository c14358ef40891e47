import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../logger';
import type { Message } from '../broker/message';
import type { SyncScheduler, SyncTarget } from './sync-scheduler';
import { encodeMessageRecord, FLAG_PAGED, RECORD_HEADER, recordFlags, recordIntact, recordSize } from './message-record';

const ACK = 1;
const DELIVERED = 2;
const ACK_RECORD = 8;

/**
 * Stored messages waiting in a queue, as a stretch of one segment: the records from
 * `position` up to `end`, less those in the segment's `skip` set, `count` in all. A deep
 * queue holds its backlog as a few of these instead of an object per message.
 */
export class Run {
  constructor(
    readonly segment: number,
    public position: number,
    public end: number,
    public count: number,
  ) {}
}

export class Segment {
  /** records not yet acked */
  live = 0;
  /** bytes on disk (written) */
  written: number;
  /** appended records not yet written */
  pending: Buffer[] = [];
  pendingBytes = 0;
  ackPending: Buffer[] = [];
  /** recovered: positions to pass over when reading a run (acked or paged) */
  skip: Set<number> | null = null;
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
    if (seg === null || seg.size >= this.segmentSize) seg = this.rollover();
    const record = encodeMessageRecord(msg, publishedAt, flags);
    const position = seg.size;
    seg.pending.push(record);
    seg.pendingBytes += record.length;
    seg.live++;
    this.lastSegment = seg.id;
    this.lastSize = record.length;
    // Paged copies of transient messages need no fsync: a crash loses them by definition.
    this.scheduler.markDirty(this, (flags & FLAG_PAGED) === 0);
    return position;
  }

  ack(segment: number, position: number): void {
    const seg = this.segments.get(segment);
    if (seg === undefined) return;
    this.ackRecord(seg, position, ACK);
    if (--seg.live === 0 && seg !== this.current) this.dropSegment(seg);
  }

  delivered(segment: number, position: number): void {
    const seg = this.segments.get(segment);
    if (seg !== undefined) this.ackRecord(seg, position, DELIVERED);
  }

  private ackRecord(seg: Segment, position: number, type: number): void {
    const r = Buffer.allocUnsafe(ACK_RECORD);
    r.writeUInt32BE(position, 0);
    r[4] = type;
    r.writeUIntBE(crc32(r.subarray(0, 5)) & 0xffffff, 5, 3);
    seg.ackPending.push(r);
    this.scheduler.markDirty(this, false);
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
    if (seg.pendingBytes > 0) this.writePending(new Set());
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
    const runs: Run[] = [];
    for (let i = 0; i < ids.length; i++) {
      const run = this.recoverSegment(ids[i], i === ids.length - 1);
      if (run !== null) runs.push(run);
    }
    this.nextId = (ids.length > 0 ? ids[ids.length - 1] : 0) + 1;
    return runs;
  }

  private recoverSegment(id: number, newest: boolean): Run | null {
    const segPath = join(this.dir, `${segName(id)}.seg`);
    const ackPath = join(this.dir, `${segName(id)}.ack`);
    const data = readFileSync(segPath);
    const live = new Set<number>();
    let pos = 0;
    while (pos < data.length) {
      const size = recordSize(data, pos, data.length);
      // Only the newest segment can have been cut short by a crash, so only there is a
      // full checksum pass worth its cost; older segments are checked when read.
      if (size < 0 || pos + size > data.length || (newest && !recordIntact(data, pos, size))) break;
      if ((recordFlags(data, pos) & FLAG_PAGED) === 0) live.add(pos);
      pos += size;
    }
    const end = pos;
    if (end < data.length) {
      this.log.warn({ segment: segPath, at: end, size: data.length }, 'torn or corrupt record: segment cut at the last intact record');
      truncate(segPath, end);
    }
    const delivered = new Set<number>();
    if (existsSync(ackPath)) {
      const acks = readFileSync(ackPath);
      const whole = acks.length - (acks.length % ACK_RECORD);
      for (let p = 0; p < whole; p += ACK_RECORD) {
        if ((crc32(acks.subarray(p, p + 5)) & 0xffffff) !== acks.readUIntBE(p + 5, 3)) continue;
        const at = acks.readUInt32BE(p);
        if (acks[p + 4] === ACK) live.delete(at);
        else if (acks[p + 4] === DELIVERED) delivered.add(at);
      }
      if (whole !== acks.length) truncate(ackPath, whole);
    }
    if (live.size === 0) {
      rmSync(segPath, { force: true });
      rmSync(ackPath, { force: true });
      return null;
    }
    const seg = new Segment(id, openSync(segPath, 'r+'), openSync(ackPath, 'a+'), end);
    seg.live = live.size;
    // Everything between the first and last live record that is not live is skipped.
    const skip = new Set<number>();
    let first = -1;
    for (let p = 0; p < end; ) {
      const size = recordSize(data, p, end);
      if (live.has(p)) {
        if (first < 0) first = p;
      } else if (first >= 0) skip.add(p);
      p += size;
    }
    for (const d of delivered) if (!live.has(d)) delivered.delete(d);
    seg.skip = skip.size > 0 ? skip : null;
    seg.delivered = delivered.size > 0 ? delivered : null;
    this.segments.set(id, seg);
    return new Run(id, first, end, live.size);
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
