/**
 * What the store tells a replication stream about every change it makes to its data
 * directory, in the order it makes them (issue 15: a follower applies the same changes to
 * its copy and ends byte-identical). Paths are absolute, as the store uses them; files
 * written by descriptor are named once, when opened. A tap must copy (or consume) `data`
 * before it returns: the store reuses the buffer.
 *
 * Detached (the single-node broker) the store pays one null check per write call, nothing
 * per message and no allocation.
 */
export interface StoreTap {
  /** A file opened for writing; `truncate`: created empty (or emptied), else created if missing. */
  opened(fd: number, path: string, truncate: boolean): void;
  /** `data` written at `position` of the file open as `fd` (after the write succeeded). */
  wrote(fd: number, data: Buffer, position: number): void;
  truncated(path: string, length: number): void;
  /** A file or a whole directory removed (rm -rf: a missing one is no error). */
  removed(path: string): void;
  /** A directory made (with its parents). */
  madeDir(path: string): void;
  /** A small file given whole content at once (written aside and renamed, or written in one call). */
  replaced(path: string, data: Buffer): void;
  /** An fdatasync round finished: everything told before it started is on the leader's disk. */
  synced(epoch: number): void;
  /** A sync round starts: marks what the next `synced` covers. */
  syncStarting(): void;
}

/** The tap in use, or null; set only through attachStoreTap. */
export let storeTap: StoreTap | null = null;

export function attachStoreTap(tap: StoreTap | null): void {
  storeTap = tap;
}
