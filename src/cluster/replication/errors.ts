/**
 * Why a replication connection or catch-up failed. `auth` and `protocol` are not worth a retry
 * (the other side will answer the same next time); the others are.
 */
export type ReplicationErrorCode =
  | 'auth' // a shared-secret proof did not match
  | 'protocol' // an unexpected frame, a bad request, a version or cluster mismatch
  | 'frame' // a frame failed its length or crc32 check: corrupted in transit
  | 'term' // a frame from an older (or, to a leader, newer) term
  | 'closed' // the connection closed or timed out
  | 'changed' // the leader's files changed under a copy: manifest again
  | 'in-use'; // the data directory is held by a running broker

export class ReplicationError extends Error {
  constructor(
    readonly code: ReplicationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicationError';
  }

  get retryable(): boolean {
    return this.code !== 'auth' && this.code !== 'protocol' && this.code !== 'in-use';
  }
}
