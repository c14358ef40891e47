import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker';
import type { Vhost } from '../broker/vhost';
import type { Queue } from '../broker/queue';
import { isReservedName } from '../broker/names';
import { version } from '../config';
import { tableJson } from './views/field-json';
import { importDefinitions } from './definitions-import';
import { HttpError, badRequest } from './errors';
import { policyJson } from './policies';
import { resource } from './resource';
import { userJson } from './users';

/** The RabbitMQ version exports claim, so that RabbitMQ's tools read them as their own. */
const RABBIT_VERSION = '3.10.8';

type Obj = Record<string, unknown>;

/**
 * GET and POST /api/definitions and /api/definitions/{vhost} in RabbitMQ 3.10.8's format
 * (administrators only). An import is checked whole before anything of it is applied
 * (see definitions-import.ts).
 */
export function registerDefinitionRoutes(app: FastifyInstance, broker: Broker): void {
  resource(app, broker.users, '/api/definitions', 'administrator', {
    GET: () => ({ status: 200, json: exportDefinitions(broker) }),
    POST: ({ user, body }) => {
      importDefinitions(broker, user, parsed(body));
      return { status: 204 };
    },
  });
  resource(app, broker.users, '/api/definitions/:vhost', 'administrator', {
    GET: ({ params }) => {
      const v = broker.vhosts.get(params.vhost);
      // RabbitMQ 3.10.8 answers an unknown vhost here with a 400 (and with a 404 on POST).
      if (v === undefined) throw badRequest('vhost_not_found');
      return {
        status: 200,
        json: { rabbit_version: RABBIT_VERSION, parameters: vhostLimitParameters(broker, v.name), ...vhostDefinitions(v, false) },
      };
    },
    POST: ({ user, params, body }) => {
      if (!broker.vhosts.has(params.vhost)) throw new HttpError(404, 'not_found', 'vhost_not_found');
      importDefinitions(broker, user, parsed(body), params.vhost);
      return { status: 204 };
    },
  });
}

/** RabbitMQ answers any body that is not a JSON object with "failed_to_parse_json". */
function parsed(body: () => Obj): Obj {
  try {
    return body();
  } catch {
    throw badRequest('failed_to_parse_json');
  }
}

export function exportDefinitions(broker: Broker): Obj {
  const perVhost = [...broker.vhosts.values()].map((v) => vhostDefinitions(v, true));
  return {
    rabbit_version: RABBIT_VERSION,
    rabbitmq_version: RABBIT_VERSION,
    product_name: 'Leveret',
    product_version: version(),
    users: broker.users.list().map((u) => userJson(u, broker.limits.user(u.name))),
    // RabbitMQ's HTTP export names the vhosts only (rabbitmqctl's adds their metadata).
    vhosts: [...broker.vhosts.keys()].map((name) => ({ name })),
    permissions: broker.permissions.list(),
    topic_permissions: broker.permissions.listTopic(),
    // The only runtime parameters kept are vhost limits (no federation, no shovels).
    parameters: vhostLimitParameters(broker),
    global_parameters: [],
    policies: perVhost.flatMap((d) => d.policies),
    queues: perVhost.flatMap((d) => d.queues),
    exchanges: perVhost.flatMap((d) => d.exchanges),
    bindings: perVhost.flatMap((d) => d.bindings),
  };
}

/**
 * Vhost limits as RabbitMQ exports them: a runtime parameter of component "vhost-limits"
 * named "limits" per vhost that has any (with its vhost in the per-vhost export too).
 */
function vhostLimitParameters(broker: Broker, only?: string): Obj[] {
  return broker.limits
    .vhosts()
    .filter(([vhost]) => (only === undefined ? broker.vhosts.has(vhost) : vhost === only))
    .map(([vhost, value]) => ({ value: { ...value }, vhost, component: 'vhost-limits', name: 'limits' }));
}

/**
 * One vhost's policies, queues, exchanges and bindings as RabbitMQ 3.10.8 exports them:
 * every queue but exclusive ones (durable or not: RabbitMQ's export has transient ones too),
 * every exchange but the default and amq.* ones, every binding but those of the default
 * exchange and those to exclusive queues. The per-vhost export (`withVhost` false) leaves
 * out the items' vhost, except on policies, as RabbitMQ does.
 */
function vhostDefinitions(v: Vhost, withVhost: boolean): { policies: Obj[]; queues: Obj[]; exchanges: Obj[]; bindings: Obj[] } {
  const vh = withVhost ? { vhost: v.name } : {};
  const exclusive = (q: Queue): boolean => q.exclusiveOwner !== null;
  const queues = [...v.queues.values()]
    .filter((q) => !exclusive(q))
    .map((q) => ({ name: q.name, ...vh, durable: q.durable, auto_delete: q.autoDelete, arguments: tableJson(q.args) }));
  const declared = [...v.exchanges.values()].filter((ex) => ex.name !== '' && !isReservedName(ex.name));
  const exchanges = declared.map((ex) => ({
    name: ex.name,
    ...vh,
    type: ex.type,
    durable: ex.durable,
    auto_delete: ex.autoDelete,
    internal: ex.internal,
    arguments: tableJson(ex.args),
  }));
  const bindings: Obj[] = [];
  for (const ex of v.exchanges.values()) {
    if (ex.name === '') continue;
    for (const b of ex.bindings()) {
      const d = b.destination;
      if (d.kind === 'queue' && exclusive(d as Queue)) continue;
      bindings.push({
        source: ex.name,
        ...vh,
        destination: d.name,
        destination_type: d.kind,
        routing_key: b.routingKey,
        arguments: tableJson(b.args),
      });
    }
  }
  return { policies: v.policies.all.map((p) => policyJson(v.name, p)), queues, exchanges, bindings };
}
