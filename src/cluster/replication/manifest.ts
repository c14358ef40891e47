import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { wholeFileCrc } from './file-crc';
import { mapLimit } from './map-limit';
import { isNodeLocal } from './node-local';
import type { ManifestEntry } from './protocol';

const PARALLEL = 8;

/**
 * Every directory and regular file under `dataDir` that is data (not node-local), sorted by
 * path (a directory before what it holds), files with their size and the crc32 of that many
 * bytes. A file that goes while we read is left out: the follower deletes its copy, as the
 * leader did.
 */
export async function buildManifest(dataDir: string): Promise<ManifestEntry[]> {
  const entries: Array<ManifestEntry | null> = [];
  const files: Array<{ at: number; path: string }> = [];
  const walk = async (rel: string): Promise<void> => {
    let dirents;
    try {
      dirents = await readdir(rel === '' ? dataDir : join(dataDir, rel), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const d of dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const child = rel === '' ? d.name : `${rel}/${d.name}`;
      if (isNodeLocal(child)) continue;
      if (d.isDirectory()) {
        entries.push({ path: child, dir: true, size: 0, crc: 0 });
        await walk(child);
      } else if (d.isFile()) {
        files.push({ at: entries.length, path: child });
        entries.push(null);
      }
    }
  };
  await walk('');
  await mapLimit(files, PARALLEL, async (f) => {
    const sum = await wholeFileCrc(join(dataDir, f.path));
    if (sum !== null) entries[f.at] = { path: f.path, size: sum.size, crc: sum.crc };
  });
  return entries.filter((e): e is ManifestEntry => e !== null);
}

export interface LocalEntry {
  dir: boolean;
  /** neither a regular file nor a directory (a symlink, a socket): never data */
  odd: boolean;
  size: number;
}

/** The local counterpart of a manifest: every entry under dataDir, node-local directories not entered. */
export async function listLocal(dataDir: string): Promise<Map<string, LocalEntry>> {
  const out = new Map<string, LocalEntry>();
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const dirents = await readdir(rel === '' ? dataDir : join(dataDir, rel), { withFileTypes: true }).catch(() => []);
    for (const d of dirents) {
      const child = rel === '' ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) {
        out.set(child, { dir: true, odd: false, size: 0 });
        if (!isNodeLocal(child)) await walk(child);
      } else if (d.isFile()) {
        out.set(child, { dir: false, odd: false, size: 0 });
        files.push(child);
      } else out.set(child, { dir: false, odd: true, size: 0 });
    }
  };
  await walk('');
  await mapLimit(files, PARALLEL, async (rel) => {
    const st = await lstat(join(dataDir, rel)).catch(() => null);
    if (st !== null) out.get(rel)!.size = st.size;
    else out.delete(rel);
  });
  return out;
}
