import { fsOps } from './fs-ops';
import { storeTap } from './store-tap';
import { ioCounts } from './io-counters';
import type { PendingWrites } from './pending-writes';

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
    if (storeTap !== null) storeTap.truncated(path, length);
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
  if (storeTap !== null) storeTap.wrote(fd, data, position);
}

/**
 * Writes a file's pending appends after its `written` bytes, as one write; returns how many
 * bytes went out. They are dropped only once written, so that a failed write is tried
 * again with the same bytes at the same offset.
 */
export function writePending(fd: number, pending: PendingWrites, written: number): number {
  const n = pending.length;
  if (n === 0) return 0;
  writeFully(fd, pending.data(), written);
  pending.clear();
  return n;
}
