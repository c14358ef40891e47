/**
 * What a channel counts as messages pass through it: RabbitMQ's channel message_stats.
 * Plain numeric fields bumped on the hot path; the management API samples them on a timer
 * for rates. A closed channel's counts are folded into its vhost's (see Vhost.retire) so
 * that vhost and overall totals do not drop when clients disconnect.
 */
export class ChannelCounters {
  publish = 0;
  confirm = 0;
  returnUnroutable = 0;
  dropUnroutable = 0;
  deliver = 0;
  deliverNoAck = 0;
  get = 0;
  getNoAck = 0;
  getEmpty = 0;
  ack = 0;
  redeliver = 0;

  add(o: ChannelCounters): void {
    this.publish += o.publish;
    this.confirm += o.confirm;
    this.returnUnroutable += o.returnUnroutable;
    this.dropUnroutable += o.dropUnroutable;
    this.deliver += o.deliver;
    this.deliverNoAck += o.deliverNoAck;
    this.get += o.get;
    this.getNoAck += o.getNoAck;
    this.getEmpty += o.getEmpty;
    this.ack += o.ack;
    this.redeliver += o.redeliver;
  }
}

/** What an exchange counts: messages published into it and messages it routed onwards. */
export interface ExchangeCounters {
  publishIn: number;
  publishOut: number;
}
