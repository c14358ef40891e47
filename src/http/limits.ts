import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker';
import type { User } from '../auth/users';
import { USER_LIMIT_NAMES, VHOST_LIMIT_NAMES, type LimitSet } from '../broker/limits';
import { isAdministrator } from './access';
import { field } from './body';
import { HttpError, badRequest, notAuthorised, notFound } from './errors';
import { resource } from './resource';

/**
 * RabbitMQ's vhost limits (/api/vhost-limits) and user limits (/api/user-limits), as 3.10
 * answers them: lists of {vhost|user, value}; PUT {"value": N} sets one limit (a negative N
 * means no limit), DELETE clears it. Changes are stored before they apply.
 */
export function registerLimitRoutes(app: FastifyInstance, broker: Broker): void {
  const users = broker.users;
  const limits = broker.limits;

  resource(app, users, '/api/vhost-limits', 'management', {
    GET: ({ user }) => ({
      status: 200,
      json: limits
        .vhosts()
        .filter(([vhost]) => broker.vhosts.has(vhost) && seesVhost(broker, user, vhost))
        .map(([vhost, value]) => ({ vhost, value })),
    }),
  });

  resource(app, users, '/api/vhost-limits/:vhost', 'management', {
    GET: ({ user, params }) => {
      if (!broker.vhosts.has(params.vhost)) throw notFound();
      if (!seesVhost(broker, user, params.vhost)) throw notAuthorised('User not authorised to access virtual host');
      return { status: 200, json: listed({ vhost: params.vhost }, limits.vhost(params.vhost)) };
    },
  });

  resource(app, users, '/api/vhost-limits/:vhost/:name', 'administrator', {
    PUT: ({ params, body }) => {
      const value = limitValue(body(), params.name, VHOST);
      if (!broker.vhosts.has(params.vhost)) throw new HttpError(404, 'not_found', 'vhost_not_found');
      broker.setVhostLimit(params.vhost, params.name, value);
      return { status: 204 };
    },
    DELETE: ({ params }) => {
      if (!broker.vhosts.has(params.vhost)) throw notFound();
      // RabbitMQ answers 204 whether or not the limit was set.
      broker.clearVhostLimit(params.vhost, params.name);
      return { status: 204 };
    },
  });

  resource(app, users, '/api/user-limits', 'management', {
    GET: () => ({ status: 200, json: limits.users().map(([user, value]) => ({ user, value })) }),
  });

  resource(app, users, '/api/user-limits/:user', 'management', {
    GET: ({ params }) => {
      if (users.get(params.user) === undefined) throw notFound();
      return { status: 200, json: listed({ user: params.user }, limits.user(params.user)) };
    },
  });

  resource(app, users, '/api/user-limits/:user/:name', 'administrator', {
    PUT: ({ params, body }) => {
      if (users.get(params.user) === undefined) throw badRequest(['no_such_user', params.user]);
      broker.setUserLimit(params.user, params.name, limitValue(body(), params.name, USER));
      return { status: 204 };
    },
    DELETE: ({ params }) => {
      if (users.get(params.user) === undefined) throw notFound();
      broker.clearUserLimit(params.user, params.name);
      return { status: 204 };
    },
  });
}

/** A vhost's or user's limits as one list item, or none when nothing is set. */
function listed(who: Record<string, string>, set: LimitSet): unknown[] {
  return Object.keys(set).length === 0 ? [] : [{ ...who, value: set }];
}

/** Administrators and monitoring users see every vhost's limits; others those of vhosts they may use. */
function seesVhost(broker: Broker, user: User, vhost: string): boolean {
  return isAdministrator(user) || user.tags.includes('monitoring') || broker.permissions.canAccessVhost(user, vhost);
}

/** How each kind of limit is checked; RabbitMQ's texts differ between the two. */
interface LimitKind {
  names: readonly string[];
  /** where an unknown name is said to be */
  where: string;
  wrap(text: string): string;
}

const VHOST: LimitKind = { names: VHOST_LIMIT_NAMES, where: 'limits', wrap: (t) => `Validation failed\n\n${t}\n` };
const USER: LimitKind = { names: USER_LIMIT_NAMES, where: 'user-limits', wrap: (t) => t };

/** The `value` of a PUT body for limit `name`: an integer, and a name RabbitMQ knows. */
function limitValue(body: Record<string, unknown>, name: string, kind: LimitKind): number {
  const value = field(body, 'value');
  if (value === undefined) throw badRequest('[{key_missing,value}]');
  return checkedLimit(name, value, kind);
}

function checkedLimit(name: string, value: unknown, kind: LimitKind): number {
  if (!kind.names.includes(name))
    throw badRequest(kind.wrap(`Unrecognised terms [{<<${JSON.stringify(name)}>>,${erlTerm(value)}}] in ${kind.where}`));
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw badRequest(kind.wrap(`${name} should be a number, actually was ${erlTerm(value)}`));
  return value;
}

/**
 * A whole set of limits from a document (a user's `limits`, a vhost-limits parameter's
 * `value`), checked as the API checks one limit.
 */
export function limitSetFrom(raw: unknown, kind: 'vhost' | 'user', what: string): LimitSet {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw badRequest(`${what}: limits must be an object`);
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(raw)) out[name] = checkedLimit(name, value, kind === 'vhost' ? VHOST : USER);
  return out;
}

/** A JSON value as Erlang prints what it decoded it to (RabbitMQ's texts quote it so). */
function erlTerm(v: unknown): string {
  if (typeof v === 'string') return `<<${JSON.stringify(v)}>>`;
  if (v === null) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}
