import type { ChannelHost } from './channel-host';
import type { Vhost } from '../broker/vhost';
import { REFUSED, type Queue } from '../broker/queue';
import { QueueTargets } from '../broker/queue-targets';
import { NO_SYNC } from '../broker/storage';
import type { QueueEntry } from '../broker/queue-entry';
import type { Exchange } from '../broker/exchanges/exchange';
import { Consumer, type ConsumerChannel } from '../broker/consumer';
import type { Message } from '../broker/message';
import { generateName, describeQueue, isReservedName } from '../broker/names';
import { AmqpError, replyText } from '../protocol/errors';
import * as C from '../protocol/constants';
import * as M from '../protocol/generated';
import { deliverPrefix } from '../protocol/delivery-wire';
import type { Permission, ResourceKind } from '../auth/permissions';
import { CheckCache, IDLE_FORGET_MS, coarseClock, startCoarseClock } from '../auth/permission-cache';
import { EXCHANGE_TYPES } from '../broker/exchanges';
import { Transaction } from './transaction';
import { PublisherConfirms } from './publisher-confirms';
import { HeldAnswers, type HoldingChannel } from './held-answers';
import type { Writer } from '../protocol/writer';
import { writeBodyFrames } from './socket-output';
import { ContentAssembler } from './content-assembler';
import { senderSelected } from '../broker/sender-selected';
import { expirationError } from '../broker/expiration';
import { parseConsumerArgs, toAmqpError } from '../broker/arguments';
import { REPLY_TO_PREFIX, REPLY_TO_QUEUE, withReplyAddress } from './direct-reply';
import { ChannelCounters } from '../broker/channel-counters';
import { UnackedLog } from './unacked-log';
import { flatString } from '../flat-string';

/**
 * `closing`: we sent channel.close and wait for close-ok (the connection drops everything
 * else); `closed`: torn down, nothing more is delivered.
 */
export type ChannelState = 'open' | 'closing' | 'closed';

/**
 * One AMQP channel: turns methods into calls on the vhost, assembles published content,
 * and tracks deliveries until they are settled. Deliveries and confirms are written into
 * the connection's shared output buffer.
 */
export class Channel implements ConsumerChannel, HoldingChannel {
  readonly consumers = new Map<string, Consumer>();
  /** Deliveries awaiting ack, in delivery-tag order. */
  readonly unacked = new UnackedLog();
  state: ChannelState = 'open';
  /** RabbitMQ's channel message_stats (confirm is kept by `confirms`, see countersNow) */
  readonly counters = new ChannelCounters();
  private deliveryTag = 0;
  /** Unacked deliveries made to consumers (what a global prefetch limits). */
  private consumerUnacked = 0;
  private prefetchGlobal = 0;
  private prefetchConsumer = 0;
  private lastQueue = '';
  /** NO_CONFIRMS (shared, never enabled) until confirm.select or tx.select needs one of its own. */
  confirms: PublisherConfirms = NO_CONFIRMS;
  private tx: Transaction | null = null;
  /** IDLE_CONTENT (shared, always idle) until the first basic.publish. */
  private content: ContentAssembler = IDLE_CONTENT;
  /** Cluster mode: an answer waiting for the followers, and the frames that arrived behind it. */
  private held: HeldAnswers | null = null;
  private readonly routed = new QueueTargets();
  /** direct reply-to: our consumer tag on the pseudo-queue and the address replies use */
  private replyConsumerTag: string | null = null;
  private replyAddress = '';
  /** Whether the user has topic permissions in this vhost (null: not looked up since the cache was last forgotten). */
  private hasTopicRules: boolean | null = null;
  /** RabbitMQ's per-channel caches of passed permission checks (see permission-cache.ts). */
  private readonly checked = new CheckCache();
  /** made at the first topic permission check */
  private topicChecked: CheckCache | null = null;
  /**
   * The exchange whose write check is in `checked`, so that a publisher's every message
   * costs one string comparison; null once that entry leaves the cache.
   */
  private publishExchange: string | null = null;
  private lastMethodAt = coarseClock.now;
  /** RabbitMQ's consumer_timeout in ms (0: off), and the one timer that enforces it. */
  private readonly ackTimeout: number;
  private ackTimer: NodeJS.Timeout | null = null;
  /** The consumer timeout's callback, made the first time the timer is armed. */
  private ackTimeoutCheck: (() => void) | null = null;

  constructor(
    private readonly conn: ChannelHost,
    private readonly vhost: Vhost,
    readonly id: number,
  ) {
    this.ackTimeout = conn.config.consumerTimeout;
    startCoarseClock();
  }

  // ---- frames ------------------------------------------------------------------------

  /** A method for this open channel (channel.close is the connection's to handle). */
  onMethod(m: M.Method): void {
    if (this.held !== null) return this.held.method(m);
    if (!this.content.idle) return this.fail(this.content.unexpected());
    this.noteActivity();
    try {
      this.dispatchMethod(m);
    } catch (err) {
      if (err instanceof AmqpError && err.classId === 0) {
        err.classId = m.id >>> 16;
        err.methodId = m.id & 0xffff;
      }
      this.fail(err);
    }
  }

  onHeader(buf: Buffer, start: number, end: number): void {
    if (this.held !== null) return this.held.header(buf, start, end);
    try {
      if (this.content.header(buf, start, end)) this.publishComplete();
    } catch (err) {
      this.fail(err);
    }
  }

  onBody(chunk: Buffer): void {
    if (this.held !== null) return this.held.body(chunk);
    try {
      if (this.content.bodyChunk(chunk)) this.publishComplete();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Soft errors close this channel; hard ones (and bugs) the whole connection. */
  private fail(err: unknown): void {
    if (err instanceof AmqpError && !C.isHardError(err.code)) this.closeWithError(err);
    else this.conn.connectionError(err);
  }

  // ---- methods -----------------------------------------------------------------------

  private dispatchMethod(m: M.Method): void {
    const w = this.conn.writer;
    switch (m.id) {
      case M.BASIC_PUBLISH:
        return this.basicPublish(m);
      case M.BASIC_ACK:
        return this.basicAck(m.deliveryTag, m.multiple);
      case M.BASIC_NACK:
        return this.basicNack(m.deliveryTag, m.multiple, m.requeue);
      case M.BASIC_REJECT:
        return this.basicNack(m.deliveryTag, false, m.requeue);
      case M.BASIC_CONSUME:
        return this.basicConsume(m);
      case M.BASIC_CANCEL:
        return this.basicCancel(m.consumerTag, m.nowait);
      case M.BASIC_GET:
        return this.basicGet(m.queue, m.noAck);
      case M.BASIC_QOS:
        return this.basicQos(m);
      case M.BASIC_RECOVER:
      case M.BASIC_RECOVER_ASYNC:
        if (!m.requeue) throw new AmqpError(C.NOT_IMPLEMENTED, 'requeue=false');
        this.requeueAll();
        if (m.id === M.BASIC_RECOVER) M.encodeBasicRecoverOk(w, this.id);
        break;
      case M.EXCHANGE_DECLARE:
        if (!m.passive) this.authorizeExchangeDeclare(m);
        this.vhost.declareExchange(m.exchange, m.type, m.passive, m.durable, m.autoDelete, m.internal, m.arguments);
        if (!m.nowait) M.encodeExchangeDeclareOk(this.answerWriter(), this.id);
        break;
      case M.EXCHANGE_DELETE:
        // RabbitMQ refuses the default and amq.* exchanges before asking for permission.
        if (m.exchange !== '' && !isReservedName(m.exchange)) this.authorize('configure', 'exchange', m.exchange);
        this.vhost.deleteExchange(m.exchange, m.ifUnused);
        if (!m.nowait) M.encodeExchangeDeleteOk(this.answerWriter(), this.id);
        break;
      case M.EXCHANGE_BIND:
      case M.EXCHANGE_UNBIND:
        this.authorizeBinding('exchange', m.destination, m.source, m.routingKey);
        if (m.id === M.EXCHANGE_BIND) {
          this.vhost.bindExchange(m.destination, m.source, m.routingKey, m.arguments);
          if (!m.nowait) M.encodeExchangeBindOk(this.answerWriter(), this.id);
        } else {
          this.vhost.unbindExchange(m.destination, m.source, m.routingKey, m.arguments);
          if (!m.nowait) M.encodeExchangeUnbindOk(this.answerWriter(), this.id);
        }
        break;
      case M.QUEUE_DECLARE:
        return this.queueDeclare(m);
      case M.QUEUE_BIND: {
        const queue = this.queueName(m.queue);
        const key = this.routingKeyShortcut(m.queue, m.routingKey);
        this.authorizeBinding('queue', queue, m.exchange, key);
        this.vhost.bindQueue(queue, m.exchange, key, m.arguments, this.conn);
        if (!m.nowait) M.encodeQueueBindOk(this.answerWriter(), this.id);
        break;
      }
      case M.QUEUE_UNBIND: {
        const queue = this.queueName(m.queue);
        const key = this.routingKeyShortcut(m.queue, m.routingKey);
        this.authorizeBinding('queue', queue, m.exchange, key);
        this.vhost.unbindQueue(queue, m.exchange, key, m.arguments, this.conn);
        M.encodeQueueUnbindOk(this.answerWriter(), this.id);
        break;
      }
      case M.QUEUE_PURGE: {
        const queue = this.queueName(m.queue);
        this.authorize('read', 'queue', queue);
        const n = this.vhost.getQueue(queue, this.conn).purge();
        if (!m.nowait) M.encodeQueuePurgeOk(w, this.id, n);
        break;
      }
      case M.QUEUE_DELETE: {
        const queue = this.queueName(m.queue);
        this.authorize('configure', 'queue', queue);
        const n = this.vhost.deleteQueue(queue, m.ifUnused, m.ifEmpty, this.conn);
        if (!m.nowait) M.encodeQueueDeleteOk(this.answerWriter(), this.id, n);
        break;
      }
      case M.CONFIRM_SELECT:
        if (this.tx !== null) throw new AmqpError(C.PRECONDITION_FAILED, 'cannot switch from tx to confirm mode');
        this.ownConfirms().enabled = true;
        if (!m.nowait) M.encodeConfirmSelectOk(w, this.id);
        break;
      case M.TX_SELECT:
        if (this.confirms.enabled) throw new AmqpError(C.PRECONDITION_FAILED, 'cannot switch from confirm to tx mode');
        this.ownConfirms(); // tx.commit-oks wait for the disk there
        this.tx ??= new Transaction();
        M.encodeTxSelectOk(w, this.id);
        break;
      case M.TX_COMMIT:
        if (this.tx === null) throw new AmqpError(C.PRECONDITION_FAILED, 'channel is not transactional');
        this.commit();
        break;
      case M.TX_ROLLBACK:
        if (this.tx === null) throw new AmqpError(C.PRECONDITION_FAILED, 'channel is not transactional');
        this.tx.rollback(this);
        M.encodeTxRollbackOk(w, this.id);
        break;
      case M.CHANNEL_FLOW:
        // RabbitMQ 3.x has no client-driven flow control: pausing is refused, resuming is a no-op.
        if (!m.active) throw new AmqpError(C.NOT_IMPLEMENTED, 'active=false');
        M.encodeChannelFlowOk(w, this.id, true);
        break;
      case M.CHANNEL_FLOW_OK:
        return;
      case M.CHANNEL_OPEN:
        throw new AmqpError(C.CHANNEL_ERROR, `second 'channel.open' seen`);
      case M.ACCESS_REQUEST:
        M.encodeAccessRequestOk(w, this.id, 1);
        break;
      default:
        // Connection methods, server-only methods, an unasked-for close-ok: RabbitMQ's 503.
        throw new AmqpError(C.COMMAND_INVALID, 'unimplemented method');
    }
    this.conn.scheduleFlush();
  }

  /**
   * Where the answer to a definitions change is written: the connection's output, or (cluster
   * mode, while the followers lack some definitions change made so far: this one, or one it
   * relies on, such as the declare of a queue redeclared here) the channel's held answers.
   * Only definitions methods ask; on a single node nothing is ever pending (no gate), and
   * nothing is asked per message.
   */
  private answerWriter(): Writer {
    const s = this.conn.syncScheduler;
    if (s === null) return this.conn.writer;
    const epoch = s.definitionsPending;
    if (epoch === 0) return this.conn.writer;
    this.held = new HeldAnswers(this, s, epoch);
    return this.held.writer;
  }

  /**
   * The followers hold what the answer waited for: it goes out, then the frames held behind it
   * are handled in their order (one of them may hold the channel again: the rest wait anew).
   */
  answersReleased(h: HeldAnswers): void {
    if (this.held !== h) return;
    this.held = null;
    if (this.state !== 'open') return;
    try {
      for (const b of h.writer.take()) this.conn.writer.raw(b);
      this.conn.scheduleFlush();
      for (const f of h.input) {
        if (this.state !== 'open') break;
        if (f.kind === 'method') this.onMethod(f.method);
        else if (f.kind === 'header') this.onHeader(f.bytes, 0, f.bytes.length);
        else this.onBody(f.chunk);
      }
    } catch (err) {
      // Called from the store's release, not from a socket read: a bug closes this connection only.
      this.conn.connectionError(err);
    }
  }

  /** The channel's own confirms (the shared disabled one until now). */
  private ownConfirms(): PublisherConfirms {
    if (this.confirms === NO_CONFIRMS) this.confirms = new PublisherConfirms(this.conn, this.id, this.conn.syncScheduler);
    return this.confirms;
  }

  /** tx.commit-ok means on disk: it waits for the sync of whatever the commit wrote. */
  private commit(): void {
    this.confirms.committed(this.tx!.commit(this));
  }

  // ---- permissions -------------------------------------------------------------------

  /** RabbitMQ's channel forgets its permission cache when it hibernates, after ~1 s idle. */
  private noteActivity(): void {
    const now = coarseClock.now;
    if (now - this.lastMethodAt > IDLE_FORGET_MS) this.forgetPermissions();
    this.lastMethodAt = now;
  }

  private forgetPermissions(): void {
    this.checked.clear();
    this.topicChecked?.clear();
    this.publishExchange = null;
    this.hasTopicRules = null;
  }

  /** A permission check, answered from the channel's cache when it passed recently. */
  private authorize(permission: Permission, kind: ResourceKind, name: string): void {
    const key = `${permission}\0${kind}\0${name}`;
    if (this.checked.has(key)) return;
    this.conn.broker.permissions.check(this.conn.user, this.vhost.name, permission, kind, name);
    const out = this.checked.add(flatString(key));
    if (out !== undefined && out === `write\0exchange\0${this.publishExchange}`) this.publishExchange = null;
  }

  /** Topic permissions (on routing keys) apply to topic exchanges only. */
  private authorizeTopic(permission: 'write' | 'read', ex: Exchange, routingKey: string): void {
    if (ex.type !== 'topic') return;
    // Without topic permissions for the user in this vhost everything is allowed: most
    // channels then pay one field read per publish instead of building a cache key.
    this.hasTopicRules ??= this.conn.broker.permissions.listTopic({ vhost: this.vhost.name, user: this.conn.user.name }).length > 0;
    if (!this.hasTopicRules) return;
    const key = `${permission}\0${ex.name}\0${routingKey}`;
    const cache = (this.topicChecked ??= new CheckCache());
    if (cache.has(key)) return;
    this.conn.broker.permissions.checkTopic(this.conn.user, this.vhost.name, permission, ex.name, routingKey);
    cache.add(flatString(key));
  }

  private authorizePublish(exchange: string): void {
    this.authorize('write', 'exchange', exchange);
    this.publishExchange = exchange;
  }

  /**
   * RabbitMQ's order (exchange.declare, non-passive): the type and the default exchange
   * are refused first, then configure; a new exchange with an alternate-exchange also
   * needs read on itself and write on the alternate (checked after the amq.* name check).
   */
  private authorizeExchangeDeclare(m: M.ExchangeDeclare): void {
    if (!EXCHANGE_TYPES.includes(m.type) || m.exchange === '') return;
    this.authorize('configure', 'exchange', m.exchange);
    const ae = m.arguments['alternate-exchange'];
    if (typeof ae === 'string' && !this.vhost.exchanges.has(m.exchange) && !isReservedName(m.exchange)) {
      this.authorize('read', 'exchange', m.exchange);
      this.authorize('write', 'exchange', ae);
    }
  }

  /**
   * queue.bind/unbind and exchange.bind/unbind (RabbitMQ's binding_action): write on the
   * destination, read on the source, then a topic source's read permission on the key.
   * A default-exchange source or destination is refused before the read check.
   */
  private authorizeBinding(kind: ResourceKind, destination: string, source: string, routingKey: string): void {
    this.authorize('write', kind, destination);
    if (source === '' || (kind === 'exchange' && destination === '')) return;
    this.authorize('read', 'exchange', source);
    const ex = this.vhost.exchanges.get(source);
    if (ex !== undefined) this.authorizeTopic('read', ex, routingKey);
  }

  /**
   * queue.declare (non-passive): configure on the final name, server-generated `amq.gen-`
   * names included; a new queue with a dead-letter exchange also needs read on itself and
   * write on that exchange.
   */
  private authorizeQueueDeclare(args: M.QueueDeclare['arguments'], name: string, isNew: boolean): void {
    this.authorize('configure', 'queue', name);
    const dlx = args['x-dead-letter-exchange'];
    if (isNew && typeof dlx === 'string') {
      this.authorize('read', 'queue', name);
      this.authorize('write', 'exchange', dlx);
    }
  }

  /** An empty queue name means the queue this channel declared last. */
  private queueName(name: string): string {
    if (name !== '') return name;
    if (this.lastQueue === '') throw new AmqpError(C.NOT_FOUND, 'no previously declared queue');
    return this.lastQueue;
  }

  /** queue.bind with empty queue and key binds the last queue by its own name. */
  private routingKeyShortcut(queue: string, routingKey: string): string {
    return queue === '' && routingKey === '' ? this.lastQueue : routingKey;
  }

  private queueDeclare(m: M.QueueDeclare): void {
    let name = m.queue;
    if (m.passive && name === REPLY_TO_QUEUE) {
      if (!m.nowait) M.encodeQueueDeclareOk(this.conn.writer, this.id, name, 0, 0);
      return this.conn.scheduleFlush();
    }
    if (name === '' && m.passive) name = this.queueName('');
    // A passive declare checks no permission, as in RabbitMQ.
    const q = this.vhost.declareQueue(name, m.passive, m.durable, m.exclusive, m.autoDelete, m.arguments, this.conn, (n, isNew) =>
      this.authorizeQueueDeclare(m.arguments, n, isNew),
    );
    this.lastQueue = q.name;
    if (!m.nowait) M.encodeQueueDeclareOk(this.answerWriter(), this.id, q.name, q.messageCount, q.consumerCount);
    this.conn.scheduleFlush();
  }

  // ---- publishing --------------------------------------------------------------------

  private basicPublish(m: M.BasicPublish): void {
    if (m.immediate) throw new AmqpError(C.NOT_IMPLEMENTED, 'immediate=true');
    this.conn.publishing();
    if (this.content === IDLE_CONTENT) this.content = new ContentAssembler(this.conn.config.maxMessageSize);
    // Keep the previous strings when they are equal, so queued messages share them.
    this.content.start(m.exchange, m.routingKey, m.mandatory);
  }

  private publishComplete(): void {
    let msg = this.content.take();
    try {
      if (msg.exchange !== this.publishExchange) this.authorizePublish(msg.exchange);
      const ex = this.vhost.getExchange(msg.exchange);
      if (ex.internal) {
        throw new AmqpError(C.ACCESS_REFUSED, `cannot publish to internal exchange '${ex.name}' in vhost '${this.vhost.name}'`);
      }
      this.authorizeTopic('write', ex, msg.routingKey);
      // Only decode the properties when one we must check is there.
      if ((msg.rawProperties.readUInt16BE(0) & (M.FLAG_USER_ID | M.FLAG_REPLY_TO | M.FLAG_EXPIRATION)) !== 0) {
        const props = msg.properties;
        if (props.expiration !== undefined) {
          const bad = expirationError(props.expiration);
          if (bad !== null) throw new AmqpError(C.PRECONDITION_FAILED, `invalid expiration '${props.expiration}': ${bad}`);
        }
        if (props.userId !== undefined && props.userId !== this.conn.user.name) {
          throw new AmqpError(
            C.PRECONDITION_FAILED,
            `user_id property set to '${props.userId}' but authenticated user was '${this.conn.user.name}'`,
          );
        }
        if (props.replyTo === REPLY_TO_QUEUE) {
          if (this.replyConsumerTag === null) throw new AmqpError(C.PRECONDITION_FAILED, 'fast reply consumer does not exist');
          msg = withReplyAddress(msg, props, this.replyAddress);
        }
      }
      let extraKeys: string[] | null = null;
      if ((msg.rawProperties.readUInt16BE(0) & M.FLAG_HEADERS) !== 0) {
        const cc = senderSelected(msg);
        if (cc !== null) {
          extraKeys = cc.keys;
          msg = cc.message;
        }
      }
      if (this.tx !== null) this.tx.publish(ex, msg, this.content.mandatory, extraKeys);
      else this.route(ex, msg, this.content.mandatory, extraKeys);
    } catch (err) {
      if (err instanceof AmqpError) {
        err.classId = 60;
        err.methodId = 40;
      }
      this.fail(err);
    }
  }

  /**
   * Routes a message to its queues (also how a committed transaction publishes). Returns
   * the sync round its durable writes are part of, which its confirm waits for.
   */
  route(ex: Exchange, msg: Message, mandatory: boolean, extraKeys: string[] | null = null): number {
    const vhost = this.vhost;
    const confirms = this.confirms;
    if (confirms.enabled && msg.persistent && confirms.storeFailing) {
      confirms.refuseNow();
      return NO_SYNC;
    }
    this.counters.publish++;
    ex.publishIn++;
    const queues = this.routed;
    vhost.route(ex, msg, queues, extraKeys);
    if (queues.size === 0 && ex.name === '' && msg.routingKey.startsWith(REPLY_TO_PREFIX)) {
      const target = vhost.directReplies.get(msg.routingKey) as Channel | undefined;
      if (target !== undefined) {
        target.deliverReply(msg);
        confirms.published(NO_SYNC, false);
        return NO_SYNC;
      }
    }
    let refused = false;
    let epoch = NO_SYNC;
    if (queues.size === 0) {
      if (mandatory) this.counters.returnUnroutable++;
      else this.counters.dropUnroutable++;
      if (mandatory) {
        M.encodeBasicReturn(this.conn.writer, this.id, C.NO_ROUTE, 'NO_ROUTE', msg.exchange, msg.routingKey);
        this.writeContent(msg);
        this.conn.scheduleFlush();
      }
    } else {
      vhost.counters.routed++;
      ex.publishOut++;
      for (let i = 0; i < queues.size; i++) {
        const q = queues.at(i);
        // A queue that refuses the message (full, reject-publish) makes the confirm a nack.
        const r = q.enqueue(msg);
        if (r === REFUSED) refused = true;
        else if (r > epoch) epoch = r;
        if (q.overloaded) this.conn.flowPause(q);
      }
      queues.clear();
    }
    confirms.published(epoch, refused);
    return epoch;
  }

  // ---- consuming ---------------------------------------------------------------------

  private basicQos(m: M.BasicQos): void {
    if (m.prefetchSize !== 0) throw new AmqpError(C.NOT_IMPLEMENTED, `prefetch_size!=0 (${m.prefetchSize})`);
    if (m.global) this.prefetchGlobal = m.prefetchCount;
    else {
      this.prefetchConsumer = m.prefetchCount;
      // RabbitMQ applies this to consumers started afterwards only. We also apply it to the
      // channel's existing consumers: clients that do not see "RabbitMQ" as the product
      // (kombu, so celery) read the spec and raise the limit of a running consumer this way.
      for (const c of this.consumers.values()) c.prefetch = m.prefetchCount;
    }
    M.encodeBasicQosOk(this.conn.writer, this.id);
    this.conn.scheduleFlush();
    this.resumeDelivery();
  }

  private basicConsume(m: M.BasicConsume): void {
    if (m.queue === REPLY_TO_QUEUE) return this.consumeReplies(m);
    const queueName = this.queueName(m.queue);
    // RabbitMQ refuses a reused consumer tag before checking permissions.
    if (m.consumerTag !== '' && this.consumers.has(m.consumerTag)) {
      throw new AmqpError(C.NOT_ALLOWED, `attempt to reuse consumer tag '${m.consumerTag}'`);
    }
    this.authorize('read', 'queue', queueName);
    const q = this.vhost.getQueue(queueName, this.conn);
    // RabbitMQ checks the arguments before exclusivity.
    const qt = q.args['x-queue-type'];
    const parsed = parseConsumerArgs(m.arguments, {
      queue: q.name,
      vhost: this.vhost.name,
      queueType: qt === 'quorum' ? 'quorum' : 'classic',
    });
    if ('code' in parsed) throw toAmqpError(parsed);
    const tag = m.consumerTag === '' ? generateName('amq.ctag-') : m.consumerTag;
    if (this.consumers.has(tag)) throw new AmqpError(C.NOT_ALLOWED, `attempt to reuse consumer tag '${tag}'`);
    if (q.hasExclusiveConsumer || (m.exclusive && (q.consumerCount > 0 || q.settings.singleActiveConsumer))) {
      throw new AmqpError(C.ACCESS_REFUSED, `${describeQueue(q.name, this.vhost.name)} in exclusive use`);
    }
    const args = hasFields(m.arguments) ? m.arguments : NO_CONSUMER_ARGUMENTS;
    const c = new Consumer(tag, this, q, m.noAck, m.exclusive, this.prefetchConsumer, args, parsed.ok.priority);
    this.consumers.set(tag, c);
    // consume-ok must reach the client before the first delivery.
    if (!m.nowait) M.encodeBasicConsumeOk(this.conn.writer, this.id, tag);
    this.conn.scheduleFlush();
    q.addConsumer(c);
  }

  private consumeReplies(m: M.BasicConsume): void {
    if (!m.noAck) throw new AmqpError(C.PRECONDITION_FAILED, 'reply consumer cannot acknowledge');
    if (this.replyConsumerTag !== null) throw new AmqpError(C.PRECONDITION_FAILED, 'reply consumer already set');
    const tag = m.consumerTag === '' ? generateName('amq.ctag-') : m.consumerTag;
    if (this.consumers.has(tag)) throw new AmqpError(C.NOT_ALLOWED, `attempt to reuse consumer tag '${tag}'`);
    this.replyConsumerTag = tag;
    this.replyAddress = generateName(REPLY_TO_PREFIX);
    this.vhost.directReplies.set(this.replyAddress, this);
    if (!m.nowait) M.encodeBasicConsumeOk(this.conn.writer, this.id, tag);
    this.conn.scheduleFlush();
  }

  private stopReplies(): void {
    if (this.replyConsumerTag === null) return;
    this.vhost.directReplies.delete(this.replyAddress);
    this.replyConsumerTag = null;
  }

  /** A reply published to our direct reply-to address: straight to the client, no ack. */
  deliverReply(msg: Message): void {
    if (this.state !== 'open' || this.replyConsumerTag === null) return;
    M.encodeBasicDeliver(this.conn.writer, this.id, this.replyConsumerTag, ++this.deliveryTag, false, msg.exchange, msg.routingKey);
    this.writeContent(msg);
    this.conn.scheduleFlush();
  }

  private basicCancel(tag: string, nowait: boolean): void {
    if (tag === this.replyConsumerTag) this.stopReplies();
    const c = this.consumers.get(tag);
    if (c !== undefined) {
      this.consumers.delete(tag);
      c.queue.removeConsumer(c);
    }
    if (!nowait) M.encodeBasicCancelOk(this.conn.writer, this.id, tag);
    this.conn.scheduleFlush();
  }

  private basicGet(queueName: string, noAck: boolean): void {
    const name = this.queueName(queueName);
    this.authorize('read', 'queue', name);
    const q = this.vhost.getQueue(name, this.conn);
    const w = this.conn.writer;
    const entry = q.get(noAck);
    if (entry === undefined) {
      this.counters.getEmpty++;
      M.encodeBasicGetEmpty(w, this.id, '');
    } else {
      if (noAck) this.counters.getNoAck++;
      else this.counters.get++;
      if (entry.redelivered) this.counters.redeliver++;
      const tag = ++this.deliveryTag;
      if (!noAck) {
        entry.deliveryTag = tag;
        this.unacked.push(tag, entry);
        this.awaitAck(entry);
      }
      const msg = entry.message;
      M.encodeBasicGetOk(w, this.id, tag, entry.redelivered, msg.exchange, msg.routingKey, q.messageCount);
      this.writeContent(msg);
    }
    this.conn.scheduleFlush();
  }

  canDeliver(): boolean {
    return this.state === 'open' && (this.prefetchGlobal === 0 || this.consumerUnacked < this.prefetchGlobal) && this.conn.canWrite();
  }

  deliver(consumer: Consumer, entry: QueueEntry): void {
    const tag = ++this.deliveryTag;
    if (!consumer.noAck) {
      entry.deliveryTag = tag;
      this.unacked.push(tag, entry);
      this.awaitAck(entry);
      this.consumerUnacked++;
      this.counters.deliver++;
    } else this.counters.deliverNoAck++;
    if (entry.redelivered) this.counters.redeliver++;
    const msg = entry.message;
    if (msg.bodyPieces !== null) return this.deliverInPieces(consumer, tag, entry);
    const prefix = consumer.wirePrefix ?? (consumer.wirePrefix = deliverPrefix(this.id, consumer.tag));
    const conn = this.conn;
    conn.writer.delivery(
      prefix,
      tag,
      entry.redelivered,
      msg.route,
      msg.exchange,
      msg.routingKey,
      msg.rawProperties,
      msg.body,
      conn.frameMax - C.FRAME_OVERHEAD,
      this.id,
    );
    conn.scheduleFlush();
  }

  /**
   * Stamps a delivery with the (coarse) time for the consumer timeout. One timer per
   * channel, set for the oldest delivery's deadline: deliveries are in tag order, so the
   * oldest unacked one is the first in `unacked`.
   */
  private awaitAck(entry: QueueEntry): void {
    entry.deliveredAt = coarseClock.now;
    if (this.ackTimer === null && this.ackTimeout > 0) this.armAckTimer(this.ackTimeout);
  }

  private armAckTimer(ms: number): void {
    this.ackTimer = setTimeout((this.ackTimeoutCheck ??= () => this.checkAckTimeout()), ms);
    this.ackTimer.unref();
  }

  /** As RabbitMQ: a delivery left unacked past consumer_timeout closes the channel (406), which requeues it. */
  private checkAckTimeout(): void {
    this.ackTimer = null;
    if (this.state !== 'open') return;
    const oldest = this.unacked.oldest();
    if (oldest === undefined) return;
    const left = oldest.deliveredAt + this.ackTimeout - Date.now();
    if (left > 0) return this.armAckTimer(left);
    const t = this.ackTimeout;
    this.closeWithError(
      new AmqpError(
        C.PRECONDITION_FAILED,
        `delivery acknowledgement on channel ${this.id} timed out. Timeout value used: ${t} ms. This timeout value can be configured, see consumers doc guide to learn more`,
      ),
    );
  }

  /** A large body kept in the pieces it arrived in goes out piece by piece, never joined. */
  private deliverInPieces(consumer: Consumer, tag: number, entry: QueueEntry): void {
    const msg = entry.message;
    M.encodeBasicDeliver(this.conn.writer, this.id, consumer.tag, tag, entry.redelivered, msg.exchange, msg.routingKey);
    this.writeContent(msg);
    this.conn.scheduleFlush();
  }

  private writeContent(msg: Message): void {
    const w = this.conn.writer;
    w.beginFrame(C.FRAME_HEADER, this.id);
    w.u32(60 << 16); // class basic, weight 0
    w.u64(msg.bodySize);
    const props = msg.rawProperties;
    w.ensure(props.length);
    props.copy(w.buf, w.pos);
    w.pos += props.length;
    w.endFrame();
    writeBodyFrames(w, this.id, msg, this.conn.frameMax - C.FRAME_OVERHEAD);
  }

  consumerCancelled(consumer: Consumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    if (this.state === 'open' && this.conn.clientCapabilities.consumer_cancel_notify === true) {
      M.encodeBasicCancel(this.conn.writer, this.id, consumer.tag, true);
      this.conn.scheduleFlush();
    }
  }

  /** Gives every queue this channel consumes from a chance to deliver again. */
  resumeDelivery(): void {
    for (const c of this.consumers.values()) c.queue.dispatch();
  }

  // ---- settling ----------------------------------------------------------------------

  private basicAck(tag: number, multiple: boolean): void {
    if (this.tx !== null) return this.tx.settle(this.takeDeliveries(tag, multiple), false, false);
    // The common case settles straight from the log, with no list in between.
    const unacked = this.unacked;
    let e: QueueEntry | undefined;
    let n = 0;
    if (!multiple) {
      e = unacked.take(tag);
      if (e === undefined) throw unknownTag(tag);
      this.ackOne(e);
      n = 1;
    } else {
      if (tag !== 0 && !unacked.has(tag)) throw unknownTag(tag);
      while ((e = unacked.takeOldest(tag)) !== undefined) {
        this.ackOne(e);
        n++;
      }
    }
    this.counters.ack += n;
    this.resumeDelivery();
  }

  private ackOne(e: QueueEntry): void {
    if (e.consumer !== null) this.consumerUnacked--;
    e.queue.settle(e, false);
  }

  private basicNack(tag: number, multiple: boolean, requeue: boolean): void {
    const entries = this.takeDeliveries(tag, multiple);
    if (this.tx !== null) return this.tx.settle(entries, true, requeue);
    this.settle(entries, true, requeue);
  }

  /** Removes and returns the deliveries a tag names; 406 for a tag we never gave out. */
  private takeDeliveries(tag: number, multiple: boolean): QueueEntry[] {
    // As RabbitMQ: the tag itself must be outstanding, even with multiple (0 = everything).
    if (!(multiple && tag === 0) && !this.unacked.has(tag)) throw unknownTag(tag);
    if (!multiple) return [this.unacked.take(tag)!];
    const out: QueueEntry[] = [];
    let e: QueueEntry | undefined;
    while ((e = this.unacked.takeOldest(tag)) !== undefined) out.push(e);
    return out;
  }

  /** A rolled-back transaction hands its acks back: they are outstanding again. */
  restoreDeliveries(entries: QueueEntry[]): void {
    if (entries.length === 0) return;
    const all = [...entries, ...this.unacked.drain()].sort((a, b) => a.deliveryTag - b.deliveryTag);
    for (const e of all) this.unacked.push(e.deliveryTag, e);
    // They are timed from their delivery, as before the transaction took them.
    if (this.ackTimer === null && this.ackTimeout > 0 && this.state === 'open') this.armAckTimer(0);
  }

  /** Acks (reject=false) or rejects deliveries already taken out of the unacked map. */
  settle(entries: QueueEntry[], reject: boolean, requeue: boolean): void {
    if (entries.length === 0) return;
    if (reject && requeue) {
      this.requeueEntries(entries);
    } else {
      if (!reject) this.counters.ack += entries.length;
      for (const e of entries) {
        if (e.consumer !== null) this.consumerUnacked--;
        e.queue.settle(e, reject);
      }
    }
    this.resumeDelivery();
  }

  private requeueAll(): void {
    this.requeueEntries(this.unacked.drain());
  }

  /** Puts deliveries back into their queues, grouped so each queue sorts its own once. */
  private requeueEntries(entries: QueueEntry[]): void {
    if (entries.length === 0) return;
    const byQueue = new Map<Queue, QueueEntry[]>();
    for (const e of entries) {
      if (e.consumer !== null) this.consumerUnacked--;
      let list = byQueue.get(e.queue);
      if (list === undefined) byQueue.set(e.queue, (list = []));
      list.push(e);
    }
    for (const [q, list] of byQueue) q.requeue(list);
  }

  // ---- for the management API ---------------------------------------------------------

  /** basic.qos prefetch for new consumers (global=false). */
  get prefetchCount(): number {
    return this.prefetchConsumer;
  }

  /** basic.qos prefetch shared by the channel's consumers (global=true). */
  get globalPrefetchCount(): number {
    return this.prefetchGlobal;
  }

  get transactional(): boolean {
    return this.tx !== null;
  }

  get uncommittedPublishes(): number {
    return this.tx === null ? 0 : this.tx.uncommittedPublishes;
  }

  get uncommittedAcks(): number {
    return this.tx === null ? 0 : this.tx.uncommittedAcks;
  }

  /** When the client last sent a method (ms since the epoch, to ~100 ms). */
  get lastActivityAt(): number {
    return this.lastMethodAt;
  }

  /** The channel's counts, with the confirms sent so far. */
  countersNow(): ChannelCounters {
    this.counters.confirm = this.confirms.confirmCount;
    return this.counters;
  }

  // ---- closing -----------------------------------------------------------------------

  /** A channel exception: tell the client and drop everything until close-ok. */
  closeWithError(err: AmqpError): void {
    if (this.state !== 'open') return;
    const methodId = (err.classId << 16) | err.methodId;
    this.conn.log.warn(
      {
        conn: this.conn.name,
        channel: this.id,
        user: this.conn.user.name,
        vhost: this.vhost.name,
        code: err.code,
        reason: err.message,
        method: M.METHOD_NAMES[methodId] ?? (methodId === 0 ? undefined : methodId),
      },
      'channel closed by the server',
    );
    this.teardown();
    this.state = 'closing';
    this.content.reset();
    M.encodeChannelClose(this.conn.writer, this.id, err.code, replyText(err.message), err.classId, err.methodId);
    this.conn.scheduleFlush();
  }

  /**
   * Releases what the channel holds: unacked deliveries go back to their queues in their
   * original order, consumers are removed (which may auto-delete a queue). Idempotent.
   */
  teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed'; // no deliveries to us while we give messages back
    if (this.ackTimer !== null) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.vhost.retireChannel(this.countersNow());
    if (this.held !== null) this.held.drop();
    this.held = null;
    this.tx?.rollback(this);
    if (this.confirms !== NO_CONFIRMS) this.confirms.close();
    this.stopReplies();
    this.requeueAll();
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    for (const c of consumers) c.queue.removeConsumer(c);
  }
}

/** 406 for a delivery tag the channel never gave out (or that was settled already), as RabbitMQ words it. */
function unknownTag(tag: number): AmqpError {
  return new AmqpError(C.PRECONDITION_FAILED, `unknown delivery tag ${tag}`);
}

/**
 * What an idle channel shares with every other instead of owning: most channels never
 * publish or select confirms, and each of these
 * would otherwise cost a few hundred bytes per channel for its whole life. The shared ones
 * are only ever read (a disabled confirms, an idle assembler); a channel
 * makes its own before the first write.
 */
const NO_CONFIRMS = new PublisherConfirms(
  {
    get writer(): never {
      throw new Error('NO_CONFIRMS writes nothing');
    },
    scheduleFlush() {},
    confirmsDue() {},
  },
  0,
  null,
);
const IDLE_CONTENT = new ContentAssembler(0);
/** The arguments of every consumer started without any (frozen: shared). */
const NO_CONSUMER_ARGUMENTS: M.BasicConsume['arguments'] = Object.freeze({});

function hasFields(t: object): boolean {
  for (const _ in t) return true;
  return false;
}
