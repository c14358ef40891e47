// A small client for the management HTTP API over Node's fetch.
export interface ApiReply {
  status: number;
  text: string;
  /** the body parsed as JSON, undefined when it is empty or not JSON */
  json: unknown;
  headers: Headers;
}

export interface ApiOptions {
  /** [user, password] for basic auth; null sends no Authorization header */
  auth?: [string, string] | null;
  /** sent as JSON unless it is a string (sent as it is) */
  body?: unknown;
  headers?: Record<string, string>;
}

export const basic = (user: string, pass: string): string => 'Basic ' + Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');

/** One request; `path` is sent as written (encode names yourself). */
export async function api(port: number, method: string, path: string, opts: ApiOptions = {}): Promise<ApiReply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const auth = opts.auth === undefined ? ['guest', 'guest'] : opts.auth;
  if (auth !== null) headers.authorization = basic(auth[0], auth[1]);
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

/**
 * PUT /api/users/{name} as guest. A user made here may use `/` fully (as after
 * `rabbitmqctl set_permissions -p / name '.*' '.*' '.*'`), since these tests log in with it
 * over AMQP; `access: false` leaves it without permissions, as RabbitMQ makes users.
 */
export async function putUser(port: number, name: string, body: unknown, opts: { access?: boolean } = {}): Promise<ApiReply> {
  const reply = await api(port, 'PUT', `/api/users/${encodeURIComponent(name)}`, { body });
  if (opts.access !== false && reply.status < 300) await grantAll(port, name);
  return reply;
}

/** PUT /api/permissions/%2F/{name}: configure, write and read everything on `/`. */
export async function grantAll(port: number, name: string, vhost = '/'): Promise<void> {
  const r = await api(port, 'PUT', `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`, {
    body: { configure: '.*', write: '.*', read: '.*' },
  });
  if (r.status >= 300) throw new Error(`granting permissions to ${name} failed: ${r.status} ${r.text}`);
}
