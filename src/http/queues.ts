import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';
import type { Query } from './paging';
import { shapeList, shapeOne, statsDisabled } from './paging';
import { resource, type Handlers } from './resource';
import { notFound } from './errors';
import { viaModel } from './amqp-status';
import { HTTP_OWNER, listedVhosts, requirePermission, visibleVhost, writableVhost } from './object-access';
import { argumentsField, boolField } from './object-body';
import { liveView } from './views/consumer';
import { queueJson, type QueueViewContext } from './views/queue';

const flag = (q: Query, key: string): boolean => {
  const v = q[key];
  return (Array.isArray(v) ? v[v.length - 1] : v) === 'true';
};

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

  const list: Handlers = {
    GET: ({ user, params, query }) => {
      const vc = view(query, false);
      const items = listedVhosts(broker, user, params.vhost).flatMap((v) => [...v.queues.values()].map((q) => queueJson(q, v, vc)));
      return { status: 200, json: shapeList(items, query) };
    },
  };
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
      const v = writableVhost(broker, user, params.vhost);
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
      const v = writableVhost(broker, user, params.vhost);
      if (!v.queues.has(params.name)) throw notFound();
      requirePermission(broker, user, v.name, 'configure', 'queue', params.name);
      viaModel('direct', () => v.deleteQueue(params.name, flag(query, 'if-unused'), flag(query, 'if-empty'), HTTP_OWNER));
      return { status: 204 };
    },
  });

  resource(app, users, '/api/queues/:vhost/:name/contents', 'management', {
    DELETE: ({ user, params }) => {
      const v = writableVhost(broker, user, params.vhost);
      if (!v.queues.has(params.name)) throw notFound();
      requirePermission(broker, user, v.name, 'read', 'queue', params.name);
      viaModel('direct', () => v.getQueue(params.name, HTTP_OWNER).purge());
      return { status: 204 };
    },
  });
}
