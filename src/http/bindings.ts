import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker';
import type { User } from '../auth/users';
import type { Vhost } from '../broker/vhost';
import type { Binding } from '../broker/exchanges/exchange';
import type { ManagementContext } from './context';
import { shapeList } from './paging';
import { resource, type Handlers } from './resource';
import { notAuthorised, notFound } from './errors';
import { viaModel } from './amqp-status';
import { HTTP_OWNER, exchangeFromPath, listedVhosts, requirePermission, visibleVhost, writableVhost, vhostNotFound } from './object-access';
import { argumentsField, stringField } from './object-body';
import { BINDING_SORT, bindingLocation, propertiesKey, storedBindingJson, vhostBindings } from './views/binding';

type Kind = 'queue' | 'exchange';

/**
 * Bindings as RabbitMQ 3.10's management API: /api/bindings[/{vhost}], a queue's, an
 * exchange's as source or destination, and /api/bindings/{vhost}/e/{source}/q|e/{dest}
 * [/{properties_key}] to list, create and delete them.
 */
export function registerBindingRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const broker = ctx.broker;
  const users = broker.users;

  const all: Handlers = {
    GET: ({ user, params, query }) => {
      // A vhost the user may not see lists nothing (RabbitMQ does not refuse here).
      const items = listedVhosts(broker, user, params.vhost, true).flatMap((v) => vhostBindings(v));
      return { status: 200, json: shapeList(items, query, BINDING_SORT) };
    },
  };
  resource(app, users, '/api/bindings', 'management', all);
  resource(app, users, '/api/bindings/:vhost', 'management', all);

  resource(app, users, '/api/queues/:vhost/:name/bindings', 'management', {
    GET: ({ user, params, query }) => {
      const v = visibleVhost(broker, user, params.vhost);
      if (!v.queues.has(params.name)) throw notFound();
      const items = vhostBindings(v, (_s, kind, dest) => kind === 'queue' && dest === params.name);
      return { status: 200, json: shapeList(items, query, BINDING_SORT) };
    },
  });

  for (const side of ['source', 'destination'] as const) {
    resource(app, users, `/api/exchanges/:vhost/:name/bindings/${side}`, 'management', {
      GET: ({ user, params, query }) => {
        const v = visibleVhost(broker, user, params.vhost);
        const name = exchangeFromPath(params.name);
        if (!v.exchanges.has(name)) throw notFound();
        const items = vhostBindings(v, (source, kind, dest) =>
          side === 'source' ? source === name : kind === 'exchange' && dest === name,
        );
        return { status: 200, json: shapeList(items, query, BINDING_SORT) };
      },
    });
  }

  for (const [letter, kind] of [
    ['q', 'queue'],
    ['e', 'exchange'],
  ] as const) {
    const between = (v: Vhost, source: string, dest: string): Binding[] => {
      const ex = v.exchanges.get(source);
      if (ex === undefined || source === '') return [];
      return [...ex.bindings()].filter((b) => b.destination.kind === kind && b.destination.name === dest);
    };

    resource(app, users, `/api/bindings/:vhost/e/:source/${letter}/:dest`, 'management', {
      GET: ({ user, params, query }) => {
        const v = visibleVhost(broker, user, params.vhost);
        const source = exchangeFromPath(params.source);
        // The default exchange's implicit binding is listed here too.
        const implicit =
          source === '' && kind === 'queue' && v.queues.has(params.dest)
            ? vhostBindings(v, (s, k, d) => s === '' && k === 'queue' && d === params.dest)
            : [];
        const items = [...implicit, ...between(v, source, params.dest).map((b) => storedBindingJson(v.name, b))];
        return { status: 200, json: shapeList(items, query, BINDING_SORT) };
      },
      POST: ({ user, params, body }) => {
        const v = writableVhost(broker, user, params.vhost, vhostNotFound);
        const source = exchangeFromPath(params.source);
        const b = body();
        const routingKey = stringField(b, 'routing_key', '');
        const args = argumentsField(b);
        authorizeBinding(broker, user, v, kind, params.dest, source, routingKey);
        viaModel('direct', () => {
          if (kind === 'queue') v.bindQueue(params.dest, source, routingKey, args, HTTP_OWNER);
          else v.bindExchange(params.dest, source, routingKey, args);
        });
        // Relative to the request's path, as RabbitMQ sends it.
        return { status: 201, headers: { location: bindingLocation(params.dest, propertiesKey(routingKey, args)) } };
      },
    });

    resource(app, users, `/api/bindings/:vhost/e/:source/${letter}/:dest/:props`, 'management', {
      GET: ({ user, params }) => {
        const v = visibleVhost(broker, user, params.vhost);
        const source = exchangeFromPath(params.source);
        if (source === '' && kind === 'queue' && v.queues.has(params.dest) && named(propertiesKey(params.dest, {}), params.props)) {
          return { status: 200, json: vhostBindings(v, (s, k, d) => s === '' && k === 'queue' && d === params.dest)[0] };
        }
        const found = between(v, source, params.dest).find((x) => named(propertiesKey(x.routingKey, x.args), params.props));
        if (found === undefined) throw notFound();
        return { status: 200, json: storedBindingJson(v.name, found) };
      },
      DELETE: ({ user, params }) => {
        const v = writableVhost(broker, user, params.vhost);
        const source = exchangeFromPath(params.source);
        const found = between(v, source, params.dest).find((x) => named(propertiesKey(x.routingKey, x.args), params.props));
        if (found === undefined) throw notFound();
        authorizeBinding(broker, user, v, kind, params.dest, source, found.routingKey);
        viaModel('direct', () => {
          if (kind === 'queue') v.unbindQueue(params.dest, source, found.routingKey, found.args, HTTP_OWNER);
          else v.unbindExchange(params.dest, source, found.routingKey, found.args);
        });
        return { status: 204 };
      },
    });
  }
}

/**
 * The path's segment arrives percent-decoded: it names the binding when it is the key as
 * listed, the key decoded, or the key unquoted (`+` as a space, as RabbitMQ reads it).
 */
function named(key: string, segment: string): boolean {
  if (key === segment) return true;
  try {
    return decodeURIComponent(key) === segment || decodeURIComponent(key.replace(/\+/g, ' ')) === segment;
  } catch {
    return false;
  }
}

/**
 * What binding and unbinding need, as over AMQP: write on the destination, read on the
 * source, and a topic source's read permission on the key.
 */
function authorizeBinding(broker: Broker, user: User, v: Vhost, kind: Kind, dest: string, source: string, routingKey: string): void {
  requirePermission(broker, user, v.name, 'write', kind, dest);
  requirePermission(broker, user, v.name, 'read', 'exchange', source);
  const ex = v.exchanges.get(source);
  if (ex !== undefined && ex.type === 'topic' && !broker.permissions.allowsTopic(user, v.name, 'read', source, routingKey)) {
    throw notAuthorised('Access refused.');
  }
}
