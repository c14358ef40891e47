import { isAbsolute, normalize, sep } from 'node:path';

/**
 * What in a data directory belongs to the node and not to the data, and so is never copied:
 * - leveret.lock: the pid of the process holding the directory;
 * - clean-stop: attests that *this* node's broker stopped with everything on disk (a copy,
 *   which may end in a torn record, must be recovered record by record, so it is removed);
 * - paging/: transient messages paged out, dropped at every start;
 * - *.tmp: a file being written aside before a rename;
 * - REPLICA_MARK: our own "catch-up in progress" mark;
 * - REPLICA_POSITION: how far this follower has the leader's stream.
 */
export const LOCK_FILE = 'leveret.lock';
export const REPLICA_MARK = 'catch-up-incomplete';
/** A follower's position in its leader's op stream ({stream, term, lsn}): where it resumes. */
export const REPLICA_POSITION = 'replica-position';

export function isNodeLocal(rel: string): boolean {
  const top = rel.split('/')[0];
  return (
    top === LOCK_FILE ||
    top === 'clean-stop' ||
    top === 'paging' ||
    top === REPLICA_MARK ||
    top === REPLICA_POSITION ||
    rel.endsWith('.tmp')
  );
}

/**
 * Files the leader's store writes without an fdatasync in its sync rounds: a queue's ack
 * records (`<segment>.ack`). An ack lost in a crash brings a message back, it never loses
 * one, so no confirm waits for them; a follower syncs them as lazily (op-applier.ts).
 */
export function isSyncedLazily(rel: string): boolean {
  return rel.endsWith('.ack');
}

/** Node-local entries a follower removes when it catches up (the lock and our mark stay). */
export function isStaleOnFollower(rel: string): boolean {
  return isNodeLocal(rel) && rel !== LOCK_FILE && rel !== REPLICA_MARK && rel !== REPLICA_POSITION;
}

/**
 * A path from the peer, checked before it touches the file system: relative, '/'-separated,
 * normalised, no '..', not node-local. Anything else is a protocol error, never a file.
 */
export function safeRelativePath(rel: unknown): string | null {
  if (typeof rel !== 'string' || rel === '' || rel.length > 1024 || rel.includes('\0') || rel.includes('\\')) return null;
  if (isAbsolute(rel) || normalize(rel) !== rel.split('/').join(sep)) return null;
  if (rel.split('/').some((p) => p === '..' || p === '.' || p === '')) return null;
  if (isNodeLocal(rel)) return null;
  return rel;
}
