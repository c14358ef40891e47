import type { Broker } from '../broker/broker';
import type { User } from '../auth/users';
import { DEFAULT_HASHING_ALGORITHM, hashPassword, isBase64, isHashingAlgorithm, HASHING_ALGORITHMS } from '../auth/password-hash';
import { field, parseTags } from './body';
import { badRequest, notFound } from './errors';
import type { FastifyInstance } from 'fastify';
import { resource, type Answer, type Handlers } from './resource';
import type { LimitSet } from '../broker/limits';
import { limitSetFrom } from './limits';

/** A user as RabbitMQ 3.10's /api/users shows it, with its user limits ({} when none). */
export function userJson(u: User, limits: LimitSet = {}): Record<string, unknown> {
  return { name: u.name, password_hash: u.passwordHash, hashing_algorithm: u.hashingAlgorithm, tags: [...u.tags], limits: { ...limits } };
}

/** /api/users, /api/users/{name}, /api/users/bulk-delete and /api/whoami. */
export function registerUserRoutes(app: FastifyInstance, broker: Broker): void {
  const users = broker.users;
  const json = (u: User): Record<string, unknown> => userJson(u, broker.limits.user(u.name));
  const list: Handlers = { GET: () => ({ status: 200, json: users.list().map(json) }) };
  resource(app, users, '/api/users', 'administrator', list);
  // RabbitMQ reads /api/users/ (an empty name) as the list.
  resource(app, users, '/api/users/', 'administrator', list);

  resource(app, users, '/api/users/:name', 'administrator', {
    GET: ({ params }) => {
      const u = users.get(params.name);
      if (u === undefined) throw notFound();
      return { status: 200, json: json(u) };
    },
    PUT: ({ params, body }) => {
      const b = body();
      const user = userFromBody(params.name, b, users.get(params.name) !== undefined);
      const limits = userLimitsFromBody(params.name, b);
      const created = broker.putUser(user);
      if (limits !== null) putUserLimits(broker, params.name, limits);
      return { status: created ? 201 : 204 };
    },
    DELETE: ({ params }) => {
      if (!broker.deleteUser(params.name)) throw notFound();
      return { status: 204 };
    },
  });

  resource(app, users, '/api/users/bulk-delete', 'administrator', {
    POST: ({ body }) => bulkDelete(broker, body()),
  });

  resource(app, users, '/api/whoami', 'management', {
    GET: ({ user }) => ({ status: 200, json: { name: user.name, tags: [...user.tags] } }),
  });
}

/**
 * The user a PUT describes, as RabbitMQ 3.10 reads it: `tags` must be there; `password` is
 * hashed afresh; `password_hash` (with an optional `hashing_algorithm`) is taken as it
 * is. With neither, a new user gets the hash of the empty password (which can never log
 * in: blank passwords are refused) and an existing one loses its password (hash "").
 */
export function userFromBody(name: string, body: Record<string, unknown>, exists: boolean): User {
  if (!Object.hasOwn(body, 'tags')) throw badRequest('tags_not_present');
  const tags = parseTags(field(body, 'tags'));
  const password = field(body, 'password');
  const passwordHash = field(body, 'password_hash');
  if (password !== undefined && passwordHash !== undefined) throw badRequest('both_password_and_password_hash_are_provided');
  if (password !== undefined) {
    if (typeof password !== 'string') throw badRequest('password must be a string');
    return { name, passwordHash: hashPassword(password), hashingAlgorithm: DEFAULT_HASHING_ALGORITHM, tags };
  }
  const algorithm = field(body, 'hashing_algorithm') ?? DEFAULT_HASHING_ALGORITHM;
  // RabbitMQ stores an algorithm it does not know (and then cannot log the user in); we refuse it.
  if (!isHashingAlgorithm(algorithm)) {
    throw badRequest(`unknown hashing_algorithm ${JSON.stringify(algorithm)}; known: ${HASHING_ALGORITHMS.join(', ')}`);
  }
  if (passwordHash === undefined)
    return { name, passwordHash: exists ? '' : hashPassword('', algorithm), hashingAlgorithm: algorithm, tags };
  if (typeof passwordHash !== 'string' || !isBase64(passwordHash)) throw badRequest(['not_base64', passwordHash]);
  return { name, passwordHash, hashingAlgorithm: algorithm, tags };
}

/**
 * {"users": [...]}: deleted in order; a name that does not exist stops it there with a 400
 * naming it (those before it stay deleted), as RabbitMQ does.
 */
function bulkDelete(broker: Broker, body: Record<string, unknown>): Answer {
  const names = field(body, 'users');
  if (names === undefined) throw badRequest('[{key_missing,users}]');
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw badRequest('users must be a list of user names');
  for (const name of names) {
    if (!broker.deleteUser(name)) throw badRequest(['no_such_user', name]);
  }
  return { status: 204 };
}

/** A user's `limits` (PUT or import), checked; null when the body has none. */
export function userLimitsFromBody(name: string, body: Record<string, unknown>): LimitSet | null {
  const raw = field(body, 'limits');
  return raw === undefined ? null : limitSetFrom(raw, 'user', `user ${name}`);
}

/** As RabbitMQ: the limits a user's document gives are set; limits it does not name are kept. */
export function putUserLimits(broker: Broker, name: string, limits: LimitSet): void {
  if (Object.keys(limits).length === 0) return;
  broker.setUserLimits(name, { ...broker.limits.user(name), ...limits });
}
