import type { FieldTable } from '../protocol/types';
import { version } from '../config';

let cached: FieldTable | null = null;
let identity: { node: string; cluster: string } | null = null;

/**
 * A cluster node names itself and its cluster to clients (cluster_name, as RabbitMQ's, and the
 * node that served the connection: a follower's proxy forwards clients to the leader).
 */
export function setServerIdentity(node: string, cluster: string): void {
  identity = { node, cluster };
  cached = null;
}

/** What connection.start tells clients about us; the capabilities are what clients test for. */
export function serverProperties(): FieldTable {
  cached ??= {
    product: 'Leveret',
    version: version(),
    platform: `Node.js ${process.version}`,
    copyright: 'Leveret contributors',
    information: 'Licensed under the MIT licence',
    cluster_name: identity?.cluster ?? 'leveret',
    ...(identity !== null ? { node: identity.node } : {}),
    capabilities: {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
      per_consumer_qos: true,
      direct_reply_to: true,
    },
  };
  return cached;
}
