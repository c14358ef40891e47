import fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { ManagementContext } from './context';
import type { Logger } from '../logger';
import { HttpError, notFound } from './errors';
import { registerUserRoutes } from './users';
import { registerPermissionRoutes } from './permissions';
import { registerVhostRoutes } from './vhosts';
import { registerDefinitionRoutes } from './definitions';
import { registerPolicyRoutes } from './policies';
import { registerMetricsRoutes } from './metrics';
import { registerQueueRoutes } from './queues';
import { registerExchangeRoutes } from './exchanges';
import { registerBindingRoutes } from './bindings';
import { registerConsumerRoutes } from './consumers';
import { registerPublishGetRoutes } from './publish-get';
import { registerDashboard } from './dashboard';
import { registerOverviewRoutes } from './overview';
import { registerNodeRoutes } from './nodes';
import { registerConnectionRoutes } from './connections';
import { registerChannelRoutes } from './channels';
import { registerHealthRoutes } from './health';
import { registerLimitRoutes } from './limits';
import { registerLogLevelRoutes } from './log-level';
import { registerAuditLog } from './audit';
import { registerReplicatedAnswers } from './replicated';

export interface HttpOptions {
  host: string;
  /** 0 picks a free port */
  port: number;
  /** serve HTTPS with this certificate (RabbitMQ's management.ssl.*) */
  tls?: SecureContextOptions;
}

/** RabbitMQ's management.http.max_body_size default. */
const MAX_BODY_BYTES = 20_000_000;

/**
 * The management HTTP API (RabbitMQ's /api), over the broker's model. Every error leaves as
 * RabbitMQ's {"error", "reason"} JSON; nothing a client sends can crash the process.
 */
export class HttpServer {
  private readonly app: FastifyInstance;

  constructor(
    ctx: ManagementContext,
    private readonly options: HttpOptions,
    private readonly log: Logger,
  ) {
    // fastify's types pick the server type from the options; this instance is used the same way either way.
    this.app = fastify({
      ...(options.tls !== undefined ? { https: options.tls } : {}),
      logger: false,
      bodyLimit: MAX_BODY_BYTES,
      // Routes answer HEAD themselves (see resource.ts).
      exposeHeadRoutes: false,
      // Malformed percent-encoding and the like, before any route runs.
      frameworkErrors: (err, _req, res) => {
        void (res as FastifyReply).code(400).type('application/json').send({ error: 'bad_request', reason: err.message });
      },
    });
    // Bodies are read as bytes whatever their content type and parsed as JSON by the
    // resource that wants them (RabbitMQ does not look at the content type).
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    this.app.setNotFoundHandler((_req, reply) => {
      const e = notFound();
      void reply.code(e.status).type('application/json').send(e.body);
    });
    this.app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
      if (err instanceof HttpError) {
        reply.code(err.status).headers(err.headers);
        return err.body === undefined ? reply.send() : reply.type('application/json').send(err.body);
      }
      // fastify's own refusals (a body too large, a bad content length) carry their status.
      const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) this.log.error({ err, method: req.method, url: req.url }, 'management API request failed');
      // A definition the disk would not take says so (its errno); other failures say nothing.
      const reason = status < 500 || err.name === 'DefinitionWriteError' ? err.message : 'internal error';
      return reply
        .code(status)
        .type('application/json')
        .send({ error: status === 500 ? 'internal_server_error' : 'bad_request', reason });
    });
    const broker = ctx.broker;
    registerAuditLog(this.app, log);
    registerReplicatedAnswers(this.app, ctx);
    registerUserRoutes(this.app, broker);
    registerPermissionRoutes(this.app, broker);
    registerVhostRoutes(this.app, broker, ctx.stats);
    registerDefinitionRoutes(this.app, broker);
    registerPolicyRoutes(this.app, broker);
    registerMetricsRoutes(this.app, ctx);
    registerQueueRoutes(this.app, ctx);
    registerExchangeRoutes(this.app, ctx);
    registerBindingRoutes(this.app, ctx);
    registerConsumerRoutes(this.app, ctx);
    registerPublishGetRoutes(this.app, ctx);
    registerDashboard(this.app);
    registerOverviewRoutes(this.app, ctx);
    registerNodeRoutes(this.app, ctx);
    registerConnectionRoutes(this.app, ctx);
    registerChannelRoutes(this.app, ctx);
    registerHealthRoutes(this.app, ctx);
    registerLimitRoutes(this.app, broker);
    registerLogLevelRoutes(this.app, broker.users, log);
  }

  /** The port actually bound (differs from the configured one when that was 0). */
  get port(): number {
    const addr = this.app.server.address();
    return addr !== null && typeof addr === 'object' ? addr.port : this.options.port;
  }

  async start(): Promise<void> {
    await this.app.listen({ port: this.options.port, host: this.options.host });
    const scheme = this.options.tls !== undefined ? 'HTTPS' : 'HTTP';
    this.log.info(
      {
        protocol: scheme.toLowerCase(),
        [scheme === 'HTTPS' ? 'httpsPort' : 'httpPort']: this.port,
        host: this.options.host,
        tls: scheme === 'HTTPS',
      },
      `Leveret listening for ${scheme} on ${this.options.host}:${this.port}`,
    );
  }

  /** A reloaded certificate, for new HTTPS connections. */
  setSecureContext(options: SecureContextOptions): void {
    (this.app.server as unknown as HttpsServer).setSecureContext(options);
  }

  async stop(): Promise<void> {
    await this.app.close();
  }
}
