import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';
import { notFound } from './errors';
import { resource } from './resource';
import { channelJson, visibleChannels, type OwnedChannel } from './views/channel';
import { channelName } from './views/channel-details';
import { requireOwnerOr } from './connections';
import { clientOne, registerClientListings, type ClientView } from './client-listing';

/** /api/channels, /api/channels/{name} and /api/vhosts/{vhost}/channels. */
export function registerChannelRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const view: ClientView<OwnedChannel> = (o, opts) => channelJson(o, ctx, opts);
  registerClientListings(
    app,
    ctx,
    'channels',
    (user) => visibleChannels(ctx, user),
    (o) => o.conn.vhost?.name,
    view,
  );

  resource(app, ctx.broker.users, '/api/channels/:name', 'management', {
    GET: ({ user, params, query }) => {
      const owned = findChannel(ctx, params.name);
      if (owned === undefined) throw notFound();
      requireOwnerOr(user, owned.conn.user.name, 'GET');
      return { status: 200, json: clientOne(owned, query, view) };
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
