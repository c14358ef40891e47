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
}

export interface LeaderProxyCounters {
  amqp: AmqpProxyCounters;
  http: HttpProxyCounters;
}

/**
 * What a follower serves its clients with: its own AMQP and HTTP ports, forwarding to the
 * leader given by setTarget (null while none is known). It knows nothing of etcd or of the
 * rest of the cluster: the caller tells it where the leader is.
 */
export class LeaderProxy {
  private readonly amqp: AmqpProxy;
  private readonly http: HttpProxy;
  private readonly log: ProxyLog;
  private target: ProxyTarget | null = null;

  constructor(private readonly o: LeaderProxyOptions) {
    this.log = o.log ?? silentProxyLog;
    this.amqp = new AmqpProxy({ node: o.node, connectTimeoutMs: o.connectTimeoutMs, log: this.log });
    this.http = new HttpProxy({ node: o.node, connectTimeoutMs: o.connectTimeoutMs, log: this.log });
  }

  /** Binds both ports; until setTarget, AMQP clients are refused and HTTP answers 503. */
  async start(listen: LeaderProxyListen): Promise<void> {
    await this.amqp.listen(listen.host, listen.amqpPort);
    try {
      await this.http.listen(listen.host, listen.httpPort);
    } catch (err) {
      await this.amqp.close();
      throw err;
    }
    this.log.info(
      { node: this.o.node, host: listen.host, amqpPort: this.amqpPort, httpPort: this.httpPort },
      'forwarding clients to the leader: AMQP and HTTP proxies listening',
    );
  }

  /** The AMQP port bound; -1 before start. */
  get amqpPort(): number {
    return this.amqp.port;
  }

  /** The HTTP port bound; -1 before start. */
  get httpPort(): number {
    return this.http.port;
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
  }

  counters(): LeaderProxyCounters {
    return { amqp: this.amqp.counters(), http: this.http.counters() };
  }

  async stop(): Promise<void> {
    await Promise.all([this.amqp.close(), this.http.close()]);
  }
}
