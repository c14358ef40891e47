import type { SyncScheduler, SyncWaiter } from './sync-scheduler';

interface Wait {
  epoch: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Answers that wait until the followers hold every definitions change made so far (cluster
 * mode: the management API's changes; AMQP channels hold their own answers). A promise per
 * waiting request, never per message; with no gate `wait()` returns null and costs nothing.
 */
export class DefinitionsReplicated implements SyncWaiter {
  /** in epoch order: definitionsEpoch only grows */
  private readonly waits: Wait[] = [];
  private watching = false;
  private abandoned: Error | null = null;

  constructor(private readonly scheduler: SyncScheduler) {}

  /** Resolves once the followers have every change made so far; null when that is already so. */
  wait(): Promise<void> | null {
    const epoch = this.scheduler.definitionsPending;
    if (epoch === 0) return null;
    if (this.abandoned !== null) return Promise.reject(this.abandoned);
    return new Promise<void>((resolve, reject) => {
      this.waits.push({ epoch, resolve, reject });
      if (this.watching) return;
      this.watching = true;
      this.scheduler.addWaiter(this);
    });
  }

  storeSynced(epoch: number): void {
    let n = 0;
    while (n < this.waits.length && this.waits[n].epoch <= epoch) this.waits[n++].resolve();
    this.waits.splice(0, n);
    if (this.waits.length === 0) this.unwatch();
  }

  /**
   * Message writes fail: the change itself is on this disk (its append synced on its own), and
   * the round that carries it to the followers is tried again, so what waits goes on waiting.
   */
  storeFailed(): void {}

  /**
   * The broker stops (a demoted leader, a shutdown): nothing will be released any more, and a
   * change that may not be replicated is never answered as done.
   */
  abandon(err: Error): void {
    this.abandoned = err;
    for (const w of this.waits.splice(0)) w.reject(err);
    this.unwatch();
  }

  private unwatch(): void {
    if (!this.watching) return;
    this.watching = false;
    this.scheduler.removeWaiter(this);
  }
}
