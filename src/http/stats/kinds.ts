import type { Queue } from '../../broker/queue';
import type { Exchange } from '../../broker/exchanges/exchange';
import type { ChannelCounters } from '../../broker/channel-counters';

/**
 * What the management API samples for each kind of object: RabbitMQ's field names, and how
 * to read their current values into a row. Rows are read on the sampling timer and when a
 * request asks, never on the message path.
 */
export interface Kind<T> {
  readonly fields: readonly string[];
  read(obj: T, out: Float64Array): void;
}

export const CHANNEL_FIELDS = [
  'publish',
  'confirm',
  'return_unroutable',
  'drop_unroutable',
  'deliver',
  'deliver_no_ack',
  'get',
  'get_no_ack',
  'get_empty',
  'deliver_get',
  'ack',
  'redeliver',
] as const;

/** Channel counters in CHANNEL_FIELDS order, added into `out` from `at` (aggregates add many). */
export function addChannelCounters(c: ChannelCounters, out: Float64Array, at = 0): void {
  out[at] += c.publish;
  out[at + 1] += c.confirm;
  out[at + 2] += c.returnUnroutable;
  out[at + 3] += c.dropUnroutable;
  out[at + 4] += c.deliver;
  out[at + 5] += c.deliverNoAck;
  out[at + 6] += c.get;
  out[at + 7] += c.getNoAck;
  out[at + 8] += c.getEmpty;
  out[at + 9] += c.deliver + c.deliverNoAck + c.get + c.getNoAck;
  out[at + 10] += c.ack;
  out[at + 11] += c.redeliver;
}

export const CHANNEL: Kind<ChannelCounters> = {
  fields: CHANNEL_FIELDS,
  read(c, out) {
    out.fill(0);
    addChannelCounters(c, out);
  },
};

export const QUEUE: Kind<Queue> = {
  fields: [
    'publish',
    'deliver',
    'deliver_no_ack',
    'get',
    'get_no_ack',
    'deliver_get',
    'ack',
    'redeliver',
    'messages',
    'messages_ready',
    'messages_unacknowledged',
  ],
  read(q, out) {
    const c = q.counters;
    out[0] = c.published;
    out[1] = c.delivered - c.deliveredNoAck;
    out[2] = c.deliveredNoAck;
    out[3] = c.got - c.gotNoAck;
    out[4] = c.gotNoAck;
    out[5] = c.delivered + c.got;
    out[6] = c.acked;
    out[7] = c.redelivered;
    out[8] = q.messageCount + q.unackedCount;
    out[9] = q.messageCount;
    out[10] = q.unackedCount;
  },
};

export const EXCHANGE: Kind<Exchange> = {
  fields: ['publish_in', 'publish_out'],
  read(e, out) {
    out[0] = e.publishIn;
    out[1] = e.publishOut;
  },
};

/** What a connection offers to be sampled (the server's Connection is one). */
export interface ConnectionStatsSource {
  readonly counters: { recvBytes: number; recvCount: number };
  readonly sentBytes: number;
  readonly sentCount: number;
}

export const CONNECTION: Kind<ConnectionStatsSource> = {
  fields: ['recv_oct', 'recv_cnt', 'send_oct', 'send_cnt'],
  read(c, out) {
    out[0] = c.counters.recvBytes;
    out[1] = c.counters.recvCount;
    out[2] = c.sentBytes;
    out[3] = c.sentCount;
  },
};

/**
 * A vhost, and the whole node: its channels' counts (closed ones included), its queues'
 * depths and its connections' traffic, as one row.
 */
export const TOTAL_FIELDS = [...CHANNEL_FIELDS, 'messages', 'messages_ready', 'messages_unacknowledged', 'recv_oct', 'send_oct'] as const;
export const TOTAL_DEPTH_AT = CHANNEL_FIELDS.length;
export const TOTAL_OCTETS_AT = CHANNEL_FIELDS.length + 3;
