import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { ioCounts } from './store/io-counters';
import type { Config } from './config';
import type { Logger } from './logger';
import { Broker } from './broker/broker';
import { Connection } from './server/connection';
import { Store } from './store/store';
import { HttpServer } from './http/http-server';
import { Stats } from './http/stats/stats';
import type { Alarms, Listener } from './http/context';
import type { ClusterStatus } from './http/cluster-status';
import { hostname } from 'node:os';
import { CONNECTION_FORCED } from './protocol/constants';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { admit, loadTls, serverOptions, type TlsMaterial } from './server/tls';
import { ConfigError } from './config';
import { alarmLimits, blockedReason, ResourceAlarms } from './server/alarms';
import { MemoryBudget } from './store/memory-budget';
import { keepPiecesBelowRss } from './server/content-assembler';
import { growingYoungGeneration, YoungGenerationPolicy } from './young-generation';
import { listen } from './listen';

/** The AMQP and management HTTP listeners and the set of live connections over one Broker. */
export class Server {
  readonly broker: Broker;
  readonly connections = new Set<Connection>();
  private amqp: NetServer | null = null;
  private readonly http: HttpServer;
  /** amqps, when TLS is configured */
  private amqps: TlsServer | null = null;
  /** the management API over HTTPS, when TLS is configured */
  private readonly https: HttpServer | null = null;
  readonly stats: Stats;
  readonly startedAt = Date.now();
  readonly nodeName: string;

  readonly store: Store;
  /** memory and disk alarms */
  readonly resourceAlarms: ResourceAlarms;
  /** lets V8's young generation grow while messages move, and shrink back when they stop */
  private readonly youngGeneration: YoungGenerationPolicy;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    /** the certificate material, read and checked by the caller (a bad file is a configuration error) */
    private tls: TlsMaterial | null = loadTls(config),
  ) {
    // Messages all queues keep in memory: the memory monitor sizes this to what the
    // watermark leaves, so a flood into queues nobody reads pages out before the alarm.
    const messageMemory = new MemoryBudget(0);
    const limits = alarmLimits(config);
    this.resourceAlarms = new ResourceAlarms(limits, config.dataDir, log, () => this.updateBlocked(), messageMemory);
    keepPiecesBelowRss(limits.memory / 2);
    this.store = new Store(
      config.dataDir,
      { segmentSize: config.segmentSize, queueMemoryBudget: config.queueMemoryBudget, memoryBudget: messageMemory },
      log,
      (err) => this.storeFailed(err),
    );
    // TEST ONLY (test/cluster-stream.test.ts, test/cluster-live.test.ts): the store's ops mirrored
    // into a second directory, or streamed to followers by a replication leader of fixed term.
    if (process.env.LEVERET_TEST_STREAM_TO || process.env.LEVERET_TEST_REPLICATION) {
      // Loaded only then: a single-node broker loads nothing from src/cluster.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { attachForTests } = require('./cluster/replication/test-attach') as typeof import('./cluster/replication/test-attach');
      const drain = attachForTests(process.env, config.dataDir, this.store, log);
      if (drain !== null) {
        const stop = this.stop.bind(this);
        this.stop = async (reason?: string) => {
          await stop(reason);
          await drain();
        };
      }
    }
    this.broker = new Broker(
      { defaultUser: config.defaultUser, defaultPass: config.defaultPass, loopbackUsers: config.loopbackUsers },
      this.store,
      log,
    );
    this.broker.limits.maxConnections = config.maxConnections;
    this.broker.onUserDeleted = (name) => this.closeConnectionsOf(name);
    this.broker.onVhostDeleted = (name) => this.closeConnectionsTo(name);
    this.nodeName = config.nodeName !== '' ? config.nodeName : `leveret@${hostname().split('.')[0]}`;
    this.stats = new Stats(this.broker, this.connections, config.statsInterval);
    this.youngGeneration = new YoungGenerationPolicy(() => this.messagesMoved());
    const ctx = {
      broker: this.broker,
      connections: this.connections,
      stats: this.stats,
      nodeName: this.nodeName,
      startedAt: this.startedAt,
      dataDir: config.dataDir,
      listeners: () => this.listeners(),
      alarms: () => this.alarms(),
      io: () => ioCounts,
      cluster: () => (this.clusterStatus === null ? null : this.clusterStatus()),
      replicated: () => this.store.definitionsReplicated.wait(),
    };
    this.http = new HttpServer(ctx, { host: config.host, port: config.httpPort }, log);
    if (this.tls !== null && config.httpsPort >= 0) {
      this.https = new HttpServer(ctx, { host: config.host, port: config.httpsPort, tls: this.tls.context }, log);
    }
  }

  /** A deleted user's connections go, as RabbitMQ closes them: 320 with "user 'x' is deleted". */
  private closeConnectionsOf(name: string): void {
    for (const c of this.connections) {
      // A connection still in its handshake may have no user yet.
      if ((c.user as typeof c.user | null)?.name === name) c.closeWith(CONNECTION_FORCED, `user '${name}' is deleted`);
    }
  }

  /** A deleted vhost's connections go, as RabbitMQ closes them: 320 with "vhost 'x' is deleted". */
  private closeConnectionsTo(vhost: string): void {
    for (const c of this.connections) {
      if (c.vhost?.name === vhost) c.closeWith(CONNECTION_FORCED, `vhost '${vhost}' is deleted`);
    }
  }

  /**
   * Why publishers are blocked (connection.blocked), null when they are not: the memory
   * and disk alarms, and a failing disk (store writes failing) until writes succeed again.
   */
  private blocked: string | null = null;
  private storeFailing = false;

  private storeFailed(err: Error | null): void {
    this.storeFailing = err !== null;
    if (err !== null) this.log.error({ err }, 'store write failed: blocking publishers until it succeeds again');
    else this.log.info('store writes succeed again: unblocking publishers');
    this.updateBlocked();
  }

  private updateBlocked(): void {
    const a = this.resourceAlarms;
    const reason = blockedReason(a.memory, a.disk, this.storeFailing);
    if (reason === this.blocked) return;
    this.blocked = reason;
    for (const c of this.connections) c.setBlocked(reason);
  }

  private listeners(): Listener[] {
    const ip = this.config.host;
    return [
      { protocol: 'amqp', ip_address: ip, port: this.port },
      { protocol: 'http', ip_address: ip, port: this.httpPort },
      ...this.tlsListeners(),
    ];
  }

  private tlsListeners(): Listener[] {
    const tls = this.tls;
    if (tls === null) return [];
    const ip = this.config.host;
    const certificate = { certfile: tls.certFile, cacertfile: tls.caFile, certificate: tls.certificate };
    const out: Listener[] = [];
    if (this.amqps !== null) out.push({ protocol: 'amqp/ssl', ip_address: ip, port: this.tlsPort, certificate });
    if (this.https !== null) out.push({ protocol: 'https', ip_address: ip, port: this.https.port, certificate });
    return out;
  }

  /** The amqps port actually bound (differs from config.tlsPort when that was 0); -1 without TLS. */
  get tlsPort(): number {
    const addr = this.amqps?.address();
    return addr !== null && typeof addr === 'object' ? addr.port : -1;
  }

  /** The HTTPS management port actually bound; -1 without it. */
  get httpsPort(): number {
    return this.https?.port ?? -1;
  }

  /**
   * SIGHUP: reads the certificate files again. New TLS connections get the new certificate;
   * established ones keep their session. A file that does not load keeps the old certificate.
   */
  reloadTls(): void {
    if (this.tls === null) {
      this.log.info('reload requested: TLS is not configured, nothing to reload');
      return;
    }
    let material: TlsMaterial;
    try {
      material = loadTls(this.config)!;
    } catch (err) {
      const reason = err instanceof ConfigError ? err.message : String(err);
      this.log.error({ reason }, 'TLS certificate reload failed; keeping the previous certificate');
      return;
    }
    this.amqps?.setSecureContext(material.context);
    this.https?.setSecureContext(material.context);
    this.tls = material;
    const c = material.certificate;
    this.log.info({ subject: c.subject, validTo: c.validTo, fingerprint256: c.fingerprint256 }, 'TLS certificate reloaded');
  }

  /** A failing disk counts as a disk alarm too: publishers are blocked. */
  private alarms(): Alarms {
    const a = this.resourceAlarms;
    return { memory: a.memory, disk: a.disk || this.storeFailing, memoryLimit: a.limits.memory, diskFreeLimit: a.limits.diskFree };
  }

  /** The AMQP port actually bound (differs from config.port when that was 0). */
  get port(): number {
    const addr = this.amqp?.address();
    return addr !== null && typeof addr === 'object' ? addr.port : this.config.port;
  }

  /** The management HTTP port actually bound (differs from config.httpPort when that was 0). */
  get httpPort(): number {
    return this.http.port;
  }

  async start(): Promise<void> {
    if (this.beforeRecover !== null) await this.beforeRecover();
    const t0 = Date.now();
    // Recovering a large store is message traffic: the young generation may grow for it.
    const recovered = growingYoungGeneration(() => this.broker.recover(this.log));
    const previousStop = this.store.previousStopClean ? 'clean' : 'unclean (crash, kill -9 or first start): logs checked record by record';
    this.log.info({ ...recovered, bytes: this.messageBytes(), ms: Date.now() - t0, previousStop }, 'store recovered');
    this.resourceAlarms.start();
    this.stats.start();
    this.youngGeneration.start();
    // HTTP first: once AMQP accepts connections (what scripts wait for), the API answers too.
    await this.http.start();
    if (this.https !== null) await this.https.start();
    if (this.tls !== null && this.config.tlsPort >= 0) await this.startAmqps(this.tls);
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.amqp = server;
    await listen(server, this.config.port, this.config.host);
    server.on('error', (err) => this.log.error({ err }, 'AMQP listener error'));
    this.log.info(
      { protocol: 'amqp', port: this.port, host: this.config.host, tls: false, dataDir: this.config.dataDir },
      `Leveret listening for AMQP on ${this.config.host}:${this.port}`,
    );
  }

  /**
   * Messages routed into queues and taken out of them (deliveries and gets) so far, for the
   * young generation policy: read twice a second, a few numbers per vhost and queue.
   */
  private messagesMoved(): number {
    let n = this.broker.nodeCounters.routedInDeletedVhosts;
    for (const v of this.broker.vhosts.values()) {
      n += v.counters.routed;
      for (const q of v.queues.values()) n += q.counters.delivered + q.counters.got;
    }
    return n;
  }

  /** Bytes of message bodies the queues hold (after recovery: what came back from disk). */
  private messageBytes(): number {
    let bytes = 0;
    for (const v of this.broker.vhosts.values()) for (const q of v.queues.values()) bytes += q.store.bytes;
    return bytes;
  }

  private async startAmqps(tls: TlsMaterial): Promise<void> {
    // A TLS handshake gets as long as the AMQP one (--handshake-timeout): a silent client is dropped as on plain TCP.
    const server = createTlsServer({ ...serverOptions(this.config, tls), handshakeTimeout: this.config.handshakeTimeout, noDelay: true });
    server.on('secureConnection', (socket: TLSSocket) => {
      if (admit(socket, this.config)) this.accept(socket);
    });
    // A failed handshake (no certificate, an old protocol version) concerns that client only.
    server.on('tlsClientError', (err, socket) =>
      this.log.debug({ err: err.message, peer: `${socket.remoteAddress}:${socket.remotePort}` }, 'TLS handshake failed'),
    );
    this.amqps = server;
    await listen(server, this.config.tlsPort, this.config.host);
    server.on('error', (err) => this.log.error({ err }, 'AMQPS listener error'));
    this.log.info(
      { protocol: 'amqp/ssl', tlsPort: this.tlsPort, host: this.config.host, tls: true },
      `Leveret listening for AMQP over TLS on ${this.config.host}:${this.tlsPort}`,
    );
  }

  /** One callback for every connection (a closure each would stay as long as the connection). */
  private readonly connectionGone = (c: Connection): void => {
    if (this.connections.delete(c)) this.broker.nodeCounters.connectionsClosed++;
  };

  /**
   * Asked for each new connection when set (cluster mode: "do we still lead?"); false drops the
   * socket. Per connection, never per message.
   */
  admit: (() => boolean) | null = null;
  /**
   * Runs before the store opens a file (a cluster leader's replication: its tap must see every
   * file opened, and its confirm gate be in place before any client gets in).
   */
  beforeRecover: (() => Promise<void>) | null = null;
  /** Cluster mode: what /api/nodes and /metrics show of the cluster this node leads. */
  clusterStatus: (() => ClusterStatus) | null = null;

  private accept(socket: Socket): void {
    if (this.admit !== null && !this.admit()) {
      socket.destroy();
      return;
    }
    const counters = this.broker.nodeCounters;
    const conn = new Connection(socket, this.broker, this.store.scheduler, this.config, this.log, this.connectionGone);
    this.connections.add(conn);
    counters.connectionsOpened++;
    if (this.blocked !== null) conn.setBlocked(this.blocked);
  }

  async stop(reason = 'shutdown'): Promise<void> {
    // A management API change still waiting for the followers is not answered as done.
    this.store.definitionsReplicated.abandon(new Error(`stopped before the followers had the change (${reason})`));
    const server = this.amqp;
    this.amqp = null;
    const closed = server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    const amqps = this.amqps;
    this.amqps = null;
    const tlsClosed = amqps === null ? Promise.resolve() : new Promise<void>((resolve) => amqps.close(() => resolve()));
    this.log.info({ reason }, 'stopped accepting connections');
    const t0 = Date.now();
    this.log.info({ connections: this.connections.size, reason }, 'closing connections');
    await Promise.all([...this.connections].map((c) => c.forceClose(reason)));
    await closed;
    await tlsClosed;
    this.log.info({ ms: Date.now() - t0 }, 'connections closed');
    this.stats.stop();
    this.youngGeneration.stop();
    this.resourceAlarms.stop();
    await this.http.stop().catch((err: unknown) => this.log.warn({ err }, 'management HTTP listener did not close cleanly'));
    await this.https?.stop().catch((err: unknown) => this.log.warn({ err }, 'management HTTPS listener did not close cleanly'));
    // The store logs how it closed (cleanly, or with writes that could not be made durable).
    this.store.close();
    this.log.info('Leveret stopped');
  }
}
