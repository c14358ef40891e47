import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/*
 * V8 starts marking the old generation as soon as the room left below its limit is smaller
 * than the young generation (V8's soft limit), and sets the limit after each full collection
 * to the live size times a factor it picks from how fast collections are. A broker's old
 * generation is small (12-15 MB under a 1 -> 1 flood) and collected fast, so the factor comes
 * out low and the limit sits about one young generation (16 MiB while messages move) above
 * the live size: a full mark every 150-250 ms, about fifty in ten seconds, with the parallel
 * markers costing as much CPU again on other cores. Measured on scenario (c) at 20,000 msg/s:
 * 31 CPU s per million messages and p99 9.9 ms; with 48 MB of room, no full collection in the
 * run, 24-26 CPU s and p99 2.5 ms, and the same RSS.
 *
 * So the CLI's broker asks V8 for a growing factor that leaves at least HEADROOM above a
 * small old generation (V8 reads `--heap-growing-percent` at each collection; 0 lets it pick
 * as before). From BIG_HEAP on, V8's own factor, which already grows with the heap, decides.
 */
const HEADROOM = 48 * 1024 * 1024;
const BIG_HEAP = 256 * 1024 * 1024;
/** A factor of 5 at most (V8's own stops at 4): 48 MB of room needs it below a 12 MB old generation only. */
const MAX_PERCENT = 400;
/** Percentages move in steps, so that a heap that breathes does not reset the flag every tick. */
const STEP = 25;

let percent = -1;

/** The growing percent that leaves HEADROOM above an old generation of `bytes` (0: V8's own). */
export function growingPercentFor(bytes: number): number {
  if (bytes >= BIG_HEAP) return 0;
  const wanted = (100 * HEADROOM) / Math.max(bytes, 1);
  return Math.min(MAX_PERCENT, Math.ceil(wanted / STEP) * STEP);
}

function oldGenerationBytes(): number {
  let bytes = 0;
  for (const s of getHeapSpaceStatistics())
    if (s.space_name !== 'new_space' && s.space_name !== 'new_large_object_space') bytes += s.space_used_size;
  return bytes;
}

/** Sets the growing factor for the old generation's size now; called at start and on the young generation's ticks. */
export function adjustOldGenerationGrowth(): number {
  const p = growingPercentFor(oldGenerationBytes());
  if (p !== percent) {
    percent = p;
    setFlagsFromString(`--heap-growing-percent=${p}`);
  }
  return p;
}
