// The management API, as RabbitMQ defines it, with the login kept for this tab only
// (sessionStorage), sent as Basic auth like RabbitMQ's own UI does.

const KEY = 'leveret.auth';
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, error, reason) {
    super(reason || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
  }
}

function encode(user, pass) {
  const bytes = new TextEncoder().encode(`${user}:${pass}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function credentials() {
  return sessionStorage.getItem(KEY);
}

export function username() {
  const c = credentials();
  if (!c) return '';
  try {
    const bin = atob(c);
    const text = new TextDecoder().decode(Uint8Array.from(bin, (ch) => ch.charCodeAt(0)));
    return text.slice(0, text.indexOf(':'));
  } catch {
    return '';
  }
}

export function logout() {
  sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn('logout');
}

/** fn(why) runs on logout and when the API refuses the credentials (401): the login is shown again. */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

/** Checks the credentials with /api/whoami and keeps them when they work. */
export async function login(user, pass) {
  const auth = encode(user, pass);
  const who = await request('/api/whoami', { auth });
  sessionStorage.setItem(KEY, auth);
  return who;
}

export function api(path, opts = {}) {
  return request(path, { ...opts, auth: credentials() });
}

async function request(path, { method = 'GET', body, headers = {}, auth, raw = false }) {
  // credentials 'omit': the 401 that refuses a password carries WWW-Authenticate (as RabbitMQ's
  // does), and with the default mode the browser would stop at its own login prompt instead of
  // handing the 401 back. The Authorization header set here is sent all the same.
  const init = { method, headers: { ...headers }, cache: 'no-store', credentials: 'omit' };
  if (auth) init.headers.authorization = `Basic ${auth}`;
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const res = await fetch(path, init);
  if (res.status === 401 && auth && auth === credentials()) {
    sessionStorage.removeItem(KEY);
    for (const fn of listeners) fn('refused');
  }
  const text = await res.text();
  if (!res.ok) {
    let error = '';
    let reason = '';
    try {
      const j = JSON.parse(text);
      error = j.error ?? '';
      reason = j.reason ?? '';
    } catch {
      reason = text.slice(0, 300);
    }
    throw new ApiError(res.status, error, reason || (res.status === 401 ? 'Login failed' : `HTTP ${res.status}`));
  }
  if (raw) return text;
  return text === '' ? null : JSON.parse(text);
}

/** A path segment: vhost "/" is %2F, as RabbitMQ wants. */
export function seg(s) {
  return encodeURIComponent(s);
}
