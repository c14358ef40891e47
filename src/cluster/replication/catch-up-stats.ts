/** What a catch-up did, summed over its rounds and connections. */
export interface CatchUpStats {
  /** connections made (1 unless one failed and was retried) */
  attempts: number;
  /** manifests asked for (1 + one per change seen on the leader) */
  rounds: number;
  filesKept: number;
  filesFetched: number;
  filesTruncated: number;
  entriesDeleted: number;
  /** bytes already on disk that matched the leader, so were not fetched */
  bytesKept: number;
  bytesFetched: number;
  /** time waiting for manifests (the leader reads and checksums every file for one) */
  manifestMs: number;
  /** time inside FETCHes: transfer, checks and writes */
  fetchMs: number;
  /** time fsyncing the copy at the end */
  syncMs: number;
  ms: number;
}

export function emptyStats(): CatchUpStats {
  return {
    attempts: 0,
    rounds: 0,
    filesKept: 0,
    filesFetched: 0,
    filesTruncated: 0,
    entriesDeleted: 0,
    bytesKept: 0,
    bytesFetched: 0,
    manifestMs: 0,
    fetchMs: 0,
    syncMs: 0,
    ms: 0,
  };
}
