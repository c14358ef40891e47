// Exchanges, bindings and the publish endpoint over RabbitMQ's management HTTP API,
// against a real Leveret over real sockets: declared over one protocol and used over the
// other, bindings named by RabbitMQ's properties_key, headers bindings with arguments,
// publishes routed as over AMQP and counted in the exchange's message_stats.
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { api, putUser } from './helpers/http';
import { waitFor } from './helpers/clients';

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
const ex = (name: string, vhost = '/') => `/api/exchanges/${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`;
const get = async (path: string): Promise<any> => {
  const r = await api(b.httpPort, 'GET', path);
  expect(r.status, r.text).toBe(200);
  return r.json;
};
const publish = (exchange: string, body: Obj) => api(b.httpPort, 'POST', `${ex(exchange)}/publish`, { body });
const NOT_FOUND = { error: 'Object Not Found', reason: 'Not Found' };

describe('/api/exchanges', () => {
  it(
    'declares (201/204/400), shows, lists the default exchange as "" and deletes as RabbitMQ',
    async () => {
      const put = (name: string, body: Obj) => api(b.httpPort, 'PUT', ex(name), { body });
      expect((await put('he-topic', { type: 'topic', durable: true })).status).toBe(201);
      expect((await put('he-topic', { type: 'topic', durable: true })).status).toBe(204);
      expect((await put('he-topic', { type: 'direct', durable: true })).json).toEqual({
        error: 'bad_request',
        reason: "inequivalent arg 'type' for exchange 'he-topic' in vhost '/': received 'direct' but current is 'topic'",
      });
      expect((await put('he-bogus', { type: 'bogus' })).json).toEqual({ error: 'bad_request', reason: "invalid exchange type 'bogus'" });
      expect((await put('he-plain', {})).status).toBe(201);
      expect((await put('amq.default', { type: 'direct' })).json).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
      expect((await put('amq.nope', { type: 'direct' })).status).toBe(401);
      expect((await put('amq.direct', { type: 'direct', durable: true })).status).toBe(204);

      const one = await get(ex('he-topic'));
      expect(one).toEqual({
        arguments: {},
        auto_delete: false,
        durable: true,
        incoming: [],
        internal: false,
        name: 'he-topic',
        outgoing: [],
        type: 'topic',
        user_who_performed_action: 'guest',
        vhost: '/',
      });
      expect(await get(ex('he-plain'))).toMatchObject({ type: 'direct', durable: false });
      const dflt = await get(ex('amq.default'));
      expect(dflt).toMatchObject({ name: '', type: 'direct', durable: true, user_who_performed_action: 'rmq-internal' });
      const names = ((await get('/api/exchanges/%2F?columns=name')) as Obj[]).map((e) => e.name);
      expect(names.slice(0, 6)).toEqual(['', 'amq.direct', 'amq.fanout', 'amq.headers', 'amq.match', 'amq.topic']);
      expect(names).toContain('he-topic');

      // Declared over AMQP, seen over HTTP; declared over HTTP, used over AMQP.
      const ch = await conn.createChannel();
      await ch.assertExchange('he-amqp', 'fanout', { durable: false, autoDelete: false, arguments: { 'alternate-exchange': 'he-plain' } });
      expect(await get(ex('he-amqp'))).toMatchObject({ type: 'fanout', arguments: { 'alternate-exchange': 'he-plain' } });
      await ch.checkExchange('he-topic');

      await ch.assertQueue('he-q', { durable: false });
      await ch.bindQueue('he-q', 'he-topic', 'a.*');
      let r = await api(b.httpPort, 'DELETE', `${ex('he-topic')}?if-unused=true`);
      expect(r.json).toEqual({ error: 'bad_request', reason: "exchange 'he-topic' in vhost '/' in use" });
      expect((await api(b.httpPort, 'DELETE', ex('amq.direct'))).json).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
      expect((await api(b.httpPort, 'DELETE', ex('amq.default'))).status).toBe(401);
      expect((await api(b.httpPort, 'DELETE', ex('he-none'))).json).toEqual(NOT_FOUND);
      expect((await api(b.httpPort, 'DELETE', ex('he-amqp'))).status).toBe(204);
      ch.on('error', () => {}); // the failed check closes the channel
      await expect(ch.checkExchange('he-amqp')).rejects.toThrow(/NOT_FOUND/);
      expect((await api(b.httpPort, 'GET', ex('he-amqp'))).json).toEqual(NOT_FOUND);
      expect((await api(b.httpPort, 'GET', '/api/exchanges/nohost')).json).toEqual(NOT_FOUND);
      expect((await api(b.httpPort, 'GET', ex('x', 'nohost'))).json).toEqual(NOT_FOUND);
      expect((await api(b.httpPort, 'PUT', ex('he-json'), { body: '{"type":' })).json).toEqual({
        error: 'bad_request',
        reason: 'not_json',
      });
      expect((await api(b.httpPort, 'PATCH', ex('he-topic'))).status).toBe(405);
    },
    T,
  );

  it(
    'publishes through the same routing as AMQP ({"routed": true|false}) and counts it in message_stats',
    async () => {
      const ch = await conn.createChannel();
      await ch.assertExchange('he-pub', 'topic', { durable: false });
      await ch.assertQueue('he-pub-q', { durable: false });
      await ch.bindQueue('he-pub-q', 'he-pub', 'orders.*');
      let r = await publish('he-pub', {
        properties: {
          content_type: 'application/json',
          delivery_mode: 2,
          headers: { n: 1, nested: { list: [1, 'two'] } },
          correlation_id: 'c-1',
        },
        routing_key: 'orders.new',
        payload: '{"id":7}',
        payload_encoding: 'string',
      });
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ routed: true });
      expect((await publish('he-pub', { properties: {}, routing_key: 'other', payload: 'x', payload_encoding: 'string' })).json).toEqual({
        routed: false,
      });
      expect(
        (
          await publish('he-pub', {
            properties: {},
            routing_key: 'orders.b64',
            payload: Buffer.from([1, 2, 3]).toString('base64'),
            payload_encoding: 'base64',
          })
        ).json,
      ).toEqual({ routed: true });

      const m = await ch.get('he-pub-q', { noAck: true });
      expect(m && m.content.toString()).toBe('{"id":7}');
      expect(m && m.properties).toMatchObject({
        contentType: 'application/json',
        deliveryMode: 2,
        correlationId: 'c-1',
        headers: { n: 1, nested: { list: [1, 'two'] } },
      });
      expect(m && m.fields).toMatchObject({ exchange: 'he-pub', routingKey: 'orders.new' });
      const m2 = await ch.get('he-pub-q', { noAck: true });
      expect(m2 && [...m2.content]).toEqual([1, 2, 3]);

      // Default exchange, addressed as amq.default.
      expect(
        (await publish('amq.default', { properties: {}, routing_key: 'he-pub-q', payload: 'direct', payload_encoding: 'string' })).json,
      ).toEqual({ routed: true });
      expect(
        (await publish('amq.default', { properties: {}, routing_key: 'he-no-such-queue', payload: 'x', payload_encoding: 'string' })).json,
      ).toEqual({ routed: false });

      await waitFor(async () => (await get(ex('he-pub'))).message_stats?.publish_in === 3, 3000, 'publish_in');
      const stats = (await get(ex('he-pub'))).message_stats;
      expect(stats.publish_out).toBe(2);
      expect(stats).toHaveProperty('publish_in_details.rate');
      // A steady trickle of publishes shows a rate.
      const timer = setInterval(
        () => void publish('he-pub', { properties: {}, routing_key: 'orders.r', payload: 'r', payload_encoding: 'string' }),
        20,
      );
      try {
        await waitFor(async () => (await get(ex('he-pub'))).message_stats.publish_in_details.rate > 0, 5000, 'a publish_in rate');
      } finally {
        clearInterval(timer);
      }

      // RabbitMQ's refusals.
      expect((await publish('he-pub', { properties: {}, routing_key: 'x', payload: 'x' })).json).toEqual({
        error: 'bad_request',
        reason: '[{key_missing,payload_encoding}]',
      });
      expect((await publish('he-pub', { routing_key: 'x', payload: 'x', payload_encoding: 'string' })).json).toEqual({
        error: 'bad_request',
        reason: '[{key_missing,properties}]',
      });
      expect((await publish('he-pub', { properties: {}, routing_key: 'x', payload: 'x', payload_encoding: 'foo' })).json).toEqual({
        error: 'bad_request',
        reason: ['unsupported_encoding', 'foo'],
      });
      expect(
        (await publish('he-pub', { properties: { delivery_mode: 'x' }, routing_key: 'x', payload: 'x', payload_encoding: 'string' })).json,
      ).toEqual({ error: 'bad_request', reason: ['not_int', 'delivery_mode'] });
      expect((await publish('he-missing', { properties: {}, routing_key: 'x', payload: 'x', payload_encoding: 'string' })).json).toEqual({
        error: 'bad_request',
        reason: "404 NOT_FOUND - no exchange 'he-missing' in vhost '/'",
      });
      await ch.close();
    },
    T,
  );
});

describe('/api/bindings', () => {
  const bq = (source: string, queue: string) => `/api/bindings/%2F/e/${encodeURIComponent(source)}/q/${encodeURIComponent(queue)}`;

  it(
    'creates bindings (201 + Location with the properties_key), lists, gets and deletes them by properties_key',
    async () => {
      const ch = await conn.createChannel();
      await ch.assertExchange('hb-x', 'topic', { durable: false });
      await ch.assertQueue('hb-q', { durable: false });
      const post = (body: Obj, path = bq('hb-x', 'hb-q')) => api(b.httpPort, 'POST', path, { body });
      let r = await post({ routing_key: 'a.b', arguments: {} });
      expect(r.status).toBe(201);
      expect(r.headers.get('location')).toBe('hb-q/a.b');
      expect((await post({ routing_key: 'a b/c%' })).headers.get('location')).toBe('hb-q/a%2Bb%252Fc%2525');
      expect((await post({})).headers.get('location')).toBe('hb-q/~');
      await post({ routing_key: '~' });

      const list = (await get(bq('hb-x', 'hb-q'))) as Obj[];
      expect(list.map((x) => [x.routing_key, x.properties_key])).toEqual([
        ['', '~'],
        ['a b/c%', 'a+b%2Fc%25'],
        ['a.b', 'a.b'],
        ['~', '%7E'],
      ]);
      expect(list[2]).toEqual({
        source: 'hb-x',
        vhost: '/',
        destination: 'hb-q',
        destination_type: 'queue',
        routing_key: 'a.b',
        arguments: {},
        properties_key: 'a.b',
      });

      // The binding routes over AMQP.
      ch.publish('hb-x', 'a.b', Buffer.from('via binding'));
      await waitFor(async () => (await ch.checkQueue('hb-q')).messageCount === 1);

      // By properties_key: as listed, and percent-encoded in the path.
      expect(await get(`${bq('hb-x', 'hb-q')}/a.b`)).toMatchObject({ routing_key: 'a.b' });
      expect(await get(`${bq('hb-x', 'hb-q')}/${encodeURIComponent('a+b%2Fc%25')}`)).toMatchObject({ routing_key: 'a b/c%' });
      expect(await get(`${bq('hb-x', 'hb-q')}/~`)).toMatchObject({ routing_key: '' });
      expect((await api(b.httpPort, 'GET', `${bq('hb-x', 'hb-q')}/nope`)).json).toEqual(NOT_FOUND);
      expect((await api(b.httpPort, 'DELETE', `${bq('hb-x', 'hb-q')}/a.b`)).status).toBe(204);
      expect((await api(b.httpPort, 'DELETE', `${bq('hb-x', 'hb-q')}/a.b`)).json).toEqual(NOT_FOUND);
      ch.publish('hb-x', 'a.b', Buffer.from('not routed'));
      expect((await publish('hb-x', { properties: {}, routing_key: 'a.b', payload: 'x', payload_encoding: 'string' })).json).toEqual({
        routed: false,
      });

      // A queue's bindings start with the default exchange's implicit one.
      const qb = (await get('/api/queues/%2F/hb-q/bindings')) as Obj[];
      expect(qb[0]).toEqual({
        source: '',
        vhost: '/',
        destination: 'hb-q',
        destination_type: 'queue',
        routing_key: 'hb-q',
        arguments: {},
        properties_key: 'hb-q',
      });
      expect(qb.map((x) => x.source)).toEqual(['', 'hb-x', 'hb-x', 'hb-x']);
      const all = (await get('/api/bindings/%2F')) as Obj[];
      expect(all.filter((x) => x.destination === 'hb-q')).toHaveLength(4);
      expect((await get('/api/bindings')).length).toBe(all.length);

      // Refusals: missing ends, the default exchange, unknown vhost.
      expect((await post({ routing_key: 'x' }, bq('hb-x', 'hb-none'))).json).toEqual({
        error: 'not_found',
        reason: "no queue 'hb-none' in vhost '/'",
      });
      expect((await post({ routing_key: 'x' }, bq('hb-none', 'hb-q'))).json).toEqual({
        error: 'not_found',
        reason: "no exchange 'hb-none' in vhost '/'",
      });
      expect((await post({ routing_key: 'x' }, bq('amq.default', 'hb-q'))).json).toEqual({
        error: 'not_authorised',
        reason: 'Access refused.',
      });
      expect((await api(b.httpPort, 'GET', '/api/bindings/nohost')).json).toEqual(NOT_FOUND);
      expect((await api(b.httpPort, 'POST', bq('hb-x', 'hb-q'), { body: '{' })).json).toEqual({ error: 'bad_request', reason: 'not_json' });
      await ch.close();
    },
    T,
  );

  it(
    'binds exchanges to exchanges and lists bindings by source and destination',
    async () => {
      const ch = await conn.createChannel();
      await ch.assertExchange('hb-src', 'direct', { durable: false });
      await ch.assertExchange('hb-dst', 'fanout', { durable: false });
      await ch.assertQueue('hb-eq', { durable: false });
      await ch.bindQueue('hb-eq', 'hb-dst', '');
      const r = await api(b.httpPort, 'POST', '/api/bindings/%2F/e/hb-src/e/hb-dst', { body: { routing_key: 'k' } });
      expect(r.status).toBe(201);
      expect(r.headers.get('location')).toBe('hb-dst/k');
      expect((await publish('hb-src', { properties: {}, routing_key: 'k', payload: 'e2e', payload_encoding: 'string' })).json).toEqual({
        routed: true,
      });
      const m = await ch.get('hb-eq', { noAck: true });
      expect(m && m.content.toString()).toBe('e2e');
      expect(await get('/api/exchanges/%2F/hb-src/bindings/source')).toEqual([
        {
          source: 'hb-src',
          vhost: '/',
          destination: 'hb-dst',
          destination_type: 'exchange',
          routing_key: 'k',
          arguments: {},
          properties_key: 'k',
        },
      ]);
      expect(((await get('/api/exchanges/%2F/hb-dst/bindings/destination')) as Obj[]).map((x) => x.source)).toEqual(['hb-src']);
      expect(((await get('/api/exchanges/%2F/hb-dst/bindings/source')) as Obj[]).map((x) => x.destination)).toEqual(['hb-eq']);
      expect(await get('/api/bindings/%2F/e/hb-src/e/hb-dst')).toHaveLength(1);
      expect((await api(b.httpPort, 'DELETE', '/api/bindings/%2F/e/hb-src/e/hb-dst/k')).status).toBe(204);
      expect((await publish('hb-src', { properties: {}, routing_key: 'k', payload: 'e2e', payload_encoding: 'string' })).json).toEqual({
        routed: false,
      });
      expect((await api(b.httpPort, 'GET', '/api/exchanges/%2F/hb-none/bindings/source')).json).toEqual(NOT_FOUND);
      await ch.close();
    },
    T,
  );

  it(
    'keeps headers bindings with their arguments, named by a stable properties_key',
    async () => {
      const ch = await conn.createChannel();
      await ch.assertExchange('hb-h', 'headers', { durable: false });
      await ch.assertQueue('hb-hq', { durable: false });
      const path = bq('hb-h', 'hb-hq');
      const r = await api(b.httpPort, 'POST', path, { body: { routing_key: '', arguments: { 'x-match': 'all', k: 'v', n: 1 } } });
      expect(r.status).toBe(201);
      const loc = r.headers.get('location')!;
      expect(loc).toMatch(/^hb-hq\/~[A-Za-z0-9_-]{6}$/);
      await api(b.httpPort, 'POST', path, { body: { routing_key: 'rk', arguments: { 'x-match': 'any', k: 'w' } } });
      // The same arguments in another order name the same binding: a second POST changes nothing.
      await api(b.httpPort, 'POST', path, { body: { routing_key: '', arguments: { n: 1, k: 'v', 'x-match': 'all' } } });
      const list = (await get(path)) as Obj[];
      expect(list).toHaveLength(2);
      const all = list.find((x) => x.routing_key === '')!;
      expect(all.arguments).toEqual({ k: 'v', n: 1, 'x-match': 'all' });
      expect(Object.keys(all.arguments)).toEqual(['k', 'n', 'x-match']);
      expect(`hb-hq/${all.properties_key}`).toBe(loc);
      const any = list.find((x) => x.routing_key === 'rk')!;
      expect(any.properties_key).toMatch(/^rk~[A-Za-z0-9_-]{6}$/);

      // Routing by headers over AMQP and over HTTP.
      ch.publish('hb-h', '', Buffer.from('all'), { headers: { k: 'v', n: 1 } });
      expect(
        (await publish('hb-h', { properties: { headers: { k: 'w' } }, routing_key: '', payload: 'any', payload_encoding: 'string' })).json,
      ).toEqual({ routed: true });
      expect(
        (await publish('hb-h', { properties: { headers: { k: 'z' } }, routing_key: '', payload: 'none', payload_encoding: 'string' })).json,
      ).toEqual({ routed: false });
      await waitFor(async () => (await ch.checkQueue('hb-hq')).messageCount === 2);

      expect(await get(`${path}/${encodeURIComponent(all.properties_key)}`)).toEqual(all);
      expect((await api(b.httpPort, 'DELETE', `${path}/${encodeURIComponent(any.properties_key)}`)).status).toBe(204);
      expect(((await get(path)) as Obj[]).map((x) => x.routing_key)).toEqual(['']);
      const bad = await api(b.httpPort, 'POST', path, { body: { arguments: { 'x-match': 'bogus' } } });
      expect(bad.status).toBe(400);
      expect((bad.json as Obj).reason).toMatch(/^Invalid x-match field value/);
      await ch.close();
    },
    T,
  );

  it(
    'checks the AMQP permissions of the user: write on the destination, read on the source, write to publish',
    async () => {
      await putUser(b.httpPort, 'hb-user', { password: 'pw', tags: 'management' }, { access: false });
      await api(b.httpPort, 'PUT', '/api/permissions/%2F/hb-user', { body: { configure: '^hb-own', write: '^hb-own', read: '^hb-own' } });
      const as = (method: string, path: string, body?: unknown) => api(b.httpPort, method, path, { body, auth: ['hb-user', 'pw'] });
      expect((await as('PUT', ex('hb-own-x'), { type: 'direct' })).status).toBe(201);
      expect((await as('PUT', '/api/queues/%2F/hb-own-q', {})).status).toBe(201);
      expect((await as('POST', bq('hb-own-x', 'hb-own-q'), { routing_key: 'k' })).status).toBe(201);
      expect((await as('POST', bq('hb-x', 'hb-own-q'), { routing_key: 'k' })).json).toEqual({
        error: 'not_authorised',
        reason: 'Access refused.',
      });
      expect((await as('PUT', ex('hb-other'), { type: 'direct' })).json).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
      expect((await as('DELETE', ex('hb-x'))).status).toBe(401);
      expect(
        (await as('POST', `${ex('hb-own-x')}/publish`, { properties: {}, routing_key: 'k', payload: 'x', payload_encoding: 'string' }))
          .json,
      ).toEqual({ routed: true });
      expect(
        (await as('POST', `${ex('hb-x')}/publish`, { properties: {}, routing_key: 'k', payload: 'x', payload_encoding: 'string' })).json,
      ).toEqual({
        error: 'bad_request',
        reason: "403 ACCESS_REFUSED - access to exchange 'hb-x' in vhost '/' refused for user 'hb-user'",
      });
      expect((await as('DELETE', `${bq('hb-own-x', 'hb-own-q')}/k`)).status).toBe(204);
      await api(b.httpPort, 'PUT', '/api/vhosts/hb-vh', { body: {} });
      expect((await as('GET', '/api/bindings/hb-vh')).json).toEqual([]);
      expect((await as('GET', '/api/exchanges/hb-vh')).json).toEqual({
        error: 'not_authorised',
        reason: 'User not authorised to access virtual host',
      });
    },
    T,
  );
});
