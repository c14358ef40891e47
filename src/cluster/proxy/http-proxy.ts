import {
  Agent,
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { silentProxyLog, targetName, type ProxyLog, type ProxyTarget } from './proxy-log';
import { listen } from '../../listen';

export interface HttpProxyOptions {
  /** this node's name: in the via header and in the reasons of 503 and 502 answers */
  node: string;
  /** how long a new connection to the leader may take before the request gets a 502 */
  connectTimeoutMs?: number;
  log?: ProxyLog;
}

export interface HttpProxyCounters {
  /** requests forwarded now */
  current: number;
  /** requests forwarded since start */
  total: number;
  /** request body bytes passed to the leader */
  bytesToLeader: number;
  /** response body bytes passed to clients */
  bytesToClients: number;
  /** 503 answers: no leader known */
  unavailable: number;
  /** 502 answers: the leader failed before it answered */
  badGateway: number;
}

/**
 * Headers that describe one hop, not the request (RFC 9110 7.6.1): each side of the proxy
 * has its own. Node frames the bodies again on each side (content-length or chunked).
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * A follower's management HTTP port: every request goes to the leader's with its method, path,
 * query, headers (Authorization included) and body, streamed both ways (a slow side pauses the
 * other); the leader's status, headers and body come back unchanged but for a `via` naming
 * this node. The leader does the authentication, so a 401 reaches the client as the leader
 * sent it. With no leader known the answer is a 503, and a leader that fails before answering
 * gives a 502, both in the management API's JSON error shape.
 */
export class HttpProxy {
  private server: Server | null = null;
  private target: ProxyTarget | null = null;
  /** keep-alive connections to the current leader; replaced (and its sockets closed) with it */
  private agent: Agent | null = null;
  private readonly warned = new Set<string>();
  private readonly log: ProxyLog;
  private readonly connectTimeoutMs: number;
  private readonly c: HttpProxyCounters = { current: 0, total: 0, bytesToLeader: 0, bytesToClients: 0, unavailable: 0, badGateway: 0 };

  constructor(private readonly o: HttpProxyOptions) {
    this.log = o.log ?? silentProxyLog;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 3000;
  }

  async listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => this.forward(req, res));
    this.server = server;
    await listen(server, port, host);
    server.on('error', (err) => this.log.warn({ err }, 'HTTP proxy listener error'));
    return this.port;
  }

  get port(): number {
    const addr = this.server?.address();
    return addr !== null && typeof addr === 'object' ? addr.port : -1;
  }

  /**
   * The leader to forward to, or null. A different leader's connections replace the old
   * one's; requests in flight to the old leader end (502, or a cut response).
   */
  setTarget(target: ProxyTarget | null): void {
    const old = this.target;
    this.target = target;
    if (sameHttpTarget(old, target)) return;
    this.warned.clear();
    this.agent?.destroy();
    this.agent = target === null ? null : new Agent({ keepAlive: true, maxSockets: 64 });
  }

  counters(): HttpProxyCounters {
    return { ...this.c };
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.agent?.destroy();
    this.agent = null;
    if (server !== null) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const target = this.target;
    const agent = this.agent;
    if (target === null || agent === null) {
      this.c.unavailable++;
      req.resume(); // a body nobody will read must not hold the connection
      reply(res, 503, 'service_unavailable', `no leader is known to node ${this.o.node}: the cluster is electing one; retry`, {
        'retry-after': '1',
      });
      return;
    }
    const name = targetName(target, target.httpPort);
    const key = `${target.host}:${target.httpPort}`;
    this.c.total++;
    this.c.current++;
    let finished = false;
    let clientGone = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      this.c.current--;
    };
    const up = request({
      host: target.host,
      port: target.httpPort,
      method: req.method,
      path: req.url,
      headers: this.requestHeaders(req),
      agent,
    });
    let timer: NodeJS.Timeout | undefined;
    up.on('socket', (s: Socket) => {
      if (!s.connecting) return; // a kept-alive connection
      timer = setTimeout(() => up.destroy(new Error(`no answer within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      s.once('connect', () => clearTimeout(timer));
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      done();
      const why = err.code ?? err.message;
      if (clientGone) return;
      if (res.headersSent) {
        res.destroy(); // the client sees a cut response, never a wrong complete one
        return;
      }
      this.c.badGateway++;
      req.resume();
      if (this.agent !== agent) {
        // our own doing: setTarget closed this leader's connections
        reply(res, 502, 'bad_gateway', `the leader changed while node ${this.o.node} forwarded this request to ${name}; retry`);
        return;
      }
      if (!this.warned.has(key)) {
        this.warned.add(key);
        this.log.warn({ leader: name, reason: why }, 'HTTP proxy: the leader failed before answering; answering 502');
      }
      reply(res, 502, 'bad_gateway', `node ${this.o.node} could not get an answer from the leader (${name}): ${why}`);
    });
    up.on('response', (upRes) => {
      this.warned.delete(key);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, this.responseHeaders(upRes.headers));
      upRes.on('data', (chunk: Buffer) => (this.c.bytesToClients += chunk.length));
      upRes.on('end', done);
      upRes.on('error', () => res.destroy());
      upRes.pipe(res);
    });
    req.on('data', (chunk: Buffer) => (this.c.bytesToLeader += chunk.length));
    // A client that goes away before its answer is complete ends the leader's side too.
    res.on('close', () => {
      done();
      if (res.writableFinished) return;
      clientGone = true;
      up.destroy();
    });
    req.pipe(up);
  }

  private requestHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const out = withoutHopByHop(req.headers);
    // Node's server has already answered a 100-continue to the client, and the body follows.
    delete out.expect;
    // Node writes the body chunked when it has no length; say so for methods it would not.
    if (req.headers['transfer-encoding'] !== undefined) out['transfer-encoding'] = 'chunked';
    out.via = appendVia(req.headers.via, req.httpVersion, this.o.node);
    const peer = req.socket.remoteAddress;
    const forwardedFor = req.headers['x-forwarded-for'];
    if (peer !== undefined) out['x-forwarded-for'] = forwardedFor === undefined ? peer : `${String(forwardedFor)}, ${peer}`;
    return out;
  }

  private responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out = withoutHopByHop(headers);
    out.via = appendVia(headers.via, '1.1', this.o.node);
    return out;
  }
}

function withoutHopByHop(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  // Connection may name more headers that belong to this hop only.
  const named = new Set((headers.connection ?? '').split(',').map((h) => h.trim().toLowerCase()));
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  }
  return out;
}

/** RFC 9110 7.6.3: each proxy appends "<protocol version> <its name>". */
function appendVia(existing: string | undefined, httpVersion: string, node: string): string {
  const ours = `${httpVersion} ${node}`;
  return existing === undefined || existing === '' ? ours : `${existing}, ${ours}`;
}

/** An answer of the proxy itself, in the management API's error shape. */
function reply(res: ServerResponse, status: number, error: string, reason: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error, reason });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sameHttpTarget(a: ProxyTarget | null, b: ProxyTarget | null): boolean {
  if (a === null || b === null) return a === b;
  return a.host === b.host && a.httpPort === b.httpPort && a.node === b.node;
}
