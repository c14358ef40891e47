import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';
import { Message } from '../broker/message';
import { REFUSED } from '../broker/queue';
import { badRequest, notAuthorised, notFound } from './errors';
import { resource, type Answer } from './resource';

const ok = (extra: Record<string, unknown> = {}): Answer => ({ status: 200, json: { status: 'ok', ...extra } });
const failed = (reason: string, extra: Record<string, unknown> = {}): Answer => ({
  status: 503,
  json: { status: 'failed', reason, ...extra },
});

/** What the aliveness test sends through its queue, as RabbitMQ's does. */
const ALIVENESS_QUEUE = 'aliveness-test';
const ALIVENESS_BODY = Buffer.from('test_message');
/** A content header's property list with no properties set. */
const NO_PROPERTIES = Buffer.alloc(2);

/** RabbitMQ's spellings of each protocol, for protocol-listener. */
const PROTOCOL_ALIASES: Record<string, string> = {
  amqp: 'amqp',
  amqp091: 'amqp',
  'amqp0-9-1': 'amqp',
  'amqp0.9.1': 'amqp',
  amqps: 'amqp/ssl',
  'amqp/ssl': 'amqp/ssl',
  'amqp091/ssl': 'amqp/ssl',
  http: 'http',
  management: 'http',
  https: 'https',
  'management/ssl': 'https',
  prometheus: 'prometheus',
};

const TIME_UNITS = new Set(['days', 'weeks', 'months', 'years']);
/** RabbitMQ's lengths of each unit (a month is 30 days, a year 365). */
const UNIT_SECONDS: Record<string, number> = { days: 86_400, weeks: 7 * 86_400, months: 30 * 86_400, years: 365 * 86_400 };

/** /api/aliveness-test/{vhost} and /api/health/checks/*, answered as RabbitMQ 3.10 does. */
export function registerHealthRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const users = ctx.broker.users;

  resource(app, users, '/api/aliveness-test/:vhost', 'management', {
    GET: ({ user, params }) => {
      const vhost = ctx.broker.vhosts.get(params.vhost);
      if (vhost === undefined) throw notFound();
      if (!ctx.broker.permissions.canAccessVhost(user, vhost.name)) throw notAuthorised('User not authorised to access virtual host');
      return aliveness(ctx, params.vhost);
    },
  });

  resource(app, users, '/api/health/checks/alarms', 'management', { GET: () => alarms(ctx, 'resource alarm(s) in effect in the cluster') });
  resource(app, users, '/api/health/checks/local-alarms', 'management', {
    GET: () => alarms(ctx, 'resource alarm(s) in effect on the node'),
  });

  resource(app, users, '/api/health/checks/port-listener/:port', 'management', {
    GET: ({ params }) => {
      if (!/^-?\d+$/.test(params.port)) throw badRequest('Invalid port');
      const port = Number(params.port);
      const ports = ctx.listeners().map((l) => l.port);
      return ports.includes(port) ? ok({ port }) : failed('No active listener', { missing: port, ports });
    },
  });

  resource(app, users, '/api/health/checks/protocol-listener/:protocol', 'management', {
    GET: ({ params }) => {
      const asked = params.protocol.toLowerCase();
      const protocol = PROTOCOL_ALIASES[asked] ?? asked;
      const protocols = ctx.listeners().map((l) => l.protocol as string);
      return protocols.includes(protocol) ? ok({ protocol }) : failed('No active listener', { missing: protocol, protocols });
    },
  });

  // Every vhost of a single node runs as long as the node does.
  resource(app, users, '/api/health/checks/virtual-hosts', 'management', { GET: () => ok() });
  resource(app, users, '/api/health/checks/node-is-quorum-critical', 'management', { GET: () => ok({ reason: 'single node cluster' }) });
  resource(app, users, '/api/health/checks/node-is-mirror-sync-critical', 'management', { GET: () => ok() });

  // The TLS listeners' certificates, as loaded (a SIGHUP reload is seen at once).
  resource(app, users, '/api/health/checks/certificate-expiration/:within/:unit', 'management', {
    GET: ({ params }) => {
      if (!/^-?\d+$/.test(params.within)) throw badRequest('Invalid expiration value.');
      if (!TIME_UNITS.has(params.unit)) throw badRequest('Time unit not recognised. Supported units: days, weeks, months, years.');
      return certificateExpiration(ctx, Date.now() + Number(params.within) * UNIT_SECONDS[params.unit] * 1000);
    },
  });
}

/** Fails, listing them, when a TLS listener's certificate expires before `deadline` (ms since the epoch). */
function certificateExpiration(ctx: ManagementContext, deadline: number): Answer {
  const expired: Array<Record<string, unknown>> = [];
  for (const l of ctx.listeners()) {
    const c = l.certificate;
    if (c === undefined) continue;
    const expires = new Date(c.certificate.validTo);
    if (expires.getTime() > deadline) continue;
    expired.push({
      cacertfile: c.cacertfile,
      certfile: c.certfile,
      expires: expires.toISOString(),
      interface: l.ip_address,
      port: l.port,
      protocol: l.protocol,
    });
  }
  return expired.length === 0 ? ok() : failed('Certificates expiring', { expired });
}

function alarms(ctx: ManagementContext, reason: string): Answer {
  const a = ctx.alarms();
  const list: Array<Record<string, string>> = [];
  if (a.memory) list.push({ node: ctx.nodeName, resource: 'memory' });
  if (a.disk) list.push({ node: ctx.nodeName, resource: 'disk' });
  return list.length === 0 ? ok() : failed(reason, { alarms: list });
}

/**
 * RabbitMQ's aliveness test: declares the (non-durable, kept) queue `aliveness-test`,
 * sends "test_message" through it and takes it back.
 */
function aliveness(ctx: ManagementContext, vhostName: string): Answer {
  const vhost = ctx.broker.vhosts.get(vhostName)!;
  try {
    const q = vhost.declareQueue(ALIVENESS_QUEUE, false, false, false, false, {}, ctx);
    if (q.enqueue(new Message('', ALIVENESS_QUEUE, NO_PROPERTIES, ALIVENESS_BODY)) === REFUSED)
      return failed('aliveness-test queue refused the message');
    const got = q.get(true);
    if (got === undefined || !got.message.body.equals(ALIVENESS_BODY)) return failed('aliveness-test message did not come back');
    return ok();
  } catch (err) {
    return failed(err instanceof Error ? err.message : String(err));
  }
}
