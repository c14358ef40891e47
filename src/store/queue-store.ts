import type { QueueEntry } from '../broker/queue-entry';

/**
 * Where a queue keeps its ready messages. The in-memory store is the only one today; the
 * write-ahead log's store implements the same calls so a queue does not care which it has.
 */
export interface QueueStore {
  readonly length: number;
  /** Body bytes of the ready messages. */
  readonly bytes: number;
  push(entry: QueueEntry): void;
  shift(): QueueEntry | undefined;
  peek(): QueueEntry | undefined;
  /** Puts messages back in queue order (by seq) among the ready ones. */
  requeue(entries: QueueEntry[]): void;
  /** Removes every ready message and returns them. */
  drain(): QueueEntry[];
}
