/**
 * Bytes of ready messages that all queues together keep in memory. Each queue also has
 * its own budget (--queue-memory-budget); whichever is used up first sends a queue's
 * next messages to disk, so that many queues filling at once cannot take the broker
 * past its memory watermark.
 */
export class MemoryBudget {
  /** Estimated heap held by the queues' in-memory messages. */
  used = 0;

  constructor(
    /** bytes; Infinity for no node-wide limit */
    public limit: number,
  ) {}

  fits(cost: number): boolean {
    return this.used + cost <= this.limit;
  }
}
