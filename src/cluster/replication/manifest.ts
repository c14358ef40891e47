import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { prefixCrcs } from './file-crc';
import { isNodeLocal } from './node-local';
import type { ManifestEntry } from './protocol';

/**
 * Every directory and regular file under `dataDir` that is data (not node-local), sorted by
 * path, files with their size and the crc32 of that many bytes. A file that goes while we
 * read is left out: the follower will delete its copy, as the leader did.
 */
export async function buildManifest(dataDir: string): Promise<ManifestEntry[]> {
  const out: ManifestEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(rel === '' ? dataDir : join(dataDir, rel));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      if (isNodeLocal(child)) continue;
      const st = await lstat(join(dataDir, child)).catch(() => null);
      if (st === null) continue;
      if (st.isDirectory()) {
        out.push({ path: child, dir: true, size: 0, crc: 0 });
        await walk(child);
      } else if (st.isFile()) {
        const crcs = await prefixCrcs(join(dataDir, child), [st.size]);
        if (crcs !== null) out.push({ path: child, size: st.size, crc: crcs[0] });
      }
    }
  };
  await walk('');
  return out;
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
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(rel === '' ? dataDir : join(dataDir, rel)).catch(() => [] as string[]);
    for (const name of names) {
      const child = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(dataDir, child)).catch(() => null);
      if (st === null) continue;
      out.set(child, { dir: st.isDirectory(), odd: !st.isDirectory() && !st.isFile(), size: st.size });
      if (st.isDirectory() && !isNodeLocal(child)) await walk(child);
    }
  };
  await walk('');
  return out;
}
