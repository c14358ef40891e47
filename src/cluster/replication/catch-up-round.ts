import { mkdir, open, rm, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { CatchUpStats } from './catch-up-stats';
import { ReplicationError } from './errors';
import { prefixCrcs } from './file-crc';
import { CHUNK_SIZE, FrameType, type Frame } from './frame';
import type { FramedConnection } from './framed-connection';
import { parseJson } from './leader-handshake';
import { DATA_HEADER } from './leader-session';
import { listLocal, type LocalEntry } from './manifest';
import { isStaleOnFollower, LOCK_FILE, REPLICA_MARK, safeRelativePath } from './node-local';
import type { CheckAnswer, FetchEnd, ManifestEntry } from './protocol';

export interface ChunkEvent {
  path: string;
  offset: number;
  bytes: number;
  /** bytes fetched so far in the whole catch-up */
  fetched: number;
}

/**
 * One pass of a follower's catch-up over an authenticated connection: get the manifest, delete
 * what the leader lacks, keep each file's longest prefix that matches the leader's, fetch the
 * rest. Every fetched chunk is checked against its crc32, and every file, once complete,
 * against the manifest's crc32 of the whole: a file that changed on the leader under the copy
 * throws `changed` (the caller manifests again), so a wrong file is never left as right.
 */
export class CatchUpRound {
  /** a live leader's snapshot point S: the stream from S + 1 completes the copy */
  snapshotLsn = 0;
  /** the leader's LSN when it answered our last request (L_end): the copy is whole once the stream is past it */
  endLsn = 0;

  constructor(
    private readonly conn: FramedConnection,
    private readonly dataDir: string,
    private readonly stats: CatchUpStats,
    private readonly timeoutMs: number,
    private readonly onChunk?: (e: ChunkEvent) => void | Promise<void>,
    /**
     * From a live leader: a file that changed under the copy (gone, shorter, another crc)
     * is no reason for a new manifest, as every change after S is in the stream that
     * follows, which rewrites or removes it (positional writes replayed in order).
     */
    private readonly live = false,
  ) {}

  private answered(payload: { lsn?: unknown } | null): void {
    const lsn = payload?.lsn;
    if (typeof lsn === 'number' && lsn > this.endLsn) this.endLsn = lsn;
  }

  async run(): Promise<ManifestEntry[]> {
    this.stats.rounds++;
    const t0 = Date.now();
    const manifest = await this.manifest();
    this.stats.manifestMs += Date.now() - t0;
    const local = await listLocal(this.dataDir);
    await this.removeExtra(manifest, local);
    for (const e of manifest) if (e.dir === true) await mkdir(join(this.dataDir, e.path), { recursive: true });
    const fetches: PlannedFetch[] = [];
    for (const e of manifest) {
      if (e.dir === true) continue;
      const planned = await this.plan(e, local.get(e.path));
      if (planned !== null) fetches.push(planned);
    }
    const t1 = Date.now();
    try {
      await this.fetchAll(fetches);
    } finally {
      this.stats.fetchMs += Date.now() - t1;
    }
    return manifest;
  }

  private async manifest(): Promise<ManifestEntry[]> {
    this.conn.sendJson(FrameType.MANIFEST_REQUEST, {});
    const out: ManifestEntry[] = [];
    const dirs = new Set<string>();
    for (;;) {
      const f = await this.read();
      if (f.type === FrameType.MANIFEST_END) {
        const end = parseJson<{ entries: number; lsn?: number }>(f.payload);
        if (end?.entries !== out.length) throw this.protocol(`manifest announced ${end?.entries} entries, ${out.length} came`);
        if (this.live && !Number.isSafeInteger(end.lsn)) throw this.protocol('a live leader must give its snapshot LSN in MANIFEST_END');
        this.snapshotLsn = end.lsn ?? 0;
        this.answered(end);
        return out;
      }
      if (f.type !== FrameType.MANIFEST) throw this.conn.unexpected(f, 'MANIFEST');
      const batch = parseJson<ManifestEntry[]>(f.payload);
      if (!Array.isArray(batch)) throw this.protocol('malformed MANIFEST');
      for (const e of batch) {
        if (safeRelativePath(e?.path) === null || !Number.isSafeInteger(e.size) || e.size < 0 || !Number.isInteger(e.crc))
          throw this.protocol(`manifest entry refused: ${JSON.stringify(e).slice(0, 200)}`);
        // Each entry's folder is listed before it, so creating folders in order suffices.
        const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
        if (parent !== '' && !dirs.has(parent)) throw this.protocol(`manifest lists ${e.path} before its folder`);
        if (e.dir === true) dirs.add(e.path);
        out.push(e);
      }
    }
  }

  /** Deletes local entries the manifest lacks (or has as the other kind), and stale node-local ones. */
  private async removeExtra(manifest: ManifestEntry[], local: Map<string, LocalEntry>): Promise<void> {
    const want = new Map(manifest.map((e) => [e.path, e.dir === true]));
    const removed: string[] = [];
    for (const [rel, st] of local) {
      if (rel === LOCK_FILE || rel === REPLICA_MARK) continue;
      if (removed.some((d) => rel.startsWith(d + '/'))) continue;
      const wanted = want.get(rel);
      if (!isStaleOnFollower(rel) && !st.odd && wanted === st.dir) continue;
      await rm(join(this.dataDir, rel), { recursive: true, force: true });
      removed.push(rel);
      this.stats.entriesDeleted++;
    }
    if (removed.length > 0)
      for (const rel of [...local.keys()]) if (removed.some((d) => rel === d || rel.startsWith(d + '/'))) local.delete(rel);
  }

  /**
   * Decides what of one file to keep (truncating what diverges) and returns the FETCH needed
   * for the rest, or null when the file is already the leader's.
   */
  private async plan(e: ManifestEntry, st: LocalEntry | undefined): Promise<PlannedFetch | null> {
    const full = join(this.dataDir, e.path);
    const local = st === undefined || st.dir || st.odd ? -1 : st.size;
    let keep: { length: number; crc: number };
    if (local <= 0) keep = { length: 0, crc: 0 };
    else if (local >= e.size) {
      // Ours is as long or longer: its first e.size bytes either are the leader's file or not.
      const [mine] = (await prefixCrcs(full, [e.size]))!;
      keep = mine === e.crc ? { length: e.size, crc: mine } : await this.longestMatch(e, full, e.size);
    } else {
      const [mine] = (await prefixCrcs(full, [local]))!;
      const theirs = await this.check(e.path, [local]);
      if (theirs === null) return null; // gone from a live leader: the stream removes it
      keep = mine === theirs[0] ? { length: local, crc: mine } : await this.longestMatch(e, full, local);
    }
    if (local >= 0 && local !== keep.length) {
      await truncate(full, keep.length);
      this.stats.filesTruncated++;
    }
    this.stats.bytesKept += keep.length;
    if (keep.length === e.size) {
      if (local < 0) await (await open(full, 'w')).close();
      this.stats.filesKept++;
      return null;
    }
    return { e, full, from: keep, create: local < 0 };
  }

  /**
   * The longest prefix shorter than `limit` that matches the leader's, at 1 MiB steps: one
   * CHECK for every step, computed in one read on each side. In practice what differs is the
   * tail (the unconfirmed records of a deposed leader, or a chunk torn by a kill -9).
   */
  private async longestMatch(e: ManifestEntry, full: string, limit: number): Promise<{ length: number; crc: number }> {
    const lengths: number[] = [];
    for (let n = CHUNK_SIZE; n < limit; n += CHUNK_SIZE) lengths.push(n);
    if (lengths.length === 0) return { length: 0, crc: 0 };
    const theirs = (await this.check(e.path, lengths)) ?? [];
    const mine = (await prefixCrcs(full, lengths))!;
    let best = { length: 0, crc: 0 };
    for (let i = 0; i < lengths.length && mine[i] === theirs[i]; i++) best = { length: lengths[i], crc: mine[i] };
    return best;
  }

  /** The leader's crcs of prefixes of a file; null when a live leader no longer has it. */
  private async check(path: string, lengths: number[]): Promise<number[] | null> {
    this.conn.sendJson(FrameType.CHECK, { path, lengths });
    const f = await this.read();
    if (f.type === FrameType.GONE) {
      this.answered(parseJson<{ lsn?: number }>(f.payload));
      if (this.live) return null;
      throw changed(path, 'went from the leader');
    }
    if (f.type !== FrameType.CHECKED) throw this.conn.unexpected(f, 'CHECKED');
    const a = parseJson<CheckAnswer>(f.payload);
    this.answered(a as { lsn?: number } | null);
    if (a?.path !== path || !Array.isArray(a.crcs) || a.crcs.length !== lengths.length)
      throw this.protocol('CHECKED does not answer the CHECK');
    return a.crcs;
  }

  /**
   * Sends the FETCHes a window ahead (the leader answers them in order), so that a directory
   * of many small files costs one round trip per window, not per file. When one fails with
   * `changed`, the answers already asked for are read and dropped, leaving the connection in
   * step for the next manifest.
   */
  private async fetchAll(list: PlannedFetch[]): Promise<void> {
    let sent = 0;
    for (let i = 0; i < list.length; i++) {
      for (; sent < list.length && sent < i + FETCH_WINDOW; sent++) {
        const p = list[sent];
        this.conn.sendJson(FrameType.FETCH, { path: p.e.path, offset: p.from.length, length: p.e.size - p.from.length });
      }
      try {
        await this.receive(list[i]);
      } catch (err) {
        if ((err as ReplicationError).code === 'changed') await this.skipAnswers(sent - i - 1);
        throw err;
      }
      this.stats.filesFetched++;
    }
  }

  private async receive({ e, full, from, create }: PlannedFetch): Promise<void> {
    const length = e.size - from.length;
    let pos = from.length;
    let crc = from.crc;
    let fh: FileHandle | undefined;
    try {
      for (;;) {
        const f = await this.read();
        if (f.type === FrameType.DATA) {
          const p = f.payload;
          const offset = p.readUInt32BE(0) * 2 ** 32 + p.readUInt32BE(4);
          const data = p.subarray(DATA_HEADER);
          if (offset !== pos) throw this.protocol(`DATA for ${e.path} at ${offset}, expected ${pos}`);
          if (crc32(data) !== p.readUInt32BE(8)) {
            const err = new ReplicationError('frame', `chunk of ${e.path} at ${offset} fails its crc32: not written`);
            this.conn.close(err);
            throw err;
          }
          fh ??= await open(full, create ? 'w' : 'r+');
          let off = 0;
          while (off < data.length) off += (await fh.write(data, off, data.length - off, pos + off)).bytesWritten;
          crc = crc32(data, crc);
          pos += data.length;
          this.stats.bytesFetched += data.length;
          if (this.onChunk !== undefined)
            await this.onChunk({ path: e.path, offset, bytes: data.length, fetched: this.stats.bytesFetched });
        } else if (f.type === FrameType.FETCH_END) {
          const end = parseJson<FetchEnd>(f.payload);
          if (end?.path !== e.path) throw this.protocol(`FETCH_END for ${end?.path}, expected ${e.path}`);
          this.answered(end as { lsn?: number });
          if (this.live) return;
          if (end.sent !== length || pos !== e.size)
            throw changed(e.path, `shrank on the leader during the copy (${end.sent} of ${length} bytes sent)`);
          break;
        } else if (f.type === FrameType.GONE) {
          this.answered(parseJson<{ lsn?: number }>(f.payload));
          if (this.live) return;
          throw changed(e.path, 'went from the leader during the copy');
        } else throw this.conn.unexpected(f, 'DATA');
      }
    } finally {
      await fh?.close();
    }
    if (crc !== e.crc) throw changed(e.path, 'does not match the manifest once copied: it changed on the leader during the copy');
  }

  /** Reads and drops the answers to n FETCHes (each ends with FETCH_END or GONE). */
  private async skipAnswers(n: number): Promise<void> {
    while (n > 0) {
      const f = await this.read();
      if (f.type === FrameType.FETCH_END || f.type === FrameType.GONE) n--;
      else if (f.type !== FrameType.DATA) throw this.conn.unexpected(f, 'DATA');
    }
  }

  /** The next frame, which must carry the connection's term. */
  private async read(): Promise<Frame> {
    const f = await this.conn.next(this.timeoutMs);
    if (f.term !== this.conn.term) {
      const err = new ReplicationError(
        'term',
        `${this.conn.peer} sent a frame of term ${f.term} on a connection of term ${this.conn.term}`,
      );
      this.conn.close(err);
      throw err;
    }
    return f;
  }

  private protocol(why: string): ReplicationError {
    const err = new ReplicationError('protocol', `${this.conn.peer}: ${why}`);
    this.conn.close(err);
    return err;
  }
}

interface PlannedFetch {
  e: ManifestEntry;
  full: string;
  /** the prefix kept, and its crc32: the copy's crc continues from it */
  from: { length: number; crc: number };
  /** no local file yet */
  create: boolean;
}

/** FETCHes asked for ahead of the one being received. */
const FETCH_WINDOW = 16;

function changed(path: string, what: string): ReplicationError {
  return new ReplicationError('changed', `${path} ${what}`);
}
