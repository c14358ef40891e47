// /api/definitions with policies, queues, exchanges and bindings: an export taken from
// RabbitMQ 3.10.8 (fixtures/rabbitmq-definitions-full.json, made there with policies,
// queues with arguments, topic/headers/fanout exchanges, queue and exchange-to-exchange
// bindings) imports, routes for a pika client, applies its policy and survives kill -9;
// Leveret's export of it is what RabbitMQ itself exported (so RabbitMQ takes it back); an
// import with one bad item changes nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { startBroker, type StartedBroker } from './helpers/broker';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';
import { api } from './helpers/http';

const T = 60_000;
type Obj = Record<string, unknown>;

const fixture = (name: string): Obj => JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8')) as Obj;
/** RabbitMQ's export of everything made in vhost hdefs-shop (and its users), as taken. */
const FULL = fixture('rabbitmq-definitions-full.json');
/** RabbitMQ's /api/definitions/hdefs-shop of the same objects. */
const VHOST = fixture('rabbitmq-definitions-vhost.json');

const canonical = (items: unknown): string[] => (items as Obj[]).map((x) => JSON.stringify(x, Object.keys(x).sort())).sort();
const inShop = (items: unknown): Obj[] => (items as Obj[]).filter((x) => x.vhost === 'hdefs-shop');
const defsOf = async (port: number, p = '/api/definitions'): Promise<Obj> => {
  const r = await api(port, 'GET', p);
  expect(r.status).toBe(200);
  return r.json as Obj;
};

/**
 * As hdefs-app (whose topic permission lets it publish order.* keys only), publishes four
 * persistent order.created messages with audit headers to hdefs-events and reports each
 * queue's depth.
 */
const PIKA_PUBLISH = `
import json, sys, pika
params = pika.URLParameters(sys.argv[1])
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.confirm_delivery()
props = pika.BasicProperties(delivery_mode=2, headers={'kind': 'audit', 'level': 3, 'urgent': True})
for i in range(4):
    ch.basic_publish('hdefs-events', 'order.created', ('m%d' % i).encode(), props, mandatory=True)
depth = {}
for q in ['hdefs-orders', 'hdefs-capped', 'hdefs-audit', 'hdefs-transient', 'hdefs-dead']:
    depth[q] = ch.queue_declare(q, passive=True).method.message_count
body = ch.basic_get('hdefs-capped', auto_ack=True)[2]
print(json.dumps({'depth': depth, 'capped_head': body.decode()}))
conn.close()
`;

describe('/api/definitions: a RabbitMQ export with policies, queues, exchanges and bindings', () => {
  const running: DurableBroker[] = [];
  let dir = '';
  let pikaProblem: string | null = null;

  beforeAll(() => {
    pikaProblem = ensurePythonModules(['pika'], ['python3-pika'], 'the definitions import check');
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    for (const b of running) if (!b.exited) await b.crash();
    if (dir) await removeDataDir(dir);
  });

  it(
    'imports; a pika publisher routes through the imported exchanges; the policy caps the queue; kept over kill -9',
    async () => {
      if (pikaProblem) expect.fail(pikaProblem);
      dir = await tempDataDir('leveret-defs-full-');
      let b = await startOn(dir);
      running.push(b);
      expect((await api(b.httpPort, 'POST', '/api/definitions', { body: FULL })).status).toBe(204);

      const run = spawnSync(PYTHON, ['-c', PIKA_PUBLISH, `amqp://hdefs-app:app-pw@127.0.0.1:${b.port}/hdefs-shop`], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
      const seen = JSON.parse(run.stdout) as { depth: Record<string, number>; capped_head: string };
      // order.* → hdefs-orders; order.created → hdefs-capped (policy max-length 2 beats
      // x-max-length 10, drop-head: m2 and m3 stay); # → hdefs-transient and, through the
      // exchange-to-exchange binding, hdefs-match, whose x-match=all binding takes the
      // headers to hdefs-audit. Nothing reaches the alternate exchange's queue.
      expect(seen.depth).toEqual({ 'hdefs-orders': 4, 'hdefs-capped': 2, 'hdefs-audit': 4, 'hdefs-transient': 4, 'hdefs-dead': 0 });
      expect(seen.capped_head).toBe('m2');

      await b.crash();
      b = await startOn(dir);
      running.push(b);
      const defs = await defsOf(b.httpPort);
      // The transient queue and exchange are gone with the restart, as in RabbitMQ; the rest is as RabbitMQ exported it.
      const durableOnly = (items: unknown): Obj[] =>
        (items as Obj[]).filter((x) => x.durable !== false && x.destination !== 'hdefs-transient');
      expect(canonical(inShop(defs.queues))).toEqual(canonical(durableOnly(FULL.queues)));
      expect(canonical(inShop(defs.exchanges))).toEqual(canonical((FULL.exchanges as Obj[]).filter((x) => x.name !== 'hdefs-temp')));
      expect(canonical(inShop(defs.bindings))).toEqual(canonical(durableOnly(FULL.bindings)));
      expect(defs.policies).toEqual(FULL.policies);

      const c = await amqp.connect({
        protocol: 'amqp',
        hostname: '127.0.0.1',
        port: b.port,
        username: 'guest',
        password: 'guest',
        vhost: 'hdefs-shop',
      });
      c.on('error', () => undefined); // a failed expectation below leaves it to the crash
      const ch = await c.createConfirmChannel();
      // The persistent messages are back (the capped queue lost m0/m1 to the policy and m2 to the get).
      expect((await ch.checkQueue('hdefs-orders')).messageCount).toBe(4);
      expect((await ch.checkQueue('hdefs-capped')).messageCount).toBe(1);
      // The policy still applies after the restart.
      for (const m of ['a', 'b', 'c']) ch.publish('hdefs-events', 'order.created', Buffer.from(m), { persistent: true });
      await ch.waitForConfirms();
      expect((await ch.checkQueue('hdefs-capped')).messageCount).toBe(2);
      // The headers binding wants all three headers (the pika messages had them, these do not); the fanout takes anything.
      ch.publish('hdefs-match', '', Buffer.from('no headers'));
      ch.publish('hdefs-dlx', '', Buffer.from('dead'));
      await ch.waitForConfirms();
      expect((await ch.checkQueue('hdefs-audit')).messageCount).toBe(4);
      expect((await ch.checkQueue('hdefs-dead')).messageCount).toBe(1);
      await c.close();
    },
    T,
  );
});

describe('/api/definitions: Leveret exports what RabbitMQ exported', () => {
  let broker: StartedBroker;
  beforeAll(async () => {
    broker = await startBroker();
    const r = await api(broker.httpPort, 'POST', '/api/definitions', { body: FULL });
    if (r.status !== 204) throw new Error(`import: ${r.status} ${r.text}`);
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('the full export: RabbitMQ 3.10.8 keys, and the imported items as RabbitMQ wrote them (field for field, type for type)', async () => {
    const defs = await defsOf(broker.httpPort);
    expect(Object.keys(defs)).toEqual(Object.keys(FULL));
    for (const k of ['policies', 'queues', 'exchanges', 'bindings']) expect(canonical(inShop(defs[k])), k).toEqual(canonical(FULL[k]));
    for (const k of ['users', 'permissions', 'topic_permissions'])
      for (const item of FULL[k] as Obj[]) expect(defs[k], k).toContainEqual(item);
    expect(defs.vhosts).toEqual(expect.arrayContaining([{ name: '/' }, { name: 'hdefs-shop' }]));
    // Each key's items have RabbitMQ's fields, with values of the same JSON types.
    const shape = (o: Obj): string[] =>
      Object.entries(o).map(([k, v]) => `${k}:${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}`);
    for (const k of ['users', 'permissions', 'topic_permissions', 'policies', 'queues', 'exchanges', 'bindings']) {
      const rabbit = new Set((FULL[k] as Obj[]).map((x) => shape(x).join()));
      for (const item of defs[k] as Obj[]) expect(rabbit, `${k}: ${JSON.stringify(item)}`).toContain(shape(item).join());
    }
  });

  it('exclusive queues and their bindings are not exported; a vhost named without its description keeps it', async () => {
    const c = await amqp.connect({
      protocol: 'amqp',
      hostname: '127.0.0.1',
      port: broker.port,
      username: 'guest',
      password: 'guest',
      vhost: 'hdefs-shop',
    });
    const ch = await c.createChannel();
    await ch.assertQueue('mine', { exclusive: true, durable: true });
    await ch.bindQueue('mine', 'hdefs-events', '#');
    const defs = await defsOf(broker.httpPort);
    expect((defs.queues as Obj[]).map((q) => q.name)).not.toContain('mine');
    expect((defs.bindings as Obj[]).map((x) => x.destination)).not.toContain('mine');
    // Declaring it (or binding to it) from a document is refused as over AMQP: it is locked.
    const r = await api(broker.httpPort, 'POST', '/api/definitions', {
      body: { queues: [{ name: 'mine', vhost: 'hdefs-shop', durable: true, auto_delete: false, arguments: {} }] },
    });
    expect(r.status).toBe(400);
    expect((r.json as Obj).reason).toMatch(/^RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine'/);
    await c.close();
    expect((await api(broker.httpPort, 'GET', '/api/vhosts/%2F')).json).toMatchObject({ description: 'Default virtual host' });
  });

  it('the per-vhost export: RabbitMQ leaves out vhost fields (but on policies) and the users, vhosts and permissions', async () => {
    const defs = await defsOf(broker.httpPort, '/api/definitions/hdefs-shop');
    expect(Object.keys(defs)).toEqual(Object.keys(VHOST));
    for (const k of ['policies', 'queues', 'exchanges', 'bindings']) expect(canonical(defs[k]), k).toEqual(canonical(VHOST[k]));
    expect(await api(broker.httpPort, 'GET', '/api/definitions/nowhere')).toMatchObject({
      status: 400,
      json: { error: 'bad_request', reason: 'vhost_not_found' },
    });
  });

  it("the per-vhost import puts everything in the path's vhost, whatever the items say", async () => {
    expect((await api(broker.httpPort, 'PUT', '/api/vhosts/copy')).status).toBe(201);
    const doc = {
      ...VHOST,
      queues: [...(VHOST.queues as Obj[]), { name: 'stray', vhost: 'hdefs-shop', durable: true, auto_delete: false, arguments: {} }],
    };
    expect((await api(broker.httpPort, 'POST', '/api/definitions/copy', { body: doc })).status).toBe(204);
    const copy = await defsOf(broker.httpPort, '/api/definitions/copy');
    for (const k of ['exchanges', 'bindings']) expect(canonical(copy[k]), k).toEqual(canonical(VHOST[k]));
    expect((copy.queues as Obj[]).map((q) => q.name).sort()).toEqual([...(VHOST.queues as Obj[]).map((q) => q.name), 'stray'].sort());
    expect((copy.policies as Obj[]).map((p) => p.vhost)).toEqual(['copy']);
    expect((await defsOf(broker.httpPort, '/api/definitions/hdefs-shop')).queues).toHaveLength((VHOST.queues as Obj[]).length);
    expect(await api(broker.httpPort, 'POST', '/api/definitions/nowhere', { body: {} })).toMatchObject({
      status: 404,
      json: { error: 'not_found', reason: 'vhost_not_found' },
    });
  });

  it('arguments keep their JSON types: numbers, fractions, strings, booleans, null, nested tables and arrays', async () => {
    const args = {
      'x-custom': { n: 1, big: 2 ** 40, f: 1.5, s: 'x', t: true, none: null, list: [1, 'two', [3], { four: 4 }] },
      'x-message-ttl': 1000,
    };
    const doc = { queues: [{ name: 'typed', vhost: '/', durable: true, auto_delete: false, arguments: args }] };
    expect((await api(broker.httpPort, 'POST', '/api/definitions', { body: doc })).status).toBe(204);
    const q = ((await defsOf(broker.httpPort)).queues as Obj[]).find((x) => x.name === 'typed');
    expect(q?.arguments).toEqual(args);
  });

  it('accepts the parameters a RabbitMQ export carries: vhost limits are kept, cluster name and id ignored', async () => {
    const doc = {
      parameters: [{ value: { 'max-connections': 10 }, vhost: '/', component: 'vhost-limits', name: 'limits' }],
      global_parameters: [
        { name: 'cluster_name', value: 'rabbit@somewhere' },
        { name: 'internal_cluster_id', value: 'rabbitmq-cluster-id-x' },
      ],
    };
    expect((await api(broker.httpPort, 'POST', '/api/definitions', { body: doc })).status).toBe(204);
    expect(await defsOf(broker.httpPort)).toMatchObject({ parameters: doc.parameters, global_parameters: [] });
    expect((await api(broker.httpPort, 'DELETE', '/api/vhost-limits/%2F/max-connections')).status).toBe(204);
    expect(await defsOf(broker.httpPort)).toMatchObject({ parameters: [] });
  });
});

describe('/api/definitions: an import with a fault applies nothing', () => {
  let broker: StartedBroker;
  beforeAll(async () => {
    broker = await startBroker();
    const r = await api(broker.httpPort, 'POST', '/api/definitions', {
      body: { queues: [{ name: 'existing', vhost: '/', durable: true, auto_delete: false, arguments: { 'x-max-length': 5 } }] },
    });
    if (r.status !== 204) throw new Error(`setup: ${r.status} ${r.text}`);
  });
  afterAll(async () => {
    await broker?.stop();
  });

  /** Valid items of every kind, then the bad one last. */
  const withBad = (bad: Obj): Obj => {
    const valid: Obj = {
      users: [{ name: 'newbie', password_hash: '', tags: ['management'] }],
      vhosts: [{ name: 'fresh' }],
      permissions: [{ user: 'newbie', vhost: 'fresh', configure: '.*', write: '.*', read: '.*' }],
      policies: [{ vhost: 'fresh', name: 'cap', pattern: '^q', 'apply-to': 'queues', definition: { 'max-length': 1 }, priority: 0 }],
      queues: [{ name: 'good', vhost: 'fresh', durable: true, auto_delete: false, arguments: { 'x-message-ttl': 100 } }],
      exchanges: [{ name: 'ex', vhost: 'fresh', type: 'direct', durable: true, auto_delete: false, internal: false, arguments: {} }],
      bindings: [{ source: 'ex', vhost: 'fresh', destination: 'good', destination_type: 'queue', routing_key: 'k', arguments: {} }],
    };
    for (const [k, items] of Object.entries(bad)) valid[k] = [...((valid[k] as Obj[] | undefined) ?? []), ...(items as Obj[])];
    return valid;
  };

  it.each([
    [
      'a bad queue argument',
      { queues: [{ name: 'bad', vhost: 'fresh', durable: true, auto_delete: false, arguments: { 'x-max-length': 'ten' } }] },
      "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'bad' in vhost 'fresh': \"expected integer, got longstr\"",
    ],
    [
      'a binding to a missing queue',
      { bindings: [{ source: 'ex', vhost: 'fresh', destination: 'missing', destination_type: 'queue', routing_key: '', arguments: {} }] },
      "NOT_FOUND - no queue 'missing' in vhost 'fresh'",
    ],
    [
      'a binding from a missing exchange',
      { bindings: [{ source: 'nope', vhost: 'fresh', destination: 'good', destination_type: 'queue', routing_key: '', arguments: {} }] },
      "NOT_FOUND - no exchange 'nope' in vhost 'fresh'",
    ],
    [
      'a bad policy',
      { policies: [{ vhost: 'fresh', name: 'bad', pattern: '.*', definition: { 'no-such-key': 1 } }] },
      'Validation failed\n\n[{&lt;&lt;"no-such-key"&gt;&gt;,1}] are not recognised policy settings\n (fresh/bad)',
    ],
    [
      'an unknown exchange type',
      { exchanges: [{ name: 'odd', vhost: 'fresh', type: 'x-weird', durable: true, auto_delete: false, internal: false, arguments: {} }] },
      "COMMAND_INVALID - invalid exchange type 'x-weird'",
    ],
    [
      'a headers binding with a bad x-match',
      {
        exchanges: [{ name: 'hx', vhost: 'fresh', type: 'headers' }],
        bindings: [
          {
            source: 'hx',
            vhost: 'fresh',
            destination: 'good',
            destination_type: 'queue',
            routing_key: '',
            arguments: { 'x-match': 'some' },
          },
        ],
      },
      'PRECONDITION_FAILED - Invalid x-match field value "some"; expected all, any, all-with-x, or any-with-x',
    ],
    [
      'a queue inequivalent to an existing one',
      { queues: [{ name: 'existing', vhost: '/', durable: true, auto_delete: false, arguments: { 'x-max-length': 6 } }] },
      "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'existing' in vhost '/': received '6' but current is '5'",
    ],
    [
      'the same queue twice, differently',
      { queues: [{ name: 'good', vhost: 'fresh', durable: false, auto_delete: false, arguments: { 'x-message-ttl': 100 } }] },
      "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'good' in vhost 'fresh': received 'false' but current is 'true'",
    ],
    [
      'a permission with a bad regex',
      { permissions: [{ user: 'newbie', vhost: 'fresh', configure: '(', write: '', read: '' }] },
      undefined,
    ],
    [
      'a queue in a vhost that does not exist',
      { queues: [{ name: 'q', vhost: 'nowhere', durable: true, auto_delete: false, arguments: {} }] },
      ['no_such_vhost', 'nowhere'],
    ],
    [
      'a reserved queue name',
      { queues: [{ name: 'amq.mine', vhost: 'fresh', durable: true, auto_delete: false, arguments: {} }] },
      "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'",
    ],
  ])('%s: 400, and nothing of the document exists', async (_what, bad, reason) => {
    const before = await defsOf(broker.httpPort);
    const r = await api(broker.httpPort, 'POST', '/api/definitions', { body: withBad(bad) });
    expect(r.status, r.text).toBe(400);
    expect((r.json as Obj).error).toBe('bad_request');
    if (reason !== undefined) expect((r.json as Obj).reason).toEqual(reason);
    expect(await defsOf(broker.httpPort)).toEqual(before);
    expect((await api(broker.httpPort, 'GET', '/api/vhosts/fresh')).status).toBe(404);
    expect((await api(broker.httpPort, 'GET', '/api/users/newbie')).status).toBe(404);
  });

  it('the same document without the fault imports whole', async () => {
    expect((await api(broker.httpPort, 'POST', '/api/definitions', { body: withBad({}) })).status).toBe(204);
    const defs = await defsOf(broker.httpPort);
    expect((defs.queues as Obj[]).map((q) => q.name).sort()).toEqual(['existing', 'good']);
    expect(defs.bindings).toEqual([
      { source: 'ex', vhost: 'fresh', destination: 'good', destination_type: 'queue', routing_key: 'k', arguments: {} },
    ]);
    // Importing it again changes nothing and is accepted (every item is equivalent).
    expect((await api(broker.httpPort, 'POST', '/api/definitions', { body: withBad({}) })).status).toBe(204);
    expect(await defsOf(broker.httpPort)).toEqual(defs);
  });
});
