import { relative, sep } from 'node:path';
import type { StoreTap } from '../../store/store-tap';
import { CHUNK_SIZE } from './frame';
import { isNodeLocal } from './node-local';
import { encodeOp, OpKind } from './store-ops';

/**
 * The leader's end of the live stream: turns what the store tells its tap into encoded
 * ops, numbered in order, for `sink` (a follower's connection, or in a test an applier).
 * Node-local files (the lock, paging/, *.tmp, the clean-stop mark) are left out, as
 * catch-up leaves them out. Every op copies what it carries, as the store reuses buffers.
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
    private readonly sink: (op: Buffer, lsn: number) => void,
    /** the store wrote a turn's appends and starts their fdatasync: a good moment to send them */
    private readonly onSyncStarting: (() => void) | null = null,
  ) {}

  opened(fd: number, path: string, truncate: boolean): void {
    const rel = this.rel(path);
    this.files.set(fd, rel);
    if (rel !== null) this.emit(encodeOp(OpKind.OPEN, this.lsn + 1, rel, truncate ? 1 : 0));
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
      this.emit(encodeOp(OpKind.WRITE, this.lsn + 1, rel, position + off, piece));
    }
  }

  truncated(path: string, length: number): void {
    const rel = this.rel(path);
    if (rel !== null) this.emit(encodeOp(OpKind.TRUNCATE, this.lsn + 1, rel, length));
  }

  removed(path: string): void {
    const rel = this.rel(path);
    if (rel !== null) this.emit(encodeOp(OpKind.REMOVE, this.lsn + 1, rel));
  }

  madeDir(path: string): void {
    const rel = this.rel(path);
    if (rel !== null) this.emit(encodeOp(OpKind.MKDIR, this.lsn + 1, rel));
  }

  replaced(path: string, data: Buffer): void {
    const rel = this.rel(path);
    if (rel === null) return;
    if (data.length <= CHUNK_SIZE) {
      this.emit(encodeOp(OpKind.REPLACE, this.lsn + 1, rel, 0, data));
      return;
    }
    // A definitions.log of thousands of definitions (or damaged bytes kept aside) outgrows a
    // frame: its content goes in chunks, written aside by the follower and renamed over the
    // file by the last op only, so the file is never half the new content. All in this one
    // call: no other op, and no catch-up's snapshot point, falls between the parts.
    for (let off = 0; off < data.length; off += CHUNK_SIZE)
      this.emit(encodeOp(OpKind.REPLACE_PART, this.lsn + 1, rel, off, data.subarray(off, off + CHUNK_SIZE)));
    this.emit(encodeOp(OpKind.REPLACE_END, this.lsn + 1, rel, data.length));
  }

  syncStarting(): void {
    this.syncMark = this.lsn;
    if (this.onSyncStarting !== null) this.onSyncStarting();
  }

  synced(epoch: number): void {
    this.syncedUpTo = this.syncMark;
    this.emit(encodeOp(OpKind.SYNCED, this.lsn + 1, '', epoch, null, this.syncMark));
  }

  private emit(op: Buffer): void {
    this.lsn++;
    this.ops++;
    this.bytes += op.length;
    this.sink(op, this.lsn);
  }

  /** The path inside the data directory, '/'-separated; null for the directory itself, outside it, or node-local. */
  private rel(path: string): string | null {
    const rel = relative(this.root, path);
    if (rel === '' || rel.startsWith('..')) return null;
    const norm = sep === '/' ? rel : rel.split(sep).join('/');
    return isNodeLocal(norm) ? null : norm;
  }
}
