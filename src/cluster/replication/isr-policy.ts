import type { ConfirmGate } from './confirm-gate';
import type { ReplicationLog } from './log';
import type { OpBacklog } from './op-backlog';

export const DEFAULT_MAX_LAG_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_LAG_MS = 10_000;

/** A follower's stream as the policy sees it (LeaderStream has these). */
export interface FollowerProgress {
  node: string;
  acked: number;
  lastAckAt: number;
  startLsn: number;
}

export interface IsrPolicyOptions {
  /** this node's name: kept in the ISR as it is, never judged */
  self: string;
  /** the ISR as stored now (with or without this node) */
  isr: string[];
  /** writes the ISR (ClusterNode.setIsr: a guarded write only the current leader can make) */
  setIsr(nodes: string[]): Promise<void>;
  gate: ConfirmGate;
  backlog: OpBacklog;
  /** the followers' current streams */
  streams(): Iterable<FollowerProgress>;
  maxLagBytes?: number;
  maxLagMs?: number;
  log: ReplicationLog;
}

/**
 * The leader's ISR policy (docs/cluster.md, "ISR removal and rejoin"). A member that lags
 * more than maxLagBytes or has not acked for maxLagMs is removed; a follower that acked the
 * LSN the leader had when its stream started, and is within both bounds, is added. The
 * gate (what confirms wait for) follows the stored ISR safely: a member leaves the gate only
 * after the write removing it succeeded, and joins it before the write adding it is made
 * (once listed, it may be elected, so it must hold every confirmed message). A failed write
 * changes nothing, and is tried again at the next check.
 */
export class IsrPolicy {
  isr: string[];
  writes = 0;
  failedWrites = 0;
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  /** the LSN a removed node must ack before it is added back: the leader's when it was removed */
  private readonly mustReach = new Map<string, number>();
  /**
   * For each follower outside the ISR: the leader's LSN at some moment, and when. It joins
   * once it acks that LSN within catchUpMs of the moment (it is at most that far behind);
   * when it takes longer, the target moves to the leader's LSN now and it tries again. So a
   * follower that has just made up the backlog of a pause does not make confirms wait for
   * the seconds of ops that came meanwhile.
   */
  private readonly targets = new Map<string, { lsn: number; at: number }>();
  private readonly catchUpMs: number;
  /** when each node was last heard (an ack), or when we started judging it */
  private readonly heard = new Map<string, number>();
  private readonly maxLagBytes: number;
  private readonly maxLagMs: number;

  constructor(private readonly o: IsrPolicyOptions) {
    this.isr = o.isr.slice();
    this.maxLagBytes = o.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES;
    this.maxLagMs = o.maxLagMs ?? DEFAULT_MAX_LAG_MS;
    // At least two checks long (they run every 250 ms at most), so that reaching it is seen in time.
    this.catchUpMs = Math.max(500, this.maxLagMs / 4);
    const now = Date.now();
    for (const n of this.followers(this.isr)) this.heard.set(n, now);
    o.gate.setIsr(this.followers(this.isr));
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), Math.max(50, Math.min(250, this.maxLagMs / 8)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** A follower acked (its stream's lastAckAt is now). */
  heardFrom(node: string): void {
    this.heard.set(node, Date.now());
  }

  private followers(nodes: string[]): string[] {
    return nodes.filter((n) => n !== this.o.self);
  }

  /** One judgement of every follower; at most one ISR write in flight. */
  async check(): Promise<void> {
    if (this.writing) return;
    const now = Date.now();
    const streams = new Map<string, FollowerProgress>();
    for (const s of this.o.streams()) streams.set(s.node, s);
    const remove: Array<{ node: string; why: string }> = [];
    for (const n of this.followers(this.isr)) {
      const s = streams.get(n);
      const silent = now - (this.heard.get(n) ?? now);
      const lag = s === undefined || s.acked === 0 ? -1 : this.o.backlog.bytesAfter(s.acked);
      if (silent > this.maxLagMs) remove.push({ node: n, why: `no ack for ${silent} ms` });
      else if (lag > this.maxLagBytes) remove.push({ node: n, why: `${lag} bytes behind` });
    }
    const add: string[] = [];
    for (const s of streams.values()) {
      if (this.isr.includes(s.node) || s.node === this.o.self) continue;
      let t = this.targets.get(s.node);
      if (t === undefined || t.lsn < s.startLsn) {
        t = { lsn: Math.max(s.startLsn, this.mustReach.get(s.node) ?? 0), at: now };
        this.targets.set(s.node, t);
      }
      if (s.acked === 0 || s.acked < t.lsn) continue;
      if (now - t.at > this.catchUpMs) {
        this.targets.set(s.node, { lsn: this.o.backlog.lastLsn, at: now });
        continue;
      }
      if (now - s.lastAckAt > this.maxLagMs || this.o.backlog.bytesAfter(s.acked) > this.maxLagBytes) continue;
      add.push(s.node);
    }
    for (const n of this.targets.keys()) if (!streams.has(n) || this.isr.includes(n)) this.targets.delete(n);
    if (remove.length === 0 && add.length === 0) return;
    await this.write(remove, add);
  }

  /**
   * A leader stopping cleanly: its store is closed, so a follower that acked its last op holds
   * all of it and joins the ISR now even if not yet judged in sync (one that joined moments ago),
   * so that a stop right after it joined does not leave nobody allowed to lead.
   */
  async handOver(whole: string[]): Promise<void> {
    const add = whole.filter((n) => n !== this.o.self && !this.isr.includes(n));
    if (add.length === 0 || this.writing) return;
    await this.write([], add, 'hand-over: the followers hold every op');
  }

  /** One ISR write; the gate follows the stored ISR safely (see the class comment). */
  private async write(remove: Array<{ node: string; why: string }>, add: string[], why?: string): Promise<void> {
    const gone = new Set(remove.map((r) => r.node));
    const next = [...this.isr.filter((n) => !gone.has(n)), ...add];
    const before = this.isr;
    this.writing = true;
    // Joining members are waited for from now on; leaving ones until the write succeeded.
    if (add.length > 0) this.o.gate.setIsr(this.followers([...before, ...add]));
    try {
      await this.o.setIsr(next);
      this.isr = next;
      this.writes++;
      for (const n of add) {
        this.heard.set(n, Date.now());
        this.mustReach.delete(n);
      }
      for (const n of gone) this.mustReach.set(n, this.o.backlog.lastLsn);
      this.o.gate.setIsr(this.followers(next));
      this.o.log.info({ isr: next, removed: remove, added: add, ...(why !== undefined ? { why } : {}) }, 'replication: ISR changed');
    } catch (err) {
      this.failedWrites++;
      this.o.gate.setIsr(this.followers(before));
      this.o.log.warn(
        { isr: before, wanted: next, reason: (err as Error).message },
        'replication: ISR write failed; confirms keep waiting as before',
      );
    } finally {
      this.writing = false;
    }
  }
}
