// /api/connections and /api/channels over real sockets: amqplib clients against a Leveret
// sampling every 200 ms, checked for RabbitMQ 3.10's fields, its access rules, and
// DELETE closing a client with 320 and the X-Reason text.
import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { api, putUser } from './helpers/http';
import { amqpClientConnect, closeReason, waitFor } from './helpers/clients';
import { MAX_JSON_DEPTH, TOO_DEEP, tableJson } from '../src/http/views/field-json';
import { Decimal, type FieldTable } from '../src/protocol/types';

const T = 30_000;
/** Objects RabbitMQ 3.10.8 sent for a client like the ones here (see captured_from). */
const RABBIT = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'rabbitmq-3.10-node-clients.json'), 'utf8')) as Record<
  string,
  Record<string, unknown>
>;
const keys = (o: object): string[] => Object.keys(o).sort();
let b: StartedBroker;
const clients: amqp.ChannelModel[] = [];

beforeAll(async () => {
  b = await startBroker({ args: ['--stats-interval', '200'] });
  expect((await putUser(b.httpPort, 'cx-mgmt', { password: 'pw', tags: 'management' })).status).toBe(201);
  expect((await putUser(b.httpPort, 'cx-mon', { password: 'pw', tags: 'monitoring' })).status).toBe(201);
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await b.stop();
});

type Obj = Record<string, any>;
const enc = encodeURIComponent;

async function connect(user = 'guest', pass = 'guest', name?: string): Promise<{ c: amqp.ChannelModel; name: string; localPort: number }> {
  const c = await amqp.connect(
    `amqp://${user}:${pass}@127.0.0.1:${b.port}`,
    name === undefined ? {} : { clientProperties: { connection_name: name } },
  );
  c.on('error', () => undefined);
  clients.push(c);
  const stream = (c.connection as unknown as { stream: { localPort: number; localAddress: string } }).stream;
  return { c, localPort: stream.localPort, name: `${stream.localAddress}:${stream.localPort} -> 127.0.0.1:${b.port}` };
}

const get = async (path: string, auth?: [string, string]): Promise<any> => {
  const r = await api(b.httpPort, 'GET', path, auth === undefined ? {} : { auth });
  expect(r.status, `${path}: ${r.text}`).toBe(200);
  return r.json;
};

describe('connections', () => {
  it(
    'lists clients with their peer ports, client properties and RabbitMQ fields',
    async () => {
      const a = await connect('guest', 'guest', 'cx-first');
      const z = await connect();
      await a.c.createChannel();
      await a.c.createChannel();
      const list = (await get('/api/connections')) as Obj[];
      const ports = list.map((c) => c.peer_port);
      expect(ports).toEqual(expect.arrayContaining([a.localPort, z.localPort]));
      const one = list.find((c) => c.peer_port === a.localPort)!;
      expect(one).toMatchObject({
        name: a.name,
        vhost: '/',
        user: 'guest',
        user_who_performed_action: 'guest',
        protocol: 'AMQP 0-9-1',
        auth_mechanism: 'PLAIN',
        ssl: false,
        ssl_protocol: null,
        peer_host: '127.0.0.1',
        port: b.port,
        type: 'network',
        state: 'running',
        channels: 2,
        user_provided_name: 'cx-first',
        timeout: expect.any(Number),
        frame_max: expect.any(Number),
        channel_max: expect.any(Number),
        connected_at: expect.any(Number),
      });
      expect(one.client_properties.product).toBe('amqplib');
      expect(one.client_properties.capabilities.publisher_confirms).toBe(true);
      expect(one.client_properties.connection_name).toBe('cx-first');
      expect(one.recv_oct).toBeGreaterThan(0);
      expect(one.send_oct).toBeGreaterThan(0);
      expect(one.recv_oct_details).toHaveProperty('rate');
      expect(one.send_oct_details).toHaveProperty('rate');
      expect(one.recv_cnt).toBeGreaterThan(0);
      expect(one.send_cnt).toBeGreaterThan(0);
      expect(one).toHaveProperty('garbage_collection');
      expect(one).toHaveProperty('reductions');

      const single = (await get(`/api/connections/${enc(a.name)}`)) as Obj;
      expect(single.name).toBe(a.name);
      expect(keys(one)).toEqual(keys(RABBIT.connection_in_list));
      expect(keys(single)).toEqual(keys(RABBIT.connection));
      expect(keys(one.garbage_collection)).toEqual(keys(RABBIT.connection.garbage_collection as object));
      expect(single.ssl_protocol).toBe('');
      expect(Object.keys(single).sort()).toEqual(Object.keys(one).sort());

      const vhostList = (await get('/api/vhosts/%2F/connections')) as Obj[];
      expect(vhostList.map((c) => c.name)).toContain(a.name);
      expect((await api(b.httpPort, 'GET', '/api/vhosts/nope/connections')).status).toBe(404);
      const r = await api(b.httpPort, 'GET', `/api/connections/${enc('1.2.3.4:5 -> 6.7.8.9:10')}`);
      expect(r.status).toBe(404);
      expect(r.json).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
      expect((await api(b.httpPort, 'POST', '/api/connections')).status).toBe(405);
      expect((await api(b.httpPort, 'GET', '/api/connections', { auth: ['guest', 'nope'] })).status).toBe(401);
    },
    T,
  );

  it(
    "DELETE closes the client with 320 and the X-Reason text, or RabbitMQ's default",
    async () => {
      for (const [headers, text] of [
        [{ 'x-reason': 'cx says bye' }, 'CONNECTION_FORCED - cx says bye'],
        [{}, 'CONNECTION_FORCED - Closed via management plugin'],
      ] as const) {
        const { c, name } = await connect();
        let closed: unknown = null;
        c.on('close', (e: unknown) => (closed ??= e ?? 'closed'));
        const r = await api(b.httpPort, 'DELETE', `/api/connections/${enc(name)}`, { headers });
        expect(r.status).toBe(204);
        await waitFor(() => closed !== null, 5000, 'the connection to close');
        expect(closeReason(closed)).toEqual({ code: 320, text });
        await waitFor(
          async () => (await api(b.httpPort, 'GET', `/api/connections/${enc(name)}`)).status === 404,
          5000,
          'the connection to go',
        );
      }
    },
    T,
  );

  it(
    'a management user sees and closes only its own connections; monitoring sees all',
    async () => {
      const mine = await connect('cx-mgmt', 'pw');
      const guests = await connect();
      await mine.c.createChannel();
      await guests.c.createChannel();
      const seen = (await get('/api/connections', ['cx-mgmt', 'pw'])) as Obj[];
      expect(seen.map((c) => c.user)).toEqual(['cx-mgmt']);
      expect(seen[0].name).toBe(mine.name);
      expect(((await get('/api/vhosts/%2F/connections', ['cx-mgmt', 'pw'])) as Obj[]).map((c) => c.name)).toEqual([mine.name]);
      expect(((await get('/api/channels', ['cx-mgmt', 'pw'])) as Obj[]).every((ch) => ch.user === 'cx-mgmt')).toBe(true);
      const other = await api(b.httpPort, 'GET', `/api/connections/${enc(guests.name)}`, { auth: ['cx-mgmt', 'pw'] });
      expect(other.status).toBe(401);
      expect(other.json).toEqual({ error: 'not_authorised', reason: 'User not authorised to access object' });
      expect((await api(b.httpPort, 'GET', `/api/channels/${enc(`${guests.name} (1)`)}`, { auth: ['cx-mgmt', 'pw'] })).status).toBe(401);

      const monitorSees = ((await get('/api/connections', ['cx-mon', 'pw'])) as Obj[]).map((c) => c.name);
      expect(monitorSees).toEqual(expect.arrayContaining([mine.name, guests.name]));
      // monitoring may look but not close
      expect((await api(b.httpPort, 'DELETE', `/api/connections/${enc(guests.name)}`, { auth: ['cx-mon', 'pw'] })).status).toBe(401);
      expect((await api(b.httpPort, 'DELETE', `/api/connections/${enc(guests.name)}`, { auth: ['cx-mgmt', 'pw'] })).status).toBe(401);
      expect((await api(b.httpPort, 'DELETE', `/api/connections/${enc(mine.name)}`, { auth: ['cx-mgmt', 'pw'] })).status).toBe(204);
      await waitFor(async () => ((await get('/api/connections', ['cx-mgmt', 'pw'])) as Obj[]).length === 0, 5000, 'its connection to go');
    },
    T,
  );
});

describe('channels', () => {
  it(
    'shows prefetch, confirm mode, unacked and message_stats',
    async () => {
      const { c, name } = await connect();
      const ch = await c.createConfirmChannel();
      await ch.prefetch(7);
      await ch.prefetch(3, true);
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      for (let i = 0; i < 10; i++) ch.sendToQueue(q, Buffer.from('m'));
      await ch.waitForConfirms();
      await ch.consume(q, () => undefined);
      await c.createChannel();
      const chName = `${name} (1)`;
      await waitFor(
        async () => ((await get(`/api/channels/${enc(chName)}`)) as Obj).messages_unacknowledged === 3,
        5000,
        'three deliveries',
      );
      const one = (await get(`/api/channels/${enc(chName)}`)) as Obj;
      expect(one).toMatchObject({
        name: chName,
        number: 1,
        vhost: '/',
        user: 'guest',
        confirm: true,
        transactional: false,
        prefetch_count: 7,
        global_prefetch_count: 3,
        consumer_count: 1,
        messages_unacknowledged: 3,
        messages_unconfirmed: 0,
        messages_uncommitted: 0,
        acks_uncommitted: 0,
        state: 'running',
        connection_details: { name, peer_host: '127.0.0.1', peer_port: expect.any(Number) },
        deliveries: [],
        publishes: [],
      });
      expect(one.idle_since).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
      expect(one.message_stats).toMatchObject({
        publish: 10,
        confirm: 10,
        deliver: 3,
        deliver_get: 3,
        publish_details: { rate: expect.any(Number) },
      });
      expect(one.consumer_details).toEqual([
        expect.objectContaining({ queue: { name: q, vhost: '/' }, prefetch_count: 7, ack_required: true }),
      ]);

      expect(keys(one)).toEqual(keys(RABBIT.channel));
      expect(keys(one.message_stats)).toEqual(keys(RABBIT.channel.message_stats as object));
      expect(keys(one.consumer_details[0])).toEqual(keys((RABBIT.channel.consumer_details as object[])[0]));
      const listed = (await get('/api/channels')) as Obj[];
      const mine = listed.find((x) => x.name === chName)!;
      expect(keys(mine)).toEqual(keys(RABBIT.channel_in_list));
      expect(mine).not.toHaveProperty('consumer_details');
      expect(mine.prefetch_count).toBe(7);
      const fresh = listed.find((x) => x.name === `${name} (2)`)!;
      expect(fresh.confirm).toBe(false);
      // RabbitMQ leaves message_stats out for a channel that has done nothing
      expect(fresh).not.toHaveProperty('message_stats');
      expect(keys(fresh)).toEqual(keys(RABBIT.idle_channel_in_list));
      expect(((await get(`/api/connections/${enc(name)}/channels`)) as Obj[]).map((x) => x.number)).toEqual([1, 2]);
      expect(((await get('/api/vhosts/%2F/channels')) as Obj[]).map((x) => x.name)).toContain(chName);
      expect((await api(b.httpPort, 'GET', `/api/channels/${enc(`${name} (9)`)}`)).status).toBe(404);
    },
    T,
  );

  it(
    "shows a transaction's uncommitted publishes and acks (amqp-client, which has tx.select)",
    async () => {
      const conn = await amqpClientConnect(`amqp://guest:guest@127.0.0.1:${b.port}`);
      try {
        const ch = await conn.channel();
        const { name: q } = await ch.queueDeclare('', { exclusive: true });
        await ch.basicPublish('', q, 'one');
        const got = await ch.basicGet(q, { noAck: false });
        await ch.txSelect();
        await ch.basicPublish('', q, 'two');
        await ch.basicPublish('', q, 'three');
        await got!.ack();
        const socket = conn.socket!;
        const name = `${socket.localAddress}:${socket.localPort} -> 127.0.0.1:${b.port} (${ch.id})`;
        await waitFor(async () => (await api(b.httpPort, 'GET', `/api/channels/${enc(name)}`)).status === 200, 5000, 'the channel');
        await waitFor(
          async () => ((await get(`/api/channels/${enc(name)}`)) as Obj).messages_uncommitted === 2,
          5000,
          'two uncommitted publishes',
        );
        expect(await get(`/api/channels/${enc(name)}`)).toMatchObject({
          transactional: true,
          confirm: false,
          messages_uncommitted: 2,
          acks_uncommitted: 1,
        });
        await ch.txCommit();
        expect(await get(`/api/channels/${enc(name)}`)).toMatchObject({
          transactional: true,
          messages_uncommitted: 0,
          acks_uncommitted: 0,
        });
      } finally {
        await conn.close();
      }
    },
    T,
  );
});

describe('client_properties rendering', () => {
  const nest = (levels: number): FieldTable => {
    let t: FieldTable = { leaf: true };
    for (let i = 0; i < levels; i++) t = { n: t };
    return t;
  };
  const depth = (v: unknown): number => {
    let d = 0;
    while (v !== null && typeof v === 'object') {
      v = (v as Obj).n;
      d++;
    }
    return d;
  };

  it('renders AMQP values as JSON and cuts off a 10,000-deep table without overflowing', () => {
    expect(
      tableJson({
        b: true,
        i: 5,
        big: 7n,
        s: 'x',
        bytes: Buffer.from('raw'),
        d: new Decimal(2, 314),
        t: new Date(1_700_000_000_000),
        v: null,
        a: [1, 'two', { k: false }],
      }),
    ).toEqual({
      b: true,
      i: 5,
      big: 7,
      s: 'x',
      bytes: 'raw',
      d: 3.14,
      t: 1_700_000_000,
      v: null,
      a: [1, 'two', { k: false }],
    });
    const out = tableJson(nest(10_000));
    // The table itself and MAX_JSON_DEPTH levels below it, then the cut.
    expect(depth(out)).toBe(MAX_JSON_DEPTH + 1);
    let v: unknown = out;
    for (let i = 0; i <= MAX_JSON_DEPTH; i++) v = (v as Obj).n;
    expect(v).toBe(TOO_DEEP);
    expect(JSON.stringify(out).length).toBeLessThan(20 * MAX_JSON_DEPTH);
  });

  it(
    'a client sending deeply nested client properties is still listed',
    async () => {
      const deep = await amqp.connect(b.url, { clientProperties: { deep: nest(1000) } });
      clients.push(deep);
      const port = (deep.connection as unknown as { stream: { localPort: number } }).stream.localPort;
      const listed = ((await get('/api/connections')) as Obj[]).find((x) => x.peer_port === port)!;
      expect(listed.client_properties.product).toBe('amqplib');
      // 1,000 levels are under the cut: rendered whole.
      expect(depth(listed.client_properties.deep)).toBe(1001);
    },
    T,
  );
});
