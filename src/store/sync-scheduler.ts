import { fsOps } from './fs-ops';

/** A queue log with appended bytes to write and, for messages, to make durable. */
export interface SyncTarget {
  /** Writes what was appended since the last call; returns fds that need fdatasync. */
  writePending(fds: Set<number>): void;
}

/** Told when every write of an epoch is on disk. */
export interface SyncWaiter {
  storeSynced(epoch: number): void;
  /** Writes are failing: what waits will not be synced soon. */
  storeFailed(): void;
}

/** First wait before writes that failed are tried again; it doubles up to the most. */
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 2000;

/**
 * Group commit. Appends are written to the OS at the end of each event-loop turn; one
 * fdatasync round then covers everything written before it started, and everything that
 * arrives while it runs shares the next round. `epoch` names the round that the appends
 * made now will be part of.
 */
export class SyncScheduler {
  epoch = 1;
  syncedEpoch = 0;
  /** Set when a write or sync failed: the store is read-only until it succeeds again. */
  failure: Error | null = null;
  private readonly dirty = new Set<SyncTarget>();
  /** Files written since the last sync round started. */
  private readonly fds = new Set<number>();
  private readonly toClose: number[] = [];
  /** epoch, callback, epoch, callback, … (see afterDurable) */
  private readonly afterSync: Array<number | (() => void)> = [];
  private readonly waiters = new Set<SyncWaiter>();
  private scheduled = false;
  /** The one retry pending while writes fail, and how long the next one waits. */
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_FIRST_MS;
  private syncing = false;
  private needSync = false;
  private readonly runBound = (): void => this.run();

  constructor(private readonly onFailure: (err: Error | null) => void) {}

  markDirty(target: SyncTarget, durable: boolean): void {
    this.dirty.add(target);
    if (durable) {
      this.needSync = true;
    }
    this.schedule();
  }

  /** A run at the end of this turn; while writes fail, only the retry timer runs them. */
  private schedule(): void {
    if (this.scheduled || this.retryTimer !== null) return;
    this.scheduled = true;
    setImmediate(this.runBound);
  }

  addWaiter(w: SyncWaiter): void {
    this.waiters.add(w);
  }

  removeWaiter(w: SyncWaiter): void {
    this.waiters.delete(w);
  }

  private run(): void {
    this.scheduled = false;
    try {
      for (const t of this.dirty) {
        t.writePending(this.fds);
        this.dirty.delete(t);
      }
      if (this.failure !== null) this.setFailure(null);
      this.retryDelay = RETRY_FIRST_MS;
    } catch (err) {
      // Nothing is lost: what failed stays pending. Try again later, space may come back;
      // one timer however many appends arrive meanwhile, backing off while it lasts.
      this.setFailure(err as Error);
      this.armRetry();
      return;
    }
    if (this.syncing || !this.needSync) return;
    this.needSync = false;
    this.syncing = true;
    const target = this.epoch++;
    const fds = [...this.fds];
    this.fds.clear();
    let left = fds.length;
    if (left === 0) return this.synced(target);
    const done = (err: NodeJS.ErrnoException | null): void => {
      if (err) {
        // What waited for this round is nacked (storeFailed); a later round starts over.
        this.setFailure(err);
        this.armRetry();
      }
      if (--left === 0) this.synced(target);
    };
    for (const fd of fds) fsOps.fdatasync(fd, done);
  }

  /**
   * Writes a target's appends now (someone is about to read them back); the files still
   * get their fdatasync in the next round.
   */
  writeNow(target: SyncTarget): void {
    target.writePending(this.fds);
  }

  /** Runs `fn` once everything appended so far is on disk. */
  afterDurable(fn: () => void): void {
    this.afterSync.push(this.epoch, fn);
    this.needSync = true;
    this.schedule();
  }

  /** Closes a file once no sync round can still be using its descriptor. */
  retire(fd: number): void {
    this.fds.delete(fd);
    if (this.syncing) this.toClose.push(fd);
    else fsOps.closeSync(fd);
  }

  private armRetry(): void {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.run();
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
  }

  /** Pending retries are dropped (the store is closing). */
  stop(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private synced(epoch: number): void {
    this.syncing = false;
    for (const fd of this.toClose.splice(0)) fsOps.closeSync(fd);
    if (this.failure === null) {
      this.syncedEpoch = epoch;
      for (const w of this.waiters) w.storeSynced(epoch);
      while (this.afterSync.length > 0 && (this.afterSync[0] as number) <= epoch) {
        this.afterSync.shift();
        (this.afterSync.shift() as () => void)();
      }
    } else {
      // What ran after this round (a compaction dropping its source segment) must not run
      // on the strength of a later one: after a failed fdatasync the kernel may have
      // dropped these pages, and a later sync would not bring them back. Recovery copes
      // with what is left undone (a compaction marker and its source still there).
      while (this.afterSync.length > 0 && (this.afterSync[0] as number) <= epoch) this.afterSync.splice(0, 2);
    }
    // Appends that came in while we were syncing start the next round now.
    if (this.needSync) this.schedule();
  }

  private setFailure(err: Error | null): void {
    if ((err === null) === (this.failure === null)) return;
    this.failure = err;
    if (err !== null) for (const w of this.waiters) w.storeFailed();
    this.onFailure(err);
  }
}
