import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { ReplicationError } from './errors';
import { openData, prefixCrcs } from './file-crc';
import { CHUNK_SIZE, FRAME_HEADER, FrameType, openFrame, sealFrame, type Frame } from './frame';
import type { FramedConnection } from './framed-connection';
import { parseJson } from './leader-handshake';
import type { ReplicationLog } from './log';
import { buildManifest } from './manifest';
import { safeRelativePath } from './node-local';
import type { CheckRequest, FetchRequest } from './protocol';

/**
 * What a live leader adds to a session (leader-replication.ts): the LSN of its ops, the
 * paths removed by an op whose unlink may still be under way, and the stream itself.
 */
export interface LiveSource {
  /** the LSN of the newest op the store made */
  lsn(): number;
  /** paths (files or folders) removed by an op at or before `lsn` that may still be on disk */
  removedBy(lsn: number): string[];
  /** Keeps the ops from `lsn` on in the backlog while a catch-up copies (call the result to let go). */
  pin(lsn: number): () => void;
  /** Streams ops from `from` on to the follower until the connection ends (rejects then). */
  stream(conn: FramedConnection, node: string, from: number): Promise<void>;
}

/** A DATA frame's payload: u64 file offset | u32 crc32(bytes) | bytes. */
export const DATA_HEADER = 12;
/** Manifest entries go in frames of about this many bytes of JSON. */
const MANIFEST_BATCH = 256 * 1024;

/**
 * Serves one authenticated follower's catch-up: MANIFEST, CHECK and FETCH requests, one at a
 * time, read-only on the data directory. Files vanishing under a request are answered GONE,
 * never an error: the follower asks for a new manifest.
 */
export class LeaderSession {
  bytesSent = 0;
  /** lets go of the backlog pin of this follower's catch-up */
  private unpin: (() => void) | null = null;

  constructor(
    private readonly conn: FramedConnection,
    private readonly dataDir: string,
    private readonly term: number,
    private readonly log: ReplicationLog,
    private readonly live: LiveSource | null = null,
    private readonly node = '',
  ) {}

  async run(): Promise<void> {
    try {
      await this.serve();
    } finally {
      this.unpin?.();
    }
  }

  private async serve(): Promise<void> {
    for (;;) {
      const f = await this.conn.next(0);
      if (f.term !== this.term) {
        const err = new ReplicationError('term', `${this.conn.peer} sent a frame of term ${f.term} to the leader of term ${this.term}`);
        this.conn.close(err);
        throw err;
      }
      if (f.type === FrameType.MANIFEST_REQUEST) await this.manifest();
      else if (f.type === FrameType.CHECK) await this.check(f);
      else if (f.type === FrameType.FETCH) await this.fetch(f);
      else if (f.type === FrameType.STREAM && this.live !== null) {
        // The stream checks synchronously that it has `from`: the pin can go after that.
        const streaming = this.live.stream(this.conn, this.node, this.streamFrom(f));
        this.unpin?.();
        return streaming;
      } else throw this.conn.unexpected(f, 'a request');
    }
  }

  private streamFrom(f: Frame): number {
    const from = parseJson<{ from: number }>(f.payload)?.from;
    if (!Number.isSafeInteger(from) || from! < 1) throw this.badRequest('STREAM needs a positive LSN to start from');
    return from!;
  }

  /** The leader's LSN now, for answers (a live leader's; 0 otherwise). */
  private lsn(): number {
    return this.live === null ? 0 : this.live.lsn();
  }

  private async manifest(): Promise<void> {
    const t0 = Date.now();
    // A live leader's snapshot point S, taken before any size or crc is read: every change
    // after it is in the stream, which the follower applies over what it copies.
    const snapshot = this.lsn();
    const removing = this.live === null ? [] : this.live.removedBy(snapshot);
    if (this.live !== null) {
      this.unpin?.();
      this.unpin = this.live.pin(snapshot + 1);
    }
    let entries = await buildManifest(this.dataDir);
    // A file removed by an op at or before S whose unlink has not finished is still listed;
    // the stream from S + 1 would never remove it from the copy.
    if (removing.length > 0) {
      const gone = new Set(removing);
      entries = entries.filter((e) => !gone.has(e.path) && !removing.some((r) => e.path.startsWith(r + '/')));
    }
    let batch: unknown[] = [];
    let size = 0;
    let bytes = 0;
    let frames = 1; // MANIFEST_END
    for (const e of entries) {
      batch.push(e);
      size += e.path.length + 48;
      bytes += e.size;
      if (size >= MANIFEST_BATCH) {
        this.conn.sendJson(FrameType.MANIFEST, batch);
        frames++;
        batch = [];
        size = 0;
      }
    }
    if (batch.length > 0) {
      this.conn.sendJson(FrameType.MANIFEST, batch);
      frames++;
    }
    this.conn.sendJson(FrameType.MANIFEST_END, { entries: entries.length, bytes, lsn: snapshot });
    this.log.info(
      { follower: this.conn.peer, entries: entries.length, bytes, frames, ms: Date.now() - t0 },
      'replication: manifest served',
    );
  }

  private async check(f: Frame): Promise<void> {
    const req = parseJson<CheckRequest>(f.payload);
    const path = this.requestPath(req?.path);
    const lengths = req?.lengths;
    if (!Array.isArray(lengths) || !lengths.every((n, i) => Number.isSafeInteger(n) && n >= 0 && (i === 0 || n >= lengths[i - 1])))
      throw this.badRequest('CHECK lengths must be ascending non-negative integers');
    const crcs = await prefixCrcs(join(this.dataDir, path), lengths);
    if (crcs === null) this.conn.sendJson(FrameType.GONE, { path, lsn: this.lsn() });
    else this.conn.sendJson(FrameType.CHECKED, { path, crcs, lsn: this.lsn() });
  }

  private async fetch(f: Frame): Promise<void> {
    const req = parseJson<FetchRequest>(f.payload);
    const path = this.requestPath(req?.path);
    const { offset, length } = req!;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      throw this.badRequest('FETCH offset and length must be non-negative integers');
    let fh;
    try {
      fh = await openData(join(this.dataDir, path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.conn.sendJson(FrameType.GONE, { path, lsn: this.lsn() });
      return;
    }
    let sent = 0;
    try {
      while (sent < length && !this.conn.closed) {
        const want = Math.min(CHUNK_SIZE, length - sent);
        // The file is read straight into the frame: one copy from the page cache, none after.
        const frame = openFrame(FrameType.DATA, this.term, DATA_HEADER + want);
        const at = FRAME_HEADER + DATA_HEADER;
        const { bytesRead } = await fh.read(frame, at, want, offset + sent);
        if (bytesRead === 0) break; // shrank or truncated under us: FETCH_END tells how much
        const data = frame.subarray(at, at + bytesRead);
        const chunk = bytesRead === want ? frame : shrink(frame, bytesRead);
        chunk.writeUInt32BE(Math.floor((offset + sent) / 2 ** 32), FRAME_HEADER);
        chunk.writeUInt32BE((offset + sent) >>> 0, FRAME_HEADER + 4);
        chunk.writeUInt32BE(crc32(data), FRAME_HEADER + 8);
        sent += bytesRead;
        this.bytesSent += bytesRead;
        if (!this.conn.send(sealFrame(chunk))) await this.conn.drain();
      }
    } finally {
      await fh.close();
    }
    this.conn.sendJson(FrameType.FETCH_END, { path, sent, lsn: this.lsn() });
  }

  private requestPath(p: unknown): string {
    const path = safeRelativePath(p);
    if (path === null) throw this.badRequest(`refused path ${JSON.stringify(p)}: not a data file under the data directory`);
    return path;
  }

  private badRequest(why: string): ReplicationError {
    const err = new ReplicationError('protocol', why);
    this.conn.close(err);
    return err;
  }
}

/** A DATA frame for fewer bytes than allocated (end of file): a fresh frame with the same head. */
function shrink(frame: Buffer, bytesRead: number): Buffer {
  const out = openFrame(FrameType.DATA, frame.readUInt32BE(5) * 2 ** 32 + frame.readUInt32BE(9), DATA_HEADER + bytesRead);
  frame.copy(out, FRAME_HEADER + DATA_HEADER, FRAME_HEADER + DATA_HEADER, FRAME_HEADER + DATA_HEADER + bytesRead);
  return out;
}
