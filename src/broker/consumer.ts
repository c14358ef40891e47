import type { FieldTable } from '../protocol/types';
import type { Queue } from './queue';
import type { QueueEntry } from './queue-entry';

/** What a queue needs from the channel a consumer lives on. */
export interface ConsumerChannel {
  /** False while the channel cannot take more: flow off, global prefetch full, socket full. */
  canDeliver(): boolean;
  deliver(consumer: Consumer, entry: QueueEntry): void;
  /** The queue went away under the consumer (consumer_cancel_notify). */
  consumerCancelled(consumer: Consumer): void;
}

export class Consumer {
  /** Deliveries to this consumer not yet acked (always 0 for no-ack consumers). */
  unacked = 0;
  /** The channel's encoding of what every delivery to this consumer starts with (opaque here). */
  wirePrefix: Buffer | null = null;

  constructor(
    readonly tag: string,
    readonly channel: ConsumerChannel,
    readonly queue: Queue,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    /** per-consumer prefetch (basic.qos global=false); 0 = unlimited */
    public prefetch: number,
    readonly args: FieldTable,
    /** x-priority: higher gets messages first */
    readonly priority = 0,
  ) {}

  canTake(): boolean {
    return (this.prefetch === 0 || this.unacked < this.prefetch) && this.channel.canDeliver();
  }
}
