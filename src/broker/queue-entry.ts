import type { Message } from './message';
import type { Consumer } from './consumer';
import type { Queue } from './queue';
import type { SegmentPosition, StoredEntry } from './storage';

/**
 * A message's place in one queue. While the message is delivered and unacked the same
 * object is the channel's record of the delivery, so a delivery allocates nothing more.
 */
export class QueueEntry implements StoredEntry {
  redelivered = false;
  deliveryTag = 0;
  consumer: Consumer | null = null;
  /** Where the queue's store keeps the message on disk; null when it is not there. */
  stored: SegmentPosition | null = null;
  /** ms timestamp after which the message expires at the head of the queue; 0 = never */
  expiresAt = 0;
  /** when it was last delivered for a manual ack (ms, coarse), for the consumer timeout */
  deliveredAt = 0;

  constructor(
    readonly message: Message,
    /** position in the queue, to put requeued messages back where they were */
    readonly seq: number,
    readonly queue: Queue,
  ) {}
}
