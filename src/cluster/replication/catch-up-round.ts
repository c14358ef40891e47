import { mkdir, open, rm, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { CatchUpStats } from './catch-up-stats';
import { ReplicationError } from './errors';
import { prefixCrcs } from './file-crc';
import { CHUNK_SIZE, FrameType, type Frame } from './frame';
import type { FramedConnection } from './framed-connection';
import { parseJson } from './leader-handshake';
import { DATA_HEADER } from './leader-session';
import { listLocal } from './manifest';
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
  constructor(
    private readonly conn: FramedConnection,
    private readonly dataDir: string,
    private readonly stats: CatchUpStats,
    private readonly timeoutMs: number,
    private readonly onChunk?: (e: ChunkEvent) => void | Promise<void>,
  ) {}

  async run(): Promise<ManifestEntry[]> {
    this.stats.rounds++;
    const t0 = Date.now();
    const manifest = await this.manifest();
    this.stats.manifestMs += Date.now() - t0;
    await this.removeExtra(manifest);
    for (const e of manifest) if (e.dir === true) await mkdir(join(this.dataDir, e.path), { recursive: true });
    for (const e of manifest) if (e.dir !== true) await this.reconcile(e);
    return manifest;
  }

  private async manifest(): Promise<ManifestEntry[]> {
    this.conn.sendJson(FrameType.MANIFEST_REQUEST, {});
    const out: ManifestEntry[] = [];
    for (;;) {
      const f = await this.read();
      if (f.type === FrameType.MANIFEST_END) {
        const end = parseJson<{ entries: number }>(f.payload);
        if (end?.entries !== out.length) throw this.protocol(`manifest announced ${end?.entries} entries, ${out.length} came`);
        return out;
      }
      if (f.type !== FrameType.MANIFEST) throw this.conn.unexpected(f, 'MANIFEST');
      const batch = parseJson<ManifestEntry[]>(f.payload);
      if (!Array.isArray(batch)) throw this.protocol('malformed MANIFEST');
      for (const e of batch) {
        if (safeRelativePath(e?.path) === null || !Number.isSafeInteger(e.size) || e.size < 0 || !Number.isInteger(e.crc))
          throw this.protocol(`manifest entry refused: ${JSON.stringify(e).slice(0, 200)}`);
        out.push(e);
      }
    }
  }

  /** Deletes local entries the manifest lacks (or has as the other kind), and stale node-local ones. */
  private async removeExtra(manifest: ManifestEntry[]): Promise<void> {
    const want = new Map(manifest.map((e) => [e.path, e.dir === true]));
    const removed: string[] = [];
    for (const [rel, st] of await listLocal(this.dataDir)) {
      if (rel === LOCK_FILE || rel === REPLICA_MARK) continue;
      if (removed.some((d) => rel.startsWith(d + '/'))) continue;
      const wanted = want.get(rel);
      if (!isStaleOnFollower(rel) && !st.odd && wanted === st.dir) continue;
      await rm(join(this.dataDir, rel), { recursive: true, force: true });
      removed.push(rel);
      this.stats.entriesDeleted++;
    }
  }

  private async reconcile(e: ManifestEntry): Promise<void> {
    const full = join(this.dataDir, e.path);
    const local = await localSize(full);
    let keep: { length: number; crc: number };
    if (local === 0 || local < 0) keep = { length: 0, crc: 0 };
    else if (local >= e.size) {
      // Ours is as long or longer: its first e.size bytes either are the leader's file or not.
      const [mine] = (await prefixCrcs(full, [e.size]))!;
      keep = mine === e.crc ? { length: e.size, crc: mine } : await this.longestMatch(e, full, e.size);
    } else {
      const [mine] = (await prefixCrcs(full, [local]))!;
      const [theirs] = await this.check(e.path, [local]);
      keep = mine === theirs ? { length: local, crc: mine } : await this.longestMatch(e, full, local);
    }
    if (local < 0) await mkdir(dirname(full), { recursive: true });
    if (local !== keep.length) {
      if (local < 0) await (await open(full, 'w')).close();
      else {
        await truncate(full, keep.length);
        this.stats.filesTruncated++;
      }
    }
    this.stats.bytesKept += keep.length;
    if (keep.length === e.size) {
      this.stats.filesKept++;
      return;
    }
    const t0 = Date.now();
    try {
      await this.fetch(e, full, keep);
    } finally {
      this.stats.fetchMs += Date.now() - t0;
    }
    this.stats.filesFetched++;
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
    const theirs = await this.check(e.path, lengths);
    const mine = (await prefixCrcs(full, lengths))!;
    let best = { length: 0, crc: 0 };
    for (let i = 0; i < lengths.length && mine[i] === theirs[i]; i++) best = { length: lengths[i], crc: mine[i] };
    return best;
  }

  private async check(path: string, lengths: number[]): Promise<number[]> {
    this.conn.sendJson(FrameType.CHECK, { path, lengths });
    const f = await this.read();
    if (f.type === FrameType.GONE) throw changed(path, 'went from the leader');
    if (f.type !== FrameType.CHECKED) throw this.conn.unexpected(f, 'CHECKED');
    const a = parseJson<CheckAnswer>(f.payload);
    if (a?.path !== path || !Array.isArray(a.crcs) || a.crcs.length !== lengths.length)
      throw this.protocol('CHECKED does not answer the CHECK');
    return a.crcs;
  }

  private async fetch(e: ManifestEntry, full: string, from: { length: number; crc: number }): Promise<void> {
    const length = e.size - from.length;
    this.conn.sendJson(FrameType.FETCH, { path: e.path, offset: from.length, length });
    const fh = await open(full, 'r+');
    let pos = from.length;
    let crc = from.crc;
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
          let off = 0;
          while (off < data.length) off += (await fh.write(data, off, data.length - off, pos + off)).bytesWritten;
          crc = crc32(data, crc);
          pos += data.length;
          this.stats.bytesFetched += data.length;
          if (this.onChunk !== undefined)
            await this.onChunk({ path: e.path, offset, bytes: data.length, fetched: this.stats.bytesFetched });
        } else if (f.type === FrameType.FETCH_END) {
          const end = parseJson<FetchEnd>(f.payload);
          if (end?.sent !== length || pos !== e.size)
            throw changed(e.path, `shrank on the leader during the copy (${end?.sent} of ${length} bytes sent)`);
          break;
        } else if (f.type === FrameType.GONE) throw changed(e.path, 'went from the leader during the copy');
        else throw this.conn.unexpected(f, 'DATA');
      }
    } finally {
      await fh.close();
    }
    if (crc !== e.crc) throw changed(e.path, 'does not match the manifest once copied: it changed on the leader during the copy');
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

function changed(path: string, what: string): ReplicationError {
  return new ReplicationError('changed', `${path} ${what}`);
}

async function localSize(full: string): Promise<number> {
  try {
    const fh = await open(full, 'r');
    try {
      return (await fh.stat()).size;
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1;
    throw err;
  }
}
