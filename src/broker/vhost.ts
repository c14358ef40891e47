import { AmqpError } from '../protocol/errors';
import { QueueTargets } from './queue-targets';
import { ACCESS_REFUSED, INTERNAL_ERROR, NOT_FOUND, PRECONDITION_FAILED } from '../protocol/constants';
import type { FieldTable } from '../protocol/types';
import type { Binding, BindingDestination, Exchange } from './exchanges/exchange';
import { createExchange } from './exchanges';
import { Queue, type QueueOwner } from './queue';
import type { Message } from './message';
import { deadLetteredMessage, diedIn, publishedRoutingKeys, type DeathReason } from './dead-letter';
import { queueSettings } from './queue-settings';
import { PolicySet, type Policy } from './policies';
import { PriorityQueueStore } from './priority-queue-store';
import { MEMORY_STORAGE } from './memory-queue-store';
import type { DefinitionsSink, QueueStore } from './storage';
import type { QueueEntry } from './queue-entry';
import type { Logger } from '../logger';
import { generateName, isReservedName, describeExchange, describeQueue } from './names';
import { ChannelCounters } from './channel-counters';
import { NodeCounters } from './node-counters';
import {
  checkBindingArguments,
  checkBindingEnds,
  checkExchangeDeclaration,
  checkQueueDeclaration,
  checkQueueName,
  lockedAgainst,
  lockedError,
  withDefaultQueueType,
} from './declaration-checks';
import { RouteTargets } from './exchanges/route-targets';

/** Messages routed to at least one queue (publishes and unroutables are in the channels' counts). */
export interface VhostCounters {
  routed: number;
}

/** How long an auto-delete queue whose deletion could not be stored waits to try again. */
const AUTO_DELETE_RETRY_MS = 1000;

/**
 * A durable change that could not be stored. RabbitMQ answers a failure inside an
 * operation (its Mnesia write, a plugin's callback) with 541 INTERNAL_ERROR, which closes
 * the connection; its disk alarm blocks only publishers, never declarations.
 */
function storageError(err: unknown, what: string): AmqpError {
  if (err instanceof AmqpError) return err;
  // The store wraps what the file system said; the client is told the errno (ENOSPC, EIO).
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  const reason = (cause as NodeJS.ErrnoException)?.code ?? (cause instanceof Error ? cause.message : String(cause));
  return new AmqpError(INTERNAL_ERROR, `cannot store ${what}: ${reason}`);
}

const PREDECLARED: Array<[string, string]> = [
  ['', 'direct'],
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
];

/**
 * A virtual host: its exchanges, queues and bindings, and the rules RabbitMQ applies when
 * they are declared, bound and deleted. Errors are thrown as AmqpError with RabbitMQ's
 * reply codes and texts; `owner` is the connection asking (for exclusive queues).
 */
export class Vhost implements QueueOwner {
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  readonly counters: VhostCounters = { routed: 0 };
  /** The counts of this vhost's closed channels and of HTTP publishes and gets (live channels are added when stats are read). */
  readonly retiredChannels = new ChannelCounters();
  private readonly scratch = new RouteTargets();
  /** direct reply-to addresses → the channel consuming them (opaque to the model) */
  readonly directReplies = new Map<string, object>();
  readonly policies = new PolicySet();
  /** Where the vhost reports things an operator should know (set by the broker). */
  notice: ((text: string) => void) | null = null;
  /** Where storage failures the model survives are logged (set by the broker). */
  logger: Logger | null = null;
  /** RabbitMQ's vhost metadata (set over the management API). */
  description = '';
  tags: string[] = [];
  /** the queue type a declaration without x-queue-type gets; null: not set */
  defaultQueueType: string | null = null;
  /** Deleted: nothing more is declared or stored in it (its connections are being closed). */
  deleted = false;
  /** RabbitMQ's max-queues vhost limit (set by the broker); -1: none. */
  maxQueues = -1;

  constructor(
    readonly name: string,
    /** where durable definitions and durable queues' messages go; null keeps all in memory */
    private readonly sink: DefinitionsSink | null = null,
    /** the node's churn counts (the broker shares one among its vhosts) */
    readonly nodeCounters: NodeCounters = new NodeCounters(),
  ) {
    for (const [n, type] of PREDECLARED) this.exchanges.set(n, createExchange(type, n, true, false, false, {})!);
  }

  // ---- exchanges -------------------------------------------------------------------

  getExchange(name: string): Exchange {
    const ex = this.exchanges.get(name);
    if (ex === undefined) throw new AmqpError(NOT_FOUND, `no ${describeExchange(name, this.name)}`);
    return ex;
  }

  declareExchange(
    name: string,
    type: string,
    passive: boolean,
    durable: boolean,
    autoDelete: boolean,
    internal: boolean,
    args: FieldTable,
  ): Exchange {
    if (passive) {
      if (name === '') return this.exchanges.get('')!;
      return this.getExchange(name);
    }
    const existing = this.exchanges.get(name);
    checkExchangeDeclaration(this.name, name, { type, durable, autoDelete, internal, args }, existing);
    if (existing !== undefined) return existing;
    const ex = createExchange(type, name, durable, autoDelete, internal, args)!;
    this.applyExchangePolicy(ex);
    if (durable) this.persist(`the declaration of ${describeExchange(name, this.name)}`, (sink) => sink.exchangeDeclared(this.name, ex));
    this.exchanges.set(name, ex);
    return ex;
  }

  deleteExchange(name: string, ifUnused: boolean): void {
    if (name === '') throw new AmqpError(ACCESS_REFUSED, 'operation not permitted on the default exchange');
    if (isReservedName(name)) {
      throw new AmqpError(ACCESS_REFUSED, `deletion of system ${describeExchange(name, this.name)} not allowed`);
    }
    const ex = this.exchanges.get(name);
    if (ex === undefined) return; // deleting what is not there succeeds, as in RabbitMQ 3.x
    if (ifUnused && ex.bindingCount > 0) {
      throw new AmqpError(PRECONDITION_FAILED, `${describeExchange(name, this.name)} in use`);
    }
    this.removeExchange(ex);
  }

  private removeExchange(ex: Exchange): void {
    if (ex.durable)
      this.persist(`the deletion of ${describeExchange(ex.name, this.name)}`, (sink) => sink.exchangeDeleted(this.name, ex.name));
    this.exchanges.delete(ex.name);
    for (const other of this.exchanges.values()) this.unbindAndMaybeAutoDelete(other, ex);
  }

  bindExchange(destination: string, source: string, routingKey: string, args: FieldTable): void {
    const [src, dst] = this.bindingEnds(source, this.exchanges.get(destination), 'exchange', destination, false);
    checkBindingArguments(src, args);
    this.addBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  unbindExchange(destination: string, source: string, routingKey: string, args: FieldTable): void {
    const [src, dst] = this.bindingEnds(source, this.exchanges.get(destination), 'exchange', destination, false);
    this.removeBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  /*
   * Bindings are the one change applied before it is stored: only bind/unbind can tell
   * whether the binding is new (or was there), so a failed write undoes it at once, in the
   * same synchronous call, before anything can route through it or see it.
   */

  private addBinding(src: Exchange, b: Binding): void {
    if (!src.bind(b) || !this.isDurableBinding(src, b)) return;
    try {
      this.persist(`a binding of ${describeExchange(src.name, this.name)}`, (sink) => sink.bindingChanged(this.name, b, true));
    } catch (err) {
      src.unbind(b);
      throw err;
    }
  }

  private removeBinding(src: Exchange, b: Binding): void {
    if (!src.unbind(b)) return;
    if (this.isDurableBinding(src, b)) {
      try {
        this.persist(`an unbinding of ${describeExchange(src.name, this.name)}`, (sink) => sink.bindingChanged(this.name, b, false));
      } catch (err) {
        src.bind(b);
        throw err;
      }
    }
    this.autoDeleteIfUnbound(src);
  }

  /** A binding survives a restart when both its ends do. */
  private isDurableBinding(src: Exchange, b: Binding): boolean {
    const d = b.destination as Queue | Exchange;
    return src.durable && d.durable && !(d.kind === 'queue' && d.exclusiveOwner !== null);
  }

  // ---- queues ----------------------------------------------------------------------

  /** A queue this connection may use: 404 if missing, 405 if another connection's exclusive queue. */
  getQueue(name: string, owner: object): Queue {
    const q = this.queues.get(name);
    if (q === undefined) throw new AmqpError(NOT_FOUND, `no ${describeQueue(name, this.name)}`);
    this.checkExclusive(q, owner);
    return q;
  }

  private checkExclusive(q: Queue, owner: object): void {
    if (lockedAgainst(q, owner)) throw lockedError(describeQueue(q.name, this.name));
  }

  declareQueue(
    name: string,
    passive: boolean,
    durable: boolean,
    exclusive: boolean,
    autoDelete: boolean,
    args: FieldTable,
    owner: object,
    /**
     * Called once the queue's name is settled (a server-generated one too) and before the
     * declaration is compared or carried out: where RabbitMQ checks permissions.
     */
    authorize?: (name: string, isNew: boolean) => void,
  ): Queue {
    if (passive) {
      const q = this.getQueue(name, owner);
      q.touch(); // a passive declare counts as use for x-expires, as in RabbitMQ
      return q;
    }
    const serverNamed = name === '';
    if (serverNamed) name = generateName('amq.gen-');
    else checkQueueName(name);
    // Here quorum means a durable classic queue, with the same notice as an explicit quorum declaration.
    args = withDefaultQueueType(this.defaultQueueType, args, durable, exclusive);
    const existing = this.queues.get(name);
    authorize?.(name, existing === undefined);
    if (existing === undefined && this.maxQueues >= 0 && this.queues.size >= this.maxQueues) {
      throw new AmqpError(
        PRECONDITION_FAILED,
        `cannot declare queue '${name}': queue limit in vhost '${this.name}' (${this.maxQueues}) is reached`,
      );
    }
    const parsed = checkQueueDeclaration(
      this.name,
      name,
      { durable, autoDelete, args, exclusiveOwner: exclusive ? owner : null, serverNamed },
      existing,
    );
    if (existing !== undefined) {
      existing.touch();
      this.nodeCounters.queuesDeclared++;
      return existing;
    }
    if (parsed!.queueType === 'quorum')
      this.notice?.(`queue '${name}' in vhost '${this.name}' declared as a quorum queue: Leveret keeps it as a durable classic queue`);
    // Exclusive queues end with their connection, so even a durable one is not stored.
    const stored = durable && !exclusive;
    const settings = queueSettings(args, this.policies.match('queue', name)?.definition ?? null);
    const what = `the declaration of ${describeQueue(name, this.name)}`;
    const make = (): Queue =>
      new Queue(
        name,
        durable,
        exclusive ? owner : null,
        autoDelete,
        args,
        this,
        settings,
        this.makeStore(name, stored, settings.maxPriority),
      );
    // A stored queue's log makes its folder: a disk that refuses is a storage failure too.
    const q = stored ? this.storing(what, make) : make();
    if (stored) {
      try {
        this.persist(what, (sink) => sink.queueDeclared(this.name, name, autoDelete, args));
      } catch (err) {
        this.discard(q);
        throw err;
      }
    }
    this.queues.set(name, q);
    this.nodeCounters.queuesDeclared++;
    this.nodeCounters.queuesCreated++;
    return q;
  }

  /** A queue made for a declaration that could not be stored: its timers and folder go. */
  private discard(q: Queue): void {
    q.destroy();
    this.sink?.queueDestroyed(this.name, q.name);
  }

  /**
   * Recreates a stored durable queue at start-up. Unlike declareQueue it accepts the
   * server-generated `amq.gen-` names that a client may not declare itself.
   */
  restoreQueue(name: string, autoDelete: boolean, args: FieldTable): Queue {
    const existing = this.queues.get(name);
    if (existing !== undefined) return existing;
    const settings = queueSettings(args, this.policies.match('queue', name)?.definition ?? null);
    const q = new Queue(name, true, null, autoDelete, args, this, settings, this.makeStore(name, true, settings.maxPriority));
    this.queues.set(name, q);
    return q;
  }

  private makeStore(name: string, durable: boolean, maxPriority: number | null): QueueStore<QueueEntry> {
    const storage = this.sink?.queueStorage(this.name, name, durable) ?? MEMORY_STORAGE;
    return maxPriority === null ? storage.open<QueueEntry>(null) : new PriorityQueueStore(maxPriority, storage);
  }

  /** Returns the number of ready messages the queue held. */
  deleteQueue(name: string, ifUnused: boolean, ifEmpty: boolean, owner: object): number {
    const q = this.queues.get(name);
    if (q === undefined) return 0; // idempotent, as in RabbitMQ 3.x
    this.checkExclusive(q, owner);
    if (ifUnused && q.consumerCount > 0) {
      throw new AmqpError(PRECONDITION_FAILED, `${describeQueue(name, this.name)} in use`);
    }
    if (ifEmpty && q.messageCount > 0) {
      throw new AmqpError(PRECONDITION_FAILED, `${describeQueue(name, this.name)} not empty`);
    }
    return this.removeQueue(q);
  }

  private removeQueue(q: Queue): number {
    if (q.deleted) return 0;
    const stored = q.durable && q.exclusiveOwner === null;
    if (stored) this.persist(`the deletion of ${describeQueue(q.name, this.name)}`, (sink) => sink.queueDeleted(this.name, q.name));
    this.queues.delete(q.name);
    this.nodeCounters.queuesDeleted++;
    for (const ex of this.exchanges.values()) this.unbindAndMaybeAutoDelete(ex, q);
    const dropped = q.destroy();
    // Gone from the definitions now, so the folder is an orphan: it goes (priority levels' parent too).
    if (stored) this.sink?.queueDestroyed(this.name, q.name);
    return dropped;
  }

  /**
   * A deletion nobody asked for (auto-delete, x-expires): if it cannot be stored the queue
   * stays, in memory as on disk, and the caller tries again later. Returns whether it went.
   */
  private removeQueueQuietly(q: Queue, why: string): boolean {
    try {
      this.removeQueue(q);
      return true;
    } catch (err) {
      this.storageFault(
        err,
        { queue: q.name },
        `${why} queue could not be deleted (the deletion could not be stored); kept, will try again`,
      );
      return false;
    }
  }

  queueUnused(queue: Queue): void {
    if (this.removeQueueQuietly(queue, 'auto-delete')) return;
    const retry = setTimeout(() => {
      if (!queue.deleted && queue.consumerCount === 0 && this.queues.get(queue.name) === queue) this.queueUnused(queue);
    }, AUTO_DELETE_RETRY_MS);
    retry.unref();
  }

  /** The connection went away: its exclusive queues go with it. */
  ownerClosed(owner: object): void {
    for (const q of [...this.queues.values()]) if (q.exclusiveOwner === owner) this.removeQueue(q);
  }

  bindQueue(queue: string, exchange: string, routingKey: string, args: FieldTable, owner: object): void {
    const q = this.queues.get(queue);
    const [src, dst] = this.bindingEnds(exchange, q, 'queue', queue, q !== undefined && lockedAgainst(q, owner));
    checkBindingArguments(src, args);
    this.addBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  unbindQueue(queue: string, exchange: string, routingKey: string, args: FieldTable, owner: object): void {
    const q = this.queues.get(queue);
    const [src, dst] = this.bindingEnds(exchange, q, 'queue', queue, q !== undefined && lockedAgainst(q, owner));
    this.removeBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  /** `locked`: the destination is a queue the connection asking may not use. */
  private bindingEnds(
    source: string,
    dest: BindingDestination | undefined,
    kind: 'queue' | 'exchange',
    destName: string,
    locked: boolean,
  ): [Exchange, BindingDestination] {
    const src = this.exchanges.get(source);
    checkBindingEnds(this.name, source, src, kind, destName, dest as Queue | Exchange | undefined, locked);
    return [src!, dest!];
  }

  private unbindAndMaybeAutoDelete(ex: Exchange, dest: BindingDestination): void {
    const before = ex.bindingCount;
    ex.unbindDestination(dest);
    if (ex.bindingCount < before) this.autoDeleteIfUnbound(ex);
  }

  /**
   * An auto-delete exchange whose deletion cannot be stored stays, unbound, in memory as
   * on disk (replaying the deletion that emptied it drops its bindings there too).
   */
  private autoDeleteIfUnbound(ex: Exchange): void {
    if (!ex.autoDelete || ex.bindingCount !== 0 || this.exchanges.get(ex.name) !== ex) return;
    try {
      this.removeExchange(ex);
    } catch (err) {
      this.storageFault(err, { exchange: ex.name }, 'auto-delete exchange could not be deleted (the deletion could not be stored); kept');
    }
  }

  // ---- routing -----------------------------------------------------------------------

  /**
   * Adds to `out` every queue a message reaches from `ex` with its routing key (and any
   * `extraKeys`, from CC/BCC headers), following exchange-to-exchange bindings and
   * alternate exchanges; each exchange is visited once per key, so cycles end.
   */
  route(ex: Exchange, msg: Message, out: QueueTargets, extraKeys: string[] | null = null): void {
    this.routeKey(ex, msg, msg.routingKey, out);
    if (extraKeys !== null) for (const k of extraKeys) this.routeKey(ex, msg, k, out);
    // Fanout to durable queues lets the store keep the body once (a single queue costs nothing here).
    if (out.size > 1) msg.durableTargets = countDurable(out);
  }

  private routeKey(ex: Exchange, msg: Message, key: string, out: QueueTargets): void {
    if (ex.name === '') {
      const q = this.queues.get(key);
      if (q !== undefined) out.add(q);
      return;
    }
    // Exchanges may name a destination more than once; `out` (and `visited`) keep each once.
    const dests = this.scratch;
    dests.clear();
    ex.route(key, ex.type === 'headers' ? msg.headers : undefined, dests);
    let nested: Exchange[] | null = null;
    for (let i = 0; i < dests.count; i++) {
      const d = dests.at(i);
      if (d.kind === 'queue') out.add(d as Queue);
      else (nested ??= []).push(d as Exchange);
    }
    const routedNothing = dests.count === 0;
    dests.clear();
    if (routedNothing && ex.alternateExchange !== null) (nested ??= []).push(...this.alternateOf(ex));
    if (nested === null) return;
    const visited = new Set<Exchange>([ex]);
    while (nested.length > 0) {
      const next = nested.pop()!;
      if (visited.has(next)) continue;
      visited.add(next);
      next.route(key, next.type === 'headers' ? msg.headers : undefined, dests);
      if (dests.count === 0 && next.alternateExchange !== null) nested.push(...this.alternateOf(next));
      for (let i = 0; i < dests.count; i++) {
        const d = dests.at(i);
        if (d.kind === 'queue') out.add(d as Queue);
        else if (!visited.has(d as Exchange)) nested.push(d as Exchange);
      }
      dests.clear();
    }
  }

  private alternateOf(ex: Exchange): Exchange[] {
    const alt = this.exchanges.get(ex.alternateExchange!);
    return alt === undefined ? [] : [alt];
  }

  // ---- policies --------------------------------------------------------------------

  /** Adds or replaces a policy and applies it to existing queues and exchanges. */
  setPolicy(p: Policy): void {
    this.persist(`policy '${p.name}' in vhost '${this.name}'`, (sink) => sink.policyChanged(this.name, p, true));
    this.policies.set(p);
    this.reapplyPolicies();
  }

  /** Returns false if there was no such policy. */
  deletePolicy(name: string): boolean {
    const p = this.policies.get(name);
    if (p === undefined) return false;
    this.persist(`the deletion of policy '${name}' in vhost '${this.name}'`, (sink) => sink.policyChanged(this.name, p, false));
    this.policies.delete(name);
    this.reapplyPolicies();
    return true;
  }

  private reapplyPolicies(): void {
    for (const q of this.queues.values()) q.applySettings(queueSettings(q.args, this.policies.match('queue', q.name)?.definition ?? null));
    for (const ex of this.exchanges.values()) this.applyExchangePolicy(ex);
  }

  /** The exchange's own alternate-exchange argument wins over a policy's. */
  private applyExchangePolicy(ex: Exchange): void {
    if (ex.name === '') return;
    const own = ex.args['alternate-exchange'];
    const fromPolicy = this.policies.match('exchange', ex.name)?.definition['alternate-exchange'];
    ex.alternateExchange = typeof own === 'string' ? own : typeof fromPolicy === 'string' ? fromPolicy : null;
  }

  // ---- dead-lettering ------------------------------------------------------------------

  /** Republishes a message that died in `queue` to the queue's dead-letter exchange. */
  deadLetter(queue: Queue, message: Message, reason: DeathReason): void {
    const s = queue.settings;
    const ex = s.deadLetterExchange === null ? undefined : this.exchanges.get(s.deadLetterExchange);
    if (ex === undefined) return; // RabbitMQ drops the message when the DLX does not exist
    const copy = deadLetteredMessage(message, queue.name, reason, ex.name, s.deadLetterRoutingKey);
    const out = new QueueTargets();
    if (s.deadLetterRoutingKey !== null) this.route(ex, copy, out);
    else {
      // All the keys it was published with, BCC ones too (x-death lists only key and CC).
      for (const k of publishedRoutingKeys(message)) this.routeKey(ex, copy, k, out);
      if (message.bccKeys !== null) for (const k of message.bccKeys) this.routeKey(ex, copy, k, out);
    }
    for (const q of out) if (!diedIn(copy, q.name)) this.enqueueDeadLettered(q, copy, queue);
  }

  /**
   * Dead-lettering runs on timers (TTL) and acks, not on behalf of a client that could be
   * told: a store that refuses the copy costs this copy (classic queues dead-letter at
   * most once, as in RabbitMQ), never the process.
   */
  private enqueueDeadLettered(target: Queue, copy: Message, from: Queue): void {
    try {
      target.enqueue(copy);
    } catch (err) {
      this.storageFault(err, { queue: target.name, from: from.name }, 'dead-lettered message could not be stored; dropped');
    }
  }

  /** x-expires: a queue whose deletion cannot be stored is kept and expires again later. */
  queueExpired(queue: Queue): void {
    if (!this.removeQueueQuietly(queue, 'expired')) queue.touch();
  }

  // ---- deletion ------------------------------------------------------------------------

  /**
   * The vhost was deleted (its deletion is already stored, covering everything in it): its
   * queues drop their messages and their folders go; nothing is stored one by one.
   */
  destroy(): void {
    this.deleted = true;
    for (const q of [...this.queues.values()]) {
      const stored = q.durable && q.exclusiveOwner === null;
      this.queues.delete(q.name);
      this.nodeCounters.queuesDeleted++;
      q.destroy();
      if (stored) this.sink?.queueDestroyed(this.name, q.name);
    }
    for (const ex of this.exchanges.values()) for (const other of this.exchanges.values()) other.unbindDestination(ex);
    this.exchanges.clear();
    for (const p of this.policies.all) this.policies.delete(p.name);
    this.directReplies.clear();
  }

  /** A channel closed: its counts stay in the vhost's totals. */
  retireChannel(counters: ChannelCounters): void {
    this.retiredChannels.add(counters);
    this.nodeCounters.channelsClosed++;
  }

  // ---- storage -------------------------------------------------------------------------

  /**
   * Runs a durable write before the model changes: if the store refuses it the client gets
   * 541 INTERNAL_ERROR and nothing changed. Without a store there is nothing to write.
   */
  private persist(what: string, write: (sink: DefinitionsSink) => void): void {
    // Its deletion is stored: a late declaration on a closing connection must not bring it back.
    if (this.deleted) throw new AmqpError(NOT_FOUND, `vhost '${this.name}' is deleted`);
    const sink = this.sink;
    if (sink !== null) this.storing(what, () => write(sink));
  }

  /** Runs something that touches the disk; what it throws is a storage failure (541). */
  private storing<T>(what: string, run: () => T): T {
    try {
      return run();
    } catch (err) {
      throw storageError(err, what);
    }
  }

  private storageFault(err: unknown, where: Record<string, string>, text: string): void {
    this.logger?.error({ err, vhost: this.name, ...where }, text);
  }
}

/** How many of the queues are stored (durable, not exclusive: their stores write persistent messages down). */
function countDurable(queues: QueueTargets): number {
  let n = 0;
  for (let i = 0; i < queues.size; i++) {
    const q = queues.at(i);
    if (q.durable && q.exclusiveOwner === null) n++;
  }
  return n;
}
