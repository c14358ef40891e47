import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const STORE_VERSION = 'leveret-store 1';

export class StoreError extends Error {
  override name = 'StoreError';
}

/**
 * Claims the data directory: a lock file naming our pid keeps a second broker out (one
 * left by a dead process is taken over), and a version file keeps us from reading a
 * layout we do not know.
 */
export function claimDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'leveret.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const pid = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new StoreError(`data directory ${dir} is in use by another Leveret (pid ${pid}); stop it or choose another --data-dir`);
      }
      rmSync(lock, { force: true });
    }
  }
  const versionFile = join(dir, 'VERSION');
  if (existsSync(versionFile)) {
    const found = readFileSync(versionFile, 'utf8').trim();
    if (found !== STORE_VERSION) {
      rmSync(lock, { force: true });
      throw new StoreError(`data directory ${dir} holds store version '${found}', this Leveret reads '${STORE_VERSION}'; the data was not touched`);
    }
  } else {
    const entries = readdirSync(dir).filter((f) => f !== 'leveret.lock');
    if (entries.length > 0) {
      rmSync(lock, { force: true });
      throw new StoreError(`data directory ${dir} is not empty and has no VERSION file; refusing to use it`);
    }
    writeFileSync(versionFile, STORE_VERSION + '\n');
  }
  return () => rmSync(lock, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed broker that nobody has reaped yet is a zombie: it holds nothing any more.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
