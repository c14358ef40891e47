import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { CHUNK_SIZE } from './frame';

/**
 * crc32 of several prefixes of one file, read once: `lengths` ascending. Returns null when the
 * file is missing or shorter than the last length (it went or shrank: the caller manifests again).
 */
export async function prefixCrcs(path: string, lengths: readonly number[]): Promise<number[] | null> {
  const fh = await openDataIfPresent(path);
  if (fh === null) return null;
  try {
    const out: number[] = [];
    const buf = Buffer.allocUnsafe(CHUNK_SIZE);
    let crc = 0;
    let pos = 0;
    for (const want of lengths) {
      while (pos < want) {
        const n = Math.min(CHUNK_SIZE, want - pos);
        const { bytesRead } = await fh.read(buf, 0, n, pos);
        if (bytesRead === 0) return null;
        crc = crc32(buf.subarray(0, bytesRead), crc);
        pos += bytesRead;
      }
      out.push(crc);
    }
    return out;
  } finally {
    await fh.close();
  }
}

/**
 * Opens a data file for reading, refusing a symlink: a data directory holds none (the lock,
 * which may be one, is node-local), so a path from the peer never leads out of it that way.
 */
export function openData(path: string) {
  return open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
}

/** openData, or null when the file is gone. */
async function openDataIfPresent(path: string) {
  try {
    return await openData(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** A file's size and the crc32 of all of it, as of the moment it was opened; null if it is gone. */
export async function wholeFileCrc(path: string): Promise<{ size: number; crc: number } | null> {
  const fh = await openDataIfPresent(path);
  if (fh === null) return null;
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.allocUnsafe(Math.min(CHUNK_SIZE, Math.max(size, 1)));
    let crc = 0;
    for (let pos = 0; pos < size;) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) return null; // shrank under us: the caller sees it gone
      crc = crc32(buf.subarray(0, bytesRead), crc);
      pos += bytesRead;
    }
    return { size, crc };
  } finally {
    await fh.close();
  }
}
