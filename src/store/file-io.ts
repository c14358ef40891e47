import { closeSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';

/** fsyncs a file or directory by path (a directory, so that a new or removed name is durable). */
export function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function truncatePath(path: string, length: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes all of `data` at `position`. Always positional: after a failed or short write the
 * caller writes the same bytes again at the same place, so a partial record left on disk
 * is overwritten rather than followed by the next one.
 */
export function writeFully(fd: number, data: Buffer, position: number): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off, position + off);
}
