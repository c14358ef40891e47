import { fsOps } from './fs-ops';
import { storeTap } from './store-tap';
import { ioCounts } from './io-counters';
import type { ReplicationGate } from './replication-gate';

/** A queue log with appended bytes to write and, for messages, to make durable. */
export interface SyncTarget {
  /** Writes what was appended since the last call; returns fds that need fdatasync. */
  writePending(fds: Set<number>): void;
  /** Its writes failed (an error) and it is set aside, or work again (null). */
  writeFailed(err: Error | null): void;
}

/** A full disk concerns every log: it raises the alarm. Any other error stays with its log. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
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
  /** The newest epoch confirms may be sent for: synced here and, with a gate, released by it. */
  syncedEpoch = 0;
  /** The newest epoch synced on this disk (ahead of syncedEpoch while a gate holds it back). */
  localSyncedEpoch = 0;
  /** Cluster mode: followers must have a round too before its confirms go (replication-gate.ts). */
  gate: ReplicationGate | null = null;
  /**
   * Cluster mode: the epoch whose release says the followers hold every definitions change
   * made so far (0: none made under a gate). Answers to such changes wait for it.
   */
  definitionsEpoch = 0;
  /** Set when a write or sync failed: the store is read-only until it succeeds again. */
  failure: Error | null = null;
  private readonly dirty = new Set<SyncTarget>();
  /** Files written since the last sync round started. */
  private readonly fds = new Set<number>();
  private readonly toClose: number[] = [];
  /** Files the sync round under way is making durable. */
  private inFlight: number[] = [];
  /** epoch, callback, epoch, callback, … (see afterDurable) */
  private readonly afterSync: Array<number | (() => void)> = [];
  private readonly waiters = new Set<SyncWaiter>();
  /** Logs whose writes failed other than for a full disk: skipped until a retry works. */
  private readonly setAside = new Set<SyncTarget>();
  private scheduled = false;
  /** The one retry pending while writes fail, and how long the next one waits. */
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_FIRST_MS;
  private syncing = false;
  private needSync = false;
  private readonly runBound = (): void => this.run(false);
  /**
   * Written before every other target in each run (the shared body log), so that records
   * naming what it holds never reach the disk before it does.
   */
  lead: SyncTarget | null = null;

  constructor(private readonly onFailure: (err: Error | null) => void) {}

  markDirty(target: SyncTarget, durable: boolean): void {
    this.dirty.add(target);
    if (durable) {
      this.needSync = true;
    }
    this.schedule();
  }

  /** A run at the end of this turn; while the disk is full, only the retry timer runs them. */
  private schedule(): void {
    if (this.scheduled || (this.failure !== null && this.retryTimer !== null)) return;
    this.scheduled = true;
    setImmediate(this.runBound);
  }

  addWaiter(w: SyncWaiter): void {
    this.waiters.add(w);
  }

  removeWaiter(w: SyncWaiter): void {
    this.waiters.delete(w);
  }

  /**
   * Writes every dirty target, then starts a sync round. A full disk stops the whole run
   * (the alarm); a log failing in any other way (EIO) is set aside, so that the other logs
   * carry on, and is tried again on the retry timer only. Either way nothing is lost: what
   * failed stays pending, and what waited for this round is nacked.
   */
  private run(retry = false): void {
    this.scheduled = false;
    const lead = this.lead;
    if (lead !== null && this.dirty.has(lead) && !this.write(lead, retry)) return;
    for (const t of this.dirty) {
      if (t !== lead && !this.write(t, retry)) return;
    }
    if (this.failure !== null) this.setFailure(null);
    if (this.setAside.size === 0) this.retryDelay = RETRY_FIRST_MS;
    if (this.syncing || !this.needSync) return;
    this.needSync = false;
    this.syncing = true;
    const target = this.epoch++;
    const fds = [...this.fds];
    this.inFlight = fds;
    this.fds.clear();
    let left = fds.length;
    if (left === 0) {
      if (storeTap !== null) storeTap.syncStarting();
      return this.synced(target);
    }
    const done = (err: NodeJS.ErrnoException | null): void => {
      if (err) {
        // What waited for this round is nacked (storeFailed); a later round starts over.
        this.setFailure(err);
        this.armRetry();
      }
      if (--left === 0) this.synced(target);
    };
    ioCounts.syncCount += fds.length;
    if (storeTap !== null) storeTap.syncStarting();
    for (const fd of fds) fsOps.fdatasync(fd, done);
  }

  /** Writes one dirty target; false when the disk is full and the run must stop. */
  private write(t: SyncTarget, retry: boolean): boolean {
    if (!retry && this.setAside.has(t)) return true;
    try {
      t.writePending(this.fds);
    } catch (err) {
      if (isDiskFull(err)) {
        // Space may come back: one timer however many appends arrive meanwhile,
        // backing off while it lasts.
        this.setFailure(err as Error);
        this.armRetry();
        return false;
      }
      this.setAsideTarget(t, err as Error);
      return true;
    }
    this.dirty.delete(t);
    if (this.setAside.delete(t)) t.writeFailed(null);
    return true;
  }

  /**
   * Writes a target's appends now (someone is about to read them back); the files still
   * get their fdatasync in the next round.
   */
  writeNow(target: SyncTarget): void {
    if (this.lead !== null && this.lead !== target && this.dirty.has(this.lead)) this.lead.writePending(this.fds);
    target.writePending(this.fds);
  }

  /**
   * A definitions append made durable on its own (its fdatasync) must still reach the
   * followers: with a gate, it asks for a round, even one with no file to sync, so that its
   * `SYNCED` op (the tap's mark, after the append's `WRITE`) and then the gate's release say
   * they have it. Without a gate there is nothing to wait for and nothing is done.
   */
  definitionsWritten(): void {
    if (this.gate === null) return;
    this.definitionsEpoch = this.epoch;
    this.needSync = true;
    this.schedule();
  }

  /** The epoch an answer to a definitions change must wait for, or 0 when it may go now. */
  get definitionsPending(): number {
    return this.definitionsEpoch > this.syncedEpoch ? this.definitionsEpoch : 0;
  }

  /** Runs `fn` once everything appended so far is on disk. */
  afterDurable(fn: () => void): void {
    this.afterSync.push(this.epoch, fn);
    this.needSync = true;
    this.schedule();
  }

  /**
   * Closes a file once no sync round can still be using its descriptor. In the thread
   * pool: closing the last descriptor of a deleted segment frees its blocks, which takes
   * milliseconds that every connection would otherwise wait through.
   */
  retire(fd: number): void {
    this.fds.delete(fd);
    if (this.syncing) this.toClose.push(fd);
    else closeLater(fd);
  }

  private setAsideTarget(t: SyncTarget, err: Error): void {
    if (!this.setAside.has(t)) {
      this.setAside.add(t);
      t.writeFailed(err);
    }
    // What waits may depend on the writes that failed: it is nacked, never confirmed.
    for (const w of this.waiters) w.storeFailed();
    this.armRetry();
  }

  private armRetry(): void {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.run(true);
      if (this.setAside.size > 0 && this.failure === null) this.armRetry();
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
  }

  /**
   * Shutdown: writes every pending append now and makes every file written since the last
   * finished round durable, synchronously (no client waits any more). True when all of it
   * is on disk; false when a write or sync failed or a log is set aside.
   */
  flushSync(): boolean {
    let ok = this.failure === null && this.setAside.size === 0;
    const order = [...this.dirty];
    if (this.lead !== null && this.dirty.has(this.lead)) order.unshift(...order.splice(order.indexOf(this.lead), 1));
    for (const t of order) {
      if (this.setAside.has(t)) continue;
      try {
        t.writePending(this.fds);
        this.dirty.delete(t);
      } catch {
        ok = false;
      }
    }
    if (storeTap !== null) storeTap.syncStarting();
    for (const fd of new Set([...this.inFlight, ...this.fds])) {
      try {
        fsOps.fdatasyncSync(fd);
        ioCounts.syncCount++;
      } catch {
        ok = false;
      }
    }
    this.fds.clear();
    if (ok && storeTap !== null) storeTap.synced(this.epoch);
    return ok;
  }

  /** Pending retries are dropped (the store is closing). */
  stop(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private synced(epoch: number): void {
    this.syncing = false;
    this.inFlight = [];
    for (const fd of this.toClose.splice(0)) closeLater(fd);
    if (this.failure === null) {
      this.localSyncedEpoch = epoch;
      if (storeTap !== null) storeTap.synced(epoch);
      if (this.gate === null) this.release(epoch);
      else this.gate.localSynced(epoch);
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

  /** Confirms of every epoch up to `epoch` may go (called by the gate, or at once without one). */
  release(epoch: number): void {
    if (epoch <= this.syncedEpoch) return;
    this.syncedEpoch = epoch;
    for (const w of this.waiters) w.storeSynced(epoch);
  }

  private setFailure(err: Error | null): void {
    if ((err === null) === (this.failure === null)) return;
    this.failure = err;
    if (err !== null) for (const w of this.waiters) w.storeFailed();
    this.onFailure(err);
  }
}

function closeLater(fd: number): void {
  fsOps.close(fd, ignore);
}

/** Closing a descriptor we own cannot fail in a way anyone could act on. */
function ignore(): void {}
