import type { ManagementContext } from '../context';
import type { Queue } from '../../broker/queue';
import type { Exchange } from '../../broker/exchanges/exchange';
import type { Connection } from '../../server/connection';
import type { Channel } from '../../server/channel';
import { ChannelCounters } from '../../broker/channel-counters';
import { readProcess, type ProcessReadings } from './process';

export interface QueueRef {
  vhost: string;
  queue: Queue;
}

export interface ExchangeRef {
  vhost: string;
  exchange: Exchange;
}

export interface ChannelRef {
  conn: Connection;
  ch: Channel;
}

/** The node's message counts since start: closed channels' and live ones'. */
export interface NodeTotals {
  counters: ChannelCounters;
  /** messages routed to at least one queue */
  routed: number;
  /** channels that have published (RabbitMQ counts a publisher from its first publish) */
  publishers: number;
  consumers: number;
}

/**
 * What one scrape reads, each part gathered once and only if a metric asks for it. All of
 * it is read from the model as it is now: nothing is kept between scrapes, nothing is
 * counted per message for it.
 */
export class Scrape {
  private queueRefs: QueueRef[] | null = null;
  private exchangeRefs: ExchangeRef[] | null = null;
  private channelRefs: ChannelRef[] | null = null;
  private processReadings: ProcessReadings | null = null;
  private totals: NodeTotals | null = null;

  constructor(
    readonly ctx: ManagementContext,
    /** /metrics/detailed's vhost filter for queues and exchanges; null: all */
    readonly vhosts: ReadonlySet<string> | null = null,
  ) {}

  private wanted(vhost: string): boolean {
    return this.vhosts === null || this.vhosts.has(vhost);
  }

  get queues(): QueueRef[] {
    if (this.queueRefs === null) {
      const refs: QueueRef[] = [];
      for (const v of this.ctx.broker.vhosts.values()) {
        if (!this.wanted(v.name)) continue;
        for (const queue of v.queues.values()) refs.push({ vhost: v.name, queue });
      }
      this.queueRefs = refs;
    }
    return this.queueRefs;
  }

  get exchanges(): ExchangeRef[] {
    if (this.exchangeRefs === null) {
      const refs: ExchangeRef[] = [];
      for (const v of this.ctx.broker.vhosts.values()) {
        if (!this.wanted(v.name)) continue;
        for (const exchange of v.exchanges.values()) refs.push({ vhost: v.name, exchange });
      }
      this.exchangeRefs = refs;
    }
    return this.exchangeRefs;
  }

  get connections(): Connection[] {
    return [...this.ctx.connections];
  }

  /** Open channels only: a closing one has already handed its counts to its vhost's retiredChannels. */
  get channels(): ChannelRef[] {
    if (this.channelRefs === null) {
      const refs: ChannelRef[] = [];
      for (const conn of this.ctx.connections) for (const ch of conn.openChannels()) if (ch.state === 'open') refs.push({ conn, ch });
      this.channelRefs = refs;
    }
    return this.channelRefs;
  }

  get process(): ProcessReadings {
    return (this.processReadings ??= readProcess(this.ctx.dataDir));
  }

  get node(): NodeTotals {
    if (this.totals === null) {
      const nc = this.ctx.broker.nodeCounters;
      const counters = new ChannelCounters();
      counters.add(nc.channelsOfDeletedVhosts);
      for (const v of this.ctx.broker.vhosts.values()) counters.add(v.retiredChannels);
      let publishers = 0;
      let consumers = 0;
      for (const { ch } of this.channels) {
        const c = ch.countersNow();
        counters.add(c);
        if (c.publish > 0) publishers++;
        consumers += ch.consumers.size;
      }
      let routed = nc.routedInDeletedVhosts;
      for (const v of this.ctx.broker.vhosts.values()) routed += v.counters.routed;
      this.totals = { counters, routed, publishers, consumers };
    }
    return this.totals;
  }
}
