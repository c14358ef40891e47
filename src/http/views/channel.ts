import type { Connection } from '../../server/connection';
import type { Channel } from '../../server/channel';
import type { ManagementContext } from '../context';
import { CHANNEL } from '../stats/kinds';
import { detailed } from '../stats/json';
import { channelDetails, channelName } from './channel-details';
import { GC_PLACEHOLDER, visibleConnections } from './connection';
import { tableJson } from './field-json';
import type { User } from '../../auth/users';

/** An open channel with the connection it belongs to. */
export interface OwnedChannel {
  conn: Connection;
  ch: Channel;
}

/** The open channels of the connections `user` may see. */
export function visibleChannels(ctx: ManagementContext, user: User): OwnedChannel[] {
  const out: OwnedChannel[] = [];
  for (const conn of visibleConnections(ctx, user)) out.push(...channelsOf(conn));
  return out;
}

export function channelsOf(conn: Connection): OwnedChannel[] {
  const out: OwnedChannel[] = [];
  for (const ch of conn.openChannels()) if (ch.state === 'open') out.push({ conn, ch });
  return out;
}

/** RabbitMQ's timestamps for idle_since: 2026-11-30T01:06:46.322+00:00. */
export const isoTime = (ms: number): string => new Date(ms).toISOString().replace('Z', '+00:00');

export interface ChannelViewOptions {
  /** the single-object GET, which adds the consumers and the per-exchange/queue lists */
  single: boolean;
  noStats: boolean;
}

/** A channel as RabbitMQ 3.10's /api/channels shows it (keys sorted, as it sends them). */
export function channelJson({ conn, ch }: OwnedChannel, ctx: ManagementContext, opts: ChannelViewOptions): Record<string, unknown> {
  const user = conn.user.name;
  const out: Record<string, unknown> = {
    acks_uncommitted: ch.uncommittedAcks,
    confirm: ch.confirms.enabled,
    connection_details: { name: conn.name, peer_host: conn.socket.remoteAddress ?? '', peer_port: conn.socket.remotePort ?? 0 },
    consumer_count: ch.consumers.size,
  };
  if (opts.single) {
    const details = channelDetails(conn, ch, ctx.nodeName);
    out.consumer_details = [...ch.consumers.values()].map((c) => ({
      arguments: tableJson(c.args),
      channel_details: details,
      ack_required: !c.noAck,
      active: true,
      activity_status: 'up',
      consumer_tag: c.tag,
      exclusive: c.exclusive,
      prefetch_count: c.prefetch,
      queue: { name: c.queue.name, vhost: conn.vhost?.name ?? '' },
    }));
    // Per-exchange and per-queue rates are RabbitMQ's "detailed" mode; in "basic" these are empty.
    out.deliveries = [];
  }
  out.garbage_collection = GC_PLACEHOLDER;
  out.global_prefetch_count = ch.globalPrefetchCount;
  out.idle_since = isoTime(ch.lastActivityAt);
  if (!opts.noStats) {
    const counters = ch.countersNow();
    const row = new Float64Array(CHANNEL.fields.length);
    CHANNEL.read(counters, row);
    // RabbitMQ leaves message_stats out until the channel has done something it counts.
    if (row.some((v) => v !== 0)) out.message_stats = detailed(CHANNEL.fields, row, ctx.stats.rates(ch, CHANNEL.fields.length));
  }
  Object.assign(out, {
    messages_unacknowledged: ch.unacked.size,
    messages_uncommitted: ch.uncommittedPublishes,
    messages_unconfirmed: ch.confirms.enabled ? ch.confirms.unconfirmed : 0,
    name: channelName(conn, ch),
    node: ctx.nodeName,
    number: ch.id,
    pending_raft_commands: 0,
    prefetch_count: ch.prefetchCount,
  });
  if (opts.single) out.publishes = [];
  Object.assign(out, {
    reductions: 0,
    reductions_details: { rate: 0 },
    state: channelState(conn),
    transactional: ch.transactional,
    user,
    user_who_performed_action: user,
    vhost: conn.vhost?.name ?? '',
  });
  return out;
}

/** RabbitMQ's channel states: running, or flow/blocked while its connection is held back. */
function channelState(conn: Connection): string {
  const s = conn.apiState;
  return s === 'flow' || s === 'blocked' ? s : s === 'closing' ? 'closing' : 'running';
}
