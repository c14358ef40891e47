import type { Connection } from '../../server/connection';
import { channelName } from '../views/channel-details';
import { socketLimit } from '../views/node';
import { label, type MetricType } from './exposition';
import type { ChannelRef, ExchangeRef, QueueRef, Scrape } from './scrape';
import type { ClusterMemberStatus } from '../cluster-status';

type ClusterFollowerRef = ClusterMemberStatus;

/**
 * One metric: its full name at /metrics (RabbitMQ's `rabbitmq_` name where RabbitMQ has
 * one, so that its Grafana dashboards work; `leveret_` otherwise) and how to read it from
 * an object. null leaves the sample out.
 */
export interface Metric<T> {
  name: string;
  type: MetricType;
  help: string;
  read(o: T): number | null;
}

/**
 * Metrics read from one kind of object. `id` is RabbitMQ's name for the group where it has
 * one: what /metrics/detailed?family= asks for.
 */
export interface Group<T> {
  id: string;
  /** Per-object groups are summed into one unlabelled sample at /metrics, as RabbitMQ aggregates. */
  perObject: boolean;
  objects(s: Scrape): readonly T[];
  /** the inside of the braces, escaped; '' for none */
  labels(o: T): string;
  metrics: readonly Metric<T>[];
}

const m = <T>(name: string, type: MetricType, help: string, read: (o: T) => number | null): Metric<T> => ({ name, type, help, read });

const group = <T>(g: Group<T>): Group<unknown> => g;

const single = (s: Scrape): readonly Scrape[] => [s];

const queueLabels = (r: QueueRef): string => `${label('vhost', r.vhost)},${label('queue', r.queue.name)}`;

// RabbitMQ 3.x counts global deliveries per protocol and queue type; Leveret speaks AMQP
// 0-9-1 and keeps every queue as a classic one.
const PROTOCOL = label('protocol', 'amqp091');
const PROTOCOL_CLASSIC = `${PROTOCOL},${label('queue_type', 'rabbit_classic_queue')}`;

export const CONNECTION_CHURN = group<Scrape>({
  id: 'connection_churn_metrics',
  perObject: false,
  objects: single,
  labels: () => '',
  metrics: [
    m(
      'rabbitmq_connections_opened_total',
      'counter',
      'Total number of connections opened',
      (s) => s.ctx.broker.nodeCounters.connectionsOpened,
    ),
    m(
      'rabbitmq_connections_closed_total',
      'counter',
      'Total number of connections closed or terminated',
      (s) => s.ctx.broker.nodeCounters.connectionsClosed,
    ),
    m('rabbitmq_channels_opened_total', 'counter', 'Total number of channels opened', (s) => s.ctx.broker.nodeCounters.channelsOpened),
    m('rabbitmq_channels_closed_total', 'counter', 'Total number of channels closed', (s) => s.ctx.broker.nodeCounters.channelsClosed),
    m('rabbitmq_queues_declared_total', 'counter', 'Total number of queues declared', (s) => s.ctx.broker.nodeCounters.queuesDeclared),
    m('rabbitmq_queues_created_total', 'counter', 'Total number of queues created', (s) => s.ctx.broker.nodeCounters.queuesCreated),
    m('rabbitmq_queues_deleted_total', 'counter', 'Total number of queues deleted', (s) => s.ctx.broker.nodeCounters.queuesDeleted),
  ],
});

export const NODE_COARSE = group<Scrape>({
  id: 'node_coarse_metrics',
  perObject: false,
  objects: single,
  labels: () => '',
  metrics: [
    m('rabbitmq_process_open_fds', 'gauge', 'Open file descriptors', (s) => s.process.openFds),
    m('rabbitmq_process_open_tcp_sockets', 'gauge', 'Open TCP sockets', (s) => s.ctx.connections.size),
    m('rabbitmq_process_resident_memory_bytes', 'gauge', 'Memory used in bytes', (s) => s.process.residentBytes),
    m(
      'rabbitmq_disk_space_available_bytes',
      'gauge',
      "Disk space available in bytes (on the data directory's file system)",
      (s) => s.process.diskFreeBytes,
    ),
  ],
});

export const NODE = group<Scrape>({
  id: 'node_metrics',
  perObject: false,
  objects: single,
  labels: () => '',
  metrics: [
    m('rabbitmq_process_max_fds', 'gauge', 'Open file descriptors limit', (s) => s.process.maxFds),
    // Grafana's RabbitMQ-Overview shows "TCP sockets available" as this minus the open ones;
    // the same figure as /api/nodes' sockets_total.
    m('rabbitmq_process_max_tcp_sockets', 'gauge', 'Open TCP sockets limit', (s) =>
      s.process.maxFds === null ? null : socketLimit(s.process.maxFds),
    ),
    m(
      'rabbitmq_resident_memory_limit_bytes',
      'gauge',
      "Memory high watermark in bytes (Leveret has none: the container's or the machine's memory)",
      (s) => s.process.memoryLimitBytes,
    ),
    m(
      'rabbitmq_disk_space_available_limit_bytes',
      'gauge',
      'Free disk space low watermark in bytes (Leveret has none: publishers are blocked when a write fails)',
      () => 0,
    ),
    // RabbitMQ's name for the node's uptime; Leveret's node is a Node.js process.
    m('rabbitmq_erlang_uptime_seconds', 'gauge', 'Node uptime', (s) => (Date.now() - s.ctx.startedAt) / 1000),
  ],
});

export const QUEUE_COARSE = group<QueueRef>({
  id: 'queue_coarse_metrics',
  perObject: true,
  objects: (s) => s.queues,
  labels: queueLabels,
  metrics: [
    m('rabbitmq_queue_messages_ready', 'gauge', 'Messages ready to be delivered to consumers', (r) => r.queue.messageCount),
    m('rabbitmq_queue_messages_unacked', 'gauge', 'Messages delivered to consumers but not yet acknowledged', (r) => r.queue.unackedCount),
    m(
      'rabbitmq_queue_messages',
      'gauge',
      'Sum of ready and unacknowledged messages - total queue depth',
      (r) => r.queue.messageCount + r.queue.unackedCount,
    ),
  ],
});

export const QUEUE_CONSUMERS = group<QueueRef>({
  id: 'queue_consumer_count',
  perObject: true,
  objects: (s) => s.queues,
  labels: queueLabels,
  metrics: [m('rabbitmq_queue_consumers', 'gauge', 'Consumers on a queue', (r) => r.queue.consumerCount)],
});

export const QUEUE_DELIVERY = group<QueueRef>({
  id: 'queue_delivery_metrics',
  perObject: true,
  objects: (s) => s.queues,
  labels: queueLabels,
  metrics: [
    m(
      'rabbitmq_queue_get_ack_total',
      'counter',
      'Total number of messages fetched from a queue with basic.get in manual acknowledgement mode',
      (r) => r.queue.counters.got - r.queue.counters.gotNoAck,
    ),
    m(
      'rabbitmq_queue_get_total',
      'counter',
      'Total number of messages fetched from a queue with basic.get in automatic acknowledgement mode',
      (r) => r.queue.counters.gotNoAck,
    ),
    m(
      'rabbitmq_queue_messages_delivered_ack_total',
      'counter',
      'Total number of messages delivered from a queue to consumers in manual acknowledgement mode',
      (r) => r.queue.counters.delivered - r.queue.counters.deliveredNoAck,
    ),
    m(
      'rabbitmq_queue_messages_delivered_total',
      'counter',
      'Total number of messages delivered from a queue to consumers in automatic acknowledgement mode',
      (r) => r.queue.counters.deliveredNoAck,
    ),
    m(
      'rabbitmq_queue_messages_redelivered_total',
      'counter',
      'Total number of messages redelivered from a queue to consumers',
      (r) => r.queue.counters.redelivered,
    ),
    m(
      'rabbitmq_queue_messages_acked_total',
      'counter',
      'Total number of messages acknowledged by consumers on a queue',
      (r) => r.queue.counters.acked,
    ),
  ],
});

/**
 * RabbitMQ counts publishes into a queue per channel and exchange; Leveret per queue
 * only, so the labels are vhost and queue. (Not a RabbitMQ family name.)
 */
export const QUEUE_PUBLISH = group<QueueRef>({
  id: 'queue_publish_metrics',
  perObject: true,
  objects: (s) => s.queues,
  labels: queueLabels,
  metrics: [
    m(
      'rabbitmq_queue_messages_published_total',
      'counter',
      'Total number of messages published to queues',
      (r) => r.queue.counters.published,
    ),
  ],
});

export const LEVERET_QUEUE = group<QueueRef>({
  id: 'leveret_queue_metrics',
  perObject: true,
  objects: (s) => s.queues,
  labels: queueLabels,
  metrics: [
    m(
      'leveret_queue_messages_expired_total',
      'counter',
      'Total number of messages that expired in a queue (per-message or queue TTL)',
      (r) => r.queue.counters.expired,
    ),
    m(
      'leveret_queue_messages_dead_lettered_total',
      'counter',
      'Total number of messages a queue dead-lettered to its dead letter exchange',
      (r) => r.queue.counters.deadLettered,
    ),
    m(
      'leveret_queue_messages_rejected_overflow_total',
      'counter',
      'Total number of publishes a full queue refused (x-overflow reject-publish)',
      (r) => r.queue.counters.rejectedOverflow,
    ),
  ],
});

export const EXCHANGE = group<ExchangeRef>({
  id: 'exchange_metrics',
  perObject: true,
  objects: (s) => s.exchanges,
  labels: (r) => `${label('vhost', r.vhost)},${label('exchange', r.exchange.name)}`,
  metrics: [
    m(
      'rabbitmq_exchange_messages_published_total',
      'counter',
      'Total number of messages published into an exchange',
      (r) => r.exchange.publishIn,
    ),
    m(
      'leveret_exchange_messages_routed_total',
      'counter',
      "Total number of messages an exchange routed onwards (RabbitMQ's publish_out)",
      (r) => r.exchange.publishOut,
    ),
  ],
});

const channelLabels = (r: ChannelRef): string => label('channel', channelName(r.conn, r.ch));

export const CHANNEL = group<ChannelRef>({
  id: 'channel_metrics',
  perObject: true,
  objects: (s) => s.channels,
  labels: channelLabels,
  metrics: [
    m('rabbitmq_channel_consumers', 'gauge', 'Consumers on a channel', (r) => r.ch.consumers.size),
    m('rabbitmq_channel_messages_unacked', 'gauge', 'Delivered but not yet acknowledged messages', (r) => r.ch.unacked.size),
  ],
});

export const CHANNEL_EXCHANGE = group<ChannelRef>({
  id: 'channel_exchange_metrics',
  perObject: true,
  objects: (s) => s.channels,
  labels: channelLabels,
  metrics: [
    m(
      'rabbitmq_channel_messages_published_total',
      'counter',
      'Total number of messages published into an exchange on a channel',
      (r) => r.ch.countersNow().publish,
    ),
    m(
      'rabbitmq_channel_messages_confirmed_total',
      'counter',
      'Total number of messages published into an exchange and confirmed on the channel',
      (r) => r.ch.countersNow().confirm,
    ),
    m(
      'rabbitmq_channel_messages_unroutable_returned_total',
      'counter',
      'Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable',
      (r) => r.ch.countersNow().returnUnroutable,
    ),
    m(
      'rabbitmq_channel_messages_unroutable_dropped_total',
      'counter',
      'Total number of messages published as non-mandatory into an exchange and dropped as unroutable',
      (r) => r.ch.countersNow().dropUnroutable,
    ),
  ],
});

export const CHANNEL_QUEUE = group<ChannelRef>({
  id: 'channel_queue_metrics',
  perObject: true,
  objects: (s) => s.channels,
  labels: channelLabels,
  metrics: [
    m(
      'rabbitmq_channel_get_ack_total',
      'counter',
      'Total number of messages fetched with basic.get in manual acknowledgement mode',
      (r) => r.ch.counters.get,
    ),
    m(
      'rabbitmq_channel_get_total',
      'counter',
      'Total number of messages fetched with basic.get in automatic acknowledgement mode',
      (r) => r.ch.counters.getNoAck,
    ),
    m(
      'rabbitmq_channel_messages_delivered_ack_total',
      'counter',
      'Total number of messages delivered to consumers in manual acknowledgement mode',
      (r) => r.ch.counters.deliver,
    ),
    m(
      'rabbitmq_channel_messages_delivered_total',
      'counter',
      'Total number of messages delivered to consumers in automatic acknowledgement mode',
      (r) => r.ch.counters.deliverNoAck,
    ),
    m(
      'rabbitmq_channel_messages_redelivered_total',
      'counter',
      'Total number of messages redelivered to consumers',
      (r) => r.ch.counters.redeliver,
    ),
    m('rabbitmq_channel_messages_acked_total', 'counter', 'Total number of messages acknowledged by consumers', (r) => r.ch.counters.ack),
    m(
      'rabbitmq_channel_get_empty_total',
      'counter',
      'Total number of times basic.get operations fetched no message',
      (r) => r.ch.counters.getEmpty,
    ),
  ],
});

const connectionLabels = (c: Connection): string => label('connection', c.name);

export const CONNECTION_COARSE = group<Connection>({
  id: 'connection_coarse_metrics',
  perObject: true,
  objects: (s) => s.connections,
  labels: connectionLabels,
  metrics: [
    m('rabbitmq_connection_incoming_bytes_total', 'counter', 'Total number of bytes received on a connection', (c) => c.counters.recvBytes),
    m('rabbitmq_connection_outgoing_bytes_total', 'counter', 'Total number of bytes sent on a connection', (c) => c.sentBytes),
  ],
});

export const CONNECTION = group<Connection>({
  id: 'connection_metrics',
  perObject: true,
  objects: (s) => s.connections,
  labels: connectionLabels,
  metrics: [
    m(
      'rabbitmq_connection_incoming_packets_total',
      'counter',
      'Total number of packets received on a connection',
      (c) => c.counters.recvCount,
    ),
    m('rabbitmq_connection_outgoing_packets_total', 'counter', 'Total number of packets sent on a connection', (c) => c.sentCount),
    m('rabbitmq_connection_channels', 'gauge', 'Channels on a connection', (c) => {
      let n = 0;
      for (const ch of c.openChannels()) if (ch.state === 'open') n++;
      return n;
    }),
  ],
});

/** Counts of live objects, never split by object. */
export const TOTALS = group<Scrape>({
  id: 'totals',
  perObject: false,
  objects: single,
  labels: () => '',
  metrics: [
    m('rabbitmq_connections', 'gauge', 'Connections currently open', (s) => s.ctx.connections.size),
    m('rabbitmq_channels', 'gauge', 'Channels currently open', (s) => s.channels.length),
    m('rabbitmq_consumers', 'gauge', 'Consumers currently connected', (s) => s.node.consumers),
    m('rabbitmq_queues', 'gauge', 'Queues available', (s) => s.queues.length),
  ],
});

/** RabbitMQ's global counters: node-wide since start, they do not drop when channels close. */
export const GLOBAL = group<Scrape>({
  id: 'global',
  perObject: false,
  objects: single,
  labels: () => PROTOCOL,
  metrics: [
    m(
      'rabbitmq_global_messages_received_total',
      'counter',
      'Total number of messages received from publishers',
      (s) => s.node.counters.publish,
    ),
    m('rabbitmq_global_messages_routed_total', 'counter', 'Total number of messages routed to queues or streams', (s) => s.node.routed),
    m(
      'rabbitmq_global_messages_unroutable_dropped_total',
      'counter',
      'Total number of messages published as non-mandatory into an exchange and dropped as unroutable',
      (s) => s.node.counters.dropUnroutable,
    ),
    m(
      'rabbitmq_global_messages_unroutable_returned_total',
      'counter',
      'Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable',
      (s) => s.node.counters.returnUnroutable,
    ),
    m(
      'rabbitmq_global_messages_confirmed_total',
      'counter',
      'Total number of messages confirmed to publishers',
      (s) => s.node.counters.confirm,
    ),
    m('rabbitmq_global_publishers', 'gauge', 'Current number of publishers', (s) => s.node.publishers),
    m('rabbitmq_global_consumers', 'gauge', 'Current number of consumers', (s) => s.node.consumers),
  ],
});

export const GLOBAL_QUEUE_TYPE = group<Scrape>({
  id: 'global_queue_type',
  perObject: false,
  objects: single,
  labels: () => PROTOCOL_CLASSIC,
  metrics: [
    m('rabbitmq_global_messages_delivered_total', 'counter', 'Total number of messages delivered to consumers', (s) => {
      const c = s.node.counters;
      return c.deliver + c.deliverNoAck + c.get + c.getNoAck;
    }),
    m(
      'rabbitmq_global_messages_delivered_consume_manual_ack_total',
      'counter',
      'Total number of messages delivered to consumers using basic.consume with manual acknowledgment',
      (s) => s.node.counters.deliver,
    ),
    m(
      'rabbitmq_global_messages_delivered_consume_auto_ack_total',
      'counter',
      'Total number of messages delivered to consumers using basic.consume with automatic acknowledgment',
      (s) => s.node.counters.deliverNoAck,
    ),
    m(
      'rabbitmq_global_messages_delivered_get_manual_ack_total',
      'counter',
      'Total number of messages delivered to consumers using basic.get with manual acknowledgment',
      (s) => s.node.counters.get,
    ),
    m(
      'rabbitmq_global_messages_delivered_get_auto_ack_total',
      'counter',
      'Total number of messages delivered to consumers using basic.get with automatic acknowledgment',
      (s) => s.node.counters.getNoAck,
    ),
    m(
      'rabbitmq_global_messages_get_empty_total',
      'counter',
      'Total number of times basic.get operations fetched no message',
      (s) => s.node.counters.getEmpty,
    ),
    m(
      'rabbitmq_global_messages_redelivered_total',
      'counter',
      'Total number of messages redelivered to consumers',
      (s) => s.node.counters.redeliver,
    ),
    m(
      'rabbitmq_global_messages_acknowledged_total',
      'counter',
      'Total number of messages acknowledged by consumers',
      (s) => s.node.counters.ack,
    ),
  ],
});

export const ALARMS = group<Scrape>({
  id: 'alarms',
  perObject: false,
  objects: single,
  labels: () => '',
  metrics: [
    // Leveret raises no file descriptor alarm: running out shows as refused connections.
    m('rabbitmq_alarms_file_descriptor_limit', 'gauge', 'is 1 if file descriptor limit alarm is in effect', () => 0),
    m('rabbitmq_alarms_free_disk_space_watermark', 'gauge', 'is 1 if free disk space watermark alarm is in effect', (s) =>
      s.ctx.alarms().disk ? 1 : 0,
    ),
    m('rabbitmq_alarms_memory_used_watermark', 'gauge', 'is 1 if VM memory watermark alarm is in effect', (s) =>
      s.ctx.alarms().memory ? 1 : 0,
    ),
  ],
});

export const LEVERET_NODE = group<Scrape>({
  id: 'leveret_node_metrics',
  perObject: false,
  objects: single,
  labels: () => '',
  metrics: [
    m('leveret_vhosts', 'gauge', 'Virtual hosts', (s) => s.ctx.broker.vhosts.size),
    m('leveret_exchanges', 'gauge', 'Exchanges, the predeclared ones included', (s) => {
      let n = 0;
      for (const v of s.ctx.broker.vhosts.values()) n += v.exchanges.size;
      return n;
    }),
    m('leveret_nodejs_heap_used_bytes', 'gauge', 'V8 heap in use in bytes', () => process.memoryUsage().heapUsed),
  ],
});

/** Cluster mode (a leader's view): role, term, in-sync replicas, each follower's lag. */
export const LEVERET_CLUSTER = group<Scrape>({
  id: 'leveret_cluster_metrics',
  perObject: false,
  objects: (s) => (s.ctx.cluster() === null ? [] : [s]),
  labels: () => '',
  metrics: [
    m('leveret_cluster_leader', 'gauge', 'is 1 on the node that leads the cluster', () => 1),
    m('leveret_cluster_term', 'gauge', 'The leadership term (etcd revision of the leader key)', (s) => s.ctx.cluster()!.term),
    m('leveret_cluster_members', 'gauge', 'Members registered in etcd', (s) => s.ctx.cluster()!.members.length),
    m(
      'leveret_cluster_in_sync_replicas',
      'gauge',
      'Nodes in the in-sync replica set, the leader included',
      (s) => s.ctx.cluster()!.isr.length,
    ),
    m('leveret_cluster_min_isr', 'gauge', 'Followers in the ISR a confirm needs at least', (s) => s.ctx.cluster()!.minIsr),
    m('leveret_replication_lsn', 'gauge', "The leader's last log sequence number", (s) => s.ctx.cluster()!.lsn),
  ],
});

/** Per follower, labelled by node even at /metrics (a cluster has a handful: a sum would hide the laggard). */
export const LEVERET_REPLICATION = group<ClusterFollowerRef>({
  id: 'leveret_replication_metrics',
  perObject: false,
  objects: (s) => (s.ctx.cluster()?.members ?? []).filter((x) => x.role === 'follower'),
  labels: (f) => label('node', f.name),
  metrics: [
    m('leveret_replication_follower_in_sync', 'gauge', 'is 1 if the follower is in the in-sync replica set', (f) => (f.inSync ? 1 : 0)),
    m('leveret_replication_follower_streaming', 'gauge', 'is 1 if the follower is streaming from the leader', (f) => (f.streaming ? 1 : 0)),
    m('leveret_replication_follower_lag_bytes', 'gauge', 'Bytes of store changes the follower has not acked', (f) => f.lagBytes),
    m('leveret_replication_follower_acked_lsn', 'gauge', 'The last log sequence number the follower made durable', (f) => f.ackedLsn),
    m('leveret_replication_follower_silent_seconds', 'gauge', "Seconds since the follower's last ack", (f) => f.silentMs / 1000),
  ],
});

/** RabbitMQ's order at /metrics: what its core collector reads, then totals, global counters, alarms. */
export const ALL_GROUPS: readonly Group<unknown>[] = [
  CONNECTION_CHURN,
  NODE_COARSE,
  NODE,
  QUEUE_COARSE,
  QUEUE_CONSUMERS,
  QUEUE_DELIVERY,
  QUEUE_PUBLISH,
  EXCHANGE,
  CHANNEL,
  CHANNEL_EXCHANGE,
  CHANNEL_QUEUE,
  CONNECTION_COARSE,
  CONNECTION,
  TOTALS,
  GLOBAL,
  GLOBAL_QUEUE_TYPE,
  ALARMS,
  LEVERET_NODE,
  LEVERET_QUEUE,
  LEVERET_CLUSTER,
  LEVERET_REPLICATION,
];

/** The groups /metrics/detailed offers (by RabbitMQ's family names, and Leveret's queue extras). */
export const DETAILED_GROUPS: ReadonlyMap<string, Group<unknown>> = new Map(
  [
    CONNECTION_CHURN,
    NODE_COARSE,
    NODE,
    QUEUE_COARSE,
    QUEUE_CONSUMERS,
    QUEUE_DELIVERY,
    QUEUE_PUBLISH,
    EXCHANGE,
    CHANNEL,
    CHANNEL_EXCHANGE,
    CHANNEL_QUEUE,
    CONNECTION_COARSE,
    CONNECTION,
    LEVERET_QUEUE,
  ].map((g) => [g.id, g]),
);
