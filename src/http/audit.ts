import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from '../logger';

/** Requests that move messages rather than change the broker's set-up: not audited (no line per message). */
const MESSAGE_ROUTES = new Set(['/api/exchanges/:vhost/:name/publish', '/api/queues/:vhost/:name/get', '/api/log-level']);

/**
 * One info line per change made through the management API (policies, definitions import,
 * users, vhosts, permissions, limits, queues, exchanges, bindings, closed connections), with
 * the user who made it. Only changes that succeeded; never a body (it may hold a password).
 * /api/log-level logs its own line.
 */
export function registerAuditLog(app: FastifyInstance, log: Logger): void {
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url;
    if (
      (req.method === 'PUT' || req.method === 'DELETE' || req.method === 'POST') &&
      reply.statusCode < 300 &&
      route !== undefined &&
      !MESSAGE_ROUTES.has(route)
    ) {
      log.info(
        { user: basicUser(req), method: req.method, resource: route, target: req.params, status: reply.statusCode },
        'management API change',
      );
    }
    done();
  });
}

/** The user name of the request's basic credentials (the request succeeded, so they were checked). */
function basicUser(req: FastifyRequest): string | undefined {
  const m = /^basic\s+(\S+)/i.exec(req.headers.authorization ?? '');
  if (m === null) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? undefined : text.slice(0, colon);
}
