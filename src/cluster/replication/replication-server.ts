import { createServer, type Server, type Socket } from 'node:net';
import { ReplicationError } from './errors';
import { FramedConnection } from './framed-connection';
import { acceptFollower } from './leader-handshake';
import { LeaderSession, type LiveSource } from './leader-session';
import { silentLog, type ReplicationLog } from './log';
import { listen } from '../../listen';

export interface ReplicationServerOptions {
  /** `--replication-port`; 0 picks a free one (see port after start()). */
  port: number;
  host?: string;
  dataDir: string;
  secret: string;
  /** this leadership's term: the leader key's create_revision in etcd */
  term: number;
  cluster: string;
  /** Whether a node name is a registered member; every name is accepted when absent. */
  isMember?: (node: string) => boolean;
  handshakeTimeoutMs?: number;
  log?: ReplicationLog;
  /** a live leader: its ops are streamed after each follower's catch-up */
  live?: LiveSource;
  /** the live stream's id, told in WELCOME */
  stream?: string;
}

/**
 * The leader's replication port: authenticates each follower, then serves its catch-up from
 * the data directory. One session per connection; a session's failure ends only that
 * connection. The live stream of appends will be served on the same connections.
 */
export class ReplicationServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly log: ReplicationLog;
  port = 0;

  constructor(private readonly o: ReplicationServerOptions) {
    this.log = o.log ?? silentLog;
  }

  async start(): Promise<number> {
    const server = createServer((s) => void this.serve(s));
    this.server = server;
    await listen(server, this.o.port, this.o.host ?? '0.0.0.0');
    this.port = (server.address() as { port: number }).port;
    this.log.info({ port: this.port, term: this.o.term, dataDir: this.o.dataDir }, 'replication: listening for followers');
    return this.port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async serve(socket: Socket): Promise<void> {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const conn = new FramedConnection(socket, `follower at ${socket.remoteAddress}:${socket.remotePort}`);
    let node: string;
    try {
      node = await acceptFollower(
        conn,
        {
          cluster: this.o.cluster,
          secret: this.o.secret,
          term: this.o.term,
          isMember: this.o.isMember ?? (() => true),
          stream: this.o.stream,
        },
        this.o.handshakeTimeoutMs ?? 5000,
      );
    } catch (err) {
      this.log.warn(
        { follower: conn.peer, code: (err as ReplicationError).code, reason: (err as Error).message },
        'replication: follower refused',
      );
      return;
    }
    this.log.info({ follower: conn.peer, node, term: this.o.term }, 'replication: follower authenticated');
    const session = new LeaderSession(conn, this.o.dataDir, this.o.term, this.log, this.o.live ?? null, node);
    try {
      await session.run();
    } catch (err) {
      const e = err as ReplicationError;
      // A follower that closes after its catch-up is the normal end for now.
      const level = e.code === 'closed' ? 'info' : 'warn';
      this.log[level](
        { follower: conn.peer, code: e.code, reason: e.message, bytesSent: session.bytesSent },
        'replication: follower session ended',
      );
      conn.close(e instanceof ReplicationError ? e : new ReplicationError('protocol', String(err)));
    }
  }
}
