import type { FieldTable } from '../protocol/types';
import type { BindingDestination } from './exchanges/exchange';
import type { QueueStore } from '../store/queue-store';
import { MemoryQueueStore } from '../store/memory-queue-store';
import { QueueEntry } from './queue-entry';
import type { Consumer } from './consumer';
import type { Message } from './message';

export interface QueueCounters {
  published: number;
  delivered: number;
  redelivered: number;
  acked: number;
  got: number;
}

/** Told when a queue becomes deletable by its own rules (auto-delete). */
export interface QueueOwner {
  queueUnused(queue: Queue): void;
}

/**
 * A classic queue: ready messages in its store, consumers served round-robin within
 * their prefetch, deliveries tracked until acked.
 */
export class Queue implements BindingDestination {
  readonly kind = 'queue' as const;
  readonly consumers: Consumer[] = [];
  readonly store: QueueStore;
  readonly counters: QueueCounters = { published: 0, delivered: 0, redelivered: 0, acked: 0, got: 0 };
  /** Delivered to consumers or basic.get and not yet settled. */
  unackedCount = 0;
  deleted = false;
  nextSeq = 0;
  private rr = 0;
  private hadConsumers = false;
  private dispatching = false;

  constructor(
    readonly name: string,
    readonly durable: boolean,
    /** the connection that owns an exclusive queue, null otherwise */
    readonly exclusiveOwner: object | null,
    readonly autoDelete: boolean,
    readonly args: FieldTable,
    private readonly owner: QueueOwner,
    store?: QueueStore,
  ) {
    this.store = store ?? new MemoryQueueStore();
    this.store.attach(this);
  }

  get messageCount(): number {
    return this.store.length;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  get hasExclusiveConsumer(): boolean {
    return this.consumers.length > 0 && this.consumers[0].exclusive;
  }

  enqueue(message: Message): void {
    this.counters.published++;
    const entry = new QueueEntry(message, this.nextSeq++, this);
    this.store.accept(entry);
    if (this.store.length === 0 && this.consumers.length > 0) {
      const c = this.nextConsumer();
      if (c !== null) {
        this.deliverTo(c, entry);
        return;
      }
    }
    this.store.push(entry);
  }

  /** Hands ready messages to consumers until they or the messages run out. */
  dispatch(): void {
    if (this.dispatching || this.consumers.length === 0) return;
    this.dispatching = true;
    try {
      while (this.store.length > 0) {
        const c = this.nextConsumer();
        if (c === null) break;
        this.deliverTo(c, this.store.shift()!);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private nextConsumer(): Consumer | null {
    const list = this.consumers;
    const n = list.length;
    for (let i = 0; i < n; i++) {
      if (this.rr >= n) this.rr = 0;
      const c = list[this.rr++];
      if (c.canTake()) return c;
    }
    return null;
  }

  private deliverTo(c: Consumer, entry: QueueEntry): void {
    this.counters.delivered++;
    if (entry.redelivered) this.counters.redelivered++;
    if (!c.noAck) {
      this.unackedCount++;
      c.unacked++;
      entry.consumer = c;
      if (!entry.redelivered) this.store.delivered(entry);
    } else {
      this.counters.acked++;
      this.store.settle(entry);
    }
    c.channel.deliver(c, entry);
  }

  /** basic.get: the next ready message, counted as unacked unless no-ack. */
  get(noAck: boolean): QueueEntry | undefined {
    const entry = this.store.shift();
    if (entry === undefined) return undefined;
    this.counters.got++;
    if (noAck) this.store.settle(entry);
    else {
      this.unackedCount++;
      if (!entry.redelivered) this.store.delivered(entry);
    }
    return entry;
  }

  /** The delivery was acked, or rejected/nacked without requeue. */
  settle(entry: QueueEntry): void {
    this.unackedCount--;
    this.counters.acked++;
    if (entry.consumer !== null) {
      entry.consumer.unacked--;
      entry.consumer = null;
    }
    if (!this.deleted) this.store.settle(entry);
  }

  /** Unacked deliveries come back, in their original order, marked redelivered. */
  requeue(entries: QueueEntry[]): void {
    for (const e of entries) {
      this.unackedCount--;
      if (e.consumer !== null) {
        e.consumer.unacked--;
        e.consumer = null;
      }
      e.redelivered = true;
      e.deliveryTag = 0;
    }
    if (this.deleted) return;
    this.store.requeue(entries);
    this.dispatch();
  }

  addConsumer(c: Consumer): void {
    this.consumers.push(c);
    this.hadConsumers = true;
    this.dispatch();
  }

  removeConsumer(c: Consumer): void {
    const i = this.consumers.indexOf(c);
    if (i < 0) return;
    this.consumers.splice(i, 1);
    if (this.consumers.length === 0 && this.autoDelete && this.hadConsumers) this.owner.queueUnused(this);
  }

  purge(): number {
    return this.store.purge();
  }

  /** Marks the queue gone and tells its consumers' channels; returns ready messages dropped. */
  destroy(): number {
    this.deleted = true;
    const dropped = this.store.length;
    this.store.destroy();
    const consumers = this.consumers.splice(0);
    for (const c of consumers) c.channel.consumerCancelled(c);
    return dropped;
  }
}
