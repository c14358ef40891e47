import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CatchUpRound } from './catch-up-round';
import { emptyStats, type CatchUpStats } from './catch-up-stats';
import { DirLock } from './dir-lock';
import { ReplicationError } from './errors';
import { joinLeaderWelcome } from './follower-handshake';
import { FrameType, encodeFrame } from './frame';
import type { FramedConnection } from './framed-connection';
import { silentLog, type ReplicationLog } from './log';
import { REPLICA_MARK, REPLICA_POSITION } from './node-local';
import { OpApplier } from './op-applier';
import { ackPayload, splitOps } from './ops-frame';
import { connectLeader, markIncomplete, syncCopy, syncPath, type FollowerOptions } from './replication-follower';

/** Ops applied outside a leader round are synced this long after, at the latest; a follower behind syncs at least this often. */
const SYNC_EVERY_MS = 50;

export interface FollowerReplicationOptions extends FollowerOptions {
  /** how often an idle follower acks (keep-alive), so the leader can tell silent from dead */
  ackIntervalMs?: number;
}

/** A follower's position in a leader's op stream, saved so that a restart can resume there. */
interface Position {
  stream: string;
  term: number;
  lsn: number;
}

/**
 * A follower's replication, for as long as it follows one leader: connects, catches up from
 * the live leader (or resumes its stream from the saved position when the leader's stream is
 * the one it was in and the LSN is still in its backlog), then applies the leader's ops in
 * order and acks each SYNCED op it made durable. A broken connection is retried; a follower
 * that fell out of the backlog (`lagging`) catches up again. The directory stays locked and
 * marked incomplete until the stream has passed L_end (the copy is then a consistent state).
 *
 * Events: 'caught-up' (CatchUpStats & {snapshotLsn, endLsn}), 'streaming' ({from, resumed}),
 * 'complete' ({lsn}), 'retry' ({code, reason}), 'failed' (ReplicationError, not retried).
 */
export class FollowerReplication extends EventEmitter {
  term: number;
  /** the last LSN made durable here, and what we last acked */
  durableLsn = 0;
  appliedLsn = 0;
  /** the leader's stream id */
  stream = '';
  complete = false;
  catchUps = 0;
  bytesFetched = 0;
  private stopped = false;
  private conn: FramedConnection | undefined;
  private applier: OpApplier | undefined;
  private readonly lock: DirLock;
  private readonly log: ReplicationLog;
  private running: Promise<void> | undefined;
  private lastSaved = 0;

  constructor(private readonly o: FollowerReplicationOptions) {
    super();
    this.term = o.term ?? 0;
    this.log = o.log ?? silentLog;
    this.lock = new DirLock(o.dataDir);
  }

  start(): void {
    this.lock.acquire();
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.conn?.close(new ReplicationError('stopped', 'follower stopped'), false);
    await this.running?.catch(() => {});
    this.lock.release();
  }

  private get leader(): string {
    return `${this.o.host}:${this.o.port}`;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.session();
      } catch (err) {
        const e =
          err instanceof ReplicationError ? err : new ReplicationError('io', `follower ${this.o.dataDir}: ${(err as Error).message}`);
        this.closeApplier();
        if (this.stopped) break;
        if (!e.retryable && e.code !== 'protocol' && e.code !== 'term') {
          this.log.warn(
            { leader: this.leader, code: e.code, reason: e.message, stack: (err as Error).stack },
            'replication: following failed',
          );
          this.emit('failed', e);
          return;
        }
        // Out of the backlog: the saved position is no use any more, the next session copies.
        if (e.code === 'lagging') rmSync(join(this.o.dataDir, REPLICA_POSITION), { force: true });
        this.log.warn({ leader: this.leader, code: e.code, reason: e.message }, 'replication: connection to the leader lost; again');
        this.emit('retry', { code: e.code, reason: e.message });
        await new Promise((r) => setTimeout(r, this.o.retryDelayMs ?? 500));
      }
    }
  }

  private async session(): Promise<void> {
    const timeoutMs = this.o.timeoutMs ?? 10_000;
    const conn = await connectLeader(this.o.host, this.o.port, timeoutMs);
    this.conn = conn;
    if (this.stopped) conn.close(new ReplicationError('stopped', 'follower stopped'), false);
    const saved = this.readPosition();
    const welcome = await joinLeaderWelcome(
      conn,
      { cluster: this.o.cluster, node: this.o.node, secret: this.o.secret, term: this.term },
      timeoutMs,
      saved ?? undefined,
    );
    this.term = welcome.term;
    if (welcome.stream === undefined) throw new ReplicationError('protocol', `${conn.peer} is not a live leader (no stream id)`);
    this.stream = welcome.stream;
    let from: number;
    let endLsn: number;
    const resumed = saved !== null && saved.stream === welcome.stream && !existsSync(join(this.o.dataDir, REPLICA_MARK));
    if (resumed) {
      from = saved.lsn + 1;
      endLsn = 0;
      this.complete = true;
    } else {
      this.complete = false;
      this.catchUps++;
      const stats: CatchUpStats = emptyStats();
      const t0 = Date.now();
      await markIncomplete(this.o.dataDir);
      rmSync(join(this.o.dataDir, REPLICA_POSITION), { force: true });
      const round = new CatchUpRound(conn, this.o.dataDir, stats, timeoutMs, undefined, true);
      const manifest = await round.run();
      const syncStart = Date.now();
      await syncCopy(this.o.dataDir, manifest);
      stats.syncMs = Date.now() - syncStart;
      stats.ms = Date.now() - t0;
      stats.attempts = 1;
      this.bytesFetched += stats.bytesFetched;
      from = round.snapshotLsn + 1;
      endLsn = round.endLsn;
      this.log.info({ leader: this.leader, snapshotLsn: round.snapshotLsn, endLsn, ...stats }, 'replication: copied from the live leader');
      this.emit('caught-up', { ...stats, snapshotLsn: round.snapshotLsn, endLsn });
    }
    await this.follow(conn, from, endLsn, resumed, timeoutMs);
  }

  /** Applies the stream from `from` on until the connection ends. */
  private async follow(conn: FramedConnection, from: number, endLsn: number, resumed: boolean, timeoutMs: number): Promise<void> {
    const applier = new OpApplier(this.o.dataDir);
    applier.deferSync = true;
    this.applier = applier;
    applier.appliedLsn = from - 1;
    applier.durableLsn = from - 1;
    applier.syncedSeen = from - 1;
    this.appliedLsn = from - 1;
    this.durableLsn = from - 1;
    conn.sendJson(FrameType.STREAM, { from });
    this.log.info({ leader: this.leader, from, resumed, endLsn }, 'replication: streaming from the leader');
    this.emit('streaming', { from, resumed });
    let acked = -1;
    let lastSync = Date.now();
    let completing = false;
    const onSynced = (lsn: number, err: Error | null): void => {
      if (applier !== this.applier) return; // a round of a stream that ended
      if (err !== null) {
        conn.close(new ReplicationError('io', `syncing the follower's copy failed: ${err.message}`));
        return;
      }
      this.durableLsn = lsn;
      if (!this.complete && !completing && lsn >= endLsn) {
        completing = true;
        this.markComplete().then(
          () => {
            if (!conn.closed) sendAck();
          },
          (e: Error) => conn.close(new ReplicationError('io', `marking the copy complete failed: ${e.message}`)),
        );
      }
      if (!conn.closed && ackValue() !== acked) sendAck();
      this.savePosition(false);
    };
    // Before the copy is whole (mark down), nothing is acked as durable: 0 says "alive".
    const ackValue = () => (this.complete ? applier.durableLsn : 0);
    const sendAck = () => {
      acked = ackValue();
      conn.send(encodeFrame(FrameType.OPS_ACK, conn.term, ackPayload(acked)));
    };
    const timer = setInterval(() => {
      if (!conn.closed) sendAck();
    }, this.o.ackIntervalMs ?? 500);
    timer.unref();
    const syncNow = (): void => {
      applier.syncAsync(onSynced);
      lastSync = Date.now();
    };
    let idleSync: NodeJS.Timeout | undefined;
    const syncIdle = (): void => {
      idleSync = undefined;
      if (applier === this.applier && !conn.closed) syncNow();
    };
    // Nothing changed on the leader after the copy's last answer: it is whole already.
    if (!this.complete && from - 1 >= endLsn) await this.markComplete();
    if (this.complete) sendAck();
    try {
      for (;;) {
        const f = await conn.next(timeoutMs);
        if (f.term !== conn.term) {
          const err = new ReplicationError('term', `${conn.peer} sent a frame of term ${f.term} on a stream of term ${conn.term}`);
          conn.close(err);
          throw err;
        }
        if (f.type !== FrameType.OPS) throw conn.unexpected(f, 'OPS');
        let ops: Buffer[];
        try {
          ops = splitOps(f.payload);
        } catch (err) {
          const e = new ReplicationError('protocol', `${conn.peer}: ${(err as Error).message}`);
          conn.close(e);
          throw e;
        }
        try {
          for (const op of ops) applier.apply(op);
          // Our own group commit, in step with the leader's: its ROUND op says its fdatasync
          // of everything before it starts now, so ours starts too, without waiting for its
          // SYNCED op, and the two run at the same time over the same ops (one round per
          // leader round: syncing whenever the socket ran dry made four, each a disk write
          // of the inode more). Ops outside a round (no confirm waits for them) are synced
          // SYNC_EVERY_MS later. A follower behind (frames waiting) syncs every SYNC_EVERY_MS
          // only, as one round per leader round would slow its catching up.
          if ((conn.queued === 0 && applier.takeRound()) || Date.now() - lastSync >= SYNC_EVERY_MS) syncNow();
          else if (idleSync === undefined) {
            idleSync = setTimeout(syncIdle, SYNC_EVERY_MS);
          }
        } catch (err) {
          // A part of a content written aside that this copy lacks says `lagging` (catch up again).
          const e =
            err instanceof ReplicationError
              ? err
              : new ReplicationError('io', `applying the leader's op ${applier.appliedLsn + 1}: ${(err as Error).message}`);
          conn.close(e);
          throw e;
        }
        this.appliedLsn = applier.appliedLsn;
      }
    } finally {
      clearInterval(timer);
      if (idleSync !== undefined) clearTimeout(idleSync);
    }
  }

  /** The stream is past L_end: the copy is one state of the leader's, durable. */
  private async markComplete(): Promise<void> {
    rmSync(join(this.o.dataDir, REPLICA_MARK), { force: true });
    await syncPath(this.o.dataDir);
    this.complete = true;
    this.savePosition(true);
    this.log.info({ leader: this.leader, lsn: this.durableLsn }, 'replication: copy complete (past the catch-up end)');
    this.emit('complete', { lsn: this.durableLsn });
  }

  /**
   * Written after the ops up to it were made durable, without an fsync of its own: a lost
   * or older position only means resuming from an earlier LSN (the ops replay idempotently),
   * a torn one means a catch-up. At most every 200 ms while streaming.
   */
  private savePosition(now: boolean): void {
    if (!this.complete) return;
    const t = Date.now();
    if (!now && t - this.lastSaved < 200) return;
    this.lastSaved = t;
    const p: Position = { stream: this.stream, term: this.term, lsn: this.durableLsn };
    writeFileSync(join(this.o.dataDir, REPLICA_POSITION), JSON.stringify(p));
  }

  private readPosition(): Position | null {
    try {
      const p = JSON.parse(readFileSync(join(this.o.dataDir, REPLICA_POSITION), 'utf8')) as Position;
      return typeof p.stream === 'string' && Number.isSafeInteger(p.lsn) && p.lsn >= 0 ? p : null;
    } catch {
      return null;
    }
  }

  private closeApplier(): void {
    const a = this.applier;
    this.applier = undefined;
    if (a === undefined) return;
    try {
      a.close();
      // close() syncs what was applied: all of it is durable now.
      this.durableLsn = a.durableLsn;
      this.savePosition(true);
    } catch (err) {
      this.log.warn({ reason: (err as Error).message }, 'replication: closing the applier failed');
    }
  }
}
