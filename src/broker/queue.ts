import type { FieldTable } from '../protocol/types';
import { FLAG_EXPIRATION } from '../protocol/generated';
import type { BindingDestination } from './exchanges/exchange';
import { MemoryQueueStore } from './memory-queue-store';
import { REFUSED, type LoadedMessage, type QueueStore, type QueueStoreOwner } from './storage';
import { QueueEntry } from './queue-entry';
import type { Consumer } from './consumer';
import { Message } from './message';
import type { QueueSettings } from './queue-settings';
import type { DeathReason } from './dead-letter';
import { ConsumerRing } from './consumer-ring';

export interface QueueCounters {
  published: number;
  /** every delivery to a consumer, no-ack ones included (RabbitMQ's deliver + deliver_no_ack) */
  delivered: number;
  deliveredNoAck: number;
  redelivered: number;
  /** acks, and rejects without requeue */
  acked: number;
  /** basic.get, no-ack ones included */
  got: number;
  gotNoAck: number;
  expired: number;
  deadLettered: number;
  rejectedOverflow: number;
}

/** Ready messages beyond which publishers to a queue with consumers are held back... */
const FLOW_HIGH = 20000;
/** ...until it is back down to this many. */
const FLOW_LOW = 5000;
/** Consumers that have taken nothing for this long are stuck (see consumersTaking). */
const FLOW_STALL_MS = 1000;

export { REFUSED } from './storage';

/** The arguments of every queue declared without any (frozen: shared). */
const NO_ARGUMENTS: FieldTable = Object.freeze({});

const DEFAULT_SETTINGS: QueueSettings = Object.freeze({
  messageTtl: null,
  expires: null,
  maxLength: null,
  maxLengthBytes: null,
  overflow: 'drop-head',
  deadLetterExchange: null,
  deadLetterRoutingKey: null,
  maxPriority: null,
  singleActiveConsumer: false,
});

function isEmptyTable(t: FieldTable): boolean {
  for (const _ in t) return false;
  return true;
}

function sameSettings(a: QueueSettings, b: QueueSettings): boolean {
  return (
    a.messageTtl === b.messageTtl &&
    a.expires === b.expires &&
    a.maxLength === b.maxLength &&
    a.maxLengthBytes === b.maxLengthBytes &&
    a.overflow === b.overflow &&
    a.deadLetterExchange === b.deadLetterExchange &&
    a.deadLetterRoutingKey === b.deadLetterRoutingKey &&
    a.maxPriority === b.maxPriority &&
    a.singleActiveConsumer === b.singleActiveConsumer
  );
}

/** The flow waiters of every queue no publisher has waited on yet: only ever read. */
const NO_FLOW_WAITERS: ReadonlySet<FlowWaiter> = new Set();

/** A publisher held back by flow control. */
export interface FlowWaiter {
  flowResume(): void;
}

/** What a queue needs from its vhost. */
export interface QueueOwner {
  /** auto-delete: the last consumer went away */
  queueUnused(queue: Queue): void;
  /** x-expires: unused for too long */
  queueExpired(queue: Queue): void;
  /** a message dies here (rejected, expired, overflow): route it to the dead-letter exchange */
  deadLetter(queue: Queue, message: Message, reason: DeathReason): void;
}

/**
 * A classic queue: ready messages in its store, consumers served round-robin within
 * their prefetch (highest consumer priority first), deliveries tracked until acked.
 * TTLs, length limits and dead-lettering follow the queue's settings.
 */
export class Queue implements BindingDestination, QueueStoreOwner<QueueEntry> {
  readonly kind = 'queue' as const;
  readonly consumers = new ConsumerRing();
  readonly store: QueueStore<QueueEntry>;
  readonly counters: QueueCounters = {
    published: 0,
    delivered: 0,
    deliveredNoAck: 0,
    redelivered: 0,
    acked: 0,
    got: 0,
    gotNoAck: 0,
    expired: 0,
    deadLettered: 0,
    rejectedOverflow: 0,
  };
  /** Delivered to consumers or basic.get and not yet settled. */
  unackedCount = 0;
  /** The last routing pass that added this queue to a message's targets (see QueueTargets). */
  routeMark = 0;
  deleted = false;
  private nextSeq = 0;
  private hadConsumers = false;
  private dispatching = false;
  /** Messages may expire: a TTL is set or a message carried an expiration. */
  private timed = false;
  /** A length limit is set. */
  private limited = false;
  private expiryTimer: NodeJS.Timeout | null = null;
  private expiryAt = 0;
  private unusedTimer: NodeJS.Timeout | null = null;
  /**
   * Publishers held back until the queue drains. A set: a connection paused again while
   * the queue stays above its low-water mark must not be listed once per pause. Shared
   * and empty (never added to) until a publisher first waits here.
   */
  private flowWaiters = NO_FLOW_WAITERS as Set<FlowWaiter>;
  /** counters.delivered at flow control's last look, when that was, and when it last saw it move (ms) */
  private flowDelivered = 0;
  private flowCheckedAt = 0;
  private flowProgressAt = 0;

  constructor(
    readonly name: string,
    readonly durable: boolean,
    /** the connection that owns an exclusive queue, null otherwise */
    readonly exclusiveOwner: object | null,
    readonly autoDelete: boolean,
    readonly args: FieldTable,
    private readonly owner: QueueOwner,
    public settings: QueueSettings,
    store?: QueueStore<QueueEntry>,
  ) {
    // Most queues have no arguments and no policy: they share one empty table and one
    // settings object instead of keeping copies of their own.
    if (isEmptyTable(args)) this.args = NO_ARGUMENTS;
    this.store = store ?? new MemoryQueueStore();
    this.store.attach(this);
    this.applySettings(settings);
  }

  /** A policy changed what applies to the queue. */
  applySettings(settings: QueueSettings): void {
    // A new limit cuts the queue down unless it already refused overflow: RabbitMQ applies
    // a policy's max-length before its overflow setting.
    const trim = this.settings === undefined || this.settings.overflow === 'drop-head';
    this.settings = settings = sameSettings(settings, DEFAULT_SETTINGS) ? DEFAULT_SETTINGS : settings;
    this.timed = this.timed || settings.messageTtl !== null;
    this.limited = settings.maxLength !== null || settings.maxLengthBytes !== null;
    this.touch();
    if (this.limited && trim) this.trimTo(settings);
    if (this.timed) this.expireHead();
  }

  get messageCount(): number {
    return this.store.length;
  }

  get consumerCount(): number {
    return this.consumers.length;
  }

  get hasExclusiveConsumer(): boolean {
    return this.consumers.length > 0 && this.consumers.first!.exclusive;
  }

  /**
   * Takes a published message. Returns REFUSED if the queue would not take it (full,
   * reject-publish), else the sync epoch a publisher confirm must wait for (NO_SYNC: none).
   */
  enqueue(message: Message): number {
    this.counters.published++;
    if (this.limited && this.settings.overflow !== 'drop-head' && this.wouldOverflow(message)) {
      this.counters.rejectedOverflow++;
      if (this.settings.overflow === 'reject-publish-dlx') this.deadLetter(message, 'maxlen');
      return REFUSED;
    }
    const entry = new QueueEntry(message, this.nextSeq++, this);
    if (this.timed || (message.rawProperties.readUInt16BE(0) & FLAG_EXPIRATION) !== 0) entry.expiresAt = this.expiryOf(message, Date.now());
    const epoch = this.store.accept(entry);
    if (epoch === REFUSED) return REFUSED;
    if (this.store.length === 0 && this.consumers.length > 0) {
      const c = this.consumers.next(this.settings.singleActiveConsumer);
      if (c !== null) {
        this.deliverTo(c, entry);
        return epoch;
      }
    }
    this.store.push(entry);
    if (this.limited) this.dropOverflow();
    if (this.timed) this.expireHead();
    return epoch;
  }

  /**
   * Whether a publisher should hold off: the queue is falling behind consumers that are
   * taking messages. Only looked into past the high-water mark.
   */
  get overloaded(): boolean {
    return this.consumers.length > 0 && this.store.length >= FLOW_HIGH && this.consumersTaking();
  }

  /**
   * Whether the queue's consumers are taking messages: deliveries were seen lately. A
   * consumer whose client does not read its socket, or that is at its prefetch limit and
   * does not ack, takes nothing; publishers are not held back for such consumers: the
   * queue grows and pages to disk instead, as with no consumers. (A slow reader still
   * drains its socket now and then, and so counts as taking.)
   */
  private consumersTaking(): boolean {
    // Taking = deliveries seen between two looks not too far apart (a count that moved
    // since a look long ago says nothing about now).
    const now = Date.now();
    const delivered = this.counters.delivered;
    const recent = now - this.flowCheckedAt < FLOW_STALL_MS;
    this.flowCheckedAt = now;
    if (delivered !== this.flowDelivered) {
      this.flowDelivered = delivered;
      if (!recent) return false;
      this.flowProgressAt = now;
      return true;
    }
    return now - this.flowProgressAt < FLOW_STALL_MS;
  }

  waitForFlow(w: FlowWaiter): void {
    if (this.flowWaiters === NO_FLOW_WAITERS) this.flowWaiters = new Set();
    this.flowWaiters.add(w);
  }

  /** How many publishers wait for this queue to drain (each at most once). */
  get flowWaiterCount(): number {
    return this.flowWaiters.size;
  }

  private releaseFlow(): void {
    if (this.flowWaiters.size === 0) return;
    // Copied first: a waiter resumed here may publish and wait again at once.
    const waiters = [...this.flowWaiters];
    this.flowWaiters.clear();
    for (const w of waiters) w.flowResume();
  }

  /** When a message expires: the sooner of the queue's TTL and its own expiration; 0 = never. */
  private expiryOf(message: Message, publishedAt: number): number {
    let at = this.settings.messageTtl === null ? 0 : publishedAt + this.settings.messageTtl;
    if ((message.rawProperties.readUInt16BE(0) & FLAG_EXPIRATION) !== 0) {
      const ms = Number(message.properties.expiration);
      if (Number.isInteger(ms) && ms >= 0) {
        this.timed = true;
        at = at === 0 ? publishedAt + ms : Math.min(at, publishedAt + ms);
      }
    }
    return at;
  }

  /** The store read a message back from disk: it takes its place in the queue. */
  entryLoaded(loaded: LoadedMessage): QueueEntry {
    const message = new Message(loaded.exchange, loaded.routingKey, loaded.rawProperties, loaded.body);
    const entry = new QueueEntry(message, this.nextSeq++, this);
    entry.stored = loaded.stored;
    entry.redelivered = loaded.redelivered;
    if (this.timed || (message.rawProperties.readUInt16BE(0) & FLAG_EXPIRATION) !== 0) {
      entry.expiresAt = this.expiryOf(message, loaded.publishedAt);
    }
    return entry;
  }

  private wouldOverflow(message: Message): boolean {
    const s = this.settings;
    return (
      (s.maxLength !== null && this.store.length >= s.maxLength) ||
      (s.maxLengthBytes !== null && this.store.bytes + message.bodySize > s.maxLengthBytes)
    );
  }

  /** drop-head: the oldest ready messages go (dead-lettered) until the queue fits. */
  private dropOverflow(): void {
    if (this.settings.overflow === 'drop-head') this.trimTo(this.settings);
  }

  private trimTo(s: QueueSettings): void {
    while (
      (s.maxLength !== null && this.store.length > s.maxLength) ||
      (s.maxLengthBytes !== null && this.store.bytes > s.maxLengthBytes)
    ) {
      const e = this.store.shift();
      if (e === undefined) break;
      this.deadLetter(e.message, 'maxlen');
      this.store.settle(e);
    }
  }

  /** Ready messages at the head whose time is up leave (dead-lettered); later ones wait their turn. */
  private expireHead(): void {
    const now = Date.now();
    for (;;) {
      const e = this.store.peek();
      if (e === undefined || e.expiresAt === 0 || e.expiresAt > now) break;
      this.store.shift();
      this.counters.expired++;
      this.deadLetter(e.message, 'expired');
      this.store.settle(e);
    }
    this.scheduleExpiry();
  }

  private scheduleExpiry(): void {
    const head = this.store.peek();
    const at = head === undefined ? 0 : head.expiresAt;
    if (at === this.expiryAt) return;
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    this.expiryAt = at;
    if (at === 0 || this.deleted) return;
    this.expiryTimer = setTimeout(
      () => {
        this.expiryTimer = null;
        this.expiryAt = 0;
        if (this.deleted) return;
        this.expireHead();
        this.dispatch();
      },
      Math.max(0, at - Date.now()),
    );
    this.expiryTimer.unref();
  }

  private deadLetter(message: Message, reason: DeathReason): void {
    if (this.settings.deadLetterExchange === null) return;
    this.counters.deadLettered++;
    this.owner.deadLetter(this, message, reason);
  }

  /** Hands ready messages to consumers until they or the messages run out. */
  dispatch(): void {
    if (this.dispatching || this.consumers.length === 0) return;
    this.dispatching = true;
    try {
      while (this.store.length > 0) {
        if (this.timed) {
          this.expireHead();
          if (this.store.length === 0) break;
        }
        const c = this.consumers.next(this.settings.singleActiveConsumer);
        if (c === null) break;
        const e = this.store.shift();
        if (e === undefined) break; // on disk and unreadable for now: the store retries
        this.deliverTo(c, e);
      }
    } finally {
      this.dispatching = false;
    }
    if (this.flowWaiters.size > 0 && this.store.length <= FLOW_LOW) this.releaseFlow();
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
      this.counters.deliveredNoAck++;
      this.store.settle(entry);
    }
    c.channel.deliver(c, entry);
  }

  /** basic.get: the next ready message, counted as unacked unless no-ack. */
  get(noAck: boolean): QueueEntry | undefined {
    this.touch();
    if (this.timed) this.expireHead();
    const entry = this.store.shift();
    if (entry === undefined) return undefined;
    this.counters.got++;
    if (noAck) {
      this.counters.gotNoAck++;
      this.store.settle(entry);
    } else {
      this.unackedCount++;
      if (!entry.redelivered) this.store.delivered(entry);
    }
    return entry;
  }

  /** The delivery was acked, or (reject) rejected/nacked without requeue and dead-lettered. */
  settle(entry: QueueEntry, reject = false): void {
    this.unackedCount--;
    this.counters.acked++;
    if (entry.consumer !== null) {
      entry.consumer.unacked--;
      entry.consumer = null;
    }
    if (this.deleted) return;
    if (reject) this.deadLetter(entry.message, 'rejected');
    this.store.settle(entry);
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
    if (this.limited) this.dropOverflow();
    if (this.timed) this.expireHead();
    this.dispatch();
  }

  addConsumer(c: Consumer): void {
    this.consumers.add(c);
    this.hadConsumers = true;
    this.touch();
    this.dispatch();
  }

  removeConsumer(c: Consumer): void {
    if (!this.consumers.remove(c)) return;
    if (this.consumers.length === 0) {
      this.releaseFlow(); // nobody to fall behind any more
      if (this.autoDelete && this.hadConsumers) return this.owner.queueUnused(this);
      this.touch();
    } else if (this.settings.singleActiveConsumer) {
      this.dispatch(); // the next consumer in line becomes the active one
    }
  }

  /**
   * x-expires: the queue counts as used now (declared, consumed from, got from); its
   * clock restarts, and stops while it has consumers.
   */
  touch(): void {
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    this.unusedTimer = null;
    const ms = this.settings.expires;
    if (ms === null || this.consumers.length > 0 || this.deleted) return;
    this.unusedTimer = setTimeout(() => {
      this.unusedTimer = null;
      if (!this.deleted && this.consumers.length === 0) this.owner.queueExpired(this);
    }, ms);
    this.unusedTimer.unref();
  }

  purge(): number {
    const n = this.store.purge();
    this.releaseFlow();
    this.scheduleExpiry();
    return n;
  }

  /** Marks the queue gone and tells its consumers' channels; returns ready messages dropped. */
  destroy(): number {
    this.deleted = true;
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    if (this.unusedTimer !== null) clearTimeout(this.unusedTimer);
    const dropped = this.store.length;
    this.store.destroy();
    this.releaseFlow();
    for (const c of this.consumers.clear()) c.channel.consumerCancelled(c);
    return dropped;
  }
}
