import { relative, sep } from 'node:path';
import type { StoreTap } from '../../store/store-tap';
import { CHUNK_SIZE } from './frame';
import { isNodeLocal } from './node-local';
import { OpKind, opSize, writeOp } from './store-ops';

/**
 * Where the tap writes its ops: the leader's backlog (op-backlog.ts), which gives room in a
 * slab it reuses, or a test's list (collectOps).
 */
export interface OpSink {
  /** room for an op of `size` bytes, at `writeAt` in the buffer returned */
  reserve(size: number): Buffer;
  readonly writeAt: number;
  /** the op written there is op `lsn` */
  commit(lsn: number, size: number): void;
}

/** A sink that hands each op, in a buffer of its own, to `fn`. */
export function collectOps(fn: (op: Buffer, lsn: number) => void): OpSink {
  let buf = Buffer.alloc(0);
  return {
    writeAt: 0,
    reserve(size: number): Buffer {
      buf = Buffer.allocUnsafe(size);
      return buf;
    },
    commit(lsn: number, size: number): void {
      fn(buf.subarray(0, size), lsn);
    },
  };
}

/** Told of every op but WRITE and SYNCED (files opened, removed, replaced: what the catch-up must know of). */
export type FileOpListener = (kind: OpKind, path: string, lsn: number) => void;

/**
 * The leader's end of the live stream: turns what the store tells its tap into encoded
 * ops, numbered in order, written into `sink` (the backlog followers read from, or in a test
 * an applier). Node-local files (the lock, paging/, *.tmp, the clean-stop mark) are left
 * out, as catch-up leaves them out. Every op copies what it carries, as the store reuses
 * buffers.
 */
export class OpTap implements StoreTap {
  /** the LSN of the last op handed to the sink */
  lsn = 0;
  ops = 0;
  bytes = 0;
  /** why the stream no longer describes the directory (null: it does) */
  broken: string | null = null;
  /** the LSN the sync round under way covers */
  private syncMark = 0;
  /** the LSN the last finished sync round covered: its confirms need followers durable up to here */
  syncedUpTo = 0;
  /** relative path of each descriptor the store writes through (null: not replicated) */
  private readonly files = new Map<number, string | null>();

  constructor(
    private readonly root: string,
    private readonly sink: OpSink,
    /** the store wrote a turn's appends and starts their fdatasync: a good moment to send them */
    private readonly onSyncStarting: (() => void) | null = null,
    private readonly onFileOp: FileOpListener | null = null,
  ) {}

  opened(fd: number, path: string, truncate: boolean): void {
    const rel = this.rel(path);
    this.files.set(fd, rel);
    if (rel !== null) this.emit(OpKind.OPEN, rel, truncate ? 1 : 0);
  }

  wrote(fd: number, data: Buffer, position: number): void {
    const rel = this.files.get(fd);
    if (rel === undefined) {
      // Never thrown into the store's write path (it would take it for a failed write):
      // the stream is marked broken, and a follower must catch up again.
      this.broken ??= `store wrote to descriptor ${fd} it never said it opened (op ${this.lsn + 1})`;
      return;
    }
    if (rel === null) return;
    // One op per frame: a turn's appends to one file (up to a segment and more) go as
    // chunks, each a positional write of its own.
    for (let off = 0; off < data.length; off += CHUNK_SIZE) {
      const piece = off === 0 && data.length <= CHUNK_SIZE ? data : data.subarray(off, off + CHUNK_SIZE);
      this.emit(OpKind.WRITE, rel, position + off, piece);
    }
  }

  truncated(path: string, length: number): void {
    const rel = this.rel(path);
    if (rel !== null) this.emit(OpKind.TRUNCATE, rel, length);
  }

  removed(path: string): void {
    const rel = this.rel(path);
    if (rel !== null) this.emit(OpKind.REMOVE, rel);
  }

  madeDir(path: string): void {
    const rel = this.rel(path);
    if (rel !== null) this.emit(OpKind.MKDIR, rel);
  }

  replaced(path: string, data: Buffer): void {
    const rel = this.rel(path);
    if (rel === null) return;
    if (data.length <= CHUNK_SIZE) {
      this.emit(OpKind.REPLACE, rel, 0, data);
      return;
    }
    // A definitions.log of thousands of definitions (or damaged bytes kept aside) outgrows a
    // frame: its content goes in chunks, written aside by the follower and renamed over the
    // file by the last op only, so the file is never half the new content. All in this one
    // call: no other op, and no catch-up's snapshot point, falls between the parts.
    for (let off = 0; off < data.length; off += CHUNK_SIZE) this.emit(OpKind.REPLACE_PART, rel, off, data.subarray(off, off + CHUNK_SIZE));
    this.emit(OpKind.REPLACE_END, rel, data.length);
  }

  syncStarting(): void {
    this.syncMark = this.lsn;
    this.emit(OpKind.ROUND, '');
    if (this.onSyncStarting !== null) this.onSyncStarting();
  }

  synced(epoch: number): void {
    this.syncedUpTo = this.syncMark;
    this.emit(OpKind.SYNCED, '', epoch, null, this.syncMark);
  }

  private emit(kind: OpKind, path: string, n = 0, data: Buffer | null = null, upTo = 0): void {
    const pathLen = path.length === 0 ? 0 : Buffer.byteLength(path);
    const size = opSize(kind, pathLen, data === null ? 0 : data.length);
    const lsn = this.lsn + 1;
    writeOp(this.sink.reserve(size), this.sink.writeAt, kind, lsn, path, pathLen, n, data, upTo);
    this.sink.commit(lsn, size);
    this.lsn = lsn;
    this.ops++;
    this.bytes += size;
    if (this.onFileOp !== null && kind !== OpKind.WRITE && kind !== OpKind.SYNCED && kind !== OpKind.ROUND) this.onFileOp(kind, path, lsn);
  }

  /** The path inside the data directory, '/'-separated; null for the directory itself, outside it, or node-local. */
  private rel(path: string): string | null {
    const rel = relative(this.root, path);
    if (rel === '' || rel.startsWith('..')) return null;
    const norm = sep === '/' ? rel : rel.split(sep).join('/');
    return isNodeLocal(norm) ? null : norm;
  }
}
