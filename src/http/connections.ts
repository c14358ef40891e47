import type { FastifyInstance } from 'fastify';
import type { User } from '../auth/users';
import type { Connection } from '../server/connection';
import type { ManagementContext } from './context';
import { isAdministrator } from './access';
import { notAuthorised, notFound } from './errors';
import type { Query } from './paging';
import { resource } from './resource';
import { connectionJson, findConnection, isMonitor, listedConnections, visibleConnections } from './views/connection';
import { channelJson, channelsOf } from './views/channel';
import { clientList, clientOne, registerClientListings, type ClientView } from './client-listing';
import { CONNECTION_FORCED } from '../protocol/constants';

/** What RabbitMQ's management plugin says when closing a connection without an X-Reason. */
const DEFAULT_CLOSE_REASON = 'Closed via management plugin';

const notYours = () => notAuthorised('User not authorised to access object');

/** RabbitMQ's rule for one client's objects: a monitor may read them, an administrator close them, and their user both. */
export function requireOwnerOr(user: User, owner: string, method: 'GET' | 'DELETE'): void {
  const privileged = method === 'DELETE' ? isAdministrator(user) : isMonitor(user);
  if (!privileged && user.name !== owner) throw notYours();
}

/**
 * /api/connections, /api/connections/{name} (GET, DELETE closes it), its channels,
 * /api/connections/username/{user} and /api/vhosts/{vhost}/connections.
 */
export function registerConnectionRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const users = ctx.broker.users;
  const view: ClientView<Connection> = (c, opts) => connectionJson(c, ctx, opts);
  const list = (conns: Connection[], query: Query): unknown => clientList(conns, query, view);
  registerClientListings(
    app,
    ctx,
    'connections',
    (user) => visibleConnections(ctx, user),
    (c) => c.vhost?.name,
    view,
  );

  /** The connection a request names, once the caller may act on it (RabbitMQ: 404 before 401 for monitors). */
  const target = (user: User, name: string, method: 'GET' | 'DELETE'): Connection => {
    const c = findConnection(ctx, name);
    if (c === undefined) throw notFound();
    requireOwnerOr(user, c.user.name, method);
    return c;
  };

  resource(app, users, '/api/connections/:name', 'management', {
    GET: ({ user, params, query }) => ({ status: 200, json: clientOne(target(user, params.name, 'GET'), query, view) }),
    DELETE: ({ user, params, headers }) => {
      close(target(user, params.name, 'DELETE'), headers['x-reason']);
      return { status: 204 };
    },
  });

  resource(app, users, '/api/connections/:name/channels', 'management', {
    GET: ({ user, params, query }) => {
      const channels = channelsOf(target(user, params.name, 'GET'));
      return { status: 200, json: clientList(channels, query, (o, opts) => channelJson(o, ctx, opts)) };
    },
  });

  resource(app, users, '/api/connections/username/:user', 'management', {
    GET: ({ user, params, query }) => {
      requireOwnerOr(user, params.user, 'GET');
      return {
        status: 200,
        json: list(
          listedConnections(ctx).filter((c) => c.user.name === params.user),
          query,
        ),
      };
    },
    DELETE: ({ user, params, headers }) => {
      requireOwnerOr(user, params.user, 'DELETE');
      for (const c of listedConnections(ctx)) if (c.user.name === params.user) close(c, headers['x-reason']);
      return { status: 204 };
    },
  });
}

/** Closes a client's connection as RabbitMQ's management plugin does: 320 with the reason given. */
function close(c: Connection, reason: string | string[] | undefined): void {
  const text = Array.isArray(reason) ? reason[0] : reason;
  c.closeWith(CONNECTION_FORCED, text === undefined || text === '' ? DEFAULT_CLOSE_REASON : text);
}
