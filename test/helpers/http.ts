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

/** PUT /api/users/{name} as guest. */
export const putUser = (port: number, name: string, body: unknown): Promise<ApiReply> =>
  api(port, 'PUT', `/api/users/${encodeURIComponent(name)}`, { body });
