import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';
import { queryFlag, shapeOne, statsDisabled } from './paging';
import { resource } from './resource';
import { notFound } from './errors';
import { viaModel } from './amqp-status';
import {
  exchangeFromPath,
  requirePermission,
  vhostObjectListing,
  vhostOfExisting,
  visibleVhost,
  writableVhost,
  vhostNotFound,
} from './object-access';
import { argumentsField, boolField, stringField } from './object-body';
import { isReservedName } from '../broker/names';
import { declaredBy, exchangeJson } from './views/exchange';

/**
 * /api/exchanges, /api/exchanges/{vhost} and /api/exchanges/{vhost}/{name} as RabbitMQ
 * 3.10's management API; the default exchange is listed as "" and named amq.default in paths.
 */
export function registerExchangeRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const broker = ctx.broker;
  const users = broker.users;

  const list = vhostObjectListing(broker, (query) => {
    const opts = { single: false, statsDisabled: statsDisabled(query) };
    return (v) => [...v.exchanges.values()].map((ex) => exchangeJson(ex, v, ctx.stats, opts));
  });
  resource(app, users, '/api/exchanges', 'management', list);
  resource(app, users, '/api/exchanges/:vhost', 'management', list);

  resource(app, users, '/api/exchanges/:vhost/:name', 'management', {
    GET: ({ user, params, query }) => {
      const v = visibleVhost(broker, user, params.vhost);
      const ex = v.exchanges.get(exchangeFromPath(params.name));
      if (ex === undefined) throw notFound();
      return { status: 200, json: shapeOne(exchangeJson(ex, v, ctx.stats, { single: true, statsDisabled: statsDisabled(query) }), query) };
    },
    PUT: ({ user, params, body }) => {
      const v = writableVhost(broker, user, params.vhost, vhostNotFound);
      const name = exchangeFromPath(params.name);
      const b = body();
      const type = stringField(b, 'type', 'direct');
      const durable = boolField(b, 'durable', false);
      const autoDelete = boolField(b, 'auto_delete', false);
      const internal = boolField(b, 'internal', false);
      const args = argumentsField(b);
      requirePermission(broker, user, v.name, 'configure', 'exchange', name);
      const existed = v.exchanges.has(name);
      // A new exchange with an alternate also needs read on itself and write on the alternate, as over AMQP.
      const ae = args['alternate-exchange'];
      if (!existed && typeof ae === 'string' && !isReservedName(name) && name !== '') {
        requirePermission(broker, user, v.name, 'read', 'exchange', name);
        requirePermission(broker, user, v.name, 'write', 'exchange', ae);
      }
      const ex = viaModel('direct', () => v.declareExchange(name, type, false, durable, autoDelete, internal, args));
      if (!existed) declaredBy.set(ex, user.name);
      return { status: existed ? 204 : 201 };
    },
    DELETE: ({ user, params, query }) => {
      const name = exchangeFromPath(params.name);
      const v = vhostOfExisting(broker, user, params.vhost, 'exchange', name, 'configure');
      viaModel('direct', () => v.deleteExchange(name, queryFlag(query, 'if-unused')));
      return { status: 204 };
    },
  });
}
