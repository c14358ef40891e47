/**
 * A fixed-size log-linear latency histogram over integer microseconds, in the spirit of
 * HdrHistogram: exact below 2048 µs, then 1024 sub-buckets per power of two (relative
 * error below 0.1 %). Recording is a few integer operations and never allocates.
 */
const LINEAR = 2048; // values below this get one bucket each
const SUB_BITS = 10; // 1024 sub-buckets per octave above LINEAR
const SUB = 1 << SUB_BITS;
const OCTAVES = 22; // up to 2048 << 22 µs ≈ 2.4 hours
const SIZE = LINEAR + OCTAVES * SUB;

function indexOf(us: number): number {
  if (us < LINEAR) return us < 0 ? 0 : us;
  // e = how many bits us must be shifted right to fall into [1024, 2048).
  const e = 31 - Math.clz32(us) - SUB_BITS;
  const idx = LINEAR + (e - 1) * SUB + ((us >>> e) - SUB);
  return idx < SIZE ? idx : SIZE - 1;
}

/** The largest value that falls into bucket `idx` (what a percentile reports). */
function valueOf(idx: number): number {
  if (idx < LINEAR) return idx;
  const rel = idx - LINEAR;
  const e = Math.floor(rel / SUB) + 1;
  const m = (rel % SUB) + SUB;
  return ((m + 1) << e) - 1;
}

export class Histogram {
  private counts = new Uint32Array(SIZE);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Records one latency in microseconds (fractions are truncated). */
  record(us: number): void {
    const v = us > 0x7fffffff ? 0x7fffffff : us | 0;
    this.counts[indexOf(v)]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.min = Infinity;
    this.max = 0;
    this.sum = 0;
  }

  /** The value at or below which `p` percent of the recorded values fall, in µs. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(valueOf(i), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }
}
