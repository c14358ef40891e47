import { open, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { CatchUpRound, type ChunkEvent } from './catch-up-round';
import { emptyStats, type CatchUpStats } from './catch-up-stats';
import { DirLock } from './dir-lock';
import { ReplicationError } from './errors';
import { FramedConnection } from './framed-connection';
import { joinLeader } from './follower-handshake';
import { mapLimit } from './map-limit';
import { silentLog, type ReplicationLog } from './log';
import type { ManifestEntry } from './protocol';
import { REPLICA_MARK } from './node-local';

/** What a follower needs to reach the leader and copy into its directory (both kinds of follower). */
export interface FollowerOptions {
  /** the leader's advertised host and replication port */
  host: string;
  port: number;
  dataDir: string;
  secret: string;
  /** this node's name (`--node-name`) */
  node: string;
  cluster: string;
  /** the highest leader term this node has seen (a leader of an older term is refused) */
  term?: number;
  /** how long a request may wait for the leader's next frame */
  timeoutMs?: number;
  retryDelayMs?: number;
  log?: ReplicationLog;
}

export interface ReplicationFollowerOptions extends FollowerOptions {
  /** connections tried before giving up (each resumes from what is on disk) */
  maxAttempts?: number;
  /** manifests asked for on one connection before deciding the leader changes too fast */
  maxRounds?: number;
  /** called after each chunk is written (progress, and a place for tests to pause the copy) */
  onChunk?: (e: ChunkEvent) => void | Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A follower's catch-up of its data directory from the leader. The directory is locked for the
 * duration and carries a mark (REPLICA_MARK) until everything copied is fsynced, so a copy cut
 * short by a crash is never taken for a complete one; the next catch-up resumes from it.
 */
export class ReplicationFollower {
  private readonly log: ReplicationLog;
  /** the term of the leader we last caught up from */
  term: number;
  private stopped = false;
  private current: FramedConnection | undefined;

  constructor(private readonly o: ReplicationFollowerOptions) {
    this.log = o.log ?? silentLog;
    this.term = o.term ?? 0;
  }

  /** Ends a running catch-up (the leader changed, the node stops): catchUp() rejects with `stopped`. */
  stop(): void {
    this.stopped = true;
    this.current?.close(new ReplicationError('stopped', 'catch-up stopped'), false);
  }

  async catchUp(): Promise<CatchUpStats> {
    const t0 = Date.now();
    const stats = emptyStats();
    const lock = new DirLock(this.o.dataDir);
    lock.acquire();
    try {
      const maxAttempts = this.o.maxAttempts ?? 5;
      for (;;) {
        stats.attempts++;
        try {
          const manifest = await this.attempt(stats);
          const syncStart = Date.now();
          await syncCopy(this.o.dataDir, manifest);
          stats.syncMs = Date.now() - syncStart;
          await rm(join(this.o.dataDir, REPLICA_MARK), { force: true });
          await syncPath(this.o.dataDir);
          stats.ms = Date.now() - t0;
          this.log.info({ leader: this.leader, term: this.term, ...stats }, 'replication: caught up');
          return stats;
        } catch (err) {
          const e = this.stopped
            ? new ReplicationError('stopped', 'catch-up stopped')
            : err instanceof ReplicationError
              ? err
              : new ReplicationError('io', `catch-up into ${this.o.dataDir} failed: ${(err as Error).message}`);
          if (!e.retryable || stats.attempts >= maxAttempts) {
            this.log.warn(
              { leader: this.leader, code: e.code, reason: e.message, attempts: stats.attempts },
              'replication: catch-up failed',
            );
            throw e;
          }
          this.log.warn(
            { leader: this.leader, code: e.code, reason: e.message, attempt: stats.attempts },
            'replication: catch-up interrupted, resuming',
          );
          await sleep(this.o.retryDelayMs ?? 500);
          if (this.stopped) throw new ReplicationError('stopped', 'catch-up stopped');
        }
      }
    } finally {
      lock.release();
    }
  }

  private get leader(): string {
    return `${this.o.host}:${this.o.port}`;
  }

  private async attempt(stats: CatchUpStats): Promise<ManifestEntry[]> {
    const timeoutMs = this.o.timeoutMs ?? 30_000;
    if (this.stopped) throw new ReplicationError('stopped', 'catch-up stopped');
    const conn = await this.connect(timeoutMs);
    this.current = conn;
    if (this.stopped) conn.close(new ReplicationError('stopped', 'catch-up stopped'), false);
    try {
      this.term = await joinLeader(conn, { cluster: this.o.cluster, node: this.o.node, secret: this.o.secret, term: this.term }, timeoutMs);
      this.log.info({ leader: this.leader, term: this.term }, 'replication: leader authenticated');
      await this.mark();
      for (let round = 1; ; round++) {
        try {
          return await new CatchUpRound(conn, this.o.dataDir, stats, timeoutMs, this.o.onChunk).run();
        } catch (err) {
          const e = err as ReplicationError;
          if (e.code !== 'changed' || round >= (this.o.maxRounds ?? 10)) throw err;
          this.log.info({ leader: this.leader, reason: e.message }, 'replication: leader files changed during the copy; manifest again');
        }
      }
    } finally {
      // Nothing follows the catch-up yet: the live stream will keep this connection.
      this.current = undefined;
      if (!conn.closed) conn.socket.end();
    }
  }

  private connect(timeoutMs: number): Promise<FramedConnection> {
    return connectLeader(this.o.host, this.o.port, timeoutMs);
  }

  private mark(): Promise<void> {
    return markIncomplete(this.o.dataDir);
  }
}

export function connectLeader(host: string, port: number, timeoutMs: number): Promise<FramedConnection> {
  const leader = `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(new FramedConnection(socket, `leader ${leader}`));
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(new ReplicationError('closed', `cannot connect to leader ${leader}: ${err.message}`));
    };
    socket.once('error', onError);
  });
}

/**
 * The mark goes down, durably, before the first change to the directory (and only once the
 * leader is proven: a refused leader leaves a complete copy marked complete).
 */
export async function markIncomplete(dataDir: string): Promise<void> {
  const fh = await open(join(dataDir, REPLICA_MARK), 'w');
  await fh.sync();
  await fh.close();
  await syncPath(dataDir);
}

/** Every copied file and every directory reaches the disk before the mark is taken away. */
export async function syncCopy(dataDir: string, manifest: ManifestEntry[]): Promise<void> {
  // Files first, then the folders naming them, then the root; a few at a time each.
  // A file a live leader removed during the copy was not made here (the stream removes it).
  await mapLimit(
    manifest.filter((e) => e.dir !== true),
    16,
    (e) => syncPath(join(dataDir, e.path)).catch(ignoreMissing),
  );
  await mapLimit(
    manifest.filter((e) => e.dir === true),
    16,
    (e) => syncPath(join(dataDir, e.path)),
  );
  await syncPath(dataDir);
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
