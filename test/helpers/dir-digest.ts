import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isNodeLocal } from '../../src/cluster/replication/node-local';

/**
 * sha256 of every replicated file of a data directory, by relative path (directories listed
 * as 'dir'); node-local files (the lock, paging/, marks) are left out, as replication leaves
 * them out. Two copies are identical when their digests are equal.
 */
export function digest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (isNodeLocal(r)) continue;
      if (e.isDirectory()) {
        out[r + '/'] = 'dir';
        walk(r);
      } else
        out[r] = createHash('sha256')
          .update(fs.readFileSync(path.join(root, r)))
          .digest('hex');
    }
  };
  walk('');
  return out;
}
