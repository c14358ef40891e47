import type { Exchange } from '../broker/exchanges/exchange';
import type { Message } from '../broker/message';
import type { QueueEntry } from '../broker/queue-entry';

/** What a transactional channel can do to carry out or undo its work. */
export interface TxChannel {
  route(ex: Exchange, msg: Message, mandatory: boolean, extraKeys: string[] | null): void;
  settle(entries: QueueEntry[], reject: boolean, requeue: boolean): void;
  restoreDeliveries(entries: QueueEntry[]): void;
}

interface Publish {
  ex: Exchange;
  msg: Message;
  mandatory: boolean;
  extraKeys: string[] | null;
}
interface Settlement {
  entries: QueueEntry[];
  reject: boolean;
  requeue: boolean;
}

/**
 * tx.select: publishes and acks are held here until tx.commit carries them out in order,
 * or tx.rollback drops the publishes and makes the acked deliveries outstanding again.
 */
export class Transaction {
  private publishes: Publish[] = [];
  private settlements: Settlement[] = [];

  publish(ex: Exchange, msg: Message, mandatory: boolean, extraKeys: string[] | null): void {
    this.publishes.push({ ex, msg, mandatory, extraKeys });
  }

  settle(entries: QueueEntry[], reject: boolean, requeue: boolean): void {
    this.settlements.push({ entries, reject, requeue });
  }

  commit(ch: TxChannel): void {
    const publishes = this.publishes;
    const settlements = this.settlements;
    this.publishes = [];
    this.settlements = [];
    for (const p of publishes) ch.route(p.ex, p.msg, p.mandatory, p.extraKeys);
    for (const s of settlements) ch.settle(s.entries, s.reject, s.requeue);
  }

  rollback(ch: TxChannel): void {
    const entries = this.settlements.flatMap((s) => s.entries);
    this.publishes = [];
    this.settlements = [];
    ch.restoreDeliveries(entries);
  }
}
