// Virtual hosts over RabbitMQ's HTTP API: created and deleted with /api/vhosts/{name},
// isolated from each other on AMQP, stored in the definitions log (kill -9 changes
// nothing), and deleted with everything in them: connections (320), queues, messages and
// their folders, permissions.
import fs from 'node:fs';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { queueDir, removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api, grantAll, putUser } from './helpers/http';
import { closeReason, waitFor } from './helpers/clients';

const T = 60_000;
const running: DurableBroker[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const b of running) await b.crash();
  for (const d of dirs) await removeDataDir(d);
});

const vh = (name: string) => `/api/vhosts/${encodeURIComponent(name)}`;

async function fresh(): Promise<{ dir: string; b: DurableBroker }> {
  const dir = await tempDataDir('leveret-vhosts-');
  dirs.push(dir);
  const b = await startOn(dir);
  running.push(b);
  return { dir, b };
}

const connect = (b: DurableBroker, vhost: string) =>
  amqp.connect({ protocol: 'amqp', hostname: '127.0.0.1', port: b.port, username: 'guest', password: 'guest', vhost });

describe('virtual hosts over the HTTP API', () => {
  it(
    'lists `/` on a fresh store, in RabbitMQ 3.10.8 shape',
    async () => {
      const { b } = await fresh();
      const list = (await api(b.httpPort, 'GET', '/api/vhosts')).json as Array<Record<string, unknown>>;
      expect(list).toHaveLength(1);
      // RabbitMQ 3.10.8's keys, sorted in a listing; disable_stats leaves out the figures.
      expect(Object.keys(list[0])).toEqual([
        'cluster_state',
        'default_queue_type',
        'description',
        'message_stats',
        'messages',
        'messages_details',
        'messages_ready',
        'messages_ready_details',
        'messages_unacknowledged',
        'messages_unacknowledged_details',
        'metadata',
        'name',
        'recv_oct',
        'recv_oct_details',
        'send_oct',
        'send_oct_details',
        'tags',
        'tracing',
      ]);
      const bare = (await api(b.httpPort, 'GET', '/api/vhosts?disable_stats=true')).json as Array<Record<string, unknown>>;
      expect(Object.keys(bare[0])).toEqual(['cluster_state', 'default_queue_type', 'description', 'metadata', 'name', 'tags', 'tracing']);
      expect(list[0]).toMatchObject({
        name: '/',
        description: 'Default virtual host',
        tags: [],
        default_queue_type: 'undefined',
        metadata: { description: 'Default virtual host', tags: [] },
        tracing: false,
      });
      const one = (await api(b.httpPort, 'GET', '/api/vhosts/%2F')).json as Record<string, unknown>;
      expect(Object.keys(one)).toEqual([
        'name',
        'description',
        'tags',
        'default_queue_type',
        'metadata',
        'tracing',
        'cluster_state',
        'send_oct',
        'send_oct_details',
        'recv_oct',
        'recv_oct_details',
        'messages_ready',
        'messages_ready_details',
        'messages_unacknowledged',
        'messages_unacknowledged_details',
        'messages',
        'messages_details',
        'message_stats',
      ]);
    },
    T,
  );

  it(
    'creates, updates and deletes vhosts whose names need encoding',
    async () => {
      const { b } = await fresh();
      for (const name of ['a/b', '%', 'with space', 'ünï/cødé %2F']) {
        expect(
          (await api(b.httpPort, 'PUT', vh(name), { body: { description: 'd', tags: 't1,t2', defaultqueuetype: 'quorum' } })).status,
        ).toBe(201);
        expect((await api(b.httpPort, 'GET', vh(name))).json).toMatchObject({
          name,
          description: 'd',
          tags: ['t1', 't2'],
          default_queue_type: 'quorum',
          metadata: { default_queue_type: 'quorum', description: 'd', tags: ['t1', 't2'] },
        });
        // An update replaces description and tags and keeps the queue type, as RabbitMQ does.
        expect((await api(b.httpPort, 'PUT', vh(name), { body: { tags: ['x'] } })).status).toBe(204);
        expect((await api(b.httpPort, 'GET', vh(name))).json).toMatchObject({
          name,
          description: '',
          tags: ['x'],
          default_queue_type: 'quorum',
        });
      }
      const names = ((await api(b.httpPort, 'GET', '/api/vhosts')).json as Array<{ name: string }>).map((v) => v.name);
      expect(names).toEqual(['%', '/', 'a/b', 'with space', 'ünï/cødé %2F']);
      // Reachable over AMQP under its own name.
      await grantAll(b.httpPort, 'guest', 'a/b');
      const c = await connect(b, 'a/b');
      await c.close();
      expect((await api(b.httpPort, 'DELETE', vh('%'))).status).toBe(204);
      expect((await api(b.httpPort, 'GET', vh('%'))).status).toBe(404);
    },
    T,
  );

  it(
    'answers errors in RabbitMQ JSON shape',
    async () => {
      const { b } = await fresh();
      expect(await api(b.httpPort, 'GET', vh('nope'))).toMatchObject({
        status: 404,
        json: { error: 'Object Not Found', reason: 'Not Found' },
      });
      expect(await api(b.httpPort, 'DELETE', vh('nope'))).toMatchObject({
        status: 404,
        json: { error: 'Object Not Found', reason: 'Not Found' },
      });
      expect(await api(b.httpPort, 'PUT', vh('x'), { body: 'nojson' })).toMatchObject({
        status: 400,
        json: { error: 'bad_request', reason: 'not_json' },
      });
      expect((await api(b.httpPort, 'PUT', vh('x'), { body: { tags: 5 } })).status).toBe(400);
      expect((await api(b.httpPort, 'PUT', vh('x'), { body: { defaultqueuetype: 'foo' } })).status).toBe(400);
      expect(await api(b.httpPort, 'GET', '/api/vhosts', { auth: ['guest', 'wrong'] })).toMatchObject({
        status: 401,
        json: { error: 'not_authorized', reason: 'Login failed' },
      });
      expect((await api(b.httpPort, 'POST', vh('x'))).status).toBe(405);
      // A management user lists only its vhosts and may not change them.
      await putUser(b.httpPort, 'mgmt', { password: 'pw', tags: 'management' }, { access: false });
      expect((await api(b.httpPort, 'GET', '/api/vhosts', { auth: ['mgmt', 'pw'] })).json).toEqual([]);
      expect(await api(b.httpPort, 'PUT', vh('y'), { auth: ['mgmt', 'pw'] })).toMatchObject({
        status: 401,
        json: { error: 'not_authorised', reason: 'Not administrator user' },
      });
      expect(await api(b.httpPort, 'DELETE', vh('/'), { auth: ['mgmt', 'pw'] })).toMatchObject({
        status: 401,
        json: { error: 'not_authorised', reason: 'Not administrator user' },
      });
      expect((await api(b.httpPort, 'GET', vh('x'))).status).toBe(404);
    },
    T,
  );

  it(
    'keeps same-named queues of two vhosts apart',
    async () => {
      const { b } = await fresh();
      for (const v of ['v1', 'v2']) {
        expect((await api(b.httpPort, 'PUT', vh(v))).status).toBe(201);
        await grantAll(b.httpPort, 'guest', v);
      }
      const c1 = await connect(b, 'v1');
      const c2 = await connect(b, 'v2');
      const [ch1, ch2] = [await c1.createChannel(), await c2.createChannel()];
      await ch1.assertQueue('same', { durable: true });
      await ch2.assertQueue('same', { durable: true });
      ch1.sendToQueue('same', Buffer.from('one'), { persistent: true });
      ch2.sendToQueue('same', Buffer.from('two'), { persistent: true });
      await ch1.assertQueue('same', { durable: true });
      await ch2.assertQueue('same', { durable: true });
      const m1 = await ch1.get('same', { noAck: true });
      const m2 = await ch2.get('same', { noAck: true });
      expect(m1 && m1.content.toString()).toBe('one');
      expect(m2 && m2.content.toString()).toBe('two');
      expect(await ch1.get('same', { noAck: true })).toBe(false);
      expect(await ch2.get('same', { noAck: true })).toBe(false);
      await c1.close();
      await c2.close();
      // Unknown vhost: RabbitMQ's 530 at connection.open.
      await expect(connect(b, 'v3')).rejects.toThrow(/ConnectionClose|NOT_ALLOWED|vhost v3 not found/);
    },
    T,
  );

  it(
    'counts each vhost on its own: message_stats, depths and octets with rates, paged like other listings',
    async () => {
      const dir = await tempDataDir('leveret-vhosts-');
      dirs.push(dir);
      const b = await startOn(dir, ['--stats-interval', '200']);
      running.push(b);
      expect((await api(b.httpPort, 'PUT', vh('busy'))).status).toBe(201);
      expect((await api(b.httpPort, 'PUT', vh('quiet'))).status).toBe(201);
      await grantAll(b.httpPort, 'guest', 'busy');
      const c = await connect(b, 'busy');
      const ch = await c.createConfirmChannel();
      await ch.assertQueue('work', { durable: false });
      for (let i = 0; i < 30; i++) ch.sendToQueue('work', Buffer.from(`job ${i}`));
      ch.publish('', 'no-such-queue', Buffer.from('x'), { mandatory: true });
      ch.publish('', 'no-such-queue', Buffer.from('x'));
      await ch.waitForConfirms();
      const getter = await c.createChannel();
      for (let i = 0; i < 4; i++) {
        const m = await getter.get('work');
        if (m) getter.ack(m);
      }
      await getter.get('work', { noAck: true });
      const back = await getter.get('work');
      if (back) getter.nack(back, false, true);
      const again = await getter.get('work');
      expect(again && again.fields.redelivered).toBe(true);
      if (again) getter.ack(again);
      // Three deliveries to a consumer that does not ack.
      await ch.assertQueue('sink', { durable: false });
      let delivered = 0;
      await getter.consume('sink', () => void delivered++, { noAck: true });
      for (let i = 0; i < 3; i++) ch.sendToQueue('sink', Buffer.from('s'));
      await ch.waitForConfirms();
      await waitFor(() => delivered === 3, 5000, 'three deliveries');
      type V = Record<string, number | { rate: number } | Record<string, number | { rate: number }>>;
      const busy = async () => (await api(b.httpPort, 'GET', vh('busy'))).json as V;
      // Rates come from two samples 200 ms apart, so they show while the traffic is recent.
      const seen = await busy();
      expect(seen.message_stats).toMatchObject({
        publish: 35,
        confirm: 35,
        return_unroutable: 1,
        drop_unroutable: 1,
        get: 6,
        get_no_ack: 1,
        deliver: 0,
        deliver_no_ack: 3,
        deliver_get: 10,
        ack: 5,
        redeliver: 1,
      });
      expect(seen).toMatchObject({ messages: 24, messages_ready: 24, messages_unacknowledged: 0 });
      expect(seen.recv_oct).toBeGreaterThan(35 * 5);
      expect(seen.send_oct).toBeGreaterThan(0);
      for (const k of ['send_oct_details', 'recv_oct_details', 'messages_details'])
        expect(typeof (seen[k] as { rate: number }).rate).toBe('number');
      const quiet = (await api(b.httpPort, 'GET', vh('quiet'))).json as V;
      expect(quiet).toMatchObject({ messages: 0, recv_oct: 0, send_oct: 0 });
      expect((quiet.message_stats as Record<string, number>).publish).toBe(0);
      // A burst shows as a publish rate on the next samples, in this vhost only.
      for (let i = 0; i < 200; i++) ch.sendToQueue('work', Buffer.from('more'));
      await ch.waitForConfirms();
      await waitFor(
        async () => ((await busy()).message_stats as { publish_details: { rate: number } }).publish_details.rate > 0,
        5000,
        'a publish rate',
      );
      const after = (await api(b.httpPort, 'GET', vh('quiet'))).json as V;
      expect((after.message_stats as { publish_details: { rate: number } }).publish_details.rate).toBe(0);
      // The node's totals are the vhosts' sums.
      const overview = (await api(b.httpPort, 'GET', '/api/overview')).json as { message_stats: { publish: number } };
      expect(overview.message_stats.publish).toBe(((await busy()).message_stats as { publish: number }).publish);

      const page = (await api(b.httpPort, 'GET', '/api/vhosts?page=1&page_size=2&name=u&columns=name,messages')).json;
      expect(page).toEqual({
        filtered_count: 2,
        item_count: 2,
        items: [
          { name: 'busy', messages: 224 },
          { name: 'quiet', messages: 0 },
        ],
        page: 1,
        page_count: 1,
        page_size: 2,
        total_count: 3,
      });
      await c.close();
    },
    T,
  );

  it(
    'deletes a vhost with its connections, queues, messages and folders, for good after kill -9',
    async () => {
      const { dir, b } = await fresh();
      expect((await api(b.httpPort, 'PUT', vh('gone/v'))).status).toBe(201);
      expect((await api(b.httpPort, 'PUT', vh('stays'))).status).toBe(201);
      await grantAll(b.httpPort, 'guest', 'gone/v');
      await grantAll(b.httpPort, 'guest', 'stays');
      const body = Buffer.alloc(64 * 1024, 1);
      const c = await connect(b, 'gone/v');
      const ch = await c.createConfirmChannel();
      await ch.assertExchange('ex', 'direct', { durable: true });
      for (const q of ['q1', 'q2']) {
        await ch.assertQueue(q, { durable: true });
        await ch.bindQueue(q, 'ex', q);
        for (let i = 0; i < 20; i++) ch.publish('ex', q, body, { persistent: true });
      }
      await ch.waitForConfirms();
      const keep = await connect(b, 'stays');
      const kch = await keep.createConfirmChannel();
      await kch.assertQueue('q1', { durable: true });
      kch.sendToQueue('q1', Buffer.from('kept'), { persistent: true });
      await kch.waitForConfirms();
      const folders = ['q1', 'q2'].map((q) => queueDir(dir, q, 'gone/v'));
      for (const f of folders) expect(fs.existsSync(f)).toBe(true);

      let closed: unknown = null;
      c.on('error', (e: unknown) => (closed = e));
      c.on('close', (e: unknown) => (closed ??= e ?? 'closed'));
      expect((await api(b.httpPort, 'DELETE', vh('gone/v'))).status).toBe(204);
      await waitFor(() => closed !== null, 5000, 'the connection to close');
      expect(closeReason(closed)).toEqual({ code: 320, text: "CONNECTION_FORCED - vhost 'gone/v' is deleted" });
      for (const f of folders) expect(fs.existsSync(f)).toBe(false);
      expect((await api(b.httpPort, 'GET', vh('gone/v'))).status).toBe(404);
      expect((await api(b.httpPort, 'GET', '/api/vhosts/gone%2Fv/permissions')).status).toBe(404);
      expect(((await api(b.httpPort, 'GET', '/api/permissions')).json as Array<{ vhost: string }>).map((p) => p.vhost).sort()).toEqual([
        '/',
        'stays',
      ]);
      await expect(connect(b, 'gone/v')).rejects.toThrow();
      await keep.close().catch(() => undefined);

      await b.crash();
      const b2 = await startOn(dir);
      running.push(b2);
      expect(((await api(b2.httpPort, 'GET', '/api/vhosts')).json as Array<{ name: string }>).map((v) => v.name)).toEqual(['/', 'stays']);
      for (const f of folders) expect(fs.existsSync(f)).toBe(false);
      await expect(connect(b2, 'gone/v')).rejects.toThrow();
      // The other vhost's same-named queue kept its message.
      const k2 = await connect(b2, 'stays');
      const k2ch = await k2.createChannel();
      const m = await k2ch.get('q1', { noAck: true });
      expect(m && m.content.toString()).toBe('kept');
      await k2.close();
      // Re-creating it gives an empty vhost: none of its queues come back.
      expect((await api(b2.httpPort, 'PUT', vh('gone/v'))).status).toBe(201);
      await grantAll(b2.httpPort, 'guest', 'gone/v');
      const c3 = await connect(b2, 'gone/v');
      const ch3 = await c3.createChannel();
      const failed = new Promise<unknown>((resolve) => ch3.once('error', resolve));
      await ch3.checkQueue('q1').catch(() => undefined);
      expect(closeReason(await failed).code).toBe(404);
      await c3.close();
    },
    T,
  );
});
