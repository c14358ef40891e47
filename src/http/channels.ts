import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';
import { notFound } from './errors';
import { shapeList, shapeOne, statsDisabled, type Query } from './paging';
import { resource, type Call } from './resource';
import { channelJson, visibleChannels, type OwnedChannel } from './views/channel';
import { channelName } from './views/channel-details';
import { requireOwnerOr, requireVhostAccess } from './connections';

/** /api/channels, /api/channels/{name} and /api/vhosts/{vhost}/channels. */
export function registerChannelRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const users = ctx.broker.users;
  const list = (chans: OwnedChannel[], query: Query): unknown => {
    const noStats = statsDisabled(query);
    return shapeList(chans.map((o) => channelJson(o, ctx, { single: false, noStats })), query, ['name']);
  };
  const listing = { GET: ({ user, query }: Call) => ({ status: 200, json: list(visibleChannels(ctx, user), query) }) };
  resource(app, users, '/api/channels', 'management', listing);
  resource(app, users, '/api/channels/', 'management', listing);

  resource(app, users, '/api/vhosts/:vhost/channels', 'management', {
    GET: ({ user, params, query }) => {
      requireVhostAccess(ctx, user, params.vhost);
      return { status: 200, json: list(visibleChannels(ctx, user).filter((o) => o.conn.vhost?.name === params.vhost), query) };
    },
  });

  resource(app, users, '/api/channels/:name', 'management', {
    GET: ({ user, params, query }) => {
      const owned = findChannel(ctx, params.name);
      if (owned === undefined) throw notFound();
      requireOwnerOr(user, owned.conn.user.name, 'GET');
      return { status: 200, json: shapeOne(channelJson(owned, ctx, { single: true, noStats: statsDisabled(query) }), query) };
    },
  });
}

function findChannel(ctx: ManagementContext, name: string): OwnedChannel | undefined {
  // Every visible channel of every client: ownership is checked once it is found.
  for (const c of ctx.connections) {
    if (c.vhost === null || !name.startsWith(c.name)) continue;
    for (const ch of c.openChannels()) if (ch.state === 'open' && channelName(c, ch) === name) return { conn: c, ch };
  }
  return undefined;
}
