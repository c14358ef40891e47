import { fsOps } from './fs-ops';
import { ioCounts } from './io-counters';

/** fsyncs a file or directory by path (a directory, so that a new or removed name is durable). */
export function syncPath(path: string): void {
  const fd = fsOps.openSync(path, 'r');
  try {
    fsOps.fsyncSync(fd);
    ioCounts.syncCount++;
  } finally {
    fsOps.closeSync(fd);
  }
}

export function truncatePath(path: string, length: number): void {
  const fd = fsOps.openSync(path, 'r+');
  try {
    fsOps.ftruncateSync(fd, length);
  } finally {
    fsOps.closeSync(fd);
  }
}

/**
 * Writes all of `data` at `position`. Always positional: after a failed or short write the
 * caller writes the same bytes again at the same place, so a partial record left on disk
 * is overwritten rather than followed by the next one.
 */
export function writeFully(fd: number, data: Buffer, position: number): void {
  let off = 0;
  while (off < data.length) {
    const n = fsOps.writeSync(fd, data, off, data.length - off, position + off);
    // A write that takes nothing will take nothing next time either: fail, to retry later.
    if (n === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    ioCounts.writeCount++;
    ioCounts.writeBytes += n;
    off += n;
  }
}

/**
 * Copies appended bytes not yet written (a segment's `pending` chunks, which follow its
 * `written` bytes) from file position `at` into `buf` at `offset`; returns how many.
 */
export function copyPending(
  seg: { readonly written: number; readonly pending: readonly Buffer[] },
  at: number,
  buf: Buffer,
  offset: number,
): number {
  let chunkStart = seg.written;
  let pos = at;
  let out = offset;
  for (const chunk of seg.pending) {
    if (out >= buf.length) break;
    const chunkEnd = chunkStart + chunk.length;
    if (chunkEnd > pos) {
      const from = pos - chunkStart;
      const n = chunk.copy(buf, out, from, Math.min(chunk.length, from + buf.length - out));
      out += n;
      pos += n;
    }
    chunkStart = chunkEnd;
  }
  return out - offset;
}

/**
 * Writes a segment's pending appends after its written bytes, as one write; returns how
 * many bytes went out. The pending chunks are dropped only once written (joined first, so
 * that a failed write is tried again with the same bytes at the same offset).
 */
export function writePendingChunks(seg: { readonly fd: number; written: number; pending: Buffer[]; pendingBytes: number }): number {
  if (seg.pending.length === 0) return 0;
  const data = seg.pending.length === 1 ? seg.pending[0] : Buffer.concat(seg.pending, seg.pendingBytes);
  seg.pending = [data];
  writeFully(seg.fd, data, seg.written);
  seg.written += data.length;
  seg.pending = [];
  seg.pendingBytes = 0;
  return data.length;
}
