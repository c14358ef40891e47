import { ChannelCounters } from './channel-counters';

/**
 * Node-wide counts of objects coming and going (RabbitMQ's connection churn metrics), and
 * what closed channels and deleted vhosts had counted, so that node totals never go back
 * when clients disconnect or a vhost is deleted. Bumped once per object event (a channel
 * closing, a queue declared), never per message.
 */
export class NodeCounters {
  connectionsOpened = 0;
  connectionsClosed = 0;
  channelsOpened = 0;
  channelsClosed = 0;
  /** successful non-passive queue.declare, new queue or not */
  queuesDeclared = 0;
  queuesCreated = 0;
  /** by any means: queue.delete, auto-delete, x-expires, an exclusive owner going, a vhost deleted */
  queuesDeleted = 0;
  /** closed channels' counts (and HTTP publishes and gets) of vhosts since deleted; live vhosts keep their own */
  readonly channelsOfDeletedVhosts = new ChannelCounters();
  /** messages routed to at least one queue in vhosts since deleted */
  routedInDeletedVhosts = 0;
}
