// The management API's users (issue 10) over real sockets: basic auth and RabbitMQ's tag
// rules, user CRUD with RabbitMQ 3.10's JSON shapes and status codes, names that need
// URL-encoding, a user imported from RabbitMQ with its password_hash logging in over AMQP,
// a deleted user's connections closed with 320, and bad requests that never crash anything.
// Every expected answer was taken from RabbitMQ 3.10.8 (conformance/README.md).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { closeReason, uid, waitFor } from './helpers/clients';
import { api, basic, grantAll, putUser } from './helpers/http';

let broker: StartedBroker;
let port: number;

beforeAll(async () => {
  broker = await startBroker();
  port = broker.httpPort;
});

afterAll(async () => {
  await broker?.stop();
});

const amqpUrl = (user: string, pass: string): string =>
  `amqp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${broker.port}`;

/** Connects with the credentials as they are (no URL parsing in between). */
const connectAs = (username: string, password: string) =>
  amqp.connect({ protocol: 'amqp', hostname: '127.0.0.1', port: broker.port, username, password });

/** amqplib reports a 320 from the server on 'close' only (it is not an 'error' to it). */
const closedWith = (c: amqp.ChannelModel): Promise<Error> => new Promise((resolve) => c.on('close', resolve));

/** Resolves with the error an AMQP login ends in (null when it succeeds, and closes it). */
async function amqpLogin(user: string, pass: string): Promise<Error | null> {
  try {
    const c = await connectAs(user, pass);
    await c.close();
    return null;
  } catch (err) {
    return err as Error;
  }
}

const USER_KEYS = ['name', 'password_hash', 'hashing_algorithm', 'tags', 'limits'];

describe('basic auth and user tags', () => {
  it('answers a request without credentials with 401, the challenge and an empty body', async () => {
    const r = await api(port, 'GET', '/api/whoami', { auth: null });
    expect(r.status).toBe(401);
    expect(r.text).toBe('');
    expect(r.headers.get('www-authenticate')).toBe('Basic realm="RabbitMQ Management"');
  });

  it('refuses a wrong password, an unknown user and another scheme with "Login failed"', async () => {
    for (const headers of [
      { authorization: basic('guest', 'wrong') },
      { authorization: basic('nobody-' + uid(), 'guest') },
      { authorization: 'Bearer abc' },
    ]) {
      const r = await api(port, 'GET', '/api/whoami', { auth: null, headers });
      expect(r.status).toBe(401);
      expect(r.json).toEqual({ error: 'not_authorized', reason: 'Login failed' });
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="RabbitMQ Management"');
    }
  });

  it('answers a malformed Basic header with 400', async () => {
    for (const authorization of ['Basic !!!', 'Basic ' + Buffer.from('nocolon').toString('base64')]) {
      const r = await api(port, 'GET', '/api/whoami', { auth: null, headers: { authorization } });
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ error: 'bad_request' });
    }
  });

  it('keeps a user without a management tag out of the API (401) but lets it use AMQP', async () => {
    const name = uid('plain');
    expect((await putUser(port, name, { password: 'pw', tags: '' })).status).toBe(201);
    for (const p of ['/api/whoami', '/api/users']) {
      const r = await api(port, 'GET', p, { auth: [name, 'pw'] });
      expect(r.status).toBe(401);
      expect(r.json).toEqual({ error: 'not_authorised', reason: 'Not management user' });
      expect(r.headers.get('www-authenticate')).toBeNull();
    }
    expect(await amqpLogin(name, 'pw')).toBeNull();
  });

  it.each(['management', 'monitoring', 'policymaker'])('lets a %s user see whoami but not manage users', async (tag) => {
    const name = uid(tag);
    await putUser(port, name, { password: 'pw', tags: tag });
    const me = await api(port, 'GET', '/api/whoami', { auth: [name, 'pw'] });
    expect(me.status).toBe(200);
    expect(me.json).toEqual({ name, tags: [tag] });
    for (const [method, p, body] of [
      ['GET', '/api/users', undefined],
      ['GET', '/api/users/guest', undefined],
      ['PUT', `/api/users/${uid('x')}`, { password: 'x', tags: '' }],
      ['DELETE', '/api/users/guest', undefined],
      ['POST', '/api/users/bulk-delete', { users: ['guest'] }],
    ] as const) {
      const r = await api(port, method, p, { auth: [name, 'pw'], body });
      expect(r.status, `${method} ${p}`).toBe(401);
      expect(r.json).toEqual({ error: 'not_authorised', reason: 'Not administrator user' });
    }
    expect((await api(port, 'GET', '/api/users/guest')).status).toBe(200);
  });

  it('answers whoami as RabbitMQ 3.10 shapes it', async () => {
    const r = await api(port, 'GET', '/api/whoami');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.json).toEqual({ name: 'guest', tags: ['administrator'] });
  });

  it('keeps guest (a loopback user) out when it comes from another address', async () => {
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
    if (external === undefined) return; // no other address to come from on this machine
    const res = await fetch(`http://${external!.address}:${port}/api/whoami`, { headers: { authorization: basic('guest', 'guest') } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'not_authorised', reason: 'User can only log in via localhost' });
  });

  it('answers an unknown path with 404 before asking for credentials, and an unknown method with 405', async () => {
    const nf = await api(port, 'GET', '/api/nosuch', { auth: null });
    expect(nf.status).toBe(404);
    expect(nf.json).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
    const m = await api(port, 'POST', '/api/users', { auth: null });
    expect(m.status).toBe(405);
    expect(m.headers.get('allow')).toBe('HEAD, GET, OPTIONS');
    const m2 = await api(port, 'POST', '/api/users/x');
    expect(m2.status).toBe(405);
    expect(m2.headers.get('allow')).toBe('HEAD, GET, PUT, DELETE, OPTIONS');
  });
});

describe('users', () => {
  it('creates (201), updates (204), shows and lists a user in RabbitMQ 3.10 shape', async () => {
    const name = uid('crud');
    const created = await putUser(port, name, { password: 'first', tags: 'monitoring, management ,' });
    expect(created.status).toBe(201);
    expect(created.text).toBe('');
    const u = (await api(port, 'GET', `/api/users/${name}`)).json as Record<string, unknown>;
    expect(Object.keys(u)).toEqual(USER_KEYS);
    expect(u).toMatchObject({ name, hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['monitoring', 'management'], limits: {} });
    expect(Buffer.from(u.password_hash as string, 'base64')).toHaveLength(36);

    const updated = await putUser(port, name, { password: 'second', tags: ['administrator', ' monitoring '] });
    expect(updated.status).toBe(204);
    const u2 = (await api(port, 'GET', `/api/users/${name}`)).json as Record<string, unknown>;
    expect(u2.tags).toEqual(['administrator', 'monitoring']);
    expect(u2.password_hash).not.toBe(u.password_hash);
    expect((await api(port, 'GET', '/api/whoami', { auth: [name, 'second'] })).status).toBe(200);
    expect((await api(port, 'GET', '/api/whoami', { auth: [name, 'first'] })).status).toBe(401);

    const list = (await api(port, 'GET', '/api/users')).json as Array<Record<string, unknown>>;
    const names = list.map((x) => x.name as string);
    expect(names).toContain(name);
    expect(names).toContain('guest');
    expect([...names].sort()).toEqual(names);
    for (const x of list) expect(Object.keys(x)).toEqual(USER_KEYS);
    expect((await api(port, 'GET', '/api/users/')).json).toEqual(list);
  });

  it('deletes a user (204), then answers 404', async () => {
    const name = uid('del');
    await putUser(port, name, { password: 'pw', tags: '' });
    expect((await api(port, 'DELETE', `/api/users/${name}`)).status).toBe(204);
    for (const method of ['GET', 'DELETE']) {
      const r = await api(port, method, `/api/users/${name}`);
      expect(r.status).toBe(404);
      expect(r.json).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
    }
    expect(await amqpLogin(name, 'pw')).not.toBeNull();
  });

  it("refuses bad user bodies with RabbitMQ's 400 reasons", async () => {
    const name = uid('bad');
    const cases: Array<[unknown, unknown]> = [
      [{ password: 'x' }, 'tags_not_present'],
      [{}, 'tags_not_present'],
      [{ password: 'x', password_hash: 'abcd', tags: '' }, 'both_password_and_password_hash_are_provided'],
      [{ password_hash: '!!notbase64', tags: '' }, ['not_base64', '!!notbase64']],
      [{ password_hash: 'abc', tags: '' }, ['not_base64', 'abc']],
      ['{bad', 'not_json'],
      ['"s"', 'invalid payload: the request body JSON-decoded to a string. Is the input doubly-JSON-encoded?'],
    ];
    for (const [body, reason] of cases) {
      const r = await putUser(port, name, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json).toEqual({ error: 'bad_request', reason });
    }
    // Where RabbitMQ fails with a bare 500 (or stores what it cannot use), Leveret says 400.
    for (const body of [
      { password: 123, tags: '' },
      { password: 'x', tags: 123 },
      { password: 'x', tags: [1] },
      { password_hash: 'abcd', hashing_algorithm: 'rabbit_password_hashing_foo', tags: '' },
      [1, 2],
      'null',
    ]) {
      const r = await putUser(port, name, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json).toMatchObject({ error: 'bad_request' });
    }
    expect((await api(port, 'GET', `/api/users/${name}`)).status).toBe(404);
  });

  it('reads the body as JSON whatever its content type, and an empty body as {}', async () => {
    const name = uid('ct');
    const form = await api(port, 'PUT', `/api/users/${name}`, {
      body: '{"password":"x","tags":""}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(201);
    const empty = await api(port, 'PUT', `/api/users/${name}`, { headers: { 'content-type': 'application/json' } });
    expect(empty.status).toBe(400);
    expect(empty.json).toEqual({ error: 'bad_request', reason: 'tags_not_present' });
  });

  it('gives a new user without a password a hash no password matches, and takes the password of an existing one away', async () => {
    const name = uid('nopw');
    expect((await putUser(port, name, { tags: 'management' })).status).toBe(201);
    const fresh = (await api(port, 'GET', `/api/users/${name}`)).json as Record<string, unknown>;
    // RabbitMQ 3.10 stores the hash of the empty password and refuses blank passwords at login.
    expect(fresh.password_hash).not.toBe('');
    expect((await api(port, 'GET', '/api/whoami', { auth: [name, ''] })).status).toBe(401);
    expect(await amqpLogin(name, '')).not.toBeNull();

    await putUser(port, name, { password: 'pw', tags: 'management' });
    expect((await api(port, 'GET', '/api/whoami', { auth: [name, 'pw'] })).status).toBe(200);
    expect((await putUser(port, name, { tags: 'management' })).status).toBe(204);
    expect(((await api(port, 'GET', `/api/users/${name}`)).json as Record<string, unknown>).password_hash).toBe('');
    expect((await api(port, 'GET', '/api/whoami', { auth: [name, 'pw'] })).status).toBe(401);
    expect(await amqpLogin(name, 'pw')).not.toBeNull();
  });

  it('a user whose password_hash is "" cannot log in with any password', async () => {
    const name = uid('empty');
    expect((await putUser(port, name, { password_hash: '', tags: 'administrator' })).status).toBe(201);
    expect(((await api(port, 'GET', `/api/users/${name}`)).json as Record<string, unknown>).password_hash).toBe('');
    for (const pw of ['', 'x', 'guest']) {
      expect((await api(port, 'GET', '/api/whoami', { auth: [name, pw] })).status).toBe(401);
      expect(await amqpLogin(name, pw)).not.toBeNull();
    }
  });

  it('bulk-deletes in order and stops at a user that does not exist, as RabbitMQ does', async () => {
    const [a, b, c] = [uid('bulk'), uid('bulk'), uid('bulk')];
    for (const n of [a, b, c]) await putUser(port, n, { password: 'x', tags: '' });
    const ghost = uid('ghost');
    const r = await api(port, 'POST', '/api/users/bulk-delete', { body: { users: [a, ghost, b] } });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'bad_request', reason: ['no_such_user', ghost] });
    expect((await api(port, 'GET', `/api/users/${a}`)).status).toBe(404);
    expect((await api(port, 'GET', `/api/users/${b}`)).status).toBe(200);
    const ok = await api(port, 'POST', '/api/users/bulk-delete', { body: { users: [b, c] } });
    expect(ok.status).toBe(204);
    expect((await api(port, 'GET', `/api/users/${c}`)).status).toBe(404);
    const missing = await api(port, 'POST', '/api/users/bulk-delete', { body: {} });
    expect(missing.status).toBe(400);
    expect(missing.json).toEqual({ error: 'bad_request', reason: '[{key_missing,users}]' });
  });
});

describe('user names that need URL-encoding', () => {
  const names = ['a/b', '%', '50%off', 'with space', 'été 🐇', 'a+b', `q'"<>`, '..', 'a/../b', '#?&='];

  it.each(names)('creates, reads, lists and deletes %j', async (raw) => {
    const name = raw + '-' + uid('');
    const p = `/api/users/${encodeURIComponent(name)}`;
    expect((await api(port, 'PUT', p, { body: { password: 'pw', tags: 'management' } })).status).toBe(201);
    const got = await api(port, 'GET', p);
    expect(got.status).toBe(200);
    expect((got.json as Record<string, unknown>).name).toBe(name);
    const list = (await api(port, 'GET', '/api/users')).json as Array<{ name: string }>;
    expect(list.map((u) => u.name)).toContain(name);
    expect((await api(port, 'GET', '/api/whoami', { auth: [name, 'pw'] })).json).toEqual({ name, tags: ['management'] });
    // Like RabbitMQ, a new user may not use any vhost until it is given permissions.
    expect(await amqpLogin(name, 'pw')).not.toBeNull();
    await grantAll(port, name);
    expect((await api(port, 'GET', `/api/permissions/%2F/${encodeURIComponent(name)}`)).json).toEqual({
      user: name,
      vhost: '/',
      configure: '.*',
      write: '.*',
      read: '.*',
    });
    expect(await amqpLogin(name, 'pw')).toBeNull();
    expect((await api(port, 'DELETE', p)).status).toBe(204);
    expect((await api(port, 'GET', p)).status).toBe(404);
  });

  it('takes %2f as well as %2F, and reads an unencoded slash as another path (404)', async () => {
    const name = 'x/' + uid('lc');
    await api(port, 'PUT', `/api/users/${encodeURIComponent(name)}`, { body: { password: 'pw', tags: '' } });
    expect((await api(port, 'GET', `/api/users/${encodeURIComponent(name).replace('%2F', '%2f')}`)).status).toBe(200);
    const r = await api(port, 'GET', `/api/users/${name}`);
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
  });
});

describe('users imported from RabbitMQ', () => {
  const fixture = JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'rabbitmq-definitions.json'), 'utf8')) as {
    users: Array<{ name: string; password_hash: string; hashing_algorithm: string; tags: string[] }>;
  };
  const alice = fixture.users.find((u) => u.name === 'alice')!;

  it('logs in over AMQP (PLAIN and AMQPLAIN) and HTTP with the password it had in RabbitMQ', async () => {
    const name = `alice-${uid('imp')}`;
    const r = await putUser(port, name, {
      password_hash: alice.password_hash,
      hashing_algorithm: alice.hashing_algorithm,
      tags: ['management'],
    });
    expect(r.status).toBe(201);
    const shown = (await api(port, 'GET', `/api/users/${name}`)).json;
    expect(shown).toEqual({
      name,
      password_hash: alice.password_hash,
      hashing_algorithm: 'rabbit_password_hashing_sha256',
      tags: ['management'],
      limits: {},
    });

    expect(await amqpLogin(name, 's3cret')).toBeNull();
    const amqplain = await amqp.connect(`amqp://127.0.0.1:${broker.port}`, { credentials: amqp.credentials.amqplain(name, 's3cret') });
    await amqplain.close();
    const client = new AMQPClient(amqpUrl(name, 's3cret'));
    await client.connect();
    await client.close();
    expect((await api(port, 'GET', '/api/whoami', { auth: [name, 's3cret'] })).status).toBe(200);

    const refused = await amqpLogin(name, 'wrong');
    expect(refused).not.toBeNull();
    expect(String(refused)).toMatch(/ACCESS_REFUSED|403/);
  });

  it('defaults hashing_algorithm to sha256 when the import leaves it out', async () => {
    const name = `alice-${uid('imp')}`;
    await putUser(port, name, { password_hash: alice.password_hash, tags: '' });
    expect(((await api(port, 'GET', `/api/users/${name}`)).json as Record<string, unknown>).hashing_algorithm).toBe(
      'rabbit_password_hashing_sha256',
    );
    expect(await amqpLogin(name, 's3cret')).toBeNull();
  });
});

describe("a deleted user's connections", () => {
  it("are closed with 320 \"user 'x' is deleted\"; other users' stay open", async () => {
    const name = uid('gone');
    await putUser(port, name, { password: 'pw', tags: '' });
    const doomed = await connectAs(name, 'pw');
    await doomed.createChannel();
    const closed = closedWith(doomed);
    const other = await amqp.connect(broker.url);
    const otherCh = await other.createChannel();

    expect((await api(port, 'DELETE', `/api/users/${encodeURIComponent(name)}`)).status).toBe(204);
    const reason = closeReason(await closed);
    expect(reason).toEqual({ code: 320, text: `CONNECTION_FORCED - user '${name}' is deleted` });

    await otherCh.checkQueue('amq.rabbitmq.reply-to').catch(() => undefined);
    const q = await otherCh.assertQueue('', { exclusive: true });
    expect(q.queue).toMatch(/^amq\.gen-/);
    await other.close();
  });

  it('are closed by bulk-delete too', async () => {
    const name = uid('bulkgone');
    await putUser(port, name, { password: 'pw', tags: '' });
    const conns = await Promise.all([connectAs(name, 'pw'), connectAs(name, 'pw')]);
    const closed = conns.map(closedWith);
    expect((await api(port, 'POST', '/api/users/bulk-delete', { body: { users: [name] } })).status).toBe(204);
    for (const e of await Promise.all(closed)) expect(closeReason(e).code).toBe(320);
  });
});

describe('bad requests', () => {
  /** The broker still answers HTTP and AMQP. */
  async function stillServing(): Promise<void> {
    expect((await api(port, 'GET', '/api/whoami')).status).toBe(200);
    const c = await amqp.connect(broker.url);
    const ch = await c.createChannel();
    const q = await ch.assertQueue('', { exclusive: true });
    ch.sendToQueue(q.queue, Buffer.from('still here'));
    await waitFor(async () => (await ch.get(q.queue, { noAck: true })) !== false, 2000, 'the message');
    await c.close();
  }

  it('answers malformed bodies with a 400 and no stack trace', async () => {
    const bodies = [
      '{',
      '{"password":"x","tags":""',
      '\u0000\u0001',
      '['.repeat(10000),
      '{"a":'.repeat(5000) + '1' + '}'.repeat(5000),
      '{"__proto__":{"tags":"administrator"},"password":"x"}',
      '{"constructor":{"prototype":{"tags":"x"}}}',
      'true',
      '1e400',
      '\uFEFF{"password":"x","tags":""}',
      Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('latin1'),
    ];
    for (const body of bodies) {
      const r = await api(port, 'PUT', `/api/users/${uid('fuzz')}`, { body });
      expect(r.status, body.slice(0, 40)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.json).toMatchObject({ error: 'bad_request' });
      expect(r.text).not.toMatch(/at .*\.(js|ts):\d+/);
    }
    // __proto__ in the body is a key like any other: no tags here, and nothing polluted.
    expect(({} as Record<string, unknown>).tags).toBeUndefined();
    await stillServing();
  });

  it('refuses a body above 20 MB with 413', async () => {
    const huge = '{"password":"' + 'x'.repeat(21_000_000) + '","tags":""}';
    try {
      const r = await api(port, 'PUT', `/api/users/${uid('huge')}`, { body: huge });
      expect(r.status).toBe(413);
      expect(r.json).toMatchObject({ error: 'bad_request' });
    } catch (err) {
      // The broker may answer and close before fetch has sent it all.
      expect(String((err as Error).cause ?? err)).toMatch(/EPIPE|ECONNRESET|other side closed|SocketError/);
    }
    await stillServing();
  });

  it('answers odd paths and encodings with JSON 4xx', async () => {
    const paths = [
      '/api/users/a%ZZ',
      '/api/users/%FF',
      '/api/users/%',
      '/api/users/%00',
      '/api/users/' + 'x'.repeat(60_000),
      '/api//users',
      '/api/users/a/b/c',
      '/api/users/..%2F..%2Fetc',
      '/api/%2e%2e/users',
      '/api/whoami/extra',
    ];
    for (const p of paths) {
      const r = await api(port, 'GET', p);
      expect(r.status, p).toBeGreaterThanOrEqual(400);
      expect(r.status, p).toBeLessThan(500);
      if (r.text !== '') expect(r.json, p).toMatchObject({ error: expect.any(String) });
    }
    await stillServing();
  });

  it('survives garbage on the HTTP socket', async () => {
    for (const junk of [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      'PUT /api/users/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n',
      '\u0000'.repeat(1000),
      'GET /api/whoami HTTP/1.1\r\nAuthorization: Basic\r\n\r\n',
    ]) {
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.end(junk));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    }
    await stillServing();
  });
});
