import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker';
import { field } from './body';
import { badRequest, notFound } from './errors';
import { resource } from './resource';

/**
 * /api/permissions and /api/topic-permissions, with the per-user and per-vhost lists, as
 * RabbitMQ 3.10 answers them (administrators only). Changes are stored before they apply
 * and reach open channels when their permission cache lapses, as in RabbitMQ.
 */
export function registerPermissionRoutes(app: FastifyInstance, broker: Broker): void {
  const users = broker.users;
  const perms = broker.permissions;

  resource(app, users, '/api/permissions', 'administrator', { GET: () => ({ status: 200, json: perms.list() }) });

  resource(app, users, '/api/permissions/:vhost/:user', 'administrator', {
    GET: ({ params }) => {
      const p = perms.get(params.vhost, params.user);
      if (p === undefined) throw notFound();
      return { status: 200, json: p };
    },
    PUT: ({ params, body }) => {
      requireVhostAndUser(broker, params.vhost, params.user);
      const b = body();
      const triple = { configure: pattern(b, 'configure'), write: pattern(b, 'write'), read: pattern(b, 'read') };
      return { status: store(() => broker.setPermission(params.vhost, params.user, triple)) ? 201 : 204 };
    },
    DELETE: ({ params }) => {
      if (!broker.clearPermission(params.vhost, params.user)) throw notFound();
      return { status: 204 };
    },
  });

  registerListsBy(app, broker, 'permissions', (f) => perms.list(f));

  resource(app, users, '/api/topic-permissions', 'administrator', { GET: () => ({ status: 200, json: perms.listTopic() }) });

  resource(app, users, '/api/topic-permissions/:vhost/:user', 'administrator', {
    GET: ({ params }) => {
      const list = perms.listTopic({ vhost: params.vhost, user: params.user });
      if (list.length === 0) throw notFound();
      return { status: 200, json: list };
    },
    PUT: ({ params, body }) => {
      requireVhostAndUser(broker, params.vhost, params.user);
      const b = body();
      const exchange = field(b, 'exchange');
      if (exchange === undefined) throw badRequest('[{key_missing,exchange}]');
      if (typeof exchange !== 'string') throw badRequest('exchange must be a string');
      const pair = { write: pattern(b, 'write'), read: pattern(b, 'read') };
      return { status: store(() => broker.setTopicPermission(params.vhost, params.user, exchange, pair)) ? 201 : 204 };
    },
    DELETE: ({ params }) => {
      if (broker.clearTopicPermission(params.vhost, params.user) === 0) throw notFound();
      return { status: 204 };
    },
  });

  registerListsBy(app, broker, 'topic-permissions', (f) => perms.listTopic(f));
}

/** /api/users/{user}/{kind} and /api/vhosts/{vhost}/{kind}: one user's or one vhost's entries (404 when it does not exist). */
function registerListsBy(
  app: FastifyInstance,
  broker: Broker,
  kind: string,
  list: (filter: { user?: string; vhost?: string }) => unknown[],
): void {
  resource(app, broker.users, `/api/users/:user/${kind}`, 'administrator', {
    GET: ({ params }) => {
      if (broker.users.get(params.user) === undefined) throw notFound();
      return { status: 200, json: list({ user: params.user }) };
    },
  });
  resource(app, broker.users, `/api/vhosts/:vhost/${kind}`, 'administrator', {
    GET: ({ params }) => {
      if (!broker.vhosts.has(params.vhost)) throw notFound();
      return { status: 200, json: list({ vhost: params.vhost }) };
    },
  });
}

/** RabbitMQ refuses a permission for a vhost or user it does not know with one reason. */
function requireVhostAndUser(broker: Broker, vhost: string, user: string): void {
  if (!broker.vhosts.has(vhost) || broker.users.get(user) === undefined) throw badRequest('vhost_or_user_not_found');
}

/** A regex field of the body: required, a string, and one that compiles. */
function pattern(body: Record<string, unknown>, key: string): string {
  const v = field(body, key);
  if (v === undefined) throw badRequest(`[{key_missing,${key}}]`);
  if (typeof v !== 'string') throw badRequest(`${key} must be a string`);
  return v;
}

/** Runs a change; a pattern that does not compile is the client's error (400). */
function store<T>(change: () => T): T {
  try {
    return change();
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('Invalid regexp')) throw badRequest(err.message);
    throw err;
  }
}
