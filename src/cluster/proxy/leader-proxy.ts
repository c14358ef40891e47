import { AmqpProxy, type AmqpProxyCounters } from './amqp-proxy';
import { HttpProxy, type HttpProxyCounters } from './http-proxy';
import { silentProxyLog, type ProxyLog, type ProxyTarget } from './proxy-log';

export type { ProxyLog, ProxyTarget } from './proxy-log';

export interface LeaderProxyOptions {
  /** this node's name: in the via header and in the reasons clients read */
  node: string;
  /** how long connecting to the leader may take before the client is refused (AMQP) or gets a 502 (HTTP) */
  connectTimeoutMs?: number;
  log?: ProxyLog;
}

export interface LeaderProxyListen {
  host: string;
  /** 0 picks a free port (see amqpPort after start) */
  amqpPort: number;
  httpPort: number;
  /** the amqps port, forwarded to the leader's as TLS (no termination here); absent: not bound */
  amqpsPort?: number;
  /** the HTTPS management port, likewise */
  httpsPort?: number;
}

export interface LeaderProxyCounters {
  amqp: AmqpProxyCounters;
  http: HttpProxyCounters;
  /** TLS pass-through ports, when bound */
  amqps?: AmqpProxyCounters;
  https?: AmqpProxyCounters;
}

/**
 * What a follower serves its clients with: its own AMQP and HTTP ports, forwarding to the
 * leader given by setTarget (null while none is known). It knows nothing of etcd or of the
 * rest of the cluster: the caller tells it where the leader is.
 */
export class LeaderProxy {
  private readonly amqp: AmqpProxy;
  private readonly http: HttpProxy;
  private amqps: AmqpProxy | null = null;
  private https: AmqpProxy | null = null;
  private readonly log: ProxyLog;
  private target: ProxyTarget | null = null;

  constructor(private readonly o: LeaderProxyOptions) {
    this.log = o.log ?? silentProxyLog;
    this.amqp = new AmqpProxy({ node: o.node, connectTimeoutMs: o.connectTimeoutMs, log: this.log });
    this.http = new HttpProxy({ node: o.node, connectTimeoutMs: o.connectTimeoutMs, log: this.log });
  }

  /** Binds both ports; until setTarget, AMQP clients are refused and HTTP answers 503. */
  async start(listen: LeaderProxyListen): Promise<void> {
    if (listen.amqpsPort !== undefined) this.amqps = this.passThrough('amqps', (t) => t.amqpsPort);
    if (listen.httpsPort !== undefined) this.https = this.passThrough('https', (t) => t.httpsPort);
    try {
      await this.amqp.listen(listen.host, listen.amqpPort);
      await this.http.listen(listen.host, listen.httpPort);
      if (listen.amqpsPort !== undefined) await this.amqps!.listen(listen.host, listen.amqpsPort);
      if (listen.httpsPort !== undefined) await this.https!.listen(listen.host, listen.httpsPort);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info(
      {
        node: this.o.node,
        host: listen.host,
        amqpPort: this.amqpPort,
        httpPort: this.httpPort,
        amqpsPort: this.amqpsPort,
        httpsPort: this.httpsPort,
      },
      'forwarding clients to the leader: proxies listening',
    );
  }

  private passThrough(protocol: string, portOf: (t: ProxyTarget) => number | undefined): AmqpProxy {
    return new AmqpProxy({
      node: this.o.node,
      connectTimeoutMs: this.o.connectTimeoutMs,
      log: this.log,
      passThrough: { protocol, portOf },
    });
  }

  /** The AMQP port bound; -1 before start. */
  get amqpPort(): number {
    return this.amqp.port;
  }

  /** The HTTP port bound; -1 before start. */
  get httpPort(): number {
    return this.http.port;
  }

  /** The amqps pass-through port bound; -1 when not asked for. */
  get amqpsPort(): number {
    return this.amqps?.port ?? -1;
  }

  /** The HTTPS pass-through port bound; -1 when not asked for. */
  get httpsPort(): number {
    return this.https?.port ?? -1;
  }

  /** The leader clients go to, or null while none is known (AMQP refused with 320, HTTP 503). */
  setTarget(target: ProxyTarget | null): void {
    const copy = target === null ? null : { ...target };
    const old = this.target;
    this.target = copy;
    if (JSON.stringify(old) === JSON.stringify(copy)) return;
    this.log.info(
      { node: this.o.node, leader: copy, previous: old },
      copy === null ? 'no leader known: refusing clients' : 'forwarding clients to the leader',
    );
    this.amqp.setTarget(copy);
    this.http.setTarget(copy);
    this.amqps?.setTarget(copy);
    this.https?.setTarget(copy);
  }

  counters(): LeaderProxyCounters {
    const c: LeaderProxyCounters = { amqp: this.amqp.counters(), http: this.http.counters() };
    if (this.amqps !== null) c.amqps = this.amqps.counters();
    if (this.https !== null) c.https = this.https.counters();
    return c;
  }

  async stop(): Promise<void> {
    await Promise.all([this.amqp.close(), this.http.close(), this.amqps?.close(), this.https?.close()]);
  }
}
