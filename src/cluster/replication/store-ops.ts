/**
 * The live stream's unit: one change the leader's store made to its data directory, with
 * its sequence number (LSN). Encoded as
 *   u8 kind | u64 lsn | u16 path length | path (utf8, relative, '/'-separated) | body
 * where the body is, by kind:
 *   OPEN      u8 truncate (1: created empty, 0: created if missing)
 *   WRITE     u64 position | the bytes written there
 *   TRUNCATE  u64 length
 *   REMOVE    nothing (a file or a whole directory; missing is fine)
 *   MKDIR     nothing (with its parents)
 *   REPLACE   the file's whole new content (applied aside and renamed: never half there)
 *   SYNCED    u64 epoch | u64 lsn the leader's round covered (path empty)
 *   REPLACE_PART  u64 position | bytes of a new content too big for one op (written aside;
 *             position 0 starts it anew)
 *   REPLACE_END   u64 length: the content written aside is whole; renamed over the file
 *   ROUND     nothing (path empty): the leader starts an fdatasync round covering every op
 *             before this one; a follower syncs what it applied now, so that the two rounds
 *             run side by side and cover the same ops
 * One op is one buffer that fits a transport frame: a WRITE or a REPLACE_PART carries at most
 * one data chunk (1 MiB), so a longer write goes as several WRITEs and a longer REPLACE as
 * REPLACE_PARTs and a REPLACE_END, consecutive LSNs emitted in one call.
 */
export const enum OpKind {
  OPEN = 1,
  WRITE = 2,
  TRUNCATE = 3,
  REMOVE = 4,
  MKDIR = 5,
  REPLACE = 6,
  SYNCED = 7,
  REPLACE_PART = 8,
  REPLACE_END = 9,
  ROUND = 10,
}

export interface StoreOp {
  kind: OpKind;
  lsn: number;
  path: string;
  /** OPEN: truncate flag; WRITE, REPLACE_PART: position; TRUNCATE, REPLACE_END: length; SYNCED: epoch */
  n: number;
  /** SYNCED: the LSN the leader's round covered */
  upTo: number;
  /** WRITE, REPLACE, REPLACE_PART: the bytes (a view into the encoded op) */
  data: Buffer | null;
}

const HEAD = 1 + 8 + 2;

/** Kinds whose body starts with a u64 (position, length or epoch). */
function hasU64(kind: OpKind): boolean {
  return (
    kind === OpKind.WRITE ||
    kind === OpKind.TRUNCATE ||
    kind === OpKind.SYNCED ||
    kind === OpKind.REPLACE_PART ||
    kind === OpKind.REPLACE_END
  );
}

/** Kinds that carry bytes after their header. */
function hasData(kind: OpKind): boolean {
  return kind === OpKind.WRITE || kind === OpKind.REPLACE || kind === OpKind.REPLACE_PART;
}

/** The encoded size of an op whose path takes `pathLen` bytes and that carries `dataLen` bytes. */
export function opSize(kind: OpKind, pathLen: number, dataLen: number): number {
  return HEAD + pathLen + bodySize(kind) + dataLen;
}

function bodySize(kind: OpKind): number {
  return kind === OpKind.OPEN ? 1 : kind === OpKind.SYNCED ? 16 : hasU64(kind) ? 8 : 0;
}

/**
 * Writes an op at `buf[at..]`, which must have opSize(kind, pathLen, data's length) bytes: the
 * leader encodes straight into its backlog (op-backlog.ts), with no buffer of its own per op.
 */
export function writeOp(
  buf: Buffer,
  at: number,
  kind: OpKind,
  lsn: number,
  path: string,
  pathLen: number,
  n: number,
  data: Buffer | null,
  upTo: number,
): void {
  buf[at] = kind;
  putU64(buf, at + 1, lsn);
  buf.writeUInt16BE(pathLen, at + 9);
  at += HEAD;
  if (pathLen > 0) at += buf.write(path, at, pathLen);
  if (kind === OpKind.OPEN) buf[at++] = n ? 1 : 0;
  else if (bodySize(kind) >= 8) {
    putU64(buf, at, n);
    at += 8;
    if (kind === OpKind.SYNCED) {
      putU64(buf, at, upTo);
      at += 8;
    }
  }
  if (data !== null) data.copy(buf, at);
}

export function encodeOp(kind: OpKind, lsn: number, path: string, n = 0, data: Buffer | null = null, upTo = 0): Buffer {
  const pathLen = Buffer.byteLength(path);
  const buf = Buffer.allocUnsafe(opSize(kind, pathLen, data === null ? 0 : data.length));
  writeOp(buf, 0, kind, lsn, path, pathLen, n, data, upTo);
  return buf;
}

export function decodeOp(buf: Buffer): StoreOp {
  if (buf.length < HEAD) throw new Error(`store op too short (${buf.length} bytes)`);
  const kind = buf[0] as OpKind;
  if (kind < OpKind.OPEN || kind > OpKind.ROUND) throw new Error(`unknown store op kind ${kind}`);
  const lsn = getU64(buf, 1);
  const pathEnd = HEAD + buf.readUInt16BE(9);
  const path = buf.toString('utf8', HEAD, pathEnd);
  const op: StoreOp = { kind, lsn, path, n: 0, upTo: 0, data: null };
  let at = pathEnd;
  if (kind === OpKind.OPEN) op.n = buf[at];
  else if (hasU64(kind)) {
    op.n = getU64(buf, at);
    at += 8;
    if (kind === OpKind.SYNCED) op.upTo = getU64(buf, at);
    at += kind === OpKind.SYNCED ? 8 : 0;
  }
  if (hasData(kind)) op.data = buf.subarray(at);
  if (at > buf.length) throw new Error(`store op ${kind} truncated`);
  return op;
}

/** Numbers up to 2^53: offsets, lengths and LSNs never get near. */
function putU64(buf: Buffer, at: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), at);
  buf.writeUInt32BE(v >>> 0, at + 4);
}

function getU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}
