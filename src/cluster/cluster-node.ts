import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue } from 'etcd3';
import { monotonicNow } from './clock';
import { ClusterView } from './cluster-view';
import { parseEtcdEndpoints } from './endpoints';
import { ClusterError } from './errors';
import { connectEtcd } from './etcd';
import { IsrStore, type IsrRecord, type LeaderClaim } from './isr';
import { checkName, ClusterKeys } from './keys';
import { LeaderElection, type LeaderRecord } from './leader';
import { NodeLease } from './lease';
import { MemberRegistry, type MemberInfo } from './member';

export interface ClusterNodeOptions {
  /** `--cluster-etcd`: comma-separated http://host:port list, or its entries. */
  etcd: string | readonly string[];
  clusterName: string;
  nodeName: string;
  advertiseHost: string;
  replicationPort: number;
  amqpPort: number;
  httpPort: number;
  /** The amqps and HTTPS ports when this node has TLS (0 or absent: none), advertised for the followers' pass-through. */
  amqpsPort?: number;
  httpsPort?: number;
  /** Lease TTL in seconds (etcd raises values below its minimum, about 2 s). */
  leaseTtlSeconds?: number;
  /** How much earlier than etcd we consider our lease gone. Default: 10 % of the TTL, at least 100 ms. */
  fenceMarginMs?: number;
  /** Deadline of each etcd call, and of the reachability probe at start. */
  etcdTimeoutMs?: number;
  /**
   * Asked before every campaign: a reason keeps this node from campaigning (it reports `waiting`
   * with it), e.g. while its data directory is an unfinished copy; null lets it campaign. Call
   * reconsider() when the answer may have changed.
   */
  whyNotLead?: () => string | null;
}

export type ClusterRole = 'starting' | 'leader' | 'follower' | 'waiting' | 'stopped';

export interface LeaderEvent {
  term: number;
  claim: LeaderClaim;
  /** monotonicNow() when leadership was known won. */
  from: number;
  validUntil: number;
}

export interface DemotedEvent {
  term: number;
  reason: string;
  /** The last deadline this leader held; nothing may have been confirmed after it. */
  validUntil: number;
  at: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function syntheticKv(key: string, value: string, revision: number, lease: string): IKeyValue {
  const rev = String(revision);
  return {
    key: Buffer.from(key),
    value: Buffer.from(value),
    create_revision: rev,
    mod_revision: rev,
    version: '1',
    lease,
  };
}

/**
 * This node's part in the cluster: member registration, leader election and fencing, on one
 * etcd lease per "session". When the lease is lost (etcd says so, or our local deadline passes
 * first), the session ends: a leader is demoted, the lease is revoked, and a new session with a
 * new lease registers again and may campaign for a new term.
 *
 * Events: 'leader' (LeaderEvent), 'renewed' ({term, validUntil}) while leading, 'demoted'
 * (DemotedEvent), 'follower' ({leader, term}), 'waiting' ({reason}), 'members' (MemberInfo[]),
 * 'isr' (string[]), 'session' ({lease, ttl}), 'warning' (Error: a retried failure).
 */
export class ClusterNode extends EventEmitter {
  private readonly keys: ClusterKeys;
  private readonly hosts: string[];
  private readonly ttl: number;
  private readonly marginMs: number;
  private readonly timeoutMs: number;
  private client: Etcd3 | undefined;
  private view: ClusterView | undefined;
  private registry: MemberRegistry | undefined;
  private election: LeaderElection | undefined;
  private isrStore: IsrStore | undefined;
  private lease: NodeLease | undefined;
  private claim: LeaderClaim | undefined;
  private roleNow: ClusterRole = 'starting';
  private followedTerm = 0;
  private waitingFor = '';
  private evaluating = false;
  private evaluateAgain = false;
  private stopped = false;

  constructor(private readonly opts: ClusterNodeOptions) {
    super();
    checkName('node name', opts.nodeName);
    this.keys = new ClusterKeys(opts.clusterName);
    this.hosts = parseEtcdEndpoints(opts.etcd);
    this.ttl = opts.leaseTtlSeconds ?? 5;
    if (!Number.isInteger(this.ttl) || this.ttl < 1) {
      throw new ClusterError('bad-option', `invalid lease TTL ${this.ttl}: a whole number of seconds, at least 1`);
    }
    this.marginMs = opts.fenceMarginMs ?? Math.max(100, this.ttl * 100);
    if (!(this.marginMs >= 0 && this.marginMs < (this.ttl * 1000) / 2)) {
      throw new ClusterError('bad-option', `invalid fence margin ${this.marginMs} ms: below half the TTL`);
    }
    this.timeoutMs = opts.etcdTimeoutMs ?? 2000;
  }

  get name(): string {
    return this.opts.nodeName;
  }

  get role(): ClusterRole {
    return this.roleNow;
  }

  /** The current term: ours when leading, else the leader's we follow (0 if none known). */
  get term(): number {
    return this.claim ? this.claim.term : this.followedTerm;
  }

  /**
   * True only while this node leads AND its lease is provably alive. Checked synchronously against
   * the clock, so callers (every confirm) get the truth even right after the process was paused;
   * when the deadline has passed this call itself emits 'demoted' before returning false.
   */
  isLeader(): boolean {
    if (!this.claim || !this.lease) return false;
    return this.lease.fence.isValid();
  }

  /** monotonicNow() until which leadership holds (0 when not leading). */
  get leaseValidUntil(): number {
    return this.claim && this.lease ? this.lease.fence.validUntil : 0;
  }

  members(): MemberInfo[] {
    return this.view ? this.view.members() : [];
  }

  isr(): string[] {
    return this.view?.isr ? [...this.view.isr.nodes] : [];
  }

  leaderName(): string | undefined {
    return this.view?.leader?.node;
  }

  /** The etcd client of this node (undefined before start()), for the cluster's other keys. */
  get etcd(): Etcd3 | undefined {
    return this.client;
  }

  /** Looks at the cluster again, e.g. once whyNotLead() may have changed its answer. */
  reconsider(): void {
    if (!this.stopped) void this.evaluate();
  }

  /**
   * Gives up leadership at once (e.g. the data directory turned out unfit to serve): demotes,
   * revokes the lease so the leader key goes now, and starts a new session, which campaigns
   * again only if whyNotLead() allows.
   */
  resign(reason: string): void {
    const lease = this.lease;
    if (!this.claim || !lease) return;
    this.lease = undefined;
    this.demote(reason, lease.fence.validUntil);
    lease.close();
    this.setWaiting(reason);
    void this.reopen(lease);
  }

  async start(): Promise<void> {
    const client = await connectEtcd(this.hosts, { callTimeoutMs: this.timeoutMs });
    this.client = client;
    this.registry = new MemberRegistry(client, this.keys);
    this.election = new LeaderElection(client, this.keys, this.name);
    this.isrStore = new IsrStore(client, this.keys);
    const view = new ClusterView(client, this.keys);
    this.view = view;
    view.on('leader', (rec: LeaderRecord | null) => this.onLeaderKey(rec));
    view.on('isr', (rec: IsrRecord | null) => this.onIsrKey(rec));
    view.on('members', (list: MemberInfo[]) => this.emit('members', list));
    try {
      await view.start();
      await this.openSession();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Replaces the ISR; only a leader with a live lease may, and etcd checks the term again. */
  async setIsr(nodes: readonly string[]): Promise<void> {
    const claim = this.claim;
    if (!this.isLeader() || !claim || !this.isrStore) {
      throw new ClusterError('not-leader', `node ${this.name} is not the leader: only the leader changes the ISR`);
    }
    if (!nodes.includes(this.name)) {
      throw new ClusterError('bad-option', `the ISR must keep its leader (${this.name})`);
    }
    const unique = [...new Set(nodes)];
    unique.forEach((n) => checkName('node name', n));
    const revision = await this.isrStore.write(claim, unique);
    this.view?.applyPut(syntheticKv(this.keys.isr, JSON.stringify(unique), revision, '0'));
  }

  /** Leaves the cluster: revoking the lease deletes our member key and, if leading, the leader key. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.claim) this.demote('stopping');
    this.roleNow = 'stopped';
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await lease.revoke(this.timeoutMs);
    if (this.view) await this.view.stop();
    this.client?.close();
  }

  private async openSession(): Promise<void> {
    const client = this.client;
    const registry = this.registry;
    if (!client || !registry) return;
    const lease = await NodeLease.grant(client, this.ttl, this.marginMs);
    if (this.stopped) {
      await lease.revoke(this.timeoutMs);
      return;
    }
    lease.on('lost', (reason: string) => this.onLeaseLost(lease, reason));
    lease.on('renewed', (validUntil: number) => {
      if (this.lease === lease && this.claim) this.emit('renewed', { term: this.claim.term, validUntil });
    });
    const info: MemberInfo = {
      name: this.name,
      advertiseHost: this.opts.advertiseHost,
      replicationPort: this.opts.replicationPort,
      amqpPort: this.opts.amqpPort,
      httpPort: this.opts.httpPort,
      amqpsPort: this.opts.amqpsPort ?? 0,
      httpsPort: this.opts.httpsPort ?? 0,
      joinedAt: new Date().toISOString(),
    };
    try {
      // A name still held after a TTL and a bit is held by another live process.
      await registry.register(info, lease, (lease.ttlSeconds + 1) * 1000);
    } catch (err) {
      await lease.revoke(this.timeoutMs);
      throw err;
    }
    if (this.stopped || lease.lost) {
      await lease.revoke(this.timeoutMs);
      if (this.stopped) return;
      throw new ClusterError('etcd-unreachable', 'the etcd lease ended while registering (etcd unreachable or too slow)');
    }
    this.lease = lease;
    this.emit('session', { lease: lease.id, ttl: lease.ttlSeconds });
    void this.evaluate();
  }

  private onLeaseLost(lease: NodeLease, reason: string): void {
    if (this.lease !== lease) return;
    this.lease = undefined;
    if (this.claim) this.demote(`lease lost: ${reason}`, lease.fence.validUntil);
    this.setWaiting(`lease lost: ${reason}`);
    void this.reopen(lease);
  }

  /**
   * After a lost lease: give it back (its keys go now rather than at its TTL; else our new session
   * would wait for our own old member key) and start afresh, retrying both while etcd is away.
   */
  private async reopen(old: NodeLease): Promise<void> {
    // Past two TTLs etcd has expired it by itself, unless etcd was down (a restarted etcd gives
    // every lease a fresh TTL); then the new session's registration waits for it.
    const stopRevokingAt = Date.now() + 2 * old.ttlSeconds * 1000;
    let revoked = false;
    while (!this.stopped && !this.lease) {
      try {
        if (!revoked) revoked = await old.revoke(this.timeoutMs);
        if (!revoked && Date.now() < stopRevokingAt) {
          await sleep(250);
          continue;
        }
        await this.openSession();
      } catch (err) {
        this.emit('warning', err instanceof Error ? err : new Error(String(err)));
        await sleep(500);
      }
    }
  }

  private demote(reason: string, validUntil = this.lease?.fence.validUntil ?? 0): void {
    const claim = this.claim;
    if (!claim) return;
    this.claim = undefined;
    this.roleNow = 'waiting';
    const ev: DemotedEvent = { term: claim.term, reason, validUntil, at: monotonicNow() };
    this.emit('demoted', ev);
  }

  private setWaiting(reason: string): void {
    if (this.roleNow === 'waiting' && this.waitingFor === reason) return;
    this.roleNow = 'waiting';
    this.waitingFor = reason;
    this.followedTerm = 0;
    this.emit('waiting', { reason });
  }

  private onLeaderKey(rec: LeaderRecord | null): void {
    if (this.claim) {
      if (!rec || rec.term !== this.claim.term) {
        this.demote(rec ? `the leader key now names ${rec.node} (term ${rec.term})` : 'the leader key was deleted');
        void this.evaluate();
      }
      return;
    }
    void this.evaluate();
  }

  private onIsrKey(rec: IsrRecord | null): void {
    this.emit('isr', rec ? [...rec.nodes] : []);
    if (!this.claim && !this.view?.leader) void this.evaluate();
  }

  /** Runs evaluateOnce until nothing changed meanwhile; never two at a time. */
  private async evaluate(): Promise<void> {
    if (this.evaluating) {
      this.evaluateAgain = true;
      return;
    }
    this.evaluating = true;
    try {
      for (let round = 0; !this.stopped; round++) {
        this.evaluateAgain = false;
        try {
          await this.evaluateOnce();
        } catch (err) {
          this.emit('warning', err instanceof Error ? err : new Error(String(err)));
          this.evaluateAgain = true;
          await sleep(250);
        }
        if (!this.evaluateAgain) break;
        if (round > 0) await sleep(50);
      }
    } finally {
      this.evaluating = false;
    }
  }

  private async evaluateOnce(): Promise<void> {
    const lease = this.lease;
    const view = this.view;
    const election = this.election;
    if (!lease || !view || !election || this.stopped || this.claim) return;
    if (view.leader) {
      this.follow(view.leader, lease);
      return;
    }
    const notNow = this.opts.whyNotLead?.() ?? null;
    if (notNow !== null) {
      this.setWaiting(notNow);
      return;
    }
    const isr = view.isr;
    if (isr && !isr.nodes.includes(this.name)) {
      this.setWaiting(`not in the ISR (${isr.nodes.join(', ')}): may not become leader`);
      return;
    }
    const result = await election.campaign(lease, isr);
    // A claim made on a lease that ended meanwhile is void: revoking that lease deletes the key.
    if (this.lease !== lease || this.stopped) return;
    if (!result.won) {
      const rev = result.revision;
      if (result.leaderKv) view.applyPut(result.leaderKv);
      else view.applyDelete(this.keys.leader, rev);
      if (result.isrKv) view.applyPut(result.isrKv);
      else view.applyDelete(this.keys.isr, rev);
      // If the leader key is still absent the ISR had moved on: the view now has it, try again.
      if (!view.leader) this.evaluateAgain = true;
      return;
    }
    if (!lease.fence.isValid()) return; // the 'lost' handler has run
    this.claim = result.claim;
    this.roleNow = 'leader';
    this.waitingFor = '';
    view.applyPut(syntheticKv(this.keys.leader, result.claim.value, result.revision, lease.id));
    if (!isr) view.applyPut(syntheticKv(this.keys.isr, JSON.stringify([this.name]), result.revision, '0'));
    const ev: LeaderEvent = {
      term: result.claim.term,
      claim: result.claim,
      from: monotonicNow(),
      validUntil: lease.fence.validUntil,
    };
    this.emit('leader', ev);
  }

  private follow(leader: LeaderRecord, lease: NodeLease): void {
    if (leader.node === this.name) {
      if (leader.lease === lease.id) {
        // Our own claim whose answer we missed (the call timed out after etcd applied it).
        if (!lease.fence.isValid()) return;
        this.claim = { term: leader.term, value: leader.value };
        this.roleNow = 'leader';
        this.emit('leader', {
          term: leader.term,
          claim: this.claim,
          from: monotonicNow(),
          validUntil: lease.fence.validUntil,
        } satisfies LeaderEvent);
        return;
      }
      this.setWaiting('the leader key is held by a previous session of this node; waiting for its lease to end');
      return;
    }
    if (this.roleNow === 'follower' && this.followedTerm === leader.term) return;
    this.roleNow = 'follower';
    this.followedTerm = leader.term;
    this.waitingFor = '';
    this.emit('follower', { leader: leader.node, term: leader.term });
  }
}
