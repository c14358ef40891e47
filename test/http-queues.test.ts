// Queues over RabbitMQ's management HTTP API (/api/queues...), against a real Leveret over
// real sockets: declared over HTTP and used over AMQP and the other way round, depths and
// message_stats with rates from the sampler, get with every ackmode, purge, deletes that
// are refused as RabbitMQ refuses them, paging, and the error answers.
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { api, putUser } from './helpers/http';
import { RawClient, method, shortstr, table, u16, u32, u8 } from './helpers/raw';
import { sleep, waitFor } from './helpers/clients';

const T = 60_000;
let b: StartedBroker;
let conn: amqp.ChannelModel;

beforeAll(async () => {
  b = await startBroker({ args: ['--stats-interval', '200'] });
  conn = await amqp.connect(b.url);
}, T);

afterAll(async () => {
  await conn?.close().catch(() => {});
  await b?.stop();
});

type Obj = Record<string, any>;
const q = (name: string, vhost = '/') => `/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`;
const get = async (path: string): Promise<Obj> => {
  const r = await api(b.httpPort, 'GET', path);
  expect(r.status, r.text).toBe(200);
  return r.json as Obj;
};
const getMessages = (name: string, body: Obj) => api(b.httpPort, 'POST', `${q(name)}/get`, { body });

describe('/api/queues', () => {
  it(
    'declares over HTTP (201, 204 when equivalent, 400 when not) and the queue works over AMQP',
    async () => {
      const put = (body: Obj) => api(b.httpPort, 'PUT', q('hq-decl'), { body });
      expect((await put({ durable: true, arguments: { 'x-max-length': 10 } })).status).toBe(201);
      expect((await put({ durable: true, arguments: { 'x-max-length': 10 }, node: 'whatever' })).status).toBe(204);
      const bad = await put({ durable: false });
      expect(bad.status).toBe(400);
      expect(bad.json).toEqual({
        error: 'bad_request',
        reason: "inequivalent arg 'durable' for queue 'hq-decl' in vhost '/': received 'false' but current is 'true'",
      });
      const badArg = await api(b.httpPort, 'PUT', q('hq-badarg'), { body: { arguments: { 'x-max-length': 'abc' } } });
      expect(badArg.status).toBe(400);
      expect((badArg.json as Obj).reason).toBe(
        `invalid arg 'x-max-length' for queue 'hq-badarg' in vhost '/': "expected integer, got longstr"`,
      );
      expect((await api(b.httpPort, 'PUT', q('hq-bool'), { body: { durable: 'yes' } })).json).toEqual({
        error: 'bad_request',
        reason: ['not_boolean', 'yes'],
      });
      expect((await api(b.httpPort, 'PUT', q('amq.nope'), { body: {} })).json).toEqual({
        error: 'not_authorised',
        reason: 'Access refused.',
      });

      const ch = await conn.createChannel();
      const ok = await ch.checkQueue('hq-decl');
      expect(ok.messageCount).toBe(0);
      // The same declaration over AMQP is equivalent; a different one is refused there too.
      await ch.assertQueue('hq-decl', { durable: true, arguments: { 'x-max-length': 10 } });
      ch.sendToQueue('hq-decl', Buffer.from('one'));
      await waitFor(async () => (await get(q('hq-decl'))).messages === 1, 3000, 'the message in the HTTP view');
      const one = await get(q('hq-decl'));
      expect(one).toMatchObject({
        name: 'hq-decl',
        vhost: '/',
        durable: true,
        auto_delete: false,
        exclusive: false,
        arguments: { 'x-max-length': 10 },
        state: 'running',
        type: 'classic',
        policy: null,
        consumers: 0,
        messages_ready: 1,
        message_bytes: 3,
        message_bytes_ready: 3,
        head_message_timestamp: null,
      });
      expect(one.consumer_details).toEqual([]);
      expect(one.node).toMatch(/^leveret@/);
      expect(one.idle_since).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
      await ch.close();
    },
    T,
  );

  it(
    'shows a queue declared over AMQP with depths, unacked, consumers and message_stats with rates',
    async () => {
      const ch = await conn.createChannel();
      await ch.assertQueue('hq-amqp', { durable: false });
      for (let i = 0; i < 3; i++) ch.sendToQueue('hq-amqp', Buffer.from(`m${i}`));
      await ch.prefetch(1);
      const got: amqp.ConsumeMessage[] = [];
      const { consumerTag } = await ch.consume('hq-amqp', (m) => m && got.push(m), { consumerTag: 'hq-ctag' });
      await waitFor(() => got.length === 1);
      // Trickle publishes so that some sample sees a publish rate.
      const pub = await conn.createChannel();
      await pub.assertQueue('hq-rate');
      const timer = setInterval(() => pub.sendToQueue('hq-rate', Buffer.from('r')), 10);
      try {
        await waitFor(async () => ((await get(q('hq-rate'))).message_stats?.publish_details?.rate ?? 0) > 0, 5000, 'a publish rate');
      } finally {
        clearInterval(timer);
      }
      await waitFor(async () => (await get(q('hq-amqp'))).messages_unacknowledged === 1);
      const view = await get(q('hq-amqp'));
      expect(view).toMatchObject({
        messages: 3,
        messages_ready: 2,
        messages_unacknowledged: 1,
        consumers: 1,
        message_bytes: 6,
        message_bytes_ready: 4,
        message_bytes_unacknowledged: 2,
        consumer_utilisation: 1,
      });
      expect(view.messages_details).toHaveProperty('rate');
      expect(view.message_stats.publish).toBe(3);
      expect(view.message_stats.deliver).toBe(1);
      expect(view.message_stats.deliver_get).toBe(1);
      expect(view.message_stats.publish_details).toHaveProperty('rate');
      expect(view.consumer_details).toHaveLength(1);
      expect(view.consumer_details[0]).toMatchObject({
        consumer_tag: 'hq-ctag',
        ack_required: true,
        exclusive: false,
        prefetch_count: 1,
        active: true,
        activity_status: 'up',
        arguments: {},
        queue: { name: 'hq-amqp', vhost: '/' },
      });
      expect(view.consumer_details[0].channel_details).toMatchObject({ number: expect.any(Number), user: 'guest', peer_host: '127.0.0.1' });
      // The consumers listing has it too.
      const consumers = (await get('/api/consumers/%2F')) as unknown as Obj[];
      expect(consumers.find((c) => c.consumer_tag === 'hq-ctag')).toMatchObject({
        queue: { name: 'hq-amqp', vhost: '/' },
        ack_required: true,
      });
      // Once publishing stopped, a later sample shows no rate.
      await waitFor(async () => (await get(q('hq-rate'))).message_stats.publish_details.rate === 0, 3000, 'the rate back to 0');

      // disable_stats: the definition only, as RabbitMQ.
      const bare = await get(`${q('hq-amqp')}?disable_stats=true`);
      expect(bare).not.toHaveProperty('message_stats');
      expect(bare).not.toHaveProperty('messages_details');
      expect(bare).toMatchObject({ name: 'hq-amqp', durable: false, state: 'live' });
      // columns keeps the top-level keys asked for.
      expect(Object.keys(await get(`${q('hq-amqp')}?columns=name,message_stats.publish`)).sort()).toEqual(['message_stats', 'name']);

      ch.ack(got[0]);
      await ch.cancel(consumerTag);
      await ch.close();
      await pub.close();
    },
    T,
  );

  it(
    'gets messages with each ackmode, rendering properties as RabbitMQ; requeue keeps the place and marks redelivered',
    async () => {
      const ch = await conn.createChannel();
      await ch.assertExchange('hq-dlx', 'fanout', { durable: false });
      await ch.assertQueue('hq-dead', { durable: false });
      await ch.bindQueue('hq-dead', 'hq-dlx', '');
      await ch.assertQueue('hq-get', { durable: false, arguments: { 'x-dead-letter-exchange': 'hq-dlx' } });
      const props = {
        persistent: true,
        contentType: 'text/plain',
        priority: 3,
        timestamp: 1700000000,
        messageId: 'id-1',
        headers: { a: 1, b: { c: [1, 'x', true] }, s: 'str' },
      };
      ch.sendToQueue('hq-get', Buffer.from('first'), props);
      await waitFor(async () => (await get(q('hq-get'))).messages === 1);
      // Over HTTP, with no properties at all (amqplib always sends headers).
      const pub = await api(b.httpPort, 'POST', '/api/exchanges/%2F/amq.default/publish', {
        body: { properties: {}, routing_key: 'hq-get', payload: '/wAB', payload_encoding: 'base64' },
      });
      expect(pub.json).toEqual({ routed: true });
      ch.sendToQueue('hq-get', Buffer.from('third'));
      await waitFor(async () => (await get(q('hq-get'))).messages === 3);

      // ack_requeue_true: the message stays, at the head, and comes back redelivered.
      let r = await getMessages('hq-get', { count: 1, ackmode: 'ack_requeue_true', encoding: 'auto' });
      expect(r.status).toBe(200);
      expect(r.json).toEqual([
        {
          payload_bytes: 5,
          redelivered: false,
          exchange: '',
          routing_key: 'hq-get',
          message_count: 2,
          properties: {
            content_type: 'text/plain',
            headers: { a: 1, b: { c: [1, 'x', true] }, s: 'str' },
            delivery_mode: 2,
            priority: 3,
            message_id: 'id-1',
            timestamp: 1700000000,
          },
          payload: 'first',
          payload_encoding: 'string',
        },
      ]);
      r = await getMessages('hq-get', { count: 1, ackmode: 'reject_requeue_true', encoding: 'auto', truncate: 2 });
      expect(r.json).toMatchObject([{ payload: 'fi', payload_bytes: 5, redelivered: true }]);
      expect((await get(q('hq-get'))).messages).toBe(3);

      // count beyond what is there: what there is, each requeued after all are taken (none twice).
      r = await getMessages('hq-get', { count: 10, ackmode: 'ack_requeue_true', encoding: 'auto' });
      const all = r.json as Obj[];
      expect(all.map((m) => m.payload_bytes)).toEqual([5, 3, 5]);
      // Not valid UTF-8: base64 even in auto; no properties at all is RabbitMQ's empty list.
      expect(all[1]).toMatchObject({ payload: Buffer.from([0xff, 0, 1]).toString('base64'), payload_encoding: 'base64', properties: [] });
      expect(all.map((m) => m.message_count)).toEqual([2, 1, 0]);
      r = await getMessages('hq-get', { count: 1, ackmode: 'ack_requeue_true', encoding: 'base64' });
      expect(r.json).toMatchObject([{ payload: Buffer.from('first').toString('base64'), payload_encoding: 'base64', redelivered: true }]);

      // ack_requeue_false takes it; reject_requeue_false dead-letters it.
      r = await getMessages('hq-get', { count: 1, ackmode: 'ack_requeue_false', encoding: 'auto' });
      expect((r.json as Obj[])[0].payload).toBe('first');
      r = await getMessages('hq-get', { count: 1, ackmode: 'reject_requeue_false', encoding: 'auto' });
      expect((r.json as Obj[])[0].payload_bytes).toBe(3);
      expect((await get(q('hq-get'))).messages).toBe(1);
      await waitFor(async () => (await get(q('hq-dead'))).messages === 1);
      const dead = await ch.get('hq-dead', { noAck: true });
      expect(dead && [...dead.content]).toEqual([0xff, 0, 1]);

      // What is left is still delivered over AMQP, marked redelivered.
      const last = await ch.get('hq-get', { noAck: true });
      expect(last && last.content.toString()).toBe('third');
      expect(last && last.fields.redelivered).toBe(true);
      expect((await getMessages('hq-get', { count: 1, ackmode: 'ack_requeue_true', encoding: 'auto' })).json).toEqual([]);

      const stats = (await get(q('hq-get'))).message_stats;
      expect(stats.get).toBeGreaterThan(0);
      expect(stats.get_no_ack).toBe(2); // one over HTTP, one over AMQP
      expect(stats.redeliver).toBeGreaterThan(0);

      // Bad bodies.
      expect((await getMessages('hq-get', { ackmode: 'ack_requeue_true', encoding: 'auto' })).json).toEqual({
        error: 'bad_request',
        reason: '[{key_missing,count}]',
      });
      expect((await getMessages('hq-get', { count: 1 })).json).toEqual({
        error: 'bad_request',
        reason: '[{key_missing,ackmode},{key_missing,encoding}]',
      });
      expect((await getMessages('hq-get', { count: 1, ackmode: 'ack_requeue_true', encoding: 'x' })).json).toEqual({
        error: 'bad_request',
        reason: 'Unsupported encoding. Please use auto or base64.',
      });
      expect((await getMessages('hq-get', { count: 1, ackmode: 'nope', encoding: 'auto' })).status).toBe(400);
      const missing = await getMessages('hq-missing', { count: 1, ackmode: 'ack_requeue_true', encoding: 'auto' });
      expect(missing.status).toBe(404);
      expect(missing.json).toEqual({ error: 'not_found', reason: "NOT_FOUND - no queue 'hq-missing' in vhost '/'" });
      await ch.close();
    },
    T,
  );

  it(
    'purges (204) and deletes with if-empty / if-unused refused as RabbitMQ',
    async () => {
      const ch = await conn.createChannel();
      await ch.assertQueue('hq-del', { durable: false });
      ch.sendToQueue('hq-del', Buffer.from('x'));
      await waitFor(async () => (await get(q('hq-del'))).messages === 1);
      let r = await api(b.httpPort, 'DELETE', `${q('hq-del')}?if-empty=true`);
      expect(r.status).toBe(400);
      expect(r.json).toEqual({ error: 'bad_request', reason: "queue 'hq-del' in vhost '/' not empty" });
      expect((await api(b.httpPort, 'DELETE', `${q('hq-del')}/contents`)).status).toBe(204);
      expect((await get(q('hq-del'))).messages).toBe(0);
      const { consumerTag } = await ch.consume('hq-del', () => {});
      r = await api(b.httpPort, 'DELETE', `${q('hq-del')}?if-unused=true`);
      expect(r.json).toEqual({ error: 'bad_request', reason: "queue 'hq-del' in vhost '/' in use" });
      await ch.cancel(consumerTag);
      expect((await api(b.httpPort, 'DELETE', `${q('hq-del')}?if-unused=true&if-empty=true`)).status).toBe(204);
      ch.on('error', () => {}); // the failed check closes the channel
      await expect(ch.checkQueue('hq-del')).rejects.toThrow(/NOT_FOUND/);
      expect((await api(b.httpPort, 'DELETE', q('hq-del'))).json).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
      expect((await api(b.httpPort, 'DELETE', `${q('hq-del')}/contents`)).status).toBe(404);
    },
    T,
  );

  it(
    "lists a connection's exclusive queue with its owner but refuses to change it",
    async () => {
      const c2 = await amqp.connect(b.url);
      const ch = await c2.createChannel();
      await ch.assertQueue('hq-excl', { exclusive: true, durable: false });
      await ch.consume('hq-excl', () => {}, { exclusive: true, consumerTag: 'hq-excl-tag' });
      const view = await get(q('hq-excl'));
      expect(view).toMatchObject({ exclusive: true, exclusive_consumer_tag: 'hq-excl-tag' });
      expect(view.owner_pid_details).toMatchObject({ peer_host: '127.0.0.1', name: expect.stringContaining(' -> ') });
      const locked =
        "cannot obtain exclusive access to locked queue 'hq-excl' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.";
      expect((await api(b.httpPort, 'DELETE', q('hq-excl'))).json).toEqual({ error: 'bad_request', reason: locked });
      expect((await api(b.httpPort, 'PUT', q('hq-excl'), { body: {} })).json).toEqual({ error: 'bad_request', reason: locked });
      expect((await api(b.httpPort, 'DELETE', `${q('hq-excl')}/contents`)).status).toBe(400);
      expect((await getMessages('hq-excl', { count: 1, ackmode: 'ack_requeue_true', encoding: 'auto' })).json).toEqual({
        error: 'bad_request',
        reason: `405 RESOURCE_LOCKED - ${locked}`,
      });
      await c2.close();
      await waitFor(async () => (await api(b.httpPort, 'GET', q('hq-excl'))).status === 404);
    },
    T,
  );

  it(
    'pages, filters and sorts 120 queues as RabbitMQ',
    async () => {
      const ch = await conn.createChannel();
      for (let i = 0; i < 120; i++) {
        const name = `hq-page-${String(i).padStart(3, '0')}`;
        await ch.assertQueue(name, { durable: false });
        for (let k = 0; k < i % 7; k++) ch.sendToQueue(name, Buffer.from('p'));
      }
      await waitFor(async () => (await get(q('hq-page-006'))).messages === 6);
      const page = await get('/api/queues/%2F?page=2&page_size=50&name=hq-page-&columns=name,messages');
      expect(page).toMatchObject({ page: 2, page_size: 50, page_count: 3, filtered_count: 120, item_count: 50 });
      expect(page.items[0]).toEqual({ name: 'hq-page-050', messages: 1 });
      const regex = await get('/api/queues/%2F?page=1&page_size=500&name=^hq-page-0[0-4]1$&use_regex=true&columns=name');
      expect(regex.items.map((x: Obj) => x.name)).toEqual(['hq-page-001', 'hq-page-011', 'hq-page-021', 'hq-page-031', 'hq-page-041']);
      const sorted = await get('/api/queues/%2F?page=1&page_size=10&name=hq-page-&sort=messages&sort_reverse=true&columns=name,messages');
      expect(sorted.items.every((x: Obj) => x.messages === 6)).toBe(true);
      const list = (await get('/api/queues?columns=name,vhost')) as unknown as Obj[];
      expect(list.filter((x) => x.name.startsWith('hq-page-'))).toHaveLength(120);
      expect(Object.keys(list[0]).sort()).toEqual(['name', 'vhost']);
      expect((await api(b.httpPort, 'GET', '/api/queues?page=0')).status).toBe(400);
      await ch.close();
    },
    T,
  );

  it(
    'lists a queue with arguments nested 1,000 levels deep',
    async () => {
      let deep: Obj = { leaf: 'bottom' };
      for (let i = 0; i < 1000; i++) deep = { level: deep };
      expect((await api(b.httpPort, 'PUT', q('hq-deep'), { body: { arguments: { 'x-deep': deep } } })).status).toBe(201);
      const r = await api(b.httpPort, 'GET', '/api/queues');
      expect(r.status).toBe(200);
      const one = await api(b.httpPort, 'GET', q('hq-deep'));
      expect(one.status).toBe(200);
      // JSON.parse has no depth limit; follow the chain down.
      let node = (one.json as Obj).arguments['x-deep'];
      for (let i = 0; i < 1000; i++) node = node.level;
      expect(node).toEqual({ leaf: 'bottom' });
      expect((await api(b.httpPort, 'GET', '/api/bindings/%2F')).status).toBe(200);
    },
    T,
  );

  it(
    'lists arguments nested as deep as AMQP allows (1,500 levels) whole; one level more is refused with 501',
    async () => {
      // Encoded here without recursion (amqplib's encoder runs out of stack this deep).
      const declare = (name: string, wraps: number): Buffer => {
        let t = table({ leaf: 'bottom' });
        for (let i = 0; i < wraps; i++) {
          const entry = Buffer.concat([shortstr('level'), Buffer.from('F'), t]);
          t = Buffer.concat([u32(entry.length), entry]);
        }
        const args = Buffer.concat([shortstr('x-deep'), Buffer.from('F'), t]);
        // queue.declare: reserved, name, flags (none), then the arguments table.
        return method(1, 50, 10, Buffer.concat([u16(0), shortstr(name), u8(0), u32(args.length), args]));
      };
      const raw = await RawClient.connect(b.port);
      await raw.handshake();
      await raw.openChannel(1);
      // x-deep's table is level 1 and {leaf} sits at level 1,500: the decoder's limit.
      raw.send(declare('hq-deeper', 1499));
      await raw.expectMethod(50, 11);
      const list = await api(b.httpPort, 'GET', '/api/queues/%2F?columns=name,arguments');
      expect(list.status).toBe(200);
      const one = await api(b.httpPort, 'GET', q('hq-deeper'));
      expect(one.status).toBe(200);
      let node = (one.json as Obj).arguments['x-deep'];
      for (let i = 0; i < 1499; i++) node = node.level;
      // The API renders 1,500 levels, as deep as AMQP lets a client nest: nothing is cut.
      expect(node).toEqual({ leaf: 'bottom' });
      raw.send(declare('hq-too-deep', 1500));
      const close = await raw.expectClose();
      expect(close).toMatchObject({ channel: 0, code: 501, classId: 50, methodId: 10 });
      expect((await api(b.httpPort, 'GET', q('hq-too-deep'))).status).toBe(404);
      expect((await api(b.httpPort, 'DELETE', q('hq-deeper'))).status).toBe(204);
      raw.socket.destroy();
    },
    T,
  );

  it(
    'answers unknown vhosts and queues 404, bad JSON 400, other methods 405, and users without rights 401',
    async () => {
      const notFound = { error: 'Object Not Found', reason: 'Not Found' };
      expect((await api(b.httpPort, 'GET', '/api/queues/nohost')).json).toEqual(notFound);
      expect((await api(b.httpPort, 'GET', q('x', 'nohost'))).json).toEqual(notFound);
      expect((await api(b.httpPort, 'GET', q('hq-none'))).json).toEqual(notFound);
      // RabbitMQ 3.10.8 words a declare into a missing vhost so, and a delete from one as any 404.
      expect(await api(b.httpPort, 'PUT', q('x', 'nohost'), { body: {} })).toMatchObject({
        status: 404,
        json: { error: 'not_found', reason: 'vhost_not_found' },
      });
      expect((await api(b.httpPort, 'PUT', '/api/exchanges/nohost/x', { body: { type: 'direct' } })).json).toEqual({
        error: 'not_found',
        reason: 'vhost_not_found',
      });
      expect((await api(b.httpPort, 'POST', '/api/bindings/nohost/e/x/q/y', { body: {} })).json).toEqual({
        error: 'not_found',
        reason: 'vhost_not_found',
      });
      expect((await api(b.httpPort, 'DELETE', q('x', 'nohost'))).json).toEqual(notFound);
      const bad = await api(b.httpPort, 'PUT', q('hq-json'), { body: '{"durable":true' });
      expect(bad.status).toBe(400);
      expect(bad.json).toEqual({ error: 'bad_request', reason: 'not_json' });
      expect((await api(b.httpPort, 'PATCH', q('hq-json'))).status).toBe(405);
      expect((await api(b.httpPort, 'POST', q('hq-json'))).status).toBe(405);

      // A management user with rights on hq-own* only.
      await putUser(b.httpPort, 'hq-user', { password: 'pw', tags: 'management' }, { access: false });
      await api(b.httpPort, 'PUT', '/api/permissions/%2F/hq-user', { body: { configure: '^hq-own', write: '^hq-own', read: '^hq-own' } });
      const as = (method: string, path: string, body?: unknown) => api(b.httpPort, method, path, { body, auth: ['hq-user', 'pw'] });
      expect((await as('PUT', q('hq-own1'), {})).status).toBe(201);
      expect((await as('PUT', q('hq-notown'), {})).json).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
      expect((await as('DELETE', q('hq-decl'))).json).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
      expect((await as('DELETE', `${q('hq-decl')}/contents`)).status).toBe(401);
      expect((await as('POST', `${q('hq-decl')}/get`, { count: 1, ackmode: 'ack_requeue_true', encoding: 'auto' })).json).toEqual({
        error: 'not_authorised',
        reason: "ACCESS_REFUSED - access to queue 'hq-decl' in vhost '/' refused for user 'hq-user'",
      });
      // It still sees the vhost's queues; not another vhost's.
      expect(((await as('GET', '/api/queues')).json as Obj[]).some((x) => x.name === 'hq-decl')).toBe(true);
      await api(b.httpPort, 'PUT', '/api/vhosts/hq-vh', { body: {} });
      expect((await as('GET', '/api/queues/hq-vh')).json).toEqual({
        error: 'not_authorised',
        reason: 'User not authorised to access virtual host',
      });
      expect((await as('PUT', q('hq-own2', 'hq-vh'), {})).status).toBe(401);
      expect(((await as('GET', '/api/queues')).json as Obj[]).every((x) => x.vhost === '/')).toBe(true);
      expect((await as('GET', '/api/consumers/hq-vh')).json).toEqual([]);
      await sleep(0);
    },
    T,
  );
});
