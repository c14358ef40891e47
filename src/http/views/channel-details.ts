import type { Connection } from '../../server/connection';
import type { Channel } from '../../server/channel';

/** RabbitMQ's name for a channel: its connection's name and its number. */
export const channelName = (conn: Connection, ch: Channel): string => `${conn.name} (${ch.id})`;

/**
 * The short description of a channel that consumers and channel listings carry
 * (RabbitMQ's `channel_details`).
 */
export function channelDetails(conn: Connection, ch: Channel, node: string): Record<string, unknown> {
  return {
    connection_name: conn.name,
    name: channelName(conn, ch),
    node,
    number: ch.id,
    peer_host: conn.socket.remoteAddress ?? '',
    peer_port: conn.socket.remotePort ?? 0,
    user: conn.vhost === null ? '' : conn.user.name,
  };
}
