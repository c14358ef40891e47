import type { FastifyInstance } from 'fastify';
import type { User } from '../auth/users';
import type { ClusterMemberStatus, ClusterStatus } from './cluster-status';
import type { ManagementContext } from './context';
import { notAuthorised, notFound } from './errors';
import { shapeList, shapeOne } from './paging';
import { resource } from './resource';
import { isMonitor } from './views/connection';
import { ResourceRates, nodeJson, readResources } from './views/node';

/** /api/nodes is for monitoring users and administrators, as in RabbitMQ. */
export function requireMonitor(user: User): void {
  if (!isMonitor(user)) throw notAuthorised('Not monitor user');
}

/** /api/nodes and /api/nodes/{name}: this one node. */
export function registerNodeRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const users = ctx.broker.users;
  const rates = new ResourceRates(ctx.stats.intervalMs);
  const node = (): Record<string, unknown> => {
    const r = readResources(ctx);
    return nodeJson(ctx, r, rates.update(r, Date.now()));
  };
  /** This node, and in cluster mode every member (a follower with what the leader knows of it). */
  const nodes = (): Record<string, unknown>[] => {
    const cluster = ctx.cluster();
    if (cluster === null) return [node()];
    return cluster.members.map((m) => (m.name === ctx.nodeName ? { ...node(), ...clusterFields(cluster, m) } : followerJson(cluster, m)));
  };
  resource(app, users, '/api/nodes', 'management', {
    GET: ({ user, query }) => {
      requireMonitor(user);
      return { status: 200, json: shapeList(nodes(), query, ['name']) };
    },
  });
  resource(app, users, '/api/nodes/:name', 'management', {
    GET: ({ user, params, query }) => {
      requireMonitor(user);
      const found = nodes().find((n) => n.name === params.name);
      if (found === undefined) throw notFound();
      return { status: 200, json: shapeOne(found, query) };
    },
  });
}

/** Leveret's cluster facts on a member's entry (RabbitMQ has no such fields: tools ignore them). */
function clusterFields(c: ClusterStatus, m: ClusterMemberStatus): Record<string, unknown> {
  return {
    cluster_role: m.role,
    cluster_term: c.term,
    in_sync: m.inSync,
    replication: {
      streaming: m.streaming,
      acked_lsn: m.ackedLsn,
      lag_bytes: m.lagBytes,
      silent_ms: m.silentMs,
      leader_lsn: c.lsn,
      min_isr: c.minIsr,
    },
    advertise_host: m.advertiseHost,
    // Where clients and followers reach the member (0: not served, e.g. no TLS).
    ports: { amqp: m.amqpPort, http: m.httpPort, amqps: m.amqpsPort, https: m.httpsPort, replication: m.replicationPort },
  };
}

/**
 * A follower as RabbitMQ lists a cluster member it has no statistics for (running while its
 * etcd lease lives), with what
 * the leader knows of its replication. Its own figures are on its own node (it forwards the
 * API to the leader, so they are not reachable through it).
 */
function followerJson(c: ClusterStatus, m: ClusterMemberStatus): Record<string, unknown> {
  return { name: m.name, type: 'disc', running: m.running, being_drained: false, ...clusterFields(c, m) };
}
