import type { FastifyInstance } from 'fastify';
import type { User } from '../auth/users';
import type { ManagementContext } from './context';
import { notAuthorised, notFound } from './errors';
import { shapeList, shapeOne } from './paging';
import { resource } from './resource';
import { isMonitor } from './views/connection';
import { ResourceRates, nodeJson, readResources } from './views/node';

/** /api/nodes is for monitoring users and administrators, as in RabbitMQ. */
export function requireMonitor(user: User): void {
  if (!isMonitor(user)) throw notAuthorised('Not monitor user');
}

/** /api/nodes and /api/nodes/{name}: this one node. */
export function registerNodeRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const users = ctx.broker.users;
  const rates = new ResourceRates(ctx.stats.intervalMs);
  const node = (): Record<string, unknown> => {
    const r = readResources(ctx);
    return nodeJson(ctx, r, rates.update(r, Date.now()));
  };
  resource(app, users, '/api/nodes', 'management', {
    GET: ({ user, query }) => {
      requireMonitor(user);
      return { status: 200, json: shapeList([node()], query, ['name']) };
    },
  });
  resource(app, users, '/api/nodes/:name', 'management', {
    GET: ({ user, params, query }) => {
      requireMonitor(user);
      if (params.name !== ctx.nodeName) throw notFound();
      return { status: 200, json: shapeOne(node(), query) };
    },
  });
}
