import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker';
import type { Vhost } from '../broker/vhost';
import type { User } from '../auth/users';
import { FULL_ACCESS } from '../auth/permissions';
import { isAdministrator } from './access';
import { field, parseTags } from './body';
import { badRequest, notAuthorised, notFound } from './errors';
import { resource, type Handlers } from './resource';
import { shapeList, statsDisabled, type Query } from './paging';
import type { Stats } from './stats/stats';
import { CHANNEL_FIELDS, TOTAL_FIELDS } from './stats/kinds';
import { detailed } from './stats/json';

/** The node name cluster_state reports (RabbitMQ's is rabbit@host). */
const NODE = `leveret@${hostname().split('.')[0]}`;

const QUEUE_TYPES = ['classic', 'quorum', 'stream'];

const OCTET_FIELDS = ['send_oct', 'recv_oct'];
const DEPTH_FIELDS = ['messages_ready', 'messages_unacknowledged', 'messages'];

/**
 * A vhost as RabbitMQ 3.10.8's /api/vhosts/{name} shows it (in its key order), with its
 * connections' octets, its queues' depths and its channels' message_stats unless the
 * query has disable_stats. default_queue_type is "undefined" when not set, and then absent
 * from metadata.
 */
export function vhostJson(v: Vhost, stats?: Stats, query: Query = {}): Record<string, unknown> {
  const metadata: Record<string, unknown> = v.defaultQueueType === null ? {} : { default_queue_type: v.defaultQueueType };
  metadata.description = v.description;
  metadata.tags = [...v.tags];
  const out: Record<string, unknown> = {
    name: v.name,
    description: v.description,
    tags: [...v.tags],
    default_queue_type: v.defaultQueueType ?? 'undefined',
    metadata,
    tracing: false,
    cluster_state: { [NODE]: 'running' },
  };
  if (stats === undefined || statsDisabled(query)) return out;
  // Per-vhost figures that monitoring scripts and Grafana's vhost panels read.
  const totals = stats.totals(v);
  const rates = stats.vhostRates(v);
  Object.assign(out, detailed(TOTAL_FIELDS, totals, rates, OCTET_FIELDS));
  Object.assign(out, detailed(TOTAL_FIELDS, totals, rates, DEPTH_FIELDS));
  out.message_stats = detailed(TOTAL_FIELDS, totals, rates, CHANNEL_FIELDS);
  return out;
}

/** RabbitMQ's list sorts each vhost's keys, message_stats' too. */
const sortedKeys = (o: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(o)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => [k, k === 'message_stats' ? sortedKeys(x as Record<string, unknown>) : x]),
  );

/** Administrators and monitoring users see every vhost; others those they have permissions on. */
function sees(broker: Broker, user: User, vhost: string): boolean {
  return isAdministrator(user) || user.tags.includes('monitoring') || broker.permissions.canAccessVhost(user, vhost);
}

function requireAdministrator(user: User): void {
  if (!isAdministrator(user)) throw notAuthorised('Not administrator user');
}

/** /api/vhosts and /api/vhosts/{name}: listed by management users, changed by administrators. */
export function registerVhostRoutes(app: FastifyInstance, broker: Broker, stats?: Stats): void {
  const users = broker.users;
  const list: Handlers = {
    GET: ({ user, query }) => ({
      status: 200,
      // Paged, filtered and sorted as RabbitMQ's other listings (page, name, sort, columns).
      json: shapeList(
        [...broker.vhosts.values()].filter((v) => sees(broker, user, v.name)).map((v) => sortedKeys(vhostJson(v, stats, query))),
        query,
        ['name'],
      ),
    }),
  };
  resource(app, users, '/api/vhosts', 'management', list);
  resource(app, users, '/api/vhosts/', 'management', list);

  resource(app, users, '/api/vhosts/:name', 'management', {
    GET: ({ user, params, query }) => {
      const v = broker.vhosts.get(params.name);
      if (v === undefined) throw notFound();
      // RabbitMQ 3.10.8 answers a management user without access to it so.
      if (!sees(broker, user, v.name)) throw notAuthorised('Not administrator user');
      return { status: 200, json: vhostJson(v, stats, query) };
    },
    PUT: ({ user, params, body }) => {
      requireAdministrator(user);
      const b = body();
      const existing = broker.vhosts.get(params.name);
      const description = field(b, 'description') ?? '';
      if (typeof description !== 'string') throw badRequest('description must be a string');
      const tags = parseTags(field(b, 'tags'));
      // 3.10 reads "defaultqueuetype"; later versions "default_queue_type". Kept when not given, as RabbitMQ does.
      const dqt = field(b, 'defaultqueuetype') ?? field(b, 'default_queue_type');
      if (dqt !== undefined && (typeof dqt !== 'string' || !QUEUE_TYPES.includes(dqt))) {
        throw badRequest(`default_queue_type must be one of ${QUEUE_TYPES.join(', ')}`);
      }
      const defaultQueueType = dqt === undefined ? (existing?.defaultQueueType ?? null) : dqt;
      const created = broker.putVhost({ name: params.name, description, tags, defaultQueueType });
      // RabbitMQ 3.10.8 gives whoever creates a vhost full permissions on it.
      if (created) broker.setPermission(params.name, user.name, FULL_ACCESS);
      return { status: created ? 201 : 204 };
    },
    DELETE: ({ user, params }) => {
      requireAdministrator(user);
      if (!broker.deleteVhost(params.name)) throw notFound();
      return { status: 204 };
    },
  });
}
