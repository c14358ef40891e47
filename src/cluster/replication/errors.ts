/** Why a replication connection or catch-up failed. */
export type ReplicationErrorCode =
  | 'auth' // a shared-secret proof did not match
  | 'protocol' // an unexpected frame, a bad request, a version or cluster mismatch
  | 'frame' // a frame failed its length or crc32 check: corrupted in transit
  | 'term' // a frame from an older (or, to a leader, newer) term
  | 'closed' // the connection closed or timed out
  | 'changed' // the leader's files changed under a copy: manifest again
  | 'in-use' // the data directory is held by a running broker
  | 'io' // the follower's own file system failed (full disk, EIO): no use asking the leader again
  | 'lagging' // the follower's next op left the leader's backlog: catch up again
  | 'stopped'; // stop() was called

export class ReplicationError extends Error {
  constructor(
    readonly code: ReplicationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ReplicationError';
  }

  /** Worth another connection to the same leader: not when it would answer the same way. */
  get retryable(): boolean {
    return this.code === 'frame' || this.code === 'closed' || this.code === 'changed' || this.code === 'lagging';
  }
}
