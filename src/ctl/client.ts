// A small client of the management HTTP API: basic auth, JSON in and out, and the two
// ways a call can fail that an operator (and a script) must tell apart.
import http from 'node:http';
import https from 'node:https';

/** The broker answered and said no: its {"error","reason"}, as RabbitMQ's API words it. */
export class Refused extends Error {
  override name = 'Refused';
  constructor(
    readonly status: number,
    readonly error: string,
    readonly reason: string,
  ) {
    super(reason === '' || reason === error ? error : `${error}: ${reason}`);
  }
}

/** No answer at all: refused connection, unknown host, TLS failure, timeout. */
export class Unreachable extends Error {
  override name = 'Unreachable';
}

export interface ClientOptions {
  url: string;
  user: string;
  password: string;
  /** PEM text of the certificate authority that signed the broker's HTTPS certificate. */
  ca?: string;
  timeoutMs: number;
}

export interface Client {
  readonly base: URL;
  get(path: string): Promise<unknown>;
  put(path: string, body: unknown): Promise<unknown>;
  post(path: string, body: unknown): Promise<unknown>;
  delete(path: string, headers?: Record<string, string>): Promise<unknown>;
}

/** One path segment: names such as "/" or "a b" must reach the API as %2F and a%20b. */
export const seg = (s: string): string => encodeURIComponent(s);

export function createClient(o: ClientOptions): Client {
  const base = new URL(o.url);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`--url must be http:// or https://, got ${o.url}`);
  const auth = 'Basic ' + Buffer.from(`${o.user}:${o.password}`, 'utf8').toString('base64');
  // A URL with a path (a broker behind a proxy at /rabbit/) keeps it in front of /api.
  const prefix = base.pathname.replace(/\/+$/, '');

  const call = (method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<unknown> => {
    const headers: Record<string, string> = { authorization: auth, accept: 'application/json', ...extra };
    let payload: Buffer | undefined;
    if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body), 'utf8');
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const target = new URL(base.origin + prefix + path);
    const lib = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      // agent: false - one connection per call, so no idle keep-alive socket holds the command open.
      const req = lib.request(target, { method, headers, agent: false, ca: o.ca, timeout: o.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new Unreachable(`connection to ${base.origin} lost: ${err.message}`)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let json: unknown;
          try {
            json = text === '' ? undefined : JSON.parse(text);
          } catch {
            json = undefined;
          }
          if (status >= 200 && status < 300) resolve(json);
          else reject(refusal(status, res.statusMessage ?? '', json, text));
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${o.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(new Unreachable(`cannot reach the management API at ${base.origin}: ${describeNetError(err)}`)));
      req.end(payload);
    });
  };

  return {
    base,
    get: (path) => call('GET', path),
    put: (path, body) => call('PUT', path, body),
    post: (path, body) => call('POST', path, body),
    delete: (path, headers) => call('DELETE', path, undefined, headers),
  };
}

function refusal(status: number, statusText: string, json: unknown, text: string): Refused {
  if (typeof json === 'object' && json !== null) {
    const j = json as { error?: unknown; reason?: unknown };
    if (typeof j.error === 'string')
      return new Refused(status, j.error, typeof j.reason === 'string' ? j.reason : JSON.stringify(j.reason ?? ''));
  }
  // Not the API's shape (a proxy's page, say): show what came back, briefly.
  const snippet = text.trim().slice(0, 200);
  return new Refused(status, `HTTP ${status} ${statusText}`.trim(), snippet);
}

function describeNetError(err: Error): string {
  // OpenSSL's messages run over lines; one line reads better after "leveret: ".
  const message = err.message.replace(/\s*\n\s*/g, ' ').trim();
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is Leveret running, with its HTTP port here?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    default:
      return code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
  }
}
