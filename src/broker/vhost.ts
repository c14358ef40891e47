import { AmqpError } from '../protocol/errors';
import { ACCESS_REFUSED, COMMAND_INVALID, NOT_FOUND, PRECONDITION_FAILED, RESOURCE_LOCKED } from '../protocol/constants';
import type { FieldTable } from '../protocol/types';
import type { Binding, BindingDestination, Exchange } from './exchanges/exchange';
import { createExchange, bindingArgumentsError, EXCHANGE_TYPES } from './exchanges';
import { Queue, type QueueOwner } from './queue';
import type { Message } from './message';
import { deadLetteredMessage, diedIn, publishedRoutingKeys, type DeathReason } from './dead-letter';
import { queueSettings } from './queue-settings';
import { PolicySet, type Policy } from './policies';
import { parseExchangeArgs, parseQueueArgs, toAmqpError } from './arguments';
import type { QueueStore } from '../store/queue-store';
import { PriorityQueueStore } from '../store/priority-queue-store';
import { MemoryQueueStore } from '../store/memory-queue-store';
import type { DefinitionsSink } from '../store/store';
import { generateName, isReservedName, describeExchange, describeQueue } from './names';
import { assertArgsEquivalent, assertPropertyEquivalent, EXCHANGE_ARGS_COMPARED, queueArgsCompared, withClassicDefault } from './equivalence';

export interface VhostCounters {
  published: number;
  routed: number;
  unroutable: number;
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
  readonly counters: VhostCounters = { published: 0, routed: 0, unroutable: 0 };
  private readonly scratch = new Set<BindingDestination>();
  /** direct reply-to addresses → the channel consuming them (opaque to the model) */
  readonly directReplies = new Map<string, object>();
  readonly policies = new PolicySet();
  /** Where the vhost reports things an operator should know (set by the broker). */
  notice: ((text: string) => void) | null = null;

  constructor(
    readonly name: string,
    /** where durable definitions and durable queues' messages go; null keeps all in memory */
    private readonly sink: DefinitionsSink | null = null,
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
    // RabbitMQ's order: the type, the default exchange, then the name only if it is new.
    if (!EXCHANGE_TYPES.includes(type)) throw new AmqpError(COMMAND_INVALID, `invalid exchange type '${type}'`);
    if (name === '') throw new AmqpError(ACCESS_REFUSED, 'operation not permitted on the default exchange');
    const existing = this.exchanges.get(name);
    if (existing !== undefined) {
      const what = describeExchange(name, this.name);
      assertPropertyEquivalent(what, 'type', type, existing.type);
      assertPropertyEquivalent(what, 'durable', durable, existing.durable);
      assertPropertyEquivalent(what, 'auto_delete', autoDelete, existing.autoDelete);
      assertPropertyEquivalent(what, 'internal', internal, existing.internal);
      assertArgsEquivalent(what, EXCHANGE_ARGS_COMPARED, args, existing.args);
      return existing;
    }
    if (isReservedName(name)) {
      throw new AmqpError(ACCESS_REFUSED, `exchange name '${name}' contains reserved prefix 'amq.*'`);
    }
    const parsed = parseExchangeArgs(args, { exchange: name, vhost: this.name });
    if ('code' in parsed) throw toAmqpError(parsed);
    const ex = createExchange(type, name, durable, autoDelete, internal, args)!;
    this.applyExchangePolicy(ex);
    this.exchanges.set(name, ex);
    if (durable) this.sink?.exchangeDeclared(this.name, ex);
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
    this.exchanges.delete(ex.name);
    if (ex.durable) this.sink?.exchangeDeleted(this.name, ex.name);
    for (const other of this.exchanges.values()) this.unbindAndMaybeAutoDelete(other, ex);
  }

  bindExchange(destination: string, source: string, routingKey: string, args: FieldTable): void {
    const [src, dst] = this.bindingEnds(source, this.exchanges.get(destination), 'exchange', destination);
    this.checkBindingArgs(src, args);
    this.addBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  unbindExchange(destination: string, source: string, routingKey: string, args: FieldTable): void {
    const [src, dst] = this.bindingEnds(source, this.exchanges.get(destination), 'exchange', destination);
    this.removeBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  private addBinding(src: Exchange, b: Binding): void {
    if (src.bind(b) && this.isDurableBinding(src, b)) this.sink?.bindingChanged(this.name, b, true);
  }

  private removeBinding(src: Exchange, b: Binding): void {
    if (!src.unbind(b)) return;
    if (this.isDurableBinding(src, b)) this.sink?.bindingChanged(this.name, b, false);
    this.autoDeleteIfUnbound(src);
  }

  /** A binding survives a restart when both its ends do. */
  private isDurableBinding(src: Exchange, b: Binding): boolean {
    const d = b.destination as Queue | Exchange;
    return src.durable && d.durable && !(d.kind === 'queue' && (d as Queue).exclusiveOwner !== null);
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
    if (q.exclusiveOwner !== null && q.exclusiveOwner !== owner) this.lockedError(q);
  }

  private lockedError(q: Queue): never {
    throw new AmqpError(
        RESOURCE_LOCKED,
        `cannot obtain exclusive access to locked ${describeQueue(q.name, this.name)}. It could be originally ` +
          'declared on another connection or the exclusive property value does not match that of the original declaration.',
    );
  }

  declareQueue(
    name: string,
    passive: boolean,
    durable: boolean,
    exclusive: boolean,
    autoDelete: boolean,
    args: FieldTable,
    owner: object,
  ): Queue {
    if (passive) {
      const q = this.getQueue(name, owner);
      q.touch(); // a passive declare counts as use for x-expires, as in RabbitMQ
      return q;
    }
    const serverNamed = name === '';
    if (serverNamed) name = generateName('amq.gen-');
    else if (isReservedName(name)) {
      throw new AmqpError(ACCESS_REFUSED, `queue name '${name}' contains reserved prefix 'amq.*'`);
    }
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      // Strict, as RabbitMQ: the declaration's exclusivity must match the queue's owner.
      if (existing.exclusiveOwner !== (exclusive ? owner : null)) this.lockedError(existing);
      const what = describeQueue(name, this.name);
      assertPropertyEquivalent(what, 'durable', durable, existing.durable);
      assertPropertyEquivalent(what, 'auto_delete', autoDelete, existing.autoDelete);
      assertArgsEquivalent(what, queueArgsCompared(existing.args), withClassicDefault(args), withClassicDefault(existing.args));
      existing.touch();
      return existing;
    }
    // RabbitMQ validates arguments only when the queue is created.
    const parsed = parseQueueArgs(args, { queue: name, vhost: this.name, durable, exclusive, autoDelete, serverNamed });
    if ('code' in parsed) throw toAmqpError(parsed);
    if (parsed.ok.queueType === 'stream') {
      throw new AmqpError(PRECONDITION_FAILED, `invalid arg 'x-queue-type' for ${describeQueue(name, this.name)}: stream queues are not supported by Leveret`);
    }
    if (parsed.ok.queueType === 'quorum') this.notice?.(`queue '${name}' in vhost '${this.name}' declared as a quorum queue: Leveret keeps it as a durable classic queue`);
    // Exclusive queues end with their connection, so even a durable one is not stored.
    const stored = durable && !exclusive;
    const settings = queueSettings(args, this.policies.match('queue', name)?.definition ?? null);
    const q = new Queue(name, durable, exclusive ? owner : null, autoDelete, args, this, settings, this.makeStore(name, stored, settings.maxPriority));
    this.queues.set(name, q);
    if (stored) this.sink?.queueDeclared(this.name, name, autoDelete, args);
    return q;
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

  private makeStore(name: string, durable: boolean, maxPriority: number | null): QueueStore | undefined {
    if (this.sink !== null) return this.sink.queueStore(this.name, name, durable, maxPriority);
    return maxPriority === null ? undefined : new PriorityQueueStore(maxPriority, () => new MemoryQueueStore());
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
    this.queues.delete(q.name);
    if (q.durable && q.exclusiveOwner === null) this.sink?.queueDeleted(this.name, q.name);
    for (const ex of this.exchanges.values()) this.unbindAndMaybeAutoDelete(ex, q);
    return q.destroy();
  }

  queueUnused(queue: Queue): void {
    this.removeQueue(queue);
  }

  /** The connection went away: its exclusive queues go with it. */
  ownerClosed(owner: object): void {
    for (const q of [...this.queues.values()]) if (q.exclusiveOwner === owner) this.removeQueue(q);
  }

  bindQueue(queue: string, exchange: string, routingKey: string, args: FieldTable, owner: object): void {
    const q = this.queues.get(queue);
    if (q !== undefined) this.checkExclusive(q, owner);
    const [src, dst] = this.bindingEnds(exchange, q, 'queue', queue);
    this.checkBindingArgs(src, args);
    this.addBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  unbindQueue(queue: string, exchange: string, routingKey: string, args: FieldTable, owner: object): void {
    const q = this.queues.get(queue);
    if (q !== undefined) this.checkExclusive(q, owner);
    const [src, dst] = this.bindingEnds(exchange, q, 'queue', queue);
    this.removeBinding(src, { source: src.name, destination: dst, routingKey, args });
  }

  private checkBindingArgs(ex: Exchange, args: FieldTable): void {
    const error = bindingArgumentsError(ex, args);
    if (error !== undefined) throw new AmqpError(PRECONDITION_FAILED, error);
  }

  private bindingEnds(
    source: string,
    dest: BindingDestination | undefined,
    kind: 'queue' | 'exchange',
    destName: string,
  ): [Exchange, BindingDestination] {
    if (source === '') throw new AmqpError(ACCESS_REFUSED, 'operation not permitted on the default exchange');
    if (kind === 'exchange' && destName === '') {
      throw new AmqpError(ACCESS_REFUSED, 'operation not permitted on the default exchange');
    }
    const src = this.getExchange(source);
    if (dest === undefined) {
      const what = kind === 'queue' ? describeQueue(destName, this.name) : describeExchange(destName, this.name);
      throw new AmqpError(NOT_FOUND, `no ${what}`);
    }
    return [src, dest];
  }

  private unbindAndMaybeAutoDelete(ex: Exchange, dest: BindingDestination): void {
    const before = ex.bindingCount;
    ex.unbindDestination(dest);
    if (ex.bindingCount < before) this.autoDeleteIfUnbound(ex);
  }

  private autoDeleteIfUnbound(ex: Exchange): void {
    if (ex.autoDelete && ex.bindingCount === 0 && this.exchanges.get(ex.name) === ex) this.removeExchange(ex);
  }

  // ---- routing -----------------------------------------------------------------------

  /**
   * Adds to `out` every queue a message reaches from `ex` with its routing key (and any
   * `extraKeys`, from CC/BCC headers), following exchange-to-exchange bindings and
   * alternate exchanges; each exchange is visited once per key, so cycles end.
   */
  route(ex: Exchange, msg: Message, out: Set<Queue>, extraKeys: string[] | null = null): void {
    this.routeKey(ex, msg, msg.routingKey, out);
    if (extraKeys !== null) for (const k of extraKeys) this.routeKey(ex, msg, k, out);
  }

  private routeKey(ex: Exchange, msg: Message, key: string, out: Set<Queue>): void {
    if (ex.name === '') {
      const q = this.queues.get(key);
      if (q !== undefined) out.add(q);
      return;
    }
    const dests = this.scratch;
    dests.clear();
    ex.route(key, ex.type === 'headers' ? msg.headers : undefined, dests);
    let nested: Exchange[] | null = null;
    for (const d of dests) {
      if (d.kind === 'queue') out.add(d as Queue);
      else (nested ??= []).push(d as Exchange);
    }
    const routedNothing = dests.size === 0;
    dests.clear();
    if (routedNothing && ex.alternateExchange !== null) (nested ??= []).push(...this.alternateOf(ex));
    if (nested === null) return;
    const visited = new Set<Exchange>([ex]);
    while (nested.length > 0) {
      const next = nested.pop()!;
      if (visited.has(next)) continue;
      visited.add(next);
      next.route(key, next.type === 'headers' ? msg.headers : undefined, dests);
      if (dests.size === 0 && next.alternateExchange !== null) nested.push(...this.alternateOf(next));
      for (const d of dests) {
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
    this.policies.set(p);
    this.sink?.policyChanged(this.name, p, true);
    this.reapplyPolicies();
  }

  /** Returns false if there was no such policy. */
  deletePolicy(name: string): boolean {
    const p = this.policies.get(name);
    if (p === undefined || !this.policies.delete(name)) return false;
    this.sink?.policyChanged(this.name, p, false);
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
    const out = new Set<Queue>();
    if (s.deadLetterRoutingKey !== null) this.route(ex, copy, out);
    else {
      // All the keys it was published with, BCC ones too (x-death lists only key and CC).
      for (const k of publishedRoutingKeys(message)) this.routeKey(ex, copy, k, out);
      if (message.bccKeys !== null) for (const k of message.bccKeys) this.routeKey(ex, copy, k, out);
    }
    for (const q of out) if (!diedIn(copy, q.name)) q.enqueue(copy);
  }

  queueExpired(queue: Queue): void {
    this.removeQueue(queue);
  }
}
