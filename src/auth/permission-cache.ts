/**
 * RabbitMQ's per-channel permission cache (rabbit_channel's `permission_cache` and
 * `topic_permission_cache`, 3.10): the last 12 checks that passed, newest first. A hit is
 * not moved to the front, so entries leave in the order they came in. A check that fails
 * is never cached (the channel closes anyway). The channel forgets everything when it has
 * been idle long enough to hibernate (IDLE_FORGET_MS), and a new channel starts empty.
 *
 * So a permission change reaches an open channel only for resources it has not checked
 * recently: a busy publisher keeps its rights to the exchange it publishes to until it
 * pauses for about a second, checks 12 other things, or opens a new channel — which is
 * what RabbitMQ does (observed side by side, see conformance/README.md).
 */
export const CACHE_SIZE = 12;

/**
 * RabbitMQ's channel hibernates (and clears its cache) once no message reached it for
 * its backoff timeout: 1 s at first, between 1 and 2 s afterwards.
 */
export const IDLE_FORGET_MS = 1000;

export class CheckCache {
  private keys: string[] = [];

  /** Whether this exact check passed recently. */
  has(key: string): boolean {
    return this.keys.includes(key);
  }

  /** Records a passed check; returns the entry pushed out, if any. */
  add(key: string): string | undefined {
    // A new array of the exact size (misses are rare): unshift would give a channel that
    // checked two things room for seventeen.
    this.keys = [key].concat(this.keys);
    return this.keys.length > CACHE_SIZE ? this.keys.pop() : undefined;
  }

  clear(): void {
    this.keys.length = 0;
  }
}

/**
 * A clock read on every method a channel gets, so it must cost a property load, not a
 * Date.now(): one unref'd timer keeps it within 100 ms of the truth.
 */
export const coarseClock = { now: Date.now() };
let ticking: NodeJS.Timeout | null = null;

export function startCoarseClock(): void {
  if (ticking !== null) return;
  coarseClock.now = Date.now();
  ticking = setInterval(() => (coarseClock.now = Date.now()), 100);
  ticking.unref();
}
