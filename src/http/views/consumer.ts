import type { Consumer } from '../../broker/consumer';
import type { Queue } from '../../broker/queue';
import type { Channel } from '../../server/channel';
import type { Connection } from '../../server/connection';
import { channelDetails } from './channel-details';
import { tableJson } from './field-json';

/** A consumer with where it lives, as found by walking the live connections. */
export interface LiveConsumer {
  readonly consumer: Consumer;
  readonly channel: Channel;
  readonly connection: Connection;
}

/** Every consumer on open channels, and the unacked body bytes each queue has out (one walk per request). */
export interface LiveView {
  consumers: LiveConsumer[];
  byQueue: Map<Queue, LiveConsumer[]>;
  unackedBytes: Map<Queue, number>;
}

export function liveView(connections: Iterable<Connection>): LiveView {
  const view: LiveView = { consumers: [], byQueue: new Map(), unackedBytes: new Map() };
  for (const connection of connections) {
    for (const channel of connection.openChannels()) {
      for (const consumer of channel.consumers.values()) {
        const lc = { consumer, channel, connection };
        view.consumers.push(lc);
        let list = view.byQueue.get(consumer.queue);
        if (list === undefined) view.byQueue.set(consumer.queue, (list = []));
        list.push(lc);
      }
      for (const e of channel.unacked.values()) view.unackedBytes.set(e.queue, (view.unackedBytes.get(e.queue) ?? 0) + e.message.bodySize);
    }
  }
  return view;
}

/** With single active consumer only the first in line gets messages; the others wait. */
function activity(c: Consumer): { active: boolean; status: string } {
  if (!c.queue.settings.singleActiveConsumer) return { active: true, status: 'up' };
  return c.queue.consumers.first === c ? { active: true, status: 'single_active' } : { active: false, status: 'waiting' };
}

/** RabbitMQ's consumer object (/api/consumers and a queue's consumer_details). */
export function consumerJson(lc: LiveConsumer, node: string): Record<string, unknown> {
  const c = lc.consumer;
  const a = activity(c);
  return {
    arguments: tableJson(c.args),
    ack_required: !c.noAck,
    active: a.active,
    activity_status: a.status,
    channel_details: channelDetails(lc.connection, lc.channel, node),
    consumer_tag: c.tag,
    exclusive: c.exclusive,
    prefetch_count: c.prefetch,
    queue: { name: c.queue.name, vhost: lc.connection.vhost?.name ?? '' },
  };
}
