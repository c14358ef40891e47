import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../logger';
import type { Message } from '../broker/message';
import type { SyncScheduler, SyncTarget } from './sync-scheduler';
import { decodeMessageRecord, encodeMessageRecord, RECORD_HEADER, recordIntact, recordSize } from './message-record';

const ACK = 1;
const DELIVERED = 2;
const ACK_RECORD = 8;

/** A message found on disk at start-up that is still owed to its queue. */
export interface RecoveredMessage {
  segment: number;
  position: number;
  size: number;
  redelivered: boolean;
}

class Segment {
  live = 0;
  /** bytes on disk (written) */
  written: number;
  /** appended records not yet written */
  pending: Buffer[] = [];
  pendingBytes = 0;
  ackPending: Buffer[] = [];

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
 * One durable queue's messages on disk: append-only segment files of message records,
 * each with a companion file of 8-byte ack/delivered records. A segment whose messages
 * are all acked is deleted. Appends are buffered and written once per event-loop turn by
 * the SyncScheduler, which also fdatasyncs them (group commit).
 */
export class QueueLog implements SyncTarget {
  private readonly segments = new Map<number, Segment>();
  private current: Segment | null = null;
  private nextId = 1;
  private readonly readBuf = Buffer.allocUnsafe(RECORD_HEADER);

  constructor(
    readonly dir: string,
    private readonly scheduler: SyncScheduler,
    private readonly segmentSize: number,
    private readonly log: Logger,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  // ---- writing ----------------------------------------------------------------------

  /** Appends a message; returns its position in segment `this.lastSegment`. */
  append(msg: Message, publishedAt: number): number {
    let seg = this.current;
    if (seg === null || seg.size >= this.segmentSize) seg = this.rollover();
    const record = encodeMessageRecord(msg, publishedAt);
    const position = seg.size;
    seg.pending.push(record);
    seg.pendingBytes += record.length;
    seg.live++;
    this.lastSize = record.length;
    this.scheduler.markDirty(this, true);
    return position;
  }
  /** Segment and size of the last append (kept as fields so append allocates no result object). */
  get lastSegment(): number {
    return this.current!.id;
  }
  lastSize = 0;

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

  /** Reads `count` records that lie back to back from `position`; used to read ahead. */
  readRun(segment: number, position: number, totalBytes: number): Buffer {
    const seg = this.segments.get(segment);
    if (seg === undefined) throw new Error(`segment ${segment} is gone`);
    if (position + totalBytes > seg.written) this.writePending(new Set());
    const buf = Buffer.allocUnsafe(totalBytes);
    let got = 0;
    while (got < totalBytes) {
      const n = readSync(seg.fd, buf, got, totalBytes - got, position + got);
      if (n === 0) throw new Error(`segment ${segment} is shorter than expected`);
      got += n;
    }
    return buf;
  }

  decode(buf: Buffer, offset: number, size: number): Message | null {
    if (!recordIntact(buf, offset, size)) return null;
    return decodeMessageRecord(buf, offset, size);
  }

  // ---- recovery ---------------------------------------------------------------------

  /**
   * Reads every segment in order and returns the messages not yet acked. A torn or
   * corrupt tail of the newest segment is cut off (with a warning); appends then go to a
   * fresh segment.
   */
  recover(): RecoveredMessage[] {
    const ids = readdirSync(this.dir)
      .filter((f) => f.endsWith('.seg'))
      .map((f) => Number(f.slice(0, -4)))
      .filter((n) => Number.isSafeInteger(n))
      .sort((a, b) => a - b);
    const out: RecoveredMessage[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const last = i === ids.length - 1;
      const segPath = join(this.dir, `${segName(id)}.seg`);
      const ackPath = join(this.dir, `${segName(id)}.ack`);
      const data = readFileSync(segPath);
      const records: RecoveredMessage[] = [];
      let pos = 0;
      while (pos < data.length) {
        const size = recordSize(data, pos, data.length);
        // Only the newest segment can have been cut short by a crash, so only there is a
        // full checksum pass worth its cost; older segments are checked when read.
        if (size < RECORD_HEADER || pos + size > data.length || (last && !recordIntact(data, pos, size))) break;
        records.push({ segment: id, position: pos, size, redelivered: false });
        pos += size;
      }
      if (pos < data.length) {
        this.log.warn({ segment: segPath, at: pos, size: data.length }, 'torn or corrupt record: segment cut at the last intact record');
        const fd = openSync(segPath, 'r+');
        ftruncateSync(fd, pos);
        closeSync(fd);
      }
      const byPos = new Map<number, RecoveredMessage>();
      for (const r of records) byPos.set(r.position, r);
      if (existsSync(ackPath)) {
        const acks = readFileSync(ackPath);
        const whole = acks.length - (acks.length % ACK_RECORD);
        for (let p = 0; p < whole; p += ACK_RECORD) {
          if ((crc32(acks.subarray(p, p + 5)) & 0xffffff) !== acks.readUIntBE(p + 5, 3)) continue;
          const r = byPos.get(acks.readUInt32BE(p));
          if (r === undefined) continue;
          if (acks[p + 4] === ACK) byPos.delete(r.position);
          else if (acks[p + 4] === DELIVERED) r.redelivered = true;
        }
        if (whole !== acks.length) {
          const fd = openSync(ackPath, 'r+');
          ftruncateSync(fd, whole);
          closeSync(fd);
        }
      }
      if (byPos.size === 0) {
        rmSync(segPath, { force: true });
        rmSync(ackPath, { force: true });
        continue;
      }
      const fd = openSync(segPath, 'r+');
      const ackFd = openSync(ackPath, 'a+');
      const seg = new Segment(id, fd, ackFd, fstatSync(fd).size);
      seg.live = byPos.size;
      this.segments.set(id, seg);
      for (const r of byPos.values()) out.push(r);
    }
    this.nextId = (ids.length > 0 ? ids[ids.length - 1] : 0) + 1;
    return out;
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

/** Writes all of `data` at `position` (or appends when -1). */
function writeFully(fd: number, data: Buffer, position: number): void {
  let off = 0;
  while (off < data.length) {
    const n = writeSync(fd, data, off, data.length - off, position < 0 ? null : position + off);
    off += n;
  }
}
