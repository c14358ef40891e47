/**
 * Milliseconds on the monotonic clock, offset to the Unix epoch at process start. Lease deadlines
 * must not move when the wall clock is stepped, yet logs from several processes on one machine
 * must be comparable, which the shared epoch offset gives.
 */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
