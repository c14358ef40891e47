import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Server } from '../app';
import { setServerIdentity } from '../server/server-properties';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { TlsMaterial } from '../server/tls';
import { ClusterNode, type DemotedEvent, type LeaderEvent } from './cluster-node';
import { readOrCreateSecret } from './cluster-secret';
import { clusterSettings, type ClusterSettings } from './cluster-settings';
import { LeaderProxy } from './proxy/leader-proxy';
import { FollowerLoop, type LeaderAddress } from './follower-loop';
import { ClusterKeys } from './keys';
import { REPLICA_MARK } from './replication/node-local';
import { startLeaderReplication, type LeaderReplication } from './replication/leader-replication';

export { ClusterError } from './errors';

export interface ClusterRuntimeOptions {
  /** A failure that leaves this node unable to go on (its store cannot open): the caller exits. */
  onFatal: (message: string, err: unknown) => void;
}

/** How long a leader stopping cleanly waits for its followers to take its last ops. */
const CLEAN_STOP_DRAIN_MS = 3000;

const NO_CONNECTIONS: ReadonlySet<unknown> = new Set();

/** A free TCP port, so that a port given as 0 is fixed once and advertised in the member key. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One Leveret node of a cluster (`--cluster-etcd`): joins the cluster in etcd before anything
 * opens the data directory, then runs the role the election gives it, one role at a time:
 *
 * - leader: the broker (store recovery, AMQP and HTTP listeners) on the data directory, and the
 *   replication port for followers, with this leadership's term;
 * - follower: no broker listener; the data directory is caught up from the leader;
 * - waiting: neither (no leader yet, or this node may not lead and nobody does).
 *
 * Losing leadership (lease lost, fencing, another leader key) stops the broker at once (its
 * clients get 320 CONNECTION_FORCED naming the lost leadership) and the process stays, to
 * follow the next leader. Transitions run one after another on a promise chain, so a new role
 * never starts while the old one is still letting go of the directory.
 */
export class ClusterRuntime {
  readonly config: Config;
  private readonly settings: ClusterSettings;
  private readonly keys: ClusterKeys;
  private node: ClusterNode | undefined;
  private server: Server | null = null;
  private replication: LeaderReplication | null = null;
  private follower: FollowerLoop | null = null;
  private proxy: LeaderProxy | null = null;
  private chain: Promise<void> = Promise.resolve();
  private stopping = false;
  private secret: string | null;

  constructor(
    config: Config,
    private readonly log: Logger,
    private readonly tls: TlsMaterial | null,
    private readonly opts: ClusterRuntimeOptions,
  ) {
    this.settings = clusterSettings(config);
    this.keys = new ClusterKeys(this.settings.clusterName);
    this.secret = this.settings.secret;
    // The broker of every leadership shows the cluster's name for this node.
    this.config = { ...config, nodeName: this.settings.nodeName };
    setServerIdentity(this.settings.nodeName, this.settings.clusterName);
  }

  /** The broker's client connections while leading; none otherwise. */
  get connections(): ReadonlySet<unknown> {
    return this.server?.connections ?? NO_CONNECTIONS;
  }

  get role(): string {
    return this.node?.role ?? 'starting';
  }

  /** SIGHUP: only a running broker has certificates loaded. */
  reloadTls(): void {
    if (this.server !== null) this.server.reloadTls();
    else this.log.info('reload requested: this node is not leading, nothing to reload');
  }

  /**
   * Joins the cluster. Rejects with a ClusterError (the CLI exits 2) when etcd cannot be reached
   * or the node name is held by another live process; nothing has touched the data directory then.
   */
  async start(): Promise<void> {
    const c = this.config;
    // Ports given as 0 are chosen now: they are published in the member key, and every leadership
    // of this process must serve on the same ones.
    if (c.port === 0) c.port = await freePort(c.host);
    if (c.httpPort === 0) c.httpPort = await freePort(c.host);
    if (this.settings.replicationPort === 0) this.settings.replicationPort = await freePort(c.host);
    // The TLS ports likewise: followers bind them too and pass the TLS bytes to the leader's.
    if (this.tls !== null && c.tlsPort === 0) c.tlsPort = await freePort(c.host);
    if (this.tls !== null && c.httpsPort === 0) c.httpsPort = await freePort(c.host);
    const { amqpsPort, httpsPort } = this.tlsPorts();
    const s = this.settings;
    const node = new ClusterNode({
      etcd: s.etcd,
      clusterName: s.clusterName,
      nodeName: s.nodeName,
      advertiseHost: s.advertiseHost,
      replicationPort: s.replicationPort,
      amqpPort: c.port,
      httpPort: c.httpPort,
      amqpsPort,
      httpsPort,
      leaseTtlSeconds: s.leaseTtlSeconds,
      whyNotLead: () => this.whyNotLead(),
    });
    this.node = node;
    node.on('leader', (e: LeaderEvent) => {
      this.transition('leader', e.term, s.nodeName, 'won the election');
      this.enqueue(() => this.lead(e.term));
    });
    node.on('demoted', (e: DemotedEvent) => {
      this.transition('demoted', e.term, node.leaderName(), e.reason);
      if (!this.stopping) this.enqueue(() => this.stepDown(e.term, `leadership of term ${e.term} lost: ${e.reason}`));
    });
    node.on('follower', (e: { leader: string; term: number }) => {
      this.transition('follower', e.term, e.leader, 'a leader is elected');
      this.enqueue(() => this.follow(e.leader, e.term));
    });
    node.on('waiting', (e: { reason: string }) => {
      this.transition('waiting', node.term, node.leaderName(), e.reason);
      // No leader to forward to: clients are refused (AMQP 320, HTTP 503) rather than sent to a gone one.
      if (node.leaderName() === undefined) this.proxy?.setTarget(null);
    });
    node.on('session', (e: { lease: string; ttl: number }) =>
      this.log.info({ lease: e.lease, ttl: e.ttl }, 'cluster: etcd session opened'),
    );
    node.on('isr', (nodes: string[]) => this.log.info({ isr: nodes, term: node.term }, 'cluster: in-sync replicas'));
    node.on('warning', (err: Error) => this.log.warn({ reason: err.message }, 'cluster: etcd call failed; retrying'));
    this.log.info(
      {
        cluster: s.clusterName,
        node: s.nodeName,
        etcd: s.etcd,
        advertiseHost: s.advertiseHost,
        replicationPort: s.replicationPort,
        amqpPort: c.port,
        httpPort: c.httpPort,
        amqpsPort: amqpsPort ?? null,
        httpsPort: httpsPort ?? null,
        minIsr: s.minIsr,
        leaseTtl: s.leaseTtlSeconds,
        secret: s.secret === null ? 'etcd' : 'flag',
      },
      'cluster: joining',
    );
    await node.start();
  }

  /** This node's amqps and HTTPS ports: undefined when it has no TLS or the port is turned off (-1). */
  private tlsPorts(): { amqpsPort?: number; httpsPort?: number } {
    if (this.tls === null) return {};
    const c = this.config;
    return { amqpsPort: c.tlsPort >= 0 ? c.tlsPort : undefined, httpsPort: c.httpsPort >= 0 ? c.httpsPort : undefined };
  }

  /** SIGTERM: ends the running role, then leaves the cluster (the lease is revoked at once). */
  async stop(reason = 'shutdown'): Promise<void> {
    this.stopping = true;
    this.enqueue(async () => {
      await this.stopFollower();
      await this.stopLeaderServices(reason, CLEAN_STOP_DRAIN_MS);
    });
    await this.chain;
    const t0 = Date.now();
    await this.node?.stop();
    this.log.info({ ms: Date.now() - t0 }, 'cluster: left the cluster (lease revoked)');
  }

  private transition(role: string, term: number, leader: string | undefined, reason: string): void {
    this.log.info({ role, term, leader: leader ?? null, node: this.settings.nodeName, reason }, `cluster: ${role}`);
  }

  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(step).catch((err: unknown) => this.opts.onFatal(`cluster: ${(err as Error).message}`, err));
  }

  /**
   * Asked before every campaign. A directory carrying the catch-up mark is a copy cut short: it
   * is never served or elected. Nor is an empty one (no store VERSION) while the ISR names other
   * nodes: a newcomer that has copied nothing yet would serve an empty broker, and the others'
   * catch-up from it would delete their data. (The first node of a new cluster starts empty: no
   * ISR yet; an ISR of this node alone means nobody else holds anything either.)
   */
  private whyNotLead(): string | null {
    const marked = this.markReason();
    if (marked !== null) return marked;
    const dir = this.config.dataDir;
    const others = (this.node?.isr() ?? []).filter((n) => n !== this.settings.nodeName);
    if (others.length > 0 && !existsSync(join(dir, 'VERSION'))) {
      return `data directory ${dir} is empty while the ISR names ${others.join(', ')}: may not lead until a catch-up completes`;
    }
    return null;
  }

  private markReason(): string | null {
    const dir = this.config.dataDir;
    return existsSync(join(dir, REPLICA_MARK))
      ? `data directory ${dir} carries the ${REPLICA_MARK} mark (a copy cut short): may not lead until a catch-up completes`
      : null;
  }

  /** Still the leader of `term` with a live lease? Checked after every wait while taking office. */
  private leads(term: number): boolean {
    const node = this.node;
    return !this.stopping && node !== undefined && node.term === term && node.isLeader();
  }

  /**
   * Takes office for `term`: every service of a leader starts here, in this order, and nowhere
   * else (the live stream and the confirm gate join this function).
   */
  private async lead(term: number): Promise<void> {
    const node = this.node;
    if (!node || !this.leads(term)) return;
    const t0 = Date.now();
    await this.stopFollower();
    // The campaign asked whyNotLead(); only the mark can have appeared since (a catch-up that
    // was under way): then step down again.
    const notFit = this.markReason();
    if (notFit !== null) {
      this.log.error({ term, reason: notFit }, 'cluster: refusing to lead');
      node.resign(`refused to lead: ${notFit}`);
      return;
    }
    if (this.secret === null) {
      try {
        this.secret = await readOrCreateSecret(node.etcd!, this.keys, true);
      } catch (err) {
        this.log.error({ term, reason: (err as Error).message }, 'cluster: cannot read or create the replication secret; stepping down');
        node.resign('cannot read or create the replication secret in etcd');
        return;
      }
      if (!this.leads(term)) return;
    }
    // Members gone from etcd (their lease ran out: the old leader among them) leave the ISR before
    // anything is confirmed, so that confirms do not wait a lag bound for a dead node.
    const live = new Set(node.members().map((m) => m.name));
    const isr = node.isr().filter((n) => n === node.name || live.has(n));
    if (!isr.includes(node.name)) isr.push(node.name);
    if (isr.length !== node.isr().length || !node.isr().includes(node.name)) {
      try {
        await node.setIsr(isr.sort());
      } catch (err) {
        this.log.error({ term, reason: (err as Error).message }, 'cluster: cannot write the ISR on taking office; stepping down');
        node.resign('cannot write the ISR on taking office');
        return;
      }
      if (!this.leads(term)) return;
    }
    const server = new Server(this.config, this.log, this.tls);
    // Between the end of the lease and the demotion being handled, nobody new gets in.
    server.admit = () => node.isLeader();
    server.clusterStatus = () => this.status(term);
    // The store's ops stream to the followers from before it opens its first file (the tap names
    // each file when it is opened), and confirms wait for the ISR before any client connects.
    server.beforeRecover = async () => {
      this.replication = await startLeaderReplication({
        scheduler: server.store.scheduler,
        dataDir: this.config.dataDir,
        port: this.settings.replicationPort,
        host: this.config.host,
        secret: this.secret!,
        term,
        cluster: this.settings.clusterName,
        node: node.name,
        minIsr: this.settings.minIsr,
        maxLagMs: this.settings.maxLagMs,
        isr: node.isr(),
        setIsr: (nodes) => node.setIsr(nodes),
        isLeader: () => node.isLeader(),
        isMember: (name) => node.members().some((m) => m.name === name),
        log: this.log,
      });
    };
    this.server = server;
    try {
      await server.start();
    } catch (err) {
      this.opts.onFatal(`cannot start the broker as leader of term ${term}: ${(err as Error).message}`, err);
      return;
    }
    if (!this.leads(term)) return; // the demotion queued behind us stops the broker
    this.log.info(
      {
        term,
        leader: this.settings.nodeName,
        amqpPort: server.port,
        httpPort: server.httpPort,
        amqpsPort: server.tlsPort,
        httpsPort: server.httpsPort,
        replicationPort: this.replication?.port,
        minIsr: this.settings.minIsr,
        ms: Date.now() - t0,
      },
      'cluster: leading (serving AMQP, HTTP and replication)',
    );
  }

  /**
   * What /api/nodes and /metrics show of the cluster while this node leads it (the shape of
   * src/http/cluster-status.ts; the composition root checks it where it is handed over).
   */
  private status(term: number) {
    const node = this.node!;
    const repl = this.replication;
    const isr = repl?.isr() ?? node.isr();
    const followers = new Map((repl?.followers() ?? []).map((f) => [f.node, f]));
    const lsn = repl?.lsn() ?? 0;
    const registered = new Map(node.members().map((m) => [m.name, m]));
    // A member whose lease ran out (stopped, dead, cut off from etcd) is still shown while the
    // ISR lists it or it streams: as RabbitMQ lists a cluster node that is down.
    const names = [...new Set([...registered.keys(), ...isr, ...followers.keys()])].sort();
    const members = names.map((name) => {
      const m = registered.get(name);
      const f = followers.get(name);
      const self = name === node.name;
      return {
        name,
        role: self ? ('leader' as const) : ('follower' as const),
        running: m !== undefined,
        inSync: isr.includes(name),
        streaming: f !== undefined,
        ackedLsn: self ? lsn : (f?.acked ?? 0),
        lagBytes: self ? 0 : (f?.lagBytes ?? 0),
        silentMs: self ? 0 : (f?.silentMs ?? 0),
        advertiseHost: m?.advertiseHost ?? '',
        amqpPort: m?.amqpPort ?? 0,
        httpPort: m?.httpPort ?? 0,
        replicationPort: m?.replicationPort ?? 0,
        amqpsPort: m?.amqpsPort ?? 0,
        httpsPort: m?.httpsPort ?? 0,
      };
    });
    return { cluster: this.settings.clusterName, term, leader: node.name, minIsr: this.settings.minIsr, isr, lsn, members };
  }

  /** Demoted: the broker stops at once (clients get 320), then the directory is let go. */
  private async stepDown(term: number, reason: string): Promise<void> {
    const t0 = Date.now();
    const had = this.server !== null || this.replication !== null;
    await this.stopLeaderServices(reason);
    if (had) this.log.info({ term, reason, ms: Date.now() - t0 }, 'cluster: stepped down (broker stopped, store closed)');
  }

  /**
   * A clean stop (drainMs > 0) lets the followers take the store's last ops (its final sync)
   * after the broker closed; a demoted leader confirms nothing more and drains nothing.
   */
  private async stopLeaderServices(reason: string, drainMs = 0): Promise<void> {
    const server = this.server;
    const replication = this.replication;
    this.server = null;
    this.replication = null;
    if (drainMs === 0) await Promise.all([server?.stop(reason), replication?.stop()]);
    else {
      await server?.stop(reason);
      await replication?.stop(drainMs);
    }
  }

  private async follow(leader: string, term: number): Promise<void> {
    if (this.stopping) return;
    // A leader we still run (a demotion not yet handled) goes first.
    if (this.server !== null || this.replication !== null) await this.stepDown(term, `${leader} leads term ${term}`);
    const current = this.follower;
    if (current && current.leader === leader && current.term === term) return;
    await this.stopFollower();
    const node = this.node!;
    const loop = new FollowerLoop({
      leader,
      term,
      dataDir: this.config.dataDir,
      nodeName: this.settings.nodeName,
      cluster: this.settings.clusterName,
      log: this.log,
      members: () => node.members(),
      secret: async () => this.secret ?? (await readOrCreateSecret(node.etcd!, this.keys, false)),
      onLeaderKnown: (addr) => this.pointProxy(addr),
      // The mark is gone: if no leader is left meanwhile, this node may now campaign.
      onCaughtUp: () => node.reconsider(),
    });
    this.follower = loop;
    await this.startLeaderProxy();
    loop.start();
  }

  private async stopFollower(): Promise<void> {
    const loop = this.follower;
    this.follower = null;
    if (!loop) return;
    await Promise.all([loop.stop(), this.stopLeaderProxy()]);
  }

  /**
   * A follower forwards AMQP and HTTP clients to the leader on this node's own client ports
   * (LeaderProxy): started when this node follows, pointed at the leader once its address is
   * known (until then AMQP clients are refused with 320 and HTTP gets 503), and stopped, its
   * forwarded clients closed, before this node leads or follows another leader. With TLS, its
   * amqps and HTTPS ports pass the TLS bytes through to the leader's (the client checks the
   * leader's certificate; a client arriving while no leader, or no leader TLS port, is known
   * finds its socket closed: a refusal cannot be said inside TLS without terminating it).
   */
  private async startLeaderProxy(): Promise<void> {
    if (this.proxy !== null) return;
    const proxy = new LeaderProxy({ node: this.settings.nodeName, log: this.log });
    this.proxy = proxy;
    try {
      await proxy.start({ host: this.config.host, amqpPort: this.config.port, httpPort: this.config.httpPort, ...this.tlsPorts() });
    } catch (err) {
      // A port in use concerns the clients only: the node still replicates and may lead.
      this.log.error({ reason: (err as Error).message }, 'cluster: cannot open the follower proxies; clients must use the leader');
      this.proxy = null;
    }
  }

  private pointProxy(leader: LeaderAddress): void {
    this.log.info(
      {
        leader: leader.node,
        host: leader.host,
        amqpPort: leader.amqpPort,
        httpPort: leader.httpPort,
        amqpsPort: leader.amqpsPort,
        httpsPort: leader.httpsPort,
      },
      'cluster: leader address known',
    );
    // A leader without TLS (a key written by an older node, or no certificate there) leaves the
    // TLS ports unforwarded: their clients' sockets are closed at once.
    this.proxy?.setTarget({
      node: leader.node,
      host: leader.host,
      amqpPort: leader.amqpPort,
      httpPort: leader.httpPort,
      amqpsPort: leader.amqpsPort > 0 ? leader.amqpsPort : undefined,
      httpsPort: leader.httpsPort > 0 ? leader.httpsPort : undefined,
    });
  }

  private async stopLeaderProxy(): Promise<void> {
    const proxy = this.proxy;
    this.proxy = null;
    if (proxy !== null) await proxy.stop();
  }
}
