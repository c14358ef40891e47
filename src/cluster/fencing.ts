import { monotonicNow } from './clock';

/**
 * The local proof that our etcd lease is still alive, kept without asking etcd.
 *
 * etcd restarts a lease's TTL when it receives a keep-alive; we only know when we sent it. So a
 * keep-alive sent at `s` and answered means etcd holds the lease at least until `s + TTL` (by its
 * clock), and we trust it until `s + TTL - margin` (the margin covers clock-rate drift and the
 * time between checking and acting). A paused process or one cut off from etcd gets no answers,
 * so its deadline stays put and runs out on its own.
 *
 * The deadline is checked synchronously by `isValid()` (callers do so before every confirm), not
 * only by the timer: after SIGSTOP/SIGCONT the first thing to run may be any callback, and it must
 * already see the lease as gone.
 */
export class Fence {
  private until = 0;
  private timer: NodeJS.Timeout | undefined;
  private expired = false;

  constructor(
    private readonly marginMs: number,
    private readonly onExpire: (until: number) => void,
  ) {}

  /** A keep-alive (or the grant) sent at `sentAt` was answered with `ttlMs` to live. */
  renew(sentAt: number, ttlMs: number): void {
    if (this.expired) return;
    const until = sentAt + ttlMs - this.marginMs;
    if (until <= this.until) return;
    this.until = until;
    this.isValid();
    if (!this.expired) this.arm();
  }

  /** Until when (monotonicNow() scale) the lease is known alive; 0 before the grant. */
  get validUntil(): number {
    return this.until;
  }

  isValid(now: number = monotonicNow()): boolean {
    if (this.expired) return false;
    if (now < this.until) return true;
    this.expire();
    return false;
  }

  /** Stops the timer without calling back: the lease is given up on purpose. */
  close(): void {
    this.expired = true;
    this.clearTimer();
  }

  private arm(): void {
    this.clearTimer();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.isValid()) this.arm();
      },
      Math.max(0, this.until - monotonicNow()) + 1,
    );
  }

  private expire(): void {
    this.expired = true;
    this.clearTimer();
    this.onExpire(this.until);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
