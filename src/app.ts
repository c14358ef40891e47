import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Config } from './config';
import type { Logger } from './logger';
import { Broker } from './broker/broker';
import { Connection } from './server/connection';
import { Store } from './store/store';
import { HttpServer } from './http/http-server';
import { Stats } from './http/stats/stats';
import type { Alarms, Listener } from './http/context';
import { hostname } from 'node:os';
import { CONNECTION_FORCED } from './protocol/constants';
import { alarmLimits, blockedReason, ResourceAlarms } from './server/alarms';
import { MemoryBudget } from './store/memory-budget';

/** The AMQP and management HTTP listeners and the set of live connections over one Broker. */
export class Server {
  readonly broker: Broker;
  readonly connections = new Set<Connection>();
  private amqp: NetServer | null = null;
  private readonly http: HttpServer;
  readonly stats: Stats;
  readonly startedAt = Date.now();
  readonly nodeName: string;

  readonly store: Store;
  /** memory and disk alarms */
  readonly resourceAlarms: ResourceAlarms;

  constructor(
    readonly config: Config,
    readonly log: Logger,
  ) {
    // Messages all queues keep in memory: the memory monitor sizes this to what the
    // watermark leaves, so a flood into queues nobody reads pages out before the alarm.
    const messageMemory = new MemoryBudget(0);
    this.resourceAlarms = new ResourceAlarms(alarmLimits(config), config.dataDir, log, () => this.updateBlocked(), messageMemory);
    this.store = new Store(
      config.dataDir,
      { segmentSize: config.segmentSize, queueMemoryBudget: config.queueMemoryBudget, memoryBudget: messageMemory },
      log,
      (err) => this.storeFailed(err),
    );
    this.broker = new Broker(
      { defaultUser: config.defaultUser, defaultPass: config.defaultPass, loopbackUsers: config.loopbackUsers },
      this.store,
      log,
    );
    this.broker.onUserDeleted = (name) => this.closeConnectionsOf(name);
    this.broker.onVhostDeleted = (name) => this.closeConnectionsTo(name);
    this.nodeName = config.nodeName !== '' ? config.nodeName : `leveret@${hostname().split('.')[0]}`;
    this.stats = new Stats(this.broker, this.connections, config.statsInterval);
    this.http = new HttpServer(
      {
        broker: this.broker,
        connections: this.connections,
        stats: this.stats,
        nodeName: this.nodeName,
        startedAt: this.startedAt,
        dataDir: config.dataDir,
        listeners: () => this.listeners(),
        alarms: () => this.alarms(),
      },
      { host: config.host, port: config.httpPort },
      log,
    );
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
    ];
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
    const t0 = Date.now();
    const recovered = this.broker.recover(this.log);
    this.log.info({ ...recovered, ms: Date.now() - t0 }, 'store recovered');
    this.resourceAlarms.start();
    this.stats.start();
    // HTTP first: once AMQP accepts connections (what scripts wait for), the API answers too.
    await this.http.start();
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.amqp = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'AMQP listener error'));
    this.log.info({ port: this.port, host: this.config.host, dataDir: this.config.dataDir }, `Leveret listening for AMQP on ${this.config.host}:${this.port}`);
  }

  private accept(socket: Socket): void {
    const counters = this.broker.nodeCounters;
    const conn = new Connection(socket, this.broker, this.store.scheduler, this.config, this.log, (c) => {
      if (this.connections.delete(c)) counters.connectionsClosed++;
    });
    this.connections.add(conn);
    counters.connectionsOpened++;
    if (this.blocked !== null) conn.setBlocked(this.blocked);
  }

  async stop(reason = 'shutdown'): Promise<void> {
    const server = this.amqp;
    this.amqp = null;
    const closed = server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...this.connections].map((c) => c.forceClose(reason)));
    await closed;
    this.stats.stop();
    this.resourceAlarms.stop();
    await this.http.stop().catch((err: unknown) => this.log.warn({ err }, 'management HTTP listener did not close cleanly'));
    this.store.close();
    this.log.info('Leveret stopped');
  }
}
