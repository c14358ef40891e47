import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker';
import type { User } from '../auth/users';
import { FULL_ACCESS } from '../auth/permissions';
import { version } from '../config';
import { badRequest } from './errors';
import { resource } from './resource';
import { userFromBody, userJson } from './users';

/** The RabbitMQ version exports claim, so that RabbitMQ's tools read them as their own. */
const RABBIT_VERSION = '3.10.8';

type Obj = Record<string, unknown>;

/**
 * GET and POST /api/definitions for users, vhosts, permissions and topic permissions, in
 * RabbitMQ 3.10.8's format (administrators only). The other keys are exported empty and
 * ignored on import until the rest of the definitions endpoint comes.
 */
export function registerDefinitionRoutes(app: FastifyInstance, broker: Broker): void {
  resource(app, broker.users, '/api/definitions', 'administrator', {
    GET: () => ({ status: 200, json: exportDefinitions(broker) }),
    POST: ({ user, body }) => {
      importDefinitions(broker, user, parsed(body));
      return { status: 204 };
    },
  });
}

/** RabbitMQ answers any body that is not a JSON object with "failed_to_parse_json". */
function parsed(body: () => Obj): Obj {
  try {
    return body();
  } catch {
    throw badRequest('failed_to_parse_json');
  }
}

export function exportDefinitions(broker: Broker): Obj {
  return {
    rabbit_version: RABBIT_VERSION,
    rabbitmq_version: RABBIT_VERSION,
    product_name: 'Leveret',
    product_version: version(),
    users: broker.users.list().map(userJson),
    // RabbitMQ's HTTP export names the vhosts only (rabbitmqctl's adds their metadata).
    vhosts: [...broker.vhosts.keys()].map((name) => ({ name })),
    permissions: broker.permissions.list(),
    topic_permissions: broker.permissions.listTopic(),
    parameters: [],
    global_parameters: [],
    policies: [],
    queues: [],
    exchanges: [],
    bindings: [],
  };
}

const list = (defs: Obj, key: string): Obj[] => {
  const v = defs[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) throw badRequest(`${key} must be a list of objects`);
  return v as Obj[];
};

const str = (o: Obj, key: string, what: string): string => {
  const v = o[key];
  if (typeof v !== 'string') throw badRequest(`${what}: ${key} must be a string`);
  return v;
};

/**
 * Applies the keys in RabbitMQ's order (users, vhosts, permissions, topic permissions),
 * each change stored as it is made; the first bad item stops the import with a 400 (what
 * came before it stays), as RabbitMQ does.
 */
export function importDefinitions(broker: Broker, actingUser: User, defs: Obj): void {
  const users = list(defs, 'users');
  const vhosts = list(defs, 'vhosts');
  const perms = list(defs, 'permissions');
  const topic = list(defs, 'topic_permissions');
  for (const u of users) {
    const name = str(u, 'name', 'user');
    broker.putUser(userFromBody(name, u, broker.users.get(name) !== undefined));
  }
  for (const v of vhosts) {
    const name = str(v, 'name', 'vhost');
    const meta = v.metadata !== null && typeof v.metadata === 'object' ? (v.metadata as Obj) : {};
    const description = meta.description ?? v.description ?? '';
    const rawTags = meta.tags ?? v.tags ?? [];
    const tags = typeof rawTags === 'string' ? rawTags.split(',') : rawTags;
    if (typeof description !== 'string' || !Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw badRequest(`vhost ${name}: bad description or tags`);
    const dqt = meta.default_queue_type ?? v.default_queue_type ?? broker.vhosts.get(name)?.defaultQueueType ?? null;
    if (dqt !== null && typeof dqt !== 'string') throw badRequest(`vhost ${name}: bad default_queue_type`);
    const created = broker.putVhost({ name, description, tags: (tags as string[]).map((t) => t.trim()).filter((t) => t !== ''), defaultQueueType: dqt });
    // As RabbitMQ: whoever creates a vhost may use it.
    if (created) broker.setPermission(name, actingUser.name, FULL_ACCESS);
  }
  for (const p of perms) {
    const user = str(p, 'user', 'permission');
    const vhost = str(p, 'vhost', 'permission');
    if (broker.users.get(user) === undefined) throw badRequest(['no_such_user', user]);
    if (!broker.vhosts.has(vhost)) throw badRequest(['no_such_vhost', vhost]);
    regexChange(() => broker.setPermission(vhost, user, { configure: str(p, 'configure', 'permission'), write: str(p, 'write', 'permission'), read: str(p, 'read', 'permission') }));
  }
  for (const t of topic) {
    const user = str(t, 'user', 'topic permission');
    const vhost = str(t, 'vhost', 'topic permission');
    if (broker.users.get(user) === undefined) throw badRequest(['no_such_user', user]);
    if (!broker.vhosts.has(vhost)) throw badRequest(['no_such_vhost', vhost]);
    const exchange = str(t, 'exchange', 'topic permission');
    regexChange(() => broker.setTopicPermission(vhost, user, exchange, { write: str(t, 'write', 'topic permission'), read: str(t, 'read', 'topic permission') }));
  }
}

function regexChange(change: () => unknown): void {
  try {
    change();
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('Invalid regexp')) throw badRequest(err.message);
    throw err;
  }
}
