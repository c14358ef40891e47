/**
 * The last `capacity` samples of one row of totals (the node's or a vhost's), for charts
 * and RabbitMQ's `msg_rates_age`/`lengths_age` samples. A ring: old samples are overwritten.
 */
export class History {
  private readonly times: Float64Array;
  private readonly rows: Float64Array;
  private next = 0;
  private count = 0;

  constructor(
    private readonly width: number,
    private readonly capacity: number,
  ) {
    this.times = new Float64Array(capacity);
    this.rows = new Float64Array(capacity * width);
  }

  push(at: number, row: Float64Array): void {
    this.times[this.next] = at;
    this.rows.set(row.subarray(0, this.width), this.next * this.width);
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Samples of one field no older than `ageMs` before `now`, newest first (RabbitMQ's order). */
  field(index: number, now: number, ageMs: number): Array<{ sample: number; timestamp: number }> {
    const out: Array<{ sample: number; timestamp: number }> = [];
    for (let k = 1; k <= this.count; k++) {
      const slot = (this.next - k + this.capacity) % this.capacity;
      const at = this.times[slot];
      if (now - at > ageMs) break;
      out.push({ sample: this.rows[slot * this.width + index], timestamp: at });
    }
    return out;
  }
}
