import type { Exchange } from '../broker/exchanges/exchange';
import type { Message } from '../broker/message';
import type { QueueEntry } from '../broker/queue-entry';
import { NO_SYNC } from '../broker/storage';

/** What a transactional channel can do to carry out or undo its work. */
export interface TxChannel {
  /** Returns the sync round the publish's durable writes are part of (NO_SYNC: none). */
  route(ex: Exchange, msg: Message, mandatory: boolean, extraKeys: string[] | null): number;
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

  /** Publishes waiting for tx.commit (RabbitMQ's messages_uncommitted). */
  get uncommittedPublishes(): number {
    return this.publishes.length;
  }

  /** Deliveries settled but waiting for tx.commit (RabbitMQ's acks_uncommitted). */
  get uncommittedAcks(): number {
    let n = 0;
    for (const s of this.settlements) n += s.entries.length;
    return n;
  }

  publish(ex: Exchange, msg: Message, mandatory: boolean, extraKeys: string[] | null): void {
    this.publishes.push({ ex, msg, mandatory, extraKeys });
  }

  settle(entries: QueueEntry[], reject: boolean, requeue: boolean): void {
    this.settlements.push({ entries, reject, requeue });
  }

  /** Carries out the transaction; returns the sync round its commit-ok must wait for. */
  commit(ch: TxChannel): number {
    const publishes = this.publishes;
    const settlements = this.settlements;
    this.publishes = [];
    this.settlements = [];
    let epoch = NO_SYNC;
    for (const p of publishes) epoch = Math.max(epoch, ch.route(p.ex, p.msg, p.mandatory, p.extraKeys));
    for (const s of settlements) ch.settle(s.entries, s.reject, s.requeue);
    return epoch;
  }

  rollback(ch: TxChannel): void {
    const entries = this.settlements.flatMap((s) => s.entries);
    this.publishes = [];
    this.settlements = [];
    ch.restoreDeliveries(entries);
  }
}
