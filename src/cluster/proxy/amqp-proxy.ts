import { connect, createServer, type Server, type Socket } from 'node:net';
import { refuseAmqp } from './amqp-refusal';
import { silentProxyLog, targetName, type ProxyLog, type ProxyTarget } from './proxy-log';
import { listen } from '../../listen';

export interface AmqpProxyOptions {
  /** this node's name, in the reason a refused client reads */
  node: string;
  /** how long a connection to the leader may take before the client is refused */
  connectTimeoutMs?: number;
  /**
   * how long a refused client gets to read its connection.close before its socket goes, and a
   * forwarded connection whose other side ended to flush what is queued
   */
  refusalTimeoutMs?: number;
  /**
   * TLS pass-through (amqps, https): the bytes go to the leader's TLS port given by `portOf`,
   * encrypted end to end. A refusal cannot be said inside TLS without terminating it, so a
   * refused client's socket is simply closed.
   */
  passThrough?: { protocol: string; portOf: (t: ProxyTarget) => number | undefined };
  log?: ProxyLog;
}

export interface AmqpProxyCounters {
  /** client connections forwarded now (connecting to the leader included) */
  current: number;
  /** client connections forwarded since start */
  total: number;
  /** bytes read from clients and passed to the leader */
  bytesToLeader: number;
  /** bytes read from the leader and passed to clients */
  bytesToClients: number;
  /** clients refused because no leader was known */
  refusedNoLeader: number;
  /** clients refused because the leader did not accept the connection in time */
  refusedUnreachable: number;
}

/** One client socket and its connection to the leader. */
interface Forwarded {
  client: Socket;
  leader: Socket;
  /** the leader accepted: bytes flow (and are counted) */
  connected: boolean;
}

/**
 * A follower's AMQP port: each client connection becomes a TCP connection to the leader and
 * the bytes are piped both ways without being parsed, so heartbeats, flow control
 * (connection.blocked) and every method reach the other side unchanged. Back-pressure is the
 * pipes': a side that does not read pauses the other, so the proxy holds at most a socket
 * buffer per direction, whatever the backlog. When the leader changes, every forwarded
 * connection is closed: the clients reconnect (to this port or another node) and reach the
 * new leader; a connection left open would talk to a deposed broker.
 */
export class AmqpProxy {
  private server: Server | null = null;
  private target: ProxyTarget | null = null;
  private readonly forwarded = new Set<Forwarded>();
  /** clients being refused (they get a moment to read why): closed at once by close() */
  private readonly refusing = new Set<Socket>();
  /** targets whose failure was logged as a warning; cleared by a success or a new target */
  private readonly warned = new Set<string>();
  private readonly log: ProxyLog;
  private readonly connectTimeoutMs: number;
  private readonly refusalTimeoutMs: number;
  private total = 0;
  private refusedNoLeader = 0;
  private refusedUnreachable = 0;
  /** bytes of connections already closed; live ones are read from their sockets */
  private closedToLeader = 0;
  private closedToClients = 0;

  /** what the logs call this port: AMQP, or the pass-through's protocol */
  private readonly protocol: string;
  private readonly portOf: (t: ProxyTarget) => number | undefined;

  constructor(private readonly o: AmqpProxyOptions) {
    this.log = o.log ?? silentProxyLog;
    this.protocol = o.passThrough?.protocol ?? 'AMQP';
    this.portOf = o.passThrough?.portOf ?? ((t) => t.amqpPort);
    this.connectTimeoutMs = o.connectTimeoutMs ?? 3000;
    this.refusalTimeoutMs = o.refusalTimeoutMs ?? 2000;
  }

  /** Binds host:port (0 picks a free port) and resolves with the port bound. */
  async listen(host: string, port: number): Promise<number> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    await listen(server, port, host);
    server.on('error', (err) => this.log.warn({ err }, `${this.protocol} proxy listener error`));
    return this.port;
  }

  /** The port bound; -1 before listen(). */
  get port(): number {
    const addr = this.server?.address();
    return addr !== null && typeof addr === 'object' ? addr.port : -1;
  }

  /**
   * The leader to forward to, or null when none is known. A different target closes every
   * forwarded connection; the same address again keeps them.
   */
  setTarget(target: ProxyTarget | null): void {
    const old = this.target;
    this.target = target;
    if (this.sameTarget(old, target)) return;
    this.warned.clear();
    if (this.forwarded.size > 0) {
      this.log.info(
        { connections: this.forwarded.size, from: old === null ? null : targetName(old, this.portOf(old) ?? -1) },
        `${this.protocol} proxy: leader changed, closing forwarded connections`,
      );
    }
    this.closeAll();
  }

  counters(): AmqpProxyCounters {
    let toLeader = this.closedToLeader;
    let toClients = this.closedToClients;
    for (const f of this.forwarded) {
      if (!f.connected) continue;
      toLeader += f.client.bytesRead;
      toClients += f.leader.bytesRead;
    }
    return {
      current: this.forwarded.size,
      total: this.total,
      bytesToLeader: toLeader,
      bytesToClients: toClients,
      refusedNoLeader: this.refusedNoLeader,
      refusedUnreachable: this.refusedUnreachable,
    };
  }

  /** Stops listening and closes every forwarded connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.closeAll();
    for (const s of this.refusing) s.destroy();
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private refuse(client: Socket, reason: string): void {
    if (this.o.passThrough !== undefined) {
      client.destroy();
      return;
    }
    this.refusing.add(client);
    client.once('close', () => this.refusing.delete(client));
    refuseAmqp(client, reason, this.refusalTimeoutMs);
  }

  private closeAll(): void {
    for (const f of this.forwarded) {
      f.client.destroy();
      f.leader.destroy();
    }
  }

  private accept(client: Socket): void {
    const target = this.target;
    const port = target === null ? undefined : this.portOf(target);
    if (target === null || port === undefined || port < 0) {
      this.refusedNoLeader++;
      this.refuse(client, `no leader is known to node ${this.o.node}: the cluster is electing one; retry`);
      return;
    }
    // The client's first bytes wait in its socket until the leader accepted: if it does not,
    // the client is refused with a reason instead of finding its socket closed.
    client.pause();
    const leader = connect({ host: target.host, port, noDelay: true });
    const f: Forwarded = { client, leader, connected: false };
    this.forwarded.add(f);
    this.total++;
    const key = `${target.host}:${port}`;
    const unreachable = (why: string): void => {
      clearTimeout(timer);
      leader.destroy();
      this.forget(f);
      if (client.destroyed || client.closed) return;
      this.refusedUnreachable++;
      const name = targetName(target, port);
      if (!this.warned.has(key)) {
        this.warned.add(key);
        this.log.warn({ leader: name, reason: why }, `${this.protocol} proxy: the leader does not accept connections; refusing clients`);
      } else {
        this.log.debug({ leader: name, reason: why }, `${this.protocol} proxy: the leader does not accept connections`);
      }
      this.refuse(client, `node ${this.o.node} cannot reach the leader (${name}: ${why}); retry`);
    };
    const timer = setTimeout(() => unreachable(`no answer within ${this.connectTimeoutMs} ms`), this.connectTimeoutMs);
    leader.once('connect', () => {
      clearTimeout(timer);
      f.connected = true;
      this.warned.delete(key);
      client.pipe(leader);
      leader.pipe(client);
    });
    leader.on('error', (err: NodeJS.ErrnoException) => {
      if (!f.connected) unreachable(err.code ?? err.message);
      else this.log.debug({ err: err.message }, `${this.protocol} proxy: leader side of a forwarded connection failed`);
    });
    client.on('error', (err) =>
      this.log.debug({ err: err.message }, `${this.protocol} proxy: client side of a forwarded connection failed`),
    );
    // A side that failed takes the other with it; a side that ended cleanly has had its end
    // passed on by the pipe, which flushes what is still queued (a connection.close-ok, say)
    // before the other side closes. A peer that never reads that is cut after a while.
    let open = 2;
    const sideClosed = (other: Socket, hadError: boolean): void => {
      if (!f.connected || hadError) {
        clearTimeout(timer);
        other.destroy();
      } else if (!other.destroyed) {
        setTimeout(() => other.destroy(), this.refusalTimeoutMs).unref();
      }
      if (--open === 0) this.forget(f);
    };
    client.once('close', (hadError) => sideClosed(leader, hadError));
    leader.once('close', (hadError) => {
      // a leader that never connected hands the client to the refusal (see unreachable)
      if (f.connected) sideClosed(client, hadError);
      else if (--open === 0) this.forget(f);
    });
  }

  private sameTarget(a: ProxyTarget | null, b: ProxyTarget | null): boolean {
    if (a === null || b === null) return a === b;
    return a.host === b.host && this.portOf(a) === this.portOf(b) && a.node === b.node;
  }

  /** Counts a connection's bytes into the closed totals, once. */
  private forget(f: Forwarded): void {
    if (!this.forwarded.delete(f) || !f.connected) return;
    this.closedToLeader += f.client.bytesRead;
    this.closedToClients += f.leader.bytesRead;
  }
}
