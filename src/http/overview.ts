import type { FastifyInstance } from 'fastify';
import type { User } from '../auth/users';
import type { Vhost } from '../broker/vhost';
import { version } from '../config';
import type { Listener, ManagementContext } from './context';
import { field } from './body';
import { badRequest, notAuthorised } from './errors';
import { shapeOne, statsDisabled, type Query } from './paging';
import { resource } from './resource';
import { CHANNEL_FIELDS, TOTAL_FIELDS } from './stats/kinds';
import { detailed, sampleAge, type SampleAsk } from './stats/json';
import { isAdministrator } from './access';
import { isMonitor, listedConnections, visibleConnections } from './views/connection';
import { channelsOf } from './views/channel';
import { exchangeTypes, webContexts } from './views/node';

type Obj = Record<string, unknown>;

/**
 * The RabbitMQ release whose management API Leveret answers like. Tools (rabbitmqadmin,
 * the dashboard) read rabbitmq_version and management_version; product_* name us.
 */
const RABBITMQ_VERSION = '3.10.8';
const QUEUE_TOTAL_FIELDS = ['messages', 'messages_ready', 'messages_unacknowledged'];
const CHURN_FIELDS = [
  'channel_closed',
  'channel_created',
  'connection_closed',
  'connection_created',
  'queue_created',
  'queue_declared',
  'queue_deleted',
];

/** RabbitMQ's default retention policies (seconds), which the dashboard offers as chart ranges. */
const SAMPLE_RETENTION_POLICIES = { global: [600, 3600, 28800, 86400], basic: [600, 3600], detailed: [600] };

/** /api/overview, /api/cluster-name and /api/extensions. */
export function registerOverviewRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const users = ctx.broker.users;
  // RabbitMQ's cluster name defaults to the node's name; set by PUT, kept while we run.
  let clusterName = ctx.nodeName;

  resource(app, users, '/api/overview', 'management', {
    GET: ({ user, query }) => ({ status: 200, json: shapeOne(overview(ctx, user, query, clusterName), query) }),
  });

  resource(app, users, '/api/cluster-name', 'management', {
    GET: () => ({ status: 200, json: { name: clusterName } }),
    PUT: ({ user, body }) => {
      if (!isAdministrator(user)) throw notAuthorised('Not administrator user');
      const name = field(body(), 'name');
      if (name === undefined) throw badRequest('[{key_missing,name}]');
      if (typeof name !== 'string' || name === '') throw badRequest('name must be a non-empty string');
      clusterName = name;
      return { status: 204 };
    },
  });

  // Dashboard plugins; Leveret has none.
  resource(app, users, '/api/extensions', 'management', { GET: () => ({ status: 200, json: [] }) });
}

function overview(ctx: ManagementContext, user: User, query: Query, clusterName: string): Obj {
  const monitor = isMonitor(user);
  const out: Obj = {
    management_version: RABBITMQ_VERSION,
    rates_mode: 'basic',
    sample_retention_policies: SAMPLE_RETENTION_POLICIES,
    exchange_types: exchangeTypes(),
    product_version: version(),
    product_name: 'Leveret',
    rabbitmq_version: RABBITMQ_VERSION,
    cluster_name: clusterName,
    // Tools expect these; the runtime here is Node, not Erlang.
    erlang_version: `Node.js ${process.version}`,
    erlang_full_version: `Node.js ${process.version} [${process.platform}-${process.arch}] [V8 ${process.versions.v8}]`,
    release_series_support_status: 'supported',
    disable_stats: statsDisabled(query),
    enable_queue_totals: query.enable_queue_totals === 'true',
  };
  const vhosts = [...ctx.broker.vhosts.values()].filter((v) => monitor || ctx.broker.permissions.canAccessVhost(user, v.name));
  if (statsDisabled(query)) {
    const objects: Obj = { queues: count(vhosts, (v) => v.queues.size), exchanges: count(vhosts, (v) => v.exchanges.size) };
    if (monitor) objects.connections = listedConnections(ctx).length;
    return { ...out, node: ctx.nodeName, object_totals: objects };
  }
  const now = Date.now();
  let totals: Float64Array;
  let rates: Float64Array;
  let msgAsk: SampleAsk | undefined;
  let lengthAsk: SampleAsk | undefined;
  if (monitor) {
    totals = ctx.stats.totals();
    rates = ctx.stats.nodeRates();
    const history = ctx.stats.nodeHistory;
    const msgAge = sampleAge(query, 'msg_rates_age');
    const lengthAge = sampleAge(query, 'lengths_age');
    if (msgAge !== null) msgAsk = { ageMs: msgAge, history, now };
    if (lengthAge !== null) lengthAsk = { ageMs: lengthAge, history, now };
  } else {
    // A management user's figures cover the vhosts it may use (no samples: those are kept per node and vhost).
    totals = new Float64Array(TOTAL_FIELDS.length);
    rates = new Float64Array(TOTAL_FIELDS.length);
    for (const v of vhosts) {
      const t = ctx.stats.totals(v);
      const r = ctx.stats.vhostRates(v);
      for (let i = 0; i < totals.length; i++) {
        totals[i] += t[i];
        rates[i] += r[i];
      }
    }
  }
  const some = monitor || vhosts.length > 0;
  out.message_stats = some ? thinned(detailed(TOTAL_FIELDS, totals, rates, CHANNEL_FIELDS, msgAsk), query.msg_rates_incr) : {};
  out.churn_rates = churnRates();
  out.queue_totals = some ? thinned(detailed(TOTAL_FIELDS, totals, rates, QUEUE_TOTAL_FIELDS, lengthAsk), query.lengths_incr) : {};
  const conns = visibleConnections(ctx, user);
  const objects: Obj = {
    channels: conns.reduce((n, c) => n + channelsOf(c).length, 0),
    connections: conns.length,
  };
  if (monitor) objects.consumers = count(vhosts, (v) => [...v.queues.values()].reduce((n, q) => n + q.consumerCount, 0));
  objects.exchanges = count(vhosts, (v) => v.exchanges.size);
  objects.queues = count(vhosts, (v) => v.queues.size);
  out.object_totals = objects;
  out.statistics_db_event_queue = 0;
  if (monitor) {
    out.node = ctx.nodeName;
    out.listeners = ctx.listeners().map((l) => ({
      node: ctx.nodeName,
      protocol: l.protocol,
      ip_address: l.ip_address,
      port: l.port,
      socket_opts: { ...(l.protocol.startsWith('amqp') ? { backlog: 511, nodelay: true } : { port: l.port }), ...tlsSocketOpts(l) },
    }));
    out.contexts = webContexts(ctx, true);
  }
  return out;
}

/** A TLS listener's options as RabbitMQ lists them (its files; never the key's passphrase). */
function tlsSocketOpts(l: Listener): Obj {
  if (l.certificate === undefined) return {};
  return {
    ...(l.protocol === 'https' ? { ssl: true } : {}),
    certfile: l.certificate.certfile,
    ...(l.certificate.cacertfile !== '' ? { cacertfile: l.certificate.cacertfile } : {}),
    versions: ['tlsv1.3', 'tlsv1.2'],
  };
}

const count = (vhosts: Vhost[], f: (v: Vhost) => number): number => vhosts.reduce((n, v) => n + f(v), 0);

/** Object churn: Leveret does not count it, so zeros in RabbitMQ's shape. */
function churnRates(): Obj {
  const out: Obj = {};
  for (const f of CHURN_FIELDS) {
    out[f] = 0;
    out[`${f}_details`] = { rate: 0 };
  }
  return out;
}

/**
 * RabbitMQ's msg_rates_incr / lengths_incr: samples spaced that many seconds apart. Ours
 * are taken every stats interval, so every sample closest below each step is kept and the
 * averages are worked out again over those.
 */
function thinned(stats: Obj, incrText: Query[string]): Obj {
  const incr = typeof incrText === 'string' && /^\d+$/.test(incrText) ? Number(incrText) * 1000 : 0;
  if (incr <= 0) return stats;
  for (const key of Object.keys(stats)) {
    const d = stats[key] as { samples?: Array<{ sample: number; timestamp: number }>; avg?: number; avg_rate?: number };
    if (!key.endsWith('_details') || d.samples === undefined || d.samples.length === 0) continue;
    const kept = [d.samples[0]];
    for (const s of d.samples) if (kept[kept.length - 1].timestamp - s.timestamp >= incr) kept.push(s);
    d.samples = kept;
    d.avg = kept.reduce((n, s) => n + s.sample, 0) / kept.length;
    const first = kept[kept.length - 1];
    d.avg_rate = kept.length > 1 ? (kept[0].sample - first.sample) / ((kept[0].timestamp - first.timestamp) / 1000) : 0;
  }
  return stats;
}
