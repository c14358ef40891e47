import { randomUUID } from 'node:crypto';
import { attachStoreTap } from '../../store/store-tap';
import type { SyncScheduler } from '../../store/sync-scheduler';
import { ConfirmGate } from './confirm-gate';
import { ReplicationError } from './errors';
import type { FramedConnection } from './framed-connection';
import { IsrPolicy } from './isr-policy';
import type { LiveSource } from './leader-session';
import { LeaderStream } from './leader-stream';
import { silentLog, type ReplicationLog } from './log';
import { DEFAULT_BACKLOG_BYTES, OpBacklog } from './op-backlog';
import { OpTap, type OpSink } from './op-tap';
import { OpsFrames } from './ops-frame';
import { ReplicationServer } from './replication-server';
import { OpKind } from './store-ops';

export interface LeaderReplicationOptions {
  /** the store's group-commit scheduler: its confirms wait for the ISR through the gate */
  scheduler: SyncScheduler;
  dataDir: string;
  /** `--replication-port` (0: any free one) */
  port: number;
  host?: string;
  secret: string;
  term: number;
  cluster: string;
  /** this node's name (kept in the ISR, never judged) */
  node: string;
  /** followers in the ISR a confirm needs at least (`--min-isr`) */
  minIsr: number;
  /** the ISR as stored now */
  isr: string[];
  /** writes the ISR; confirms stop waiting for a removed follower only once it resolved */
  setIsr(nodes: string[]): Promise<void>;
  /** whether this node still leads (ClusterNode.isLeader): checked before each release of confirms */
  isLeader(): boolean;
  isMember?: (node: string) => boolean;
  backlogBytes?: number;
  maxLagBytes?: number;
  maxLagMs?: number;
  log?: ReplicationLog;
}

export interface FollowerStatus {
  node: string;
  acked: number;
  /** bytes of ops the follower lacks */
  lagBytes: number;
  /** ms since its last ack */
  silentMs: number;
  inIsr: boolean;
}

export interface LeaderReplication {
  port: number;
  /** the stream's id: a follower's saved position is valid within it only */
  stream: string;
  lsn(): number;
  isr(): string[];
  followers(): FollowerStatus[];
  backlog: OpBacklog;
  gate: ConfirmGate;
  /**
   * Ends the leadership's replication: no confirm is released any more (the gate stays on the
   * scheduler, closed), the tap is detached, the port closed. With drainMs (a clean stop), first
   * waits that long at most for the followers to ack every op.
   */
  stop(drainMs?: number): Promise<void>;
}

/**
 * Makes this node's store a replication leader: numbers the store's changes (OpTap) into
 * the shared backlog, serves followers' catch-ups and streams on the replication port,
 * holds confirms until the ISR has each round (ConfirmGate), and keeps the ISR (IsrPolicy).
 * stop() ends it; the store's confirms stay held (a store that led never confirms alone again).
 */
export async function startLeaderReplication(o: LeaderReplicationOptions): Promise<LeaderReplication> {
  const log = o.log ?? silentLog;
  const stream = randomUUID();
  const backlog = new OpBacklog(o.backlogBytes ?? DEFAULT_BACKLOG_BYTES);
  const frames = new OpsFrames(backlog, o.term);
  const streams = new Map<string, LeaderStream>();
  /** path → LSN of the REMOVE op; the unlink of a segment runs in the thread pool after it */
  const removed = new Map<string, number>();
  let pumpScheduled = false;
  /** The setImmediate's: nothing when the store's sync start already pumped this turn. */
  const pumpAll = (): void => {
    if (!pumpScheduled) return;
    pumpNow();
  };
  const pumpNow = (): void => {
    pumpScheduled = false;
    for (const s of streams.values()) s.pump();
  };
  const sink: OpSink = {
    reserve: (size) => backlog.reserve(size),
    get writeAt() {
      return backlog.writeAt;
    },
    commit(lsn, size) {
      backlog.commit(lsn, size);
      if (!pumpScheduled && streams.size > 0) {
        pumpScheduled = true;
        setImmediate(pumpAll);
      }
    },
  };
  const tap = new OpTap(
    o.dataDir,
    sink,
    () => {
      // The turn's appends are written and their fdatasync starts: the followers get them now,
      // so that their sync runs alongside ours rather than a loop iteration later.
      if (pumpScheduled) pumpNow();
    },
    (kind, path, lsn) => {
      if (kind === OpKind.REMOVE) {
        removed.set(path, lsn);
        if (removed.size > 4096) for (const [p, l] of removed) if (l < backlog.firstLsn) removed.delete(p);
      } else if (kind === OpKind.OPEN || kind === OpKind.MKDIR || kind === OpKind.REPLACE || kind === OpKind.REPLACE_END) {
        if (removed.size > 0) removed.delete(path);
      }
    },
  );
  let brokenSaid = false;
  // A stream that no longer describes the directory (a write to a file the tap never saw
  // opened) must not vouch for anything: confirms are held, never released on it.
  const sound = (): boolean => {
    if (tap.broken === null) return true;
    if (!brokenSaid) {
      brokenSaid = true;
      log.warn({ reason: tap.broken }, 'replication: the op stream is incomplete; confirms are held');
    }
    return false;
  };
  const gate = new ConfirmGate(
    o.scheduler,
    // The mark taken when the round started, not tap.lsn: that would add the round's own SYNCED
    // op and what came in while it ran, which followers only get after our fdatasync ends.
    () => tap.syncedUpTo,
    o.minIsr,
    () => o.isLeader(),
    sound,
  );
  const policy = new IsrPolicy({
    self: o.node,
    isr: o.isr,
    setIsr: (nodes) => o.setIsr(nodes),
    gate,
    backlog,
    streams: () => streams.values(),
    maxLagBytes: o.maxLagBytes,
    maxLagMs: o.maxLagMs,
    log,
  });
  const events = {
    acked(s: LeaderStream): void {
      // A follower still copying acks 0 ("alive"): that is not being in step.
      if (s.acked > 0) policy.heardFrom(s.node);
      gate.ack(s.node, s.acked);
    },
    ended(s: LeaderStream, why: ReplicationError): void {
      if (streams.get(s.node) !== s) return;
      streams.delete(s.node);
      gate.ack(s.node, -1);
      log.info({ follower: s.node, code: why.code, reason: why.message, acked: s.acked, sent: s.bytesSent }, 'replication: stream ended');
    },
  };
  const live: LiveSource = {
    lsn: () => tap.lsn,
    pin: (lsn) => backlog.pin(lsn),
    removedBy(lsn: number): string[] {
      const out: string[] = [];
      for (const [p, l] of removed) if (l <= lsn) out.push(p);
      return out;
    },
    stream(conn: FramedConnection, node: string, from: number): Promise<void> {
      const s = new LeaderStream(conn, node, backlog, frames, o.term, from, events);
      const old = streams.get(node);
      streams.set(node, s);
      if (old !== undefined) old.fail(new ReplicationError('closed', `${node} opened another stream`));
      gate.ack(node, -1);
      log.info({ follower: node, from, lsn: tap.lsn, backlog: [backlog.firstLsn, backlog.lastLsn] }, 'replication: streaming to follower');
      return s.run();
    },
  };
  const server = new ReplicationServer({
    port: o.port,
    host: o.host,
    dataDir: o.dataDir,
    secret: o.secret,
    term: o.term,
    cluster: o.cluster,
    isMember: o.isMember,
    log,
    live,
    stream,
  });
  attachStoreTap(tap);
  o.scheduler.gate = gate;
  const port = await server.start();
  policy.start();
  return {
    port,
    stream,
    lsn: () => tap.lsn,
    isr: () => policy.isr.slice(),
    backlog,
    gate,
    followers(): FollowerStatus[] {
      const now = Date.now();
      return [...streams.values()].map((s) => ({
        node: s.node,
        acked: s.acked,
        lagBytes: backlog.bytesAfter(s.acked),
        silentMs: now - s.lastAckAt,
        inIsr: policy.isr.includes(s.node),
      }));
    },
    async stop(drainMs = 0): Promise<void> {
      policy.stop();
      if (drainMs > 0) {
        // A clean stop: the last ops (the store's final sync) go out, and each follower gets
        // a moment to make them durable, before the connections close.
        pumpNow();
        const until = Date.now() + drainMs;
        while (Date.now() < until && [...streams.values()].some((s) => s.acked < tap.lsn)) await new Promise((r) => setTimeout(r, 10));
        // A hand-over: followers that acked the last op join the ISR before this node leaves.
        if (o.isLeader()) await policy.handOver([...streams.values()].filter((s) => s.acked >= tap.lsn).map((s) => s.node));
      }
      // The gate stays, closed: a store that led must not go back to confirming on its own
      // disk (the wiring closes a demoted leader's clients; until then nothing is confirmed).
      gate.close();
      attachStoreTap(null);
      await server.stop();
    },
  };
}
