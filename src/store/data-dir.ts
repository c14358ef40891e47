import { fsOps } from './fs-ops';
import { storeTap } from './store-tap';
import { join } from 'node:path';

import { syncPath } from './file-io';

export const STORE_VERSION = 'leveret-store 1';
/**
 * A directory that holds shared bodies (index records in queue logs, data-dir/shared): a
 * broker that reads only version 1 would take index records for messages, so it must
 * refuse such a directory. A directory is moved to it when its first shared body is
 * written; one that never had any stays at version 1, readable by older brokers.
 */
export const SHARED_STORE_VERSION = 'leveret-store 2';
const READABLE = [STORE_VERSION, SHARED_STORE_VERSION];

/** The version the directory's VERSION file names. */
export function storeVersion(dir: string): string {
  return fsOps.readFileSync(join(dir, 'VERSION'), 'utf8').trim();
}

/** Moves the directory to `version`, durably (written aside, synced, renamed, directory synced). */
export function setStoreVersion(dir: string, version: string): void {
  const tmp = join(dir, 'VERSION.tmp');
  fsOps.writeFileSync(tmp, version + '\n');
  syncPath(tmp);
  fsOps.renameSync(tmp, join(dir, 'VERSION'));
  if (storeTap !== null) storeTap.replaced(join(dir, 'VERSION'), Buffer.from(version + '\n'));
  syncPath(dir);
}

export class StoreError extends Error {
  override name = 'StoreError';
}

/**
 * Claims the data directory: a lock file naming our pid keeps a second broker out (one
 * left by a dead process is taken over), and a version file keeps us from reading a
 * layout we do not know.
 */
export function claimDataDir(dir: string): () => void {
  fsOps.mkdirSync(dir, { recursive: true });
  if (storeTap !== null) storeTap.madeDir(dir);
  const lock = join(dir, 'leveret.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      createLock(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const pid = lockOwner(lock);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new StoreError(`data directory ${dir} is in use by another Leveret (pid ${pid}); stop it or choose another --data-dir`);
      }
      fsOps.rmSync(lock, { force: true });
    }
  }
  const versionFile = join(dir, 'VERSION');
  if (fsOps.existsSync(versionFile)) {
    const found = fsOps.readFileSync(versionFile, 'utf8').trim();
    if (!READABLE.includes(found)) {
      fsOps.rmSync(lock, { force: true });
      throw new StoreError(
        `data directory ${dir} holds store version '${found}', this Leveret reads '${READABLE.join("' and '")}'; the data was not touched`,
      );
    }
  } else {
    const entries = fsOps.readdirSync(dir).filter((f) => f !== 'leveret.lock');
    if (entries.length > 0) {
      fsOps.rmSync(lock, { force: true });
      throw new StoreError(`data directory ${dir} is not empty and has no VERSION file; refusing to use it`);
    }
    fsOps.writeFileSync(versionFile, STORE_VERSION + '\n');
    if (storeTap !== null) storeTap.replaced(versionFile, Buffer.from(STORE_VERSION + '\n'));
  }
  return () => fsOps.rmSync(lock, { force: true });
}

/**
 * Creates the lock file naming our pid. On a full disk the pid cannot be written into a
 * file, but a symlink whose target is the pid needs no data block: the broker still starts.
 */
function createLock(lock: string): void {
  const fd = fsOps.openSync(lock, 'wx');
  try {
    fsOps.writeSync(fd, `${process.pid}\n`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fsOps.closeSync(fd);
    fsOps.rmSync(lock, { force: true });
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
    fsOps.symlinkSync(String(process.pid), lock);
    return;
  }
  fsOps.closeSync(fd);
}

/** The pid a lock names (a file holding it, or a symlink to it); NaN if unreadable. */
function lockOwner(lock: string): number {
  try {
    return Number(fsOps.readlinkSync(lock));
  } catch {
    return Number(fsOps.readFileSync(lock, 'utf8').trim());
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed broker that nobody has reaped yet is a zombie: it holds nothing any more.
  try {
    const stat = fsOps.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
