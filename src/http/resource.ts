import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { User, UserStore } from '../auth/users';
import { authorize, type Access } from './access';
import { jsonObject } from './body';
import type { Query } from './paging';

/** What a method of a resource gets: the caller, the path's (decoded) parameters, the body. */
export interface Call {
  readonly user: User;
  readonly params: Record<string, string>;
  /** the query string's parameters (paging, columns, sorting) */
  readonly query: Query;
  /** the request's headers (lower-case names), for the few resources that read one */
  readonly headers: FastifyRequest['headers'];
  /** The JSON object sent; throws a 400 when the body is not one. */
  body: () => Record<string, unknown>;
}

/** A method's answer: a status, and JSON to send (none for 201/204). */
export interface Answer {
  status: number;
  json?: unknown;
  /** extra response headers (a 201's Location) */
  headers?: Record<string, string>;
}

export type Method = 'GET' | 'PUT' | 'DELETE' | 'POST';
export type Handlers = Partial<Record<Method, (call: Call) => Answer>>;

const ALL_METHODS = ['GET', 'HEAD', 'PUT', 'DELETE', 'POST', 'PATCH', 'OPTIONS'];

/**
 * Registers a resource the way RabbitMQ's REST handlers behave: an unknown method is 405
 * (before any login), OPTIONS lists the methods, then the caller is authorised, then the
 * method runs. HEAD is GET without a body.
 */
export function resource(app: FastifyInstance, users: UserStore, url: string, access: Access, handlers: Handlers): void {
  const allowed = Object.keys(handlers) as Method[];
  const allow = [...(allowed.includes('GET') ? ['HEAD', 'GET'] : []), ...allowed.filter((m) => m !== 'GET'), 'OPTIONS'].join(', ');
  app.route({
    method: ALL_METHODS,
    url,
    handler: (req: FastifyRequest, reply: FastifyReply) => {
      const method = (req.method === 'HEAD' ? 'GET' : req.method) as Method;
      if (req.method === 'OPTIONS') return reply.code(200).header('allow', allow).send();
      const run = handlers[method];
      if (run === undefined) return reply.code(405).header('allow', allow).send();
      const user = authorize(req.headers, req.socket.remoteAddress, users, access);
      const answer = run({
        user,
        params: req.params as Record<string, string>,
        query: req.query as Query,
        headers: req.headers,
        body: () => jsonObject(req.body),
      });
      reply.code(answer.status);
      if (answer.headers !== undefined) reply.headers(answer.headers);
      return answer.json === undefined ? reply.send() : reply.type('application/json').send(JSON.stringify(answer.json));
    },
  });
}
