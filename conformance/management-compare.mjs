// Field-by-field comparison of the management API: the same AMQP traffic against RabbitMQ
// and Leveret, then, for each GET, the key paths and JSON types missing on either side.
//
//   node conformance/management-compare.mjs LEVERET_AMQP_URL LEVERET_HTTP_URL [path …]
//
// RabbitMQ is taken from RABBIT_AMQP (default amqp://guest:guest@127.0.0.1:5672) and
// RABBIT_HTTP (default http://127.0.0.1:15672). Objects are named cmp-* and deleted at the
// end (KEEP=1 keeps them; SHOW=1 prints the start of both bodies). In a path, {conn} and
// {chan} stand for this script's connection and its first channel on each broker.
import amqp from 'amqplib';

const [leveretAmqp, leveretHttp] = process.argv.slice(2, 4);
if (!leveretAmqp || !leveretHttp) {
  console.error('usage: management-compare.mjs LEVERET_AMQP_URL LEVERET_HTTP_URL [path …]');
  process.exit(2);
}
const targets = {
  rabbit: {
    amqp: process.env.RABBIT_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672',
    http: process.env.RABBIT_HTTP ?? 'http://127.0.0.1:15672',
  },
  leveret: { amqp: leveretAmqp, http: leveretHttp },
};
const AUTH = 'Basic ' + Buffer.from('guest:guest').toString('base64');

async function api(base, method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, body: json };
}

/** Every key path with its JSON type; array elements share the path `[]`. */
function shape(v, prefix, out) {
  const t = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
  out.set(prefix || '.', t);
  if (t === 'object') for (const [k, x] of Object.entries(v)) shape(x, `${prefix}.${k}`, out);
  if (t === 'array') for (const x of v) shape(x, `${prefix}[]`, out);
  return out;
}

/** In a list, only this script's objects (the brokers may hold others). */
function ours(body) {
  if (!Array.isArray(body)) return body;
  const mine = body.filter((x) => JSON.stringify(x).includes('cmp-'));
  return mine.length > 0 ? mine : body;
}

const connections = {};
for (const [name, t] of Object.entries(targets)) {
  const c = await amqp.connect(t.amqp, { clientProperties: { connection_name: 'cmp-conn' } });
  const ch = await c.createConfirmChannel();
  await ch.assertExchange('cmp-ex', 'topic', { durable: true, arguments: { 'alternate-exchange': 'amq.fanout' } });
  await ch.assertQueue('cmp-q', { durable: true, arguments: { 'x-max-length': 1000 } });
  await ch.assertQueue('cmp-q2', { durable: false });
  await ch.bindQueue('cmp-q', 'cmp-ex', 'cmp.#', { 'x-k': 1 });
  await ch.bindQueue('cmp-q2', 'cmp-ex', 'cmp.b');
  await ch.bindExchange('amq.direct', 'cmp-ex', 'cmp.e');
  await api(t.http, 'PUT', '/api/policies/%2F/cmp-pol', {
    pattern: '^cmp-q$',
    definition: { 'message-ttl': 600000 },
    'apply-to': 'queues',
    priority: 1,
  });
  await ch.prefetch(5);
  await ch.consume('cmp-q2', () => {}, { noAck: false, consumerTag: 'cmp-ctag', arguments: { 'x-priority': 2 } });
  for (let i = 0; i < 20; i++)
    ch.publish('cmp-ex', i % 2 ? 'cmp.a' : 'cmp.b', Buffer.from(`m${i}`), { persistent: true, headers: { h: i } });
  ch.publish('cmp-ex', 'nowhere', Buffer.from('x'), { mandatory: true });
  await ch.waitForConfirms();
  const getter = await c.createChannel();
  const m = await getter.get('cmp-q');
  if (m) getter.ack(m);
  connections[name] = c;
}
// RabbitMQ emits statistics every 5 s: wait for a sample with the traffic in it.
await new Promise((r) => setTimeout(r, 7000));

const PATHS = [
  '/api/overview',
  '/api/nodes',
  '/api/connections',
  '/api/connections/{conn}',
  '/api/connections/{conn}/channels',
  '/api/channels',
  '/api/channels/{chan}',
  '/api/consumers',
  '/api/exchanges',
  '/api/exchanges/%2F/cmp-ex',
  '/api/exchanges/%2F/cmp-ex/bindings/source',
  '/api/exchanges/%2F/amq.direct/bindings/destination',
  '/api/queues',
  '/api/queues/%2F/cmp-q',
  '/api/queues/%2F/cmp-q2',
  '/api/queues/%2F/cmp-q/bindings',
  '/api/bindings/%2F',
  '/api/bindings/%2F/e/cmp-ex/q/cmp-q',
  '/api/definitions',
  '/api/definitions/%2F',
  '/api/policies',
  '/api/policies/%2F/cmp-pol',
  '/api/vhosts',
  '/api/vhosts/%2F',
  '/api/users',
  '/api/whoami',
  '/api/permissions',
  '/api/health/checks/alarms',
  '/api/health/checks/local-alarms',
  '/api/health/checks/port-listener/{amqp-port}',
  '/api/health/checks/port-listener/1',
  '/api/health/checks/virtual-hosts',
  '/api/aliveness-test/%2F',
  '/api/queues?page=1&page_size=2',
  '/api/vhosts?page=1',
  '/api/queues?columns=name,messages',
  '/api/queues?disable_stats=true',
  '/api/queues/%2F/nope',
  '/api/exchanges/nope',
];

async function resolve(t, path) {
  let p = path.replace('{amqp-port}', new URL(t.amqp).port || '5672');
  if (!p.includes('{conn}') && !p.includes('{chan}')) return p;
  const conn = (await api(t.http, 'GET', '/api/connections')).body.find((c) => c.client_properties?.connection_name === 'cmp-conn');
  const chan = (await api(t.http, 'GET', '/api/channels')).body.find((c) => c.connection_details?.name === conn.name);
  return p.replace('{conn}', encodeURIComponent(conn.name)).replace('{chan}', encodeURIComponent(chan.name));
}

const asked = process.argv.slice(4);
for (const path of asked.length > 0 ? asked : PATHS) {
  const r = await api(targets.rabbit.http, 'GET', await resolve(targets.rabbit, path));
  const l = await api(targets.leveret.http, 'GET', await resolve(targets.leveret, path));
  const rs = shape(ours(r.body), '', new Map());
  const ls = shape(ours(l.body), '', new Map());
  const missing = [...rs].filter(([k]) => !ls.has(k)).map(([k, t]) => `${k}:${t}`);
  const extra = [...ls].filter(([k]) => !rs.has(k)).map(([k, t]) => `${k}:${t}`);
  const types = [...rs].filter(([k, t]) => ls.has(k) && ls.get(k) !== t).map(([k, t]) => `${k} rabbit=${t} leveret=${ls.get(k)}`);
  console.log(`\n=== ${path}  status rabbit=${r.status} leveret=${l.status}`);
  if (missing.length) console.log('  missing in Leveret:', missing.join(' '));
  if (types.length) console.log('  type differs:', types.join(' | '));
  if (extra.length) console.log('  only in Leveret:', extra.join(' '));
  if (process.env.SHOW) {
    console.log('  R', JSON.stringify(r.body).slice(0, 600));
    console.log('  L', JSON.stringify(l.body).slice(0, 600));
  }
}

for (const [name, t] of Object.entries(targets)) {
  await connections[name].close();
  if (process.env.KEEP) continue;
  for (const q of ['cmp-q', 'cmp-q2']) await api(t.http, 'DELETE', `/api/queues/%2F/${q}`);
  await api(t.http, 'DELETE', '/api/exchanges/%2F/cmp-ex');
  await api(t.http, 'DELETE', '/api/policies/%2F/cmp-pol');
  await api(t.http, 'DELETE', '/api/queues/%2F/aliveness-test');
}
