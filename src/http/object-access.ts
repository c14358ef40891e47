import type { Broker } from '../broker/broker';
import type { Vhost } from '../broker/vhost';
import type { User } from '../auth/users';
import type { Permission, ResourceKind } from '../auth/permissions';
import { isAdministrator } from './access';
import { HttpError, notAuthorised, notFound } from './errors';
import { shapeList, type Query } from './paging';
import type { Handlers } from './resource';

/**
 * The management API's stand-in for "the connection asking" in the model's declare and
 * delete calls: it owns no exclusive queue, so a connection's exclusive queues are listed
 * but refused to HTTP (405 RESOURCE_LOCKED), as in RabbitMQ.
 */
export const HTTP_OWNER: object = Object.freeze({ owner: 'management API' });

/** RabbitMQ's answer to a user without any permission in the vhost. */
const vhostRefused = (): HttpError => notAuthorised('User not authorised to access virtual host');

/** Administrators and monitoring users see every vhost's objects; others those of vhosts they have permissions on. */
export function seesVhost(broker: Broker, user: User, vhost: string): boolean {
  return isAdministrator(user) || user.tags.includes('monitoring') || broker.permissions.canAccessVhost(user, vhost);
}

/** A vhost named in a path: 404 when there is none, 401 when the user may not see into it. */
export function visibleVhost(broker: Broker, user: User, name: string): Vhost {
  const v = broker.vhosts.get(name);
  if (v === undefined) throw notFound();
  if (!seesVhost(broker, user, name)) throw vhostRefused();
  return v;
}

/**
 * The vhosts a listing covers: the one in the path (which must exist), else all the user sees.
 * `quiet`: a vhost the user cannot see gives an empty list instead of a 401 (RabbitMQ's
 * bindings and consumers listings).
 */
export function listedVhosts(broker: Broker, user: User, name: string | undefined, quiet = false): Vhost[] {
  if (name === undefined) return [...broker.vhosts.values()].filter((v) => seesVhost(broker, user, v.name));
  const v = broker.vhosts.get(name);
  if (v === undefined) throw notFound();
  if (!seesVhost(broker, user, name)) {
    if (quiet) return [];
    throw vhostRefused();
  }
  return [v];
}

/** RabbitMQ's answer to a declare (PUT queue or exchange, POST binding) into a vhost that does not exist. */
export const vhostNotFound = (): HttpError => new HttpError(404, 'not_found', 'vhost_not_found');

/**
 * A change to a vhost's objects: the user needs a permission entry on the vhost (even an
 * administrator), as an AMQP connection would. `missing` words the 404 for a vhost that
 * does not exist (RabbitMQ's declares say vhost_not_found, its deletes Not Found).
 */
export function writableVhost(broker: Broker, user: User, name: string, missing: () => HttpError = notFound): Vhost {
  const v = broker.vhosts.get(name);
  if (v === undefined) throw missing();
  if (!broker.permissions.canAccessVhost(user, name)) throw vhostRefused();
  return v;
}

/** The AMQP permission a change needs; RabbitMQ's management API answers a refusal with this 401. */
export function requirePermission(
  broker: Broker,
  user: User,
  vhost: string,
  permission: Permission,
  kind: ResourceKind,
  name: string,
): void {
  if (!broker.permissions.allows(user, vhost, permission, kind, name)) throw notAuthorised('Access refused.');
}

/**
 * The vhost of a change to an existing queue or exchange (delete, purge): 404 when the vhost
 * or the object is missing, 401 without `permission` on the object.
 */
export function vhostOfExisting(
  broker: Broker,
  user: User,
  vhost: string,
  kind: ResourceKind,
  name: string,
  permission: Permission,
): Vhost {
  const v = writableVhost(broker, user, vhost);
  if (!(kind === 'queue' ? v.queues : v.exchanges).has(name)) throw notFound();
  requirePermission(broker, user, v.name, permission, kind, name);
  return v;
}

/**
 * GET /api/{queues|exchanges}[/{vhost}]: the objects of the path's vhost, or of every vhost
 * the user sees; `rows(query)` renders one vhost's (what it takes from the query, once).
 */
export function vhostObjectListing(broker: Broker, rows: (query: Query) => (v: Vhost) => Array<Record<string, unknown>>): Handlers {
  return {
    GET: ({ user, params, query }) => ({
      status: 200,
      json: shapeList(listedVhosts(broker, user, params.vhost).flatMap(rows(query)), query),
    }),
  };
}

/** The default exchange is `amq.default` in paths. */
export const exchangeFromPath = (name: string): string => (name === 'amq.default' ? '' : name);
