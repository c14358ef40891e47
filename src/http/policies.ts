import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker/broker';
import type { User } from '../auth/users';
import { policyValueValid, type ApplyTo, type Policy } from '../broker/policies';
import { isAdministrator, isPolicymaker } from './access';
import { field } from './body';
import { HttpError, badRequest, notAuthorised, notFound } from './errors';
import { resource } from './resource';
import { viaModel } from './amqp-status';

type Obj = Record<string, unknown>;

/** A policy as RabbitMQ 3.10's /api/policies shows it (and its definitions export). */
export function policyJson(vhost: string, p: Policy): Obj {
  return { vhost, name: p.name, pattern: p.pattern, 'apply-to': p.applyTo, definition: p.definition, priority: p.priority };
}

/**
 * /api/policies, /api/policies/{vhost} and /api/policies/{vhost}/{name}, with RabbitMQ
 * 3.10.8's access rules (checked against it): any management user lists the policies of
 * the vhosts it may use (administrators: all); reading one policy or changing any needs
 * the policymaker or administrator tag, and then (administrators aside) access to the vhost.
 */
export function registerPolicyRoutes(app: FastifyInstance, broker: Broker): void {
  const users = broker.users;
  const uses = (user: User, vhost: string): boolean => isAdministrator(user) || broker.permissions.canAccessVhost(user, vhost);
  const listed = (user: User, vhost?: string): Obj[] =>
    [...broker.vhosts.values()]
      .filter((v) => (vhost === undefined || v.name === vhost) && uses(user, v.name))
      .flatMap((v) => v.policies.all.map((p) => policyJson(v.name, p)));

  resource(app, users, '/api/policies', 'management', { GET: ({ user }) => ({ status: 200, json: listed(user) }) });

  resource(app, users, '/api/policies/:vhost', 'management', {
    GET: ({ user, params }) => {
      if (!broker.vhosts.has(params.vhost)) throw notFound();
      if (!uses(user, params.vhost)) throw notAuthorised('User not authorised to access virtual host');
      return { status: 200, json: listed(user, params.vhost) };
    },
  });

  /** The vhost of /api/policies/{vhost}/{name}, once the caller may touch its policies. */
  const policyVhost = (user: User, vhost: string, missing: () => HttpError) => {
    if (!isPolicymaker(user)) throw notAuthorised('User not authorised to access object');
    const v = broker.vhosts.get(vhost);
    if (v === undefined) throw missing();
    if (!uses(user, vhost)) throw notAuthorised('User not authorised to access object');
    return v;
  };

  resource(app, users, '/api/policies/:vhost/:name', 'management', {
    GET: ({ user, params }) => {
      const p = policyVhost(user, params.vhost, notFound).policies.get(params.name);
      if (p === undefined) throw notFound();
      return { status: 200, json: policyJson(params.vhost, p) };
    },
    PUT: ({ user, params, body }) => {
      const v = policyVhost(user, params.vhost, () => new HttpError(404, 'not_found', 'vhost_not_found'));
      const policy = policyFromBody(params.name, body());
      const created = v.policies.get(params.name) === undefined;
      viaModel('direct', () => v.setPolicy(policy));
      return { status: created ? 201 : 204 };
    },
    DELETE: ({ user, params }) => {
      const v = policyVhost(user, params.vhost, notFound);
      if (!viaModel('direct', () => v.deletePolicy(params.name))) throw notFound();
      return { status: 204 };
    },
  });

  // Operator policies are not kept: there are none to list.
  resource(app, users, '/api/operator-policies', 'management', { GET: () => ({ status: 200, json: [] }) });
  resource(app, users, '/api/operator-policies/:vhost', 'management', {
    GET: ({ user, params }) => {
      if (!broker.vhosts.has(params.vhost)) throw notFound();
      if (!uses(user, params.vhost)) throw notAuthorised('User not authorised to access virtual host');
      return { status: 200, json: [] };
    },
  });
}

/** What RabbitMQ calls a policy key's value in its refusals. */
const VALUE_NAMES: Record<string, string> = {
  'message-ttl': 'message TTL',
  expires: 'queue expiry',
  'max-length': 'maximum length',
  'max-length-bytes': 'maximum length in bytes',
  overflow: 'overflow value',
  'dead-letter-exchange': 'dead letter exchange name',
  'dead-letter-routing-key': 'dead letter routing key',
  'alternate-exchange': 'alternate exchange name',
  'queue-mode': 'queue-mode value',
};

const APPLY_TO: readonly string[] = ['queues', 'exchanges', 'all'];

/**
 * The policy a PUT body (or a definitions item) describes, checked in RabbitMQ's order
 * (the keys it requires, then priority, pattern, apply-to, definition) and refused with
 * its reasons. `where` is added to the reason (the import names the policy so).
 */
export function policyFromBody(name: string, body: Obj, where = ''): Policy {
  for (const key of ['pattern', 'definition']) if (field(body, key) === undefined) throw badRequest(`[{key_missing,${key}}]`);
  const refuse = (why: string): HttpError => badRequest(`Validation failed\n\n${why}\n${where}`);
  const priority = field(body, 'priority') ?? 0;
  if (typeof priority !== 'number') throw refuse(`priority should be a number, actually was ${erlTerm(priority)}`);
  // RabbitMQ takes any number; the engine orders policies by integers only.
  if (!Number.isInteger(priority)) throw refuse(`priority should be an integer, actually was ${erlTerm(priority)}`);
  const pattern = field(body, 'pattern');
  if (typeof pattern !== 'string') throw refuse(`pattern should be a binary but was ${erlTerm(pattern)}`);
  try {
    new RegExp(pattern);
  } catch (err) {
    throw refuse(`pattern should be regular expression but is invalid: ${escapeHtml((err as Error).message)}`);
  }
  const applyTo = field(body, 'apply-to') ?? 'all';
  if (typeof applyTo !== 'string' || !APPLY_TO.includes(applyTo)) {
    throw refuse(
      `apply-to ${typeof applyTo === 'string' ? `'${escapeHtml(applyTo)}'` : erlTerm(applyTo)} unrecognised; should be 'queues', 'exchanges' or 'all'`,
    );
  }
  const definition = field(body, 'definition');
  // RabbitMQ fails a definition that is not an object with a 500.
  if (definition === null || typeof definition !== 'object' || Array.isArray(definition))
    throw refuse(`definition should be an object, actually was ${erlTerm(definition)}`);
  const def = definition as Obj;
  const keys = Object.keys(def).sort();
  if (keys.length === 0) throw refuse('no policy provided');
  for (const k of keys) {
    if (policyValueValid(k, def[k]) === false) throw refuse(`${erlTerm(def[k])} is not a valid ${VALUE_NAMES[k] ?? k}`);
  }
  const unknown = keys.filter((k) => policyValueValid(k, def[k]) === undefined);
  if (unknown.length > 0)
    throw refuse(`[${unknown.map((k) => `{${erlTerm(k)},${erlTerm(def[k])}}`).join(',')}] are not recognised policy settings`);
  return { name, pattern, applyTo: applyTo as ApplyTo, priority, definition: { ...def } };
}

/**
 * A JSON value as RabbitMQ's refusals print it: the Erlang term it decoded to (strings are
 * binaries, objects maps), HTML-escaped as RabbitMQ sends its reasons.
 */
function erlTerm(v: unknown): string {
  return escapeHtml(term(v));
}

function term(v: unknown): string {
  if (typeof v === 'string') return `<<"${v}">>`;
  if (v === undefined) return 'undefined';
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- not an object here
  if (v === null || typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return `[${v.map(term).join(',')}]`;
  return `#{${Object.entries(v as Obj)
    .map(([k, x]) => `${term(k)} => ${term(x)}`)
    .join(',')}}`;
}

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
