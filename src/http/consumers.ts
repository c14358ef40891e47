import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';
import { shapeList } from './paging';
import { resource, type Handlers } from './resource';
import { listedVhosts } from './object-access';
import { consumerJson, liveView } from './views/consumer';

/** /api/consumers and /api/consumers/{vhost}: the consumers on open channels, in the vhosts the user sees. */
export function registerConsumerRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const broker = ctx.broker;
  const list: Handlers = {
    GET: ({ user, params, query }) => {
      // A vhost the user may not see lists nothing, as RabbitMQ.
      const vhosts = new Set(listedVhosts(broker, user, params.vhost, true));
      const items = liveView(ctx.connections)
        .consumers.filter((lc) => lc.connection.vhost !== null && vhosts.has(lc.connection.vhost))
        .map((lc) => consumerJson(lc, ctx.nodeName));
      // RabbitMQ lists consumers as it finds them unless asked to sort.
      return { status: 200, json: shapeList(items, query, []) };
    },
  };
  resource(app, broker.users, '/api/consumers', 'management', list);
  resource(app, broker.users, '/api/consumers/:vhost', 'management', list);
}
