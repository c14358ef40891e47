import type { FastifyInstance } from 'fastify';
import type { User } from '../auth/users';
import type { ManagementContext } from './context';
import { notAuthorised, notFound } from './errors';
import { shapeList, shapeOne, statsDisabled, type Query } from './paging';
import { resource, type Call } from './resource';

type Obj = Record<string, unknown>;

/** How a client's object (a connection, a channel) is rendered: listed or alone, with or without statistics. */
export type ClientView<T> = (o: T, opts: { single: boolean; noStats: boolean }) => Obj;

/** A vhost-scoped listing: the vhost must exist and the caller be allowed to log in to it. */
function requireVhostAccess(ctx: ManagementContext, user: User, vhost: string): void {
  if (!ctx.broker.vhosts.has(vhost)) throw notFound();
  if (!ctx.broker.permissions.canAccessVhost(user, vhost)) throw notAuthorised('User not authorised to access virtual host');
}

/** A listing of clients' objects, sorted by name as RabbitMQ sorts them. */
export function clientList<T>(objects: T[], query: Query, view: ClientView<T>): unknown {
  const noStats = statsDisabled(query);
  return shapeList(
    objects.map((o) => view(o, { single: false, noStats })),
    query,
    ['name'],
  );
}

/** One client's object, as its single-object GET shows it. */
export const clientOne = <T>(o: T, query: Query, view: ClientView<T>): Obj =>
  shapeOne(view(o, { single: true, noStats: statsDisabled(query) }), query);

/**
 * /api/{kind}, /api/{kind}/ and /api/vhosts/{vhost}/{kind}: the objects the user may see,
 * all of them or those of one vhost.
 */
export function registerClientListings<T>(
  app: FastifyInstance,
  ctx: ManagementContext,
  kind: 'connections' | 'channels',
  visible: (user: User) => T[],
  vhostOf: (o: T) => string | undefined,
  view: ClientView<T>,
): void {
  const users = ctx.broker.users;
  const listing = { GET: ({ user, query }: Call) => ({ status: 200, json: clientList(visible(user), query, view) }) };
  resource(app, users, `/api/${kind}`, 'management', listing);
  resource(app, users, `/api/${kind}/`, 'management', listing);
  resource(app, users, `/api/vhosts/:vhost/${kind}`, 'management', {
    GET: ({ user, params, query }) => {
      requireVhostAccess(ctx, user, params.vhost);
      return {
        status: 200,
        json: clientList(
          visible(user).filter((o) => vhostOf(o) === params.vhost),
          query,
          view,
        ),
      };
    },
  });
}
