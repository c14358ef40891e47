import type { Broker } from '../broker/broker';
import type { Connection } from '../server/connection';
import type { Stats } from './stats/stats';
import type { X509Certificate } from 'node:crypto';
import type { ClusterStatus } from './cluster-status';

/** A port the node listens on, as /api/overview's `listeners` lists it. */
export interface Listener {
  protocol: 'amqp' | 'amqp/ssl' | 'http' | 'https' | 'prometheus';
  ip_address: string;
  port: number;
  /** a TLS listener's certificate, for the certificate-expiration health check */
  certificate?: { certfile: string; cacertfile: string; certificate: X509Certificate };
}

/** Conditions that block publishers, as RabbitMQ's resource alarms. */
export interface Alarms {
  memory: boolean;
  disk: boolean;
  /** the memory high watermark in bytes */
  memoryLimit?: number;
  /** the disk free limit in bytes */
  diskFreeLimit?: number;
}

/**
 * Everything the management API reads and acts on, handed over by the composition root
 * (src/app.ts): the model, the live connections, the sampled statistics, and
 * facts about this node.
 */
export interface ManagementContext {
  readonly broker: Broker;
  readonly connections: ReadonlySet<Connection>;
  readonly stats: Stats;
  /** e.g. leveret@host */
  readonly nodeName: string;
  /** when the broker started (ms since the epoch) */
  readonly startedAt: number;
  /** where durable state is kept (its file system's free space is reported) */
  readonly dataDir: string;
  listeners(): Listener[];
  alarms(): Alarms;
  /** The store's file I/O so far (RabbitMQ's io_* node statistics). */
  io(): IoStats;
  /** The cluster this node leads (cluster mode), or null: a single node. */
  cluster(): ClusterStatus | null;
  /**
   * Cluster mode: settles once the followers in the ISR hold every definitions change made so
   * far (rejects if this node stops leading first); null when there is nothing to wait for.
   */
  replicated(): Promise<void> | null;
}

export interface IoStats {
  readCount: number;
  readBytes: number;
  writeCount: number;
  writeBytes: number;
  syncCount: number;
}
