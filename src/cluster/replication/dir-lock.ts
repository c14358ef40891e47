import { closeSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ReplicationError } from './errors';
import { LOCK_FILE } from './node-local';

/**
 * Holds the data directory for a catch-up with the broker's own lock file (same name, same
 * "pid" content), so that a broker cannot open a half-copied directory and a catch-up cannot
 * rewrite one a broker is using. A lock left by a dead process is taken over, as the broker
 * does; one of our own pid too (the broker in this process takes it after us, the same way).
 */
export class DirLock {
  private held = false;
  private readonly path: string;

  constructor(readonly dir: string) {
    this.path = join(dir, LOCK_FILE);
  }

  acquire(): void {
    mkdirSync(this.dir, { recursive: true });
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = openSync(this.path, 'wx');
        try {
          writeSync(fd, `${process.pid}\n`);
        } finally {
          closeSync(fd);
        }
        this.held = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
        const pid = owner(this.path);
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid))
          throw new ReplicationError(
            'in-use',
            `data directory ${this.dir} is in use by another Leveret (pid ${pid}): not catching up into it`,
          );
        rmSync(this.path, { force: true });
      }
    }
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    if (owner(this.path) === process.pid) rmSync(this.path, { force: true });
  }
}

function owner(path: string): number {
  try {
    return Number(readlinkSync(path));
  } catch {
    try {
      return Number(readFileSync(path, 'utf8').trim());
    } catch {
      return NaN;
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
