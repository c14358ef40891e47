import { closeSync, fdatasync } from 'node:fs';

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

/**
 * Group commit. Appends are written to the OS at the end of each event-loop turn; one
 * fdatasync round then covers everything written before it started, and everything that
 * arrives while it runs shares the next round. `epoch` names the round that the appends
 * made now will be part of.
 */
export class SyncScheduler {
  epoch = 1;
  syncedEpoch = 0;
  /** Bumped by every append that needs to be durable before it is confirmed. */
  durableWrites = 0;
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
  private syncing = false;
  private needSync = false;
  private readonly runBound = (): void => this.run();

  constructor(private readonly onFailure: (err: Error | null) => void) {}

  markDirty(target: SyncTarget, durable: boolean): void {
    this.dirty.add(target);
    if (durable) {
      this.needSync = true;
      this.durableWrites++;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.runBound);
    }
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
    } catch (err) {
      // Nothing is lost: what failed stays pending. Try again shortly, space may come back.
      this.setFailure(err as Error);
      setTimeout(this.runBound, 1000).unref();
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
      if (err) this.setFailure(err);
      if (--left === 0) this.synced(target);
    };
    for (const fd of fds) fdatasync(fd, done);
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
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.runBound);
    }
  }

  /** Closes a file once no sync round can still be using its descriptor. */
  retire(fd: number): void {
    this.fds.delete(fd);
    if (this.syncing) this.toClose.push(fd);
    else closeSync(fd);
  }

  private synced(epoch: number): void {
    this.syncing = false;
    for (const fd of this.toClose.splice(0)) closeSync(fd);
    if (this.failure === null) {
      this.syncedEpoch = epoch;
      for (const w of this.waiters) w.storeSynced(epoch);
      while (this.afterSync.length > 0 && (this.afterSync[0] as number) <= epoch) {
        this.afterSync.shift();
        (this.afterSync.shift() as () => void)();
      }
    }
    // Appends that came in while we were syncing start the next round now.
    if (this.needSync && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.runBound);
    }
  }

  private setFailure(err: Error | null): void {
    if ((err === null) === (this.failure === null)) return;
    this.failure = err;
    if (err !== null) for (const w of this.waiters) w.storeFailed();
    this.onFailure(err);
  }
}
