import type { QueueEntry } from '../broker/queue-entry';
import type { Queue } from '../broker/queue';

/**
 * Where a queue keeps its messages. The memory store holds everything in the heap; the
 * durable store also writes persistent messages to the queue's log and keeps a deep
 * queue's bodies on disk. A queue calls the same methods whichever it has.
 */
export interface QueueStore {
  readonly length: number;
  /** Body bytes of the ready messages. */
  readonly bytes: number;
  /** Called once by the queue that owns the store. */
  attach(queue: Queue): void;
  /** Every message the queue takes passes here first (a durable store writes it down). */
  accept(entry: QueueEntry): void;
  push(entry: QueueEntry): void;
  shift(): QueueEntry | undefined;
  peek(): QueueEntry | undefined;
  /** Puts messages back in queue order (by seq) among the ready ones. */
  requeue(entries: QueueEntry[]): void;
  /** Removes and settles every ready message; returns how many there were. */
  purge(): number;
  /** First delivery of a message (so that after a crash it comes back redelivered). */
  delivered(entry: QueueEntry): void;
  /** The message is done with in this queue: acked, dropped, purged. */
  settle(entry: QueueEntry): void;
  /** The queue is deleted. */
  destroy(): void;
}
