import type { Message } from './message';
import type { Consumer } from './consumer';
import type { Queue } from './queue';

/**
 * A message's place in one queue. While the message is delivered and unacked the same
 * object is the channel's record of the delivery, so a delivery allocates nothing more.
 */
export class QueueEntry {
  redelivered = false;
  deliveryTag = 0;
  consumer: Consumer | null = null;
  /** Where a durable queue stored the message (segment 0: not on disk). */
  segment = 0;
  position = 0;
  size = 0;
  /** ms timestamp after which the message expires at the head of the queue; 0 = never */
  expiresAt = 0;

  constructor(
    readonly message: Message,
    /** position in the queue, to put requeued messages back where they were */
    readonly seq: number,
    readonly queue: Queue,
  ) {}
}
