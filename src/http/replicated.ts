import type { FastifyInstance } from 'fastify';
import type { ManagementContext } from './context';

/**
 * Cluster mode: a change made through the API (queues, exchanges, bindings, policies, users,
 * vhosts, permissions, limits, a definitions import) is answered once the followers in the ISR
 * hold it, as a publisher confirm is. One hook for every route: whatever a request changed was
 * appended before its answer is sent, and the wait covers every change appended so far. On a
 * single node `ctx.replicated()` is null and the answer goes at once (no promise is made).
 */
export function registerReplicatedAnswers(app: FastifyInstance, ctx: ManagementContext): void {
  app.addHook('onSend', (req, reply, payload, done) => {
    const wait = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS' ? null : ctx.replicated();
    if (wait === null) return done(null, payload);
    wait.then(
      () => done(null, payload),
      (err: Error) => {
        // The leader stopped leading before the followers had the change: it may or may not
        // survive the failover, so it is not answered as done (AMQP clients get a 320).
        void reply.code(503).type('application/json');
        done(null, JSON.stringify({ error: 'service_unavailable', reason: err.message }));
      },
    );
  });
}
