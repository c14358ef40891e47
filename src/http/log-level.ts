import type { FastifyInstance } from 'fastify';
import type { UserStore } from '../auth/users';
import { LOG_LEVELS, type LogLevel } from '../config';
import type { Logger } from '../logger';
import { badRequest } from './errors';
import { resource } from './resource';

const isLevel = (v: unknown): v is LogLevel => typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);

/**
 * /api/log-level: the broker's log level, read and changed while it runs (RabbitMQ has
 * `rabbitmqctl set_log_level`; this is its HTTP side). Administrators only: a debug level
 * logs more about every client.
 */
export function registerLogLevelRoutes(app: FastifyInstance, users: UserStore, log: Logger): void {
  resource(app, users, '/api/log-level', 'administrator', {
    GET: () => ({ status: 200, json: { level: log.level } }),
    PUT: ({ user, body }) => {
      const level = body().level;
      if (!isLevel(level)) throw badRequest(`unknown log level ${JSON.stringify(level)}; one of ${LOG_LEVELS.join(', ')}`);
      const from = log.level;
      // The change is logged at whichever of the two levels lets an info line through, so a
      // move to 'warn' is still on record and a move to 'debug' is too.
      const note = (): void => log.info({ user: user.name, from, to: level }, 'log level changed');
      const noted = log.isLevelEnabled('info');
      if (noted) note();
      // Every part of the broker logs through this one logger (no child loggers), so this reaches all of them.
      log.level = level;
      if (!noted && log.isLevelEnabled('info')) note();
      return { status: 204 };
    },
  });
}
