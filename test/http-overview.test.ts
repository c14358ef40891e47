// /api/overview, /api/nodes, health checks and the small node-wide resources, over real
// sockets against a Leveret sampling every 200 ms, with amqplib clients making traffic.
// Rates are only ever checked to be positive, never for a value.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { startBroker, freePort, type StartedBroker } from './helpers/broker';
import { startOn, type DurableBroker } from './helpers/durable-broker';
import { api, putUser } from './helpers/http';

const T = 30_000;
/** Objects RabbitMQ 3.10.8 sent (see captured_from). */
const RABBIT = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'rabbitmq-3.10-node-clients.json'), 'utf8')) as Record<
  string,
  Record<string, any>
>;
const keys = (o: object): string[] => Object.keys(o).sort();
/** Fields of RabbitMQ's own machinery (its message store's disk I/O, Erlang's raft and metric GC) that Leveret leaves out. */
const RABBIT_ONLY = new Set([
  'disk_reads',
  'disk_reads_details',
  'disk_writes',
  'disk_writes_details',
  'metrics_gc_queue_length',
  'ra_open_file_metrics',
]);
const rabbitKeys = (o: object): string[] => keys(o).filter((k) => !RABBIT_ONLY.has(k));
let b: StartedBroker;
const clients: amqp.ChannelModel[] = [];

beforeAll(async () => {
  b = await startBroker({ args: ['--stats-interval', '200'] });
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await b.stop();
});

type Obj = Record<string, any>;
const get = async (path: string): Promise<Obj> => {
  const r = await api(b.httpPort, 'GET', path);
  expect(r.status, `${path}: ${r.text}`).toBe(200);
  return r.json as Obj;
};

async function connect(): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(b.url);
  clients.push(c);
  return c;
}

describe('GET /api/overview', () => {
  it(
    'has the fields rabbitmqadmin and the dashboard read, with our product named',
    async () => {
      const o = await get('/api/overview');
      for (const k of [
        'management_version',
        'rates_mode',
        'exchange_types',
        'product_version',
        'product_name',
        'rabbitmq_version',
        'erlang_version',
        'erlang_full_version',
        'disable_stats',
        'enable_queue_totals',
        'message_stats',
        'churn_rates',
        'queue_totals',
        'object_totals',
        'statistics_db_event_queue',
        'node',
        'listeners',
        'contexts',
        'cluster_name',
        'sample_retention_policies',
      ]) {
        expect(o, k).toHaveProperty(k);
      }
      expect(keys(o)).toEqual(keys(RABBIT.overview));
      for (const k of ['message_stats', 'churn_rates', 'queue_totals', 'object_totals', 'sample_retention_policies'])
        expect(keys(o[k]), k).toEqual(rabbitKeys(RABBIT.overview[k]));
      expect(keys(o.listeners[0])).toEqual(keys(RABBIT.overview.listeners[0]));
      expect(o.product_name).toBe('Leveret');
      expect(o.rabbitmq_version).toMatch(/^3\.\d+\.\d+$/);
      expect(o.rates_mode).toBe('basic');
      expect(o.disable_stats).toBe(false);
      expect(o.erlang_version).toContain(process.version.split('.')[0]);
      expect(o.exchange_types.map((e: Obj) => e.name)).toEqual(['direct', 'fanout', 'headers', 'topic']);
      expect(o.listeners).toContainEqual(expect.objectContaining({ protocol: 'amqp', port: b.port, node: o.node }));
      expect(o.listeners).toContainEqual(expect.objectContaining({ protocol: 'http', port: b.httpPort }));
      expect(o.contexts).toEqual([expect.objectContaining({ node: o.node, path: '/', port: String(b.httpPort) })]);
      expect(o.churn_rates.connection_created_details).toEqual({ rate: 0 });
      expect(o.statistics_db_event_queue).toBe(0);
    },
    T,
  );

  it(
    'counts in object_totals what the clients opened',
    async () => {
      const before = (await get('/api/overview')).object_totals;
      const c1 = await connect();
      const c2 = await connect();
      const ch1 = await c1.createChannel();
      await c1.createChannel();
      const ch3 = await c2.createChannel();
      const q = (await ch1.assertQueue('', { exclusive: true })).queue;
      await ch3.assertExchange('ov-x', 'fanout', { autoDelete: false });
      await ch1.consume(q, () => undefined);
      const after = (await get('/api/overview')).object_totals;
      expect(after).toEqual({
        channels: before.channels + 3,
        connections: before.connections + 2,
        consumers: before.consumers + 1,
        exchanges: before.exchanges + 1,
        queues: before.queues + 1,
      });
      await c2.close();
      clients.splice(clients.indexOf(c2), 1);
      const closed = (await get('/api/overview')).object_totals;
      expect(closed.connections).toBe(before.connections + 1);
      expect(closed.channels).toBe(before.channels + 2);
    },
    T,
  );

  it(
    'message_stats.publish grows with publishing and its rate becomes positive; samples on msg_rates_age',
    async () => {
      const start = (await get('/api/overview')).message_stats.publish as number;
      const c = await connect();
      const ch = await c.createConfirmChannel();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      let rate = 0;
      const deadline = Date.now() + 10_000;
      while (rate <= 0 && Date.now() < deadline) {
        for (let i = 0; i < 50; i++) ch.sendToQueue(q, Buffer.from('m'));
        await ch.waitForConfirms();
        await new Promise((r) => setTimeout(r, 250));
        rate = (await get('/api/overview')).message_stats.publish_details.rate;
      }
      expect(rate).toBeGreaterThan(0);
      const o = await get('/api/overview?msg_rates_age=60&msg_rates_incr=1&lengths_age=60&lengths_incr=1');
      expect(o.message_stats.publish).toBeGreaterThanOrEqual(start + 50);
      const d = o.message_stats.publish_details;
      expect(d.samples.length).toBeGreaterThan(0);
      expect(d.samples[0]).toEqual({ sample: expect.any(Number), timestamp: expect.any(Number) });
      // newest first, spaced at least msg_rates_incr apart
      for (let i = 1; i < d.samples.length; i++) expect(d.samples[i - 1].timestamp - d.samples[i].timestamp).toBeGreaterThanOrEqual(1000);
      expect(typeof d.avg).toBe('number');
      expect(typeof d.avg_rate).toBe('number');
      expect(o.queue_totals.messages).toBeGreaterThanOrEqual(50);
      expect(o.queue_totals.messages_ready_details.samples.length).toBeGreaterThan(0);
      expect(o.queue_totals).toHaveProperty('messages_unacknowledged_details.rate');
      // without the age no samples
      expect((await get('/api/overview')).message_stats.publish_details.samples).toBeUndefined();
    },
    T,
  );

  it(
    'applies columns (as rabbitmqadmin show overview asks)',
    async () => {
      const o = await get('/api/overview?columns=rabbitmq_version,cluster_name,queue_totals.messages,object_totals.queues');
      expect(Object.keys(o).sort()).toEqual(['cluster_name', 'object_totals', 'queue_totals', 'rabbitmq_version']);
    },
    T,
  );

  it(
    'with disable_stats=true leaves the statistics out',
    async () => {
      const o = await get('/api/overview?disable_stats=true');
      expect(o.disable_stats).toBe(true);
      expect(o).not.toHaveProperty('message_stats');
      expect(o.object_totals).toHaveProperty('queues');
    },
    T,
  );

  it(
    'a management user sees only its own clients and no node details',
    async () => {
      expect((await putUser(b.httpPort, 'ov-mgmt', { password: 'pw', tags: 'management' })).status).toBe(201);
      const o = (await api(b.httpPort, 'GET', '/api/overview', { auth: ['ov-mgmt', 'pw'] })).json as Obj;
      expect(o.object_totals.connections).toBe(0);
      expect(o.object_totals).not.toHaveProperty('consumers');
      expect(o).not.toHaveProperty('listeners');
      expect((await api(b.httpPort, 'GET', '/api/nodes', { auth: ['ov-mgmt', 'pw'] })).json).toEqual({
        error: 'not_authorised',
        reason: 'Not monitor user',
      });
    },
    T,
  );

  it(
    'refuses other methods and bad credentials',
    async () => {
      expect((await api(b.httpPort, 'POST', '/api/overview')).status).toBe(405);
      expect((await api(b.httpPort, 'GET', '/api/overview', { auth: ['guest', 'wrong'] })).status).toBe(401);
    },
    T,
  );
});

describe('GET /api/nodes', () => {
  it(
    'lists this node with its resources, and answers for it by name',
    async () => {
      const nodes = (await get('/api/nodes')) as unknown as Obj[];
      expect(nodes).toHaveLength(1);
      const n = nodes[0];
      expect(n).toMatchObject({
        type: 'disc',
        running: true,
        partitions: [],
        being_drained: false,
        mem_alarm: false,
        disk_free_alarm: false,
      });
      expect(n.mem_used).toBeGreaterThan(1_000_000);
      expect(n.disk_free).toBeGreaterThan(0);
      expect(n.fd_used).toBeGreaterThan(0);
      expect(n.fd_total).toBeGreaterThan(n.fd_used);
      expect(n.processors).toBeGreaterThan(0);
      expect(n.os_pid).toBe(String(b.pid));
      expect(n.uptime).toBeGreaterThan(0);
      for (const f of ['mem_used', 'fd_used', 'sockets_used', 'proc_used', 'disk_free']) expect(n[`${f}_details`]).toHaveProperty('rate');
      // RabbitMQ 3.10.8 has no being_drained in this listing; later versions do, and tools look for it.
      expect(keys(n).filter((k) => k !== 'being_drained')).toEqual(rabbitKeys(RABBIT.node));
      const one = await get(`/api/nodes/${encodeURIComponent(n.name)}`);
      expect(one.name).toBe(n.name);
      expect((await api(b.httpPort, 'GET', '/api/nodes/nobody@nowhere')).json).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
    },
    T,
  );

  it(
    "counts the store's file I/O as RabbitMQ's io_* statistics: writes, bytes and syncs of persistent messages",
    async () => {
      const before = ((await get('/api/nodes')) as unknown as Obj[])[0];
      const conn = await amqp.connect(b.url);
      clients.push(conn);
      const ch = await conn.createConfirmChannel();
      const q = `io-${Date.now()}`;
      await ch.assertQueue(q, { durable: true });
      const body = Buffer.alloc(1000, 7);
      for (let i = 0; i < 50; i++) ch.sendToQueue(q, body, { persistent: true });
      await ch.waitForConfirms();
      const after = ((await get('/api/nodes')) as unknown as Obj[])[0];
      // At least the 50 records, each holding its 1000-byte body, were handed to write calls.
      expect(after.io_write_bytes - before.io_write_bytes).toBeGreaterThanOrEqual(50 * 1000);
      expect(after.io_write_count).toBeGreaterThan(before.io_write_count);
      expect(after.io_sync_count).toBeGreaterThan(before.io_sync_count);
      for (const f of ['io_write_bytes', 'io_write_count', 'io_sync_count', 'io_read_bytes', 'io_read_count']) {
        expect(after[`${f}_details`]).toHaveProperty('rate');
      }
      await ch.deleteQueue(q);
    },
    T,
  );
});

describe('health checks', () => {
  it(
    'aliveness test declares aliveness-test and gets its message back; 404 for an unknown vhost',
    async () => {
      expect(await get('/api/aliveness-test/%2F')).toEqual({ status: 'ok' });
      const q = await get('/api/overview');
      expect(q.object_totals.queues).toBeGreaterThan(0);
      const c = await connect();
      const ch = await c.createChannel();
      expect((await ch.checkQueue('aliveness-test')).messageCount).toBe(0);
      const r = await api(b.httpPort, 'GET', '/api/aliveness-test/nope');
      expect(r.status).toBe(404);
      expect(r.json).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
    },
    T,
  );

  it(
    'alarms and local alarms are ok',
    async () => {
      expect(await get('/api/health/checks/alarms')).toEqual({ status: 'ok' });
      expect(await get('/api/health/checks/local-alarms')).toEqual({ status: 'ok' });
    },
    T,
  );

  it(
    'port-listener: ok for the AMQP port, 503 for a closed one, 400 for nonsense',
    async () => {
      expect(await get(`/api/health/checks/port-listener/${b.port}`)).toEqual({ status: 'ok', port: b.port });
      const closed = await freePort();
      const r = await api(b.httpPort, 'GET', `/api/health/checks/port-listener/${closed}`);
      expect(r.status).toBe(503);
      expect(r.json).toEqual({
        status: 'failed',
        reason: 'No active listener',
        missing: closed,
        ports: expect.arrayContaining([b.port, b.httpPort]),
      });
      expect((await api(b.httpPort, 'GET', '/api/health/checks/port-listener/abc')).json).toEqual({
        error: 'bad_request',
        reason: 'Invalid port',
      });
      // the port really is closed
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect(closed, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(false)));
        s.once('error', () => resolve(true));
      });
      expect(refused).toBe(true);
    },
    T,
  );

  it(
    'protocol-listener, virtual-hosts, quorum-critical and certificate-expiration',
    async () => {
      expect(await get('/api/health/checks/protocol-listener/amqp091')).toEqual({ status: 'ok', protocol: 'amqp' });
      const mqtt = await api(b.httpPort, 'GET', '/api/health/checks/protocol-listener/mqtt');
      expect(mqtt.status).toBe(503);
      expect(mqtt.json).toMatchObject({ status: 'failed', reason: 'No active listener', missing: 'mqtt' });
      expect(await get('/api/health/checks/virtual-hosts')).toEqual({ status: 'ok' });
      expect(await get('/api/health/checks/node-is-quorum-critical')).toEqual({ status: 'ok', reason: 'single node cluster' });
      expect(await get('/api/health/checks/certificate-expiration/1/weeks')).toEqual({ status: 'ok' });
      expect((await api(b.httpPort, 'GET', '/api/health/checks/certificate-expiration/1/fortnights')).status).toBe(400);
    },
    T,
  );
});

describe('cluster name and extensions', () => {
  it(
    'GET/PUT /api/cluster-name; /api/extensions is empty',
    async () => {
      const before = (await get('/api/cluster-name')).name;
      expect(typeof before).toBe('string');
      expect((await api(b.httpPort, 'PUT', '/api/cluster-name', { body: { name: 'ov-cluster' } })).status).toBe(204);
      expect(await get('/api/cluster-name')).toEqual({ name: 'ov-cluster' });
      expect((await get('/api/overview')).cluster_name).toBe('ov-cluster');
      expect((await api(b.httpPort, 'PUT', '/api/cluster-name', { body: {} })).json).toEqual({
        error: 'bad_request',
        reason: '[{key_missing,name}]',
      });
      expect(await get('/api/extensions')).toEqual([]);
      expect((await api(b.httpPort, 'PUT', '/api/cluster-name', { body: { name: before } })).status).toBe(204);
    },
    T,
  );
});

describe('alarms when the disk fills', () => {
  let full: DurableBroker | null = null;
  let mount: string | null = null;
  afterAll(async () => {
    await full?.crash();
    if (mount !== null) {
      execFileSync('umount', [mount]);
      fs.rmSync(mount, { recursive: true, force: true });
    }
  });

  it(
    'a failing disk is a disk alarm: alarms checks answer 503 until writes succeed again',
    async () => {
      // As test/disk-full.test.ts: a 3 MiB tmpfs, which needs root (CI runs as root).
      if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and needs to run as root (CI does)');
      mount = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-alarm-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount]);
      full = await startOn(path.join(mount, 'data'), ['--segment-size', '262144', '--stats-interval', '200', '--disk-free-limit', '0']);
      const port = full.httpPort;
      const conn = await amqp.connect(full.url);
      conn.on('error', () => undefined);
      let blocked = false;
      conn.on('blocked', () => (blocked = true));
      const ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      await ch.assertQueue('alarm.q', { durable: true });
      // 4000 x 1000 B cannot fit in 3 MiB.
      for (let i = 0; i < 4000; i++) ch.sendToQueue('alarm.q', Buffer.alloc(1000, i % 251), { persistent: true }, () => undefined);
      await expect.poll(() => blocked, { timeout: 10_000 }).toBe(true);

      for (const [check, reason] of [
        ['alarms', 'resource alarm(s) in effect in the cluster'],
        ['local-alarms', 'resource alarm(s) in effect on the node'],
      ]) {
        const r = await api(port, 'GET', `/api/health/checks/${check}`);
        expect(r.status).toBe(503);
        const node = ((await api(port, 'GET', '/api/overview')).json as Obj).node;
        expect(r.json).toEqual({ status: 'failed', reason, alarms: [{ node, resource: 'disk' }] });
      }
      expect(((await api(port, 'GET', '/api/nodes')).json as Obj[])[0].disk_free_alarm).toBe(true);

      execFileSync('mount', ['-o', 'remount,size=64m', mount]);
      await expect.poll(async () => (await api(port, 'GET', '/api/health/checks/alarms')).status, { timeout: 10_000 }).toBe(200);
      expect(((await api(port, 'GET', '/api/nodes')).json as Obj[])[0].disk_free_alarm).toBe(false);
      await conn.close().catch(() => undefined);
    },
    T,
  );
});
