import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';
import { queryFlag, shapeOne, statsDisabled, type Query } from './paging';
import { resource } from './resource';
import { notFound } from './errors';
import { viaModel } from './amqp-status';
import {
  HTTP_OWNER,
  requirePermission,
  vhostObjectListing,
  vhostOfExisting,
  visibleVhost,
  writableVhost,
  vhostNotFound,
} from './object-access';
import { argumentsField, boolField } from './object-body';
import { liveView } from './views/consumer';
import { queueJson, type QueueViewContext } from './views/queue';

/**
 * /api/queues, /api/queues/{vhost}, /api/queues/{vhost}/{name} and its contents (purge),
 * as RabbitMQ 3.10's management API: listed in the vhosts the user sees, declared and
 * deleted with the user's AMQP permissions, through the same model calls as AMQP.
 */
export function registerQueueRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const broker = ctx.broker;
  const users = broker.users;
  const view = (query: Query, single: boolean): QueueViewContext => ({
    node: ctx.nodeName,
    stats: ctx.stats,
    live: liveView(ctx.connections),
    connections: ctx.connections,
    statsDisabled: statsDisabled(query),
    single,
  });

  const list = vhostObjectListing(broker, (query) => {
    const vc = view(query, false);
    return (v) => [...v.queues.values()].map((q) => queueJson(q, v, vc));
  });
  resource(app, users, '/api/queues', 'management', list);
  resource(app, users, '/api/queues/:vhost', 'management', list);

  resource(app, users, '/api/queues/:vhost/:name', 'management', {
    GET: ({ user, params, query }) => {
      const v = visibleVhost(broker, user, params.vhost);
      const q = v.queues.get(params.name);
      if (q === undefined) throw notFound();
      return { status: 200, json: shapeOne(queueJson(q, v, view(query, true)), query) };
    },
    PUT: ({ user, params, body }) => {
      const v = writableVhost(broker, user, params.vhost, vhostNotFound);
      const b = body();
      const durable = boolField(b, 'durable', false);
      const autoDelete = boolField(b, 'auto_delete', false);
      const args = argumentsField(b);
      const existed = v.queues.has(params.name);
      viaModel('direct', () =>
        v.declareQueue(params.name, false, durable, false, autoDelete, args, HTTP_OWNER, (name, isNew) => {
          requirePermission(broker, user, v.name, 'configure', 'queue', name);
          // A new queue that dead-letters also needs read on itself and write on that exchange, as over AMQP.
          const dlx = args['x-dead-letter-exchange'];
          if (isNew && typeof dlx === 'string') {
            requirePermission(broker, user, v.name, 'read', 'queue', name);
            requirePermission(broker, user, v.name, 'write', 'exchange', dlx);
          }
        }),
      );
      return { status: existed ? 204 : 201 };
    },
    DELETE: ({ user, params, query }) => {
      const v = vhostOfExisting(broker, user, params.vhost, 'queue', params.name, 'configure');
      viaModel('direct', () => v.deleteQueue(params.name, queryFlag(query, 'if-unused'), queryFlag(query, 'if-empty'), HTTP_OWNER));
      return { status: 204 };
    },
  });

  resource(app, users, '/api/queues/:vhost/:name/contents', 'management', {
    DELETE: ({ user, params }) => {
      const v = vhostOfExisting(broker, user, params.vhost, 'queue', params.name, 'read');
      viaModel('direct', () => v.getQueue(params.name, HTTP_OWNER).purge());
      return { status: 204 };
    },
  });
}
