// /api/policies over HTTP: RabbitMQ 3.10.8's methods, codes, access rules and refusal
// texts (each expectation below was read off a RabbitMQ 3.10.8 on this machine); a policy
// applies to queues declared over AMQP and outlives kill -9.
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api, grantAll, putUser } from './helpers/http';

const T = 60_000;
const running: DurableBroker[] = [];
let dir = '';
let b: DurableBroker;

beforeAll(async () => {
  dir = await tempDataDir('leveret-policies-');
  b = await startOn(dir);
  running.push(b);
  expect((await api(b.httpPort, 'PUT', '/api/vhosts/shop')).status).toBe(201);
});

afterAll(async () => {
  for (const x of running) if (!x.exited) await x.crash();
  if (dir) await removeDataDir(dir);
});

const cap = (n: number, extra: Record<string, unknown> = {}) => ({
  pattern: '^capped',
  definition: { 'max-length': n },
  'apply-to': 'queues',
  priority: 1,
  ...extra,
});

describe('/api/policies: methods and codes', () => {
  it('PUT creates (201) and replaces (204); GET shows it, in lists too; DELETE (204) then 404', async () => {
    expect((await api(b.httpPort, 'PUT', '/api/policies/shop/p1', { body: cap(2) })).status).toBe(201);
    const p1 = { vhost: 'shop', name: 'p1', pattern: '^capped', 'apply-to': 'queues', definition: { 'max-length': 2 }, priority: 1 };
    expect((await api(b.httpPort, 'GET', '/api/policies/shop/p1')).json).toEqual(p1);
    // Absent apply-to and priority are 'all' and 0.
    expect(
      (await api(b.httpPort, 'PUT', '/api/policies/shop/p1', { body: { pattern: '^q', definition: { 'max-length': 3 } } })).status,
    ).toBe(204);
    const replaced = { vhost: 'shop', name: 'p1', pattern: '^q', 'apply-to': 'all', definition: { 'max-length': 3 }, priority: 0 };
    expect((await api(b.httpPort, 'GET', '/api/policies/shop/p1')).json).toEqual(replaced);
    expect((await api(b.httpPort, 'GET', '/api/policies')).json).toEqual([replaced]);
    expect((await api(b.httpPort, 'GET', '/api/policies/shop')).json).toEqual([replaced]);
    expect((await api(b.httpPort, 'GET', '/api/policies/%2F')).json).toEqual([]);
    expect((await api(b.httpPort, 'DELETE', '/api/policies/shop/p1')).status).toBe(204);
    expect(await api(b.httpPort, 'DELETE', '/api/policies/shop/p1')).toMatchObject({
      status: 404,
      json: { error: 'Object Not Found', reason: 'Not Found' },
    });
    expect(await api(b.httpPort, 'GET', '/api/policies/shop/p1')).toMatchObject({
      status: 404,
      json: { error: 'Object Not Found', reason: 'Not Found' },
    });
    expect((await api(b.httpPort, 'GET', '/api/policies/shop')).json).toEqual([]);
  });

  it('an unknown vhost: 404 (PUT says vhost_not_found)', async () => {
    expect(await api(b.httpPort, 'PUT', '/api/policies/nowhere/p', { body: cap(1) })).toMatchObject({
      status: 404,
      json: { error: 'not_found', reason: 'vhost_not_found' },
    });
    expect(await api(b.httpPort, 'GET', '/api/policies/nowhere')).toMatchObject({
      status: 404,
      json: { error: 'Object Not Found', reason: 'Not Found' },
    });
    expect((await api(b.httpPort, 'GET', '/api/policies/nowhere/p')).status).toBe(404);
    expect((await api(b.httpPort, 'DELETE', '/api/policies/nowhere/p')).status).toBe(404);
  });

  it('405 for other methods; /api/operator-policies lists none', async () => {
    expect((await api(b.httpPort, 'POST', '/api/policies/shop/p1', { body: cap(1) })).status).toBe(405);
    expect((await api(b.httpPort, 'PUT', '/api/policies', { body: cap(1) })).status).toBe(405);
    expect(await api(b.httpPort, 'GET', '/api/operator-policies')).toMatchObject({ status: 200, json: [] });
  });
});

describe("/api/policies: refusals, with RabbitMQ 3.10.8's reasons", () => {
  const failed = (why: string): string => `Validation failed\n\n${why}\n`;
  it.each([
    ['no pattern', { definition: { 'max-length': 1 } }, '[{key_missing,pattern}]'],
    ['no definition', { pattern: 'x' }, '[{key_missing,definition}]'],
    ['an empty definition', { pattern: 'x', definition: {} }, failed('no policy provided')],
    ['an unknown key', { pattern: '^q', definition: { foo: 2 } }, failed('[{&lt;&lt;"foo"&gt;&gt;,2}] are not recognised policy settings')],
    [
      'unknown keys (sorted)',
      { pattern: '^q', definition: { foo: 1, bar: 'x' } },
      failed('[{&lt;&lt;"bar"&gt;&gt;,&lt;&lt;"x"&gt;&gt;},{&lt;&lt;"foo"&gt;&gt;,1}] are not recognised policy settings'),
    ],
    [
      'an unknown key with a nested value',
      { pattern: '^q', definition: { foo: [1, { a: null }] } },
      failed('[{&lt;&lt;"foo"&gt;&gt;,[1,#{&lt;&lt;"a"&gt;&gt; =&gt; null}]}] are not recognised policy settings'),
    ],
    [
      'a string max-length',
      { pattern: '^q', definition: { 'max-length': 'x' } },
      failed('&lt;&lt;"x"&gt;&gt; is not a valid maximum length'),
    ],
    ['a negative max-length', { pattern: '^q', definition: { 'max-length': -1 } }, failed('-1 is not a valid maximum length')],
    ['a boolean max-length', { pattern: '^q', definition: { 'max-length': true } }, failed('true is not a valid maximum length')],
    ['a fractional message-ttl', { pattern: '^q', definition: { 'message-ttl': 1.5 } }, failed('1.5 is not a valid message TTL')],
    ['a negative message-ttl', { pattern: '^q', definition: { 'message-ttl': -1 } }, failed('-1 is not a valid message TTL')],
    ['expires 0', { pattern: '^q', definition: { expires: 0 } }, failed('0 is not a valid queue expiry')],
    [
      'a negative max-length-bytes',
      { pattern: '^q', definition: { 'max-length-bytes': -1 } },
      failed('-1 is not a valid maximum length in bytes'),
    ],
    [
      'an unknown overflow',
      { pattern: '^q', definition: { overflow: 'zz' } },
      failed('&lt;&lt;"zz"&gt;&gt; is not a valid overflow value'),
    ],
    [
      'a numeric dead-letter-exchange',
      { pattern: '^q', definition: { 'dead-letter-exchange': 1 } },
      failed('1 is not a valid dead letter exchange name'),
    ],
    [
      'a numeric dead-letter-routing-key',
      { pattern: '^q', definition: { 'dead-letter-routing-key': 1 } },
      failed('1 is not a valid dead letter routing key'),
    ],
    [
      'a numeric alternate-exchange',
      { pattern: '^q', definition: { 'alternate-exchange': 1 } },
      failed('1 is not a valid alternate exchange name'),
    ],
    [
      'an unknown queue-mode',
      { pattern: '^q', definition: { 'queue-mode': 'x' } },
      failed('&lt;&lt;"x"&gt;&gt; is not a valid queue-mode value'),
    ],
    [
      'a bad value before an unknown key',
      { pattern: '^q', definition: { foo: 1, 'max-length': -1 } },
      failed('-1 is not a valid maximum length'),
    ],
    [
      'an unknown apply-to',
      { pattern: 'x', definition: { 'max-length': 1 }, 'apply-to': 'zz' },
      failed("apply-to 'zz' unrecognised; should be 'queues', 'exchanges' or 'all'"),
    ],
    [
      'a string priority',
      { pattern: 'x', definition: { 'max-length': 1 }, priority: 'a' },
      failed('priority should be a number, actually was &lt;&lt;"a"&gt;&gt;'),
    ],
    ['a numeric pattern', { pattern: 1, definition: { 'max-length': 1 } }, failed('pattern should be a binary but was 1')],
  ])('%s', async (_what, body, reason) => {
    expect(await api(b.httpPort, 'PUT', '/api/policies/shop/bad', { body })).toMatchObject({
      status: 400,
      json: { error: 'bad_request', reason },
    });
    expect((await api(b.httpPort, 'GET', '/api/policies/shop/bad')).status).toBe(404);
  });

  it('a pattern that does not compile (the regex engine words the detail)', async () => {
    const r = await api(b.httpPort, 'PUT', '/api/policies/shop/bad', { body: { pattern: '(', definition: { 'max-length': 1 } } });
    expect(r.status).toBe(400);
    expect((r.json as { reason: string }).reason).toMatch(/^Validation failed\n\npattern should be regular expression but is invalid: /);
  });

  it('a body that is not JSON', async () => {
    expect(await api(b.httpPort, 'PUT', '/api/policies/shop/bad', { body: 'xx' })).toMatchObject({
      status: 400,
      json: { error: 'bad_request', reason: 'not_json' },
    });
  });
});

describe('/api/policies: who may do what (RabbitMQ 3.10.8)', () => {
  beforeAll(async () => {
    expect((await api(b.httpPort, 'PUT', '/api/policies/shop/seen', { body: cap(5) })).status).toBe(201);
    for (const [user, tags, vhost] of [
      ['mgmt', 'management', 'shop'],
      ['maker', 'policymaker', 'shop'],
      ['stranger', 'policymaker', null],
      ['monitor', 'monitoring', null],
    ] as const) {
      await putUser(b.httpPort, user, { password: 'pw', tags }, { access: false });
      if (vhost !== null) await grantAll(b.httpPort, user, vhost);
    }
  });
  afterAll(async () => {
    await api(b.httpPort, 'DELETE', '/api/policies/shop/seen');
  });
  const as = (user: string, method: string, path: string, body?: unknown) => api(b.httpPort, method, path, { auth: [user, 'pw'], body });
  const object = { status: 401, json: { error: 'not_authorised', reason: 'User not authorised to access object' } };
  const vhost = { status: 401, json: { error: 'not_authorised', reason: 'User not authorised to access virtual host' } };

  it('a management user lists the policies of its vhosts but may not read one or change any', async () => {
    expect((await as('mgmt', 'GET', '/api/policies')).json).toMatchObject([{ vhost: 'shop', name: 'seen' }]);
    expect((await as('mgmt', 'GET', '/api/policies/shop')).json).toMatchObject([{ vhost: 'shop', name: 'seen' }]);
    expect(await as('mgmt', 'GET', '/api/policies/shop/seen')).toMatchObject(object);
    expect(await as('mgmt', 'PUT', '/api/policies/shop/p9', cap(1))).toMatchObject(object);
    expect(await as('mgmt', 'DELETE', '/api/policies/shop/seen')).toMatchObject(object);
  });

  it('a policymaker with access to the vhost reads, creates and deletes', async () => {
    expect((await as('maker', 'GET', '/api/policies/shop/seen')).status).toBe(200);
    expect((await as('maker', 'PUT', '/api/policies/shop/p9', cap(1))).status).toBe(201);
    expect((await as('maker', 'DELETE', '/api/policies/shop/p9')).status).toBe(204);
    expect(await as('maker', 'PUT', '/api/policies/nowhere/p9', cap(1))).toMatchObject({
      status: 404,
      json: { reason: 'vhost_not_found' },
    });
  });

  it('without access to the vhost: an empty list, and 401 for the rest', async () => {
    for (const user of ['stranger', 'monitor']) {
      expect((await as(user, 'GET', '/api/policies')).json).toEqual([]);
      expect(await as(user, 'GET', '/api/policies/shop')).toMatchObject(vhost);
      expect(await as(user, 'GET', '/api/policies/shop/seen')).toMatchObject(object);
      expect(await as(user, 'PUT', '/api/policies/shop/p9', cap(1))).toMatchObject(object);
    }
    // The vhost's existence is checked before the caller's access to it (a policymaker sees 404s).
    expect((await as('stranger', 'GET', '/api/policies/nowhere/x')).status).toBe(404);
    expect(await as('monitor', 'GET', '/api/policies/nowhere/x')).toMatchObject(object);
  });

  it('an administrator needs no permissions on the vhost', async () => {
    expect((await api(b.httpPort, 'DELETE', '/api/permissions/shop/guest')).status).toBe(204);
    expect((await api(b.httpPort, 'GET', '/api/policies')).json).toMatchObject([{ vhost: 'shop', name: 'seen' }]);
    expect((await api(b.httpPort, 'GET', '/api/policies/shop/seen')).status).toBe(200);
    await grantAll(b.httpPort, 'guest', 'shop');
  });
});

describe('/api/policies: effect on AMQP queues, and durability', () => {
  it(
    'caps a queue declared over AMQP; a change and a deletion take effect at once; kept over kill -9',
    async () => {
      const depthAfter = async (port: number, publish: number): Promise<number> => {
        const c = await amqp.connect({
          protocol: 'amqp',
          hostname: '127.0.0.1',
          port,
          username: 'guest',
          password: 'guest',
          vhost: 'shop',
        });
        try {
          const ch = await c.createConfirmChannel();
          await ch.assertQueue('capped-orders', { durable: true });
          for (let i = 0; i < publish; i++) ch.sendToQueue('capped-orders', Buffer.from(`m${i}`), { persistent: true });
          await ch.waitForConfirms();
          return (await ch.checkQueue('capped-orders')).messageCount;
        } finally {
          await c.close();
        }
      };
      expect((await api(b.httpPort, 'PUT', '/api/policies/shop/cap', { body: cap(2) })).status).toBe(201);
      expect(await depthAfter(b.port, 5)).toBe(2);
      expect((await api(b.httpPort, 'PUT', '/api/policies/shop/cap', { body: cap(3) })).status).toBe(204);
      expect(await depthAfter(b.port, 5)).toBe(3);

      await b.crash();
      b = await startOn(dir);
      running.push(b);
      expect((await api(b.httpPort, 'GET', '/api/policies/shop/cap')).json).toEqual({
        vhost: 'shop',
        name: 'cap',
        pattern: '^capped',
        'apply-to': 'queues',
        definition: { 'max-length': 3 },
        priority: 1,
      });
      expect(await depthAfter(b.port, 4)).toBe(3);
      // The queue names its policy, with statistics and without (RabbitMQ keeps it in disable_stats).
      for (const query of ['', '?disable_stats=true']) {
        const shown = (await api(b.httpPort, 'GET', `/api/queues/shop${query}`)).json as Array<Record<string, unknown>>;
        expect(shown.find((q) => q.name === 'capped-orders')?.policy, query).toBe('cap');
      }

      expect((await api(b.httpPort, 'DELETE', '/api/policies/shop/cap')).status).toBe(204);
      expect(await depthAfter(b.port, 2)).toBe(5);
      await b.crash();
      b = await startOn(dir);
      running.push(b);
      expect((await api(b.httpPort, 'GET', '/api/policies/shop')).json).toEqual([]);
      expect(await depthAfter(b.port, 1)).toBe(6);
      const bare = (await api(b.httpPort, 'GET', '/api/queues/shop?disable_stats=true')).json as Array<Record<string, unknown>>;
      expect(bare.find((q) => q.name === 'capped-orders')).not.toHaveProperty('policy');
    },
    T,
  );
});
