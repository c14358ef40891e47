import type { Broker } from '../broker/broker';
import type { User } from '../auth/users';
import type { Policy } from '../broker/policies';
import type { VhostSettings } from '../broker/storage';
import { FULL_ACCESS, regexError } from '../auth/permissions';
import {
  bindingError,
  exchangeDeclarationError,
  queueDeclarationError,
  withDefaultQueueType,
  type ExchangeShape,
  type QueueShape,
} from '../broker/declaration-checks';
import { jsonToTable } from './views/field-json';
import type { FieldTable } from '../protocol/types';
import { isReservedName } from '../broker/names';
import { Vhost } from '../broker/vhost';
import { badRequest } from './errors';
import { viaModel } from './amqp-status';
import { policyFromBody } from './policies';
import { putUserLimits, userFromBody, userLimitsFromBody } from './users';
import { limitSetFrom } from './limits';
import type { LimitSet } from '../broker/limits';

type Obj = Record<string, unknown>;

/** Declares the imported queues: they belong to no connection (never exclusive). */
const IMPORT_OWNER = Object.freeze({});

const QUEUE_TYPES = ['classic', 'quorum', 'stream'];

interface QueueDef {
  vhost: string;
  name: string;
  durable: boolean;
  autoDelete: boolean;
  args: FieldTable;
}

interface ExchangeDef {
  vhost: string;
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  args: FieldTable;
}

interface BindingDef {
  vhost: string;
  source: string;
  destination: string;
  kind: 'queue' | 'exchange';
  routingKey: string;
  args: FieldTable;
}

/** Everything a document asks for, checked; applying it is then a series of model calls. */
interface Plan {
  users: User[];
  vhosts: VhostSettings[];
  permissions: Array<{ vhost: string; user: string; configure: string; write: string; read: string }>;
  topicPermissions: Array<{ vhost: string; user: string; exchange: string; write: string; read: string }>;
  policies: Array<{ vhost: string; policy: Policy }>;
  exchanges: ExchangeDef[];
  queues: QueueDef[];
  bindings: BindingDef[];
  userLimits: Array<{ user: string; limits: LimitSet }>;
  vhostLimits: Array<{ vhost: string; limits: LimitSet }>;
}

/**
 * Imports a definitions document (RabbitMQ's format) in two passes: the whole document is
 * checked first against what exists plus what it declares itself, in RabbitMQ's key order
 * (users, vhosts, permissions, topic permissions, parameters, policies, queues, exchanges,
 * bindings), and only a document without a fault is applied. A refused document changes
 * nothing (400 with the first fault).
 *
 * What stays non-atomic: each change is stored as it is applied, so a disk that refuses a
 * write midway (ENOSPC, EIO) leaves what was applied before it (stored and in effect) and
 * answers 500; nothing else can fail once the checks pass.
 *
 * With `vhost` (the per-vhost form), only policies, queues, exchanges and bindings are read
 * and all go to that vhost whatever their own `vhost` says, as in RabbitMQ.
 */
export function importDefinitions(broker: Broker, actingUser: User, defs: Obj, vhost?: string): void {
  const plan = new Planner(broker, vhost).check(defs);
  // A store that refuses a write is a 500 with its errno, as for a queue declared alone.
  viaModel('direct', () => apply(broker, actingUser, plan));
}

function apply(broker: Broker, actingUser: User, plan: Plan): void {
  for (const u of plan.users) broker.putUser(u);
  for (const { user, limits } of plan.userLimits) putUserLimits(broker, user, limits);
  for (const v of plan.vhosts) {
    // As RabbitMQ: whoever creates a vhost may use it.
    if (broker.putVhost(v)) broker.setPermission(v.name, actingUser.name, FULL_ACCESS);
  }
  for (const p of plan.permissions) broker.setPermission(p.vhost, p.user, p);
  for (const t of plan.topicPermissions) broker.setTopicPermission(t.vhost, t.user, t.exchange, t);
  for (const { vhost, limits } of plan.vhostLimits) broker.setVhostLimits(vhost, limits);
  for (const { vhost, policy } of plan.policies) broker.vhosts.get(vhost)!.setPolicy(policy);
  for (const e of plan.exchanges)
    broker.vhosts.get(e.vhost)!.declareExchange(e.name, e.type, false, e.durable, e.autoDelete, e.internal, e.args);
  for (const q of plan.queues)
    broker.vhosts.get(q.vhost)!.declareQueue(q.name, false, q.durable, false, q.autoDelete, q.args, IMPORT_OWNER);
  for (const b of plan.bindings) {
    const v = broker.vhosts.get(b.vhost)!;
    if (b.kind === 'queue') v.bindQueue(b.destination, b.source, b.routingKey, b.args, IMPORT_OWNER);
    else v.bindExchange(b.destination, b.source, b.routingKey, b.args);
  }
}

/** What a new vhost holds before anything is declared in it (never stored: no sink). */
const EMPTY_VHOST = new Vhost('(new)');

const key = (vhost: string, name: string): string => `${vhost}\0${name}`;

/** A model check's refusal (RabbitMQ's reply text) is the 400's reason. */
function refuse(text: string | null): void {
  if (text !== null) throw badRequest(text);
}

class Planner {
  private readonly plan: Plan = {
    users: [],
    vhosts: [],
    permissions: [],
    topicPermissions: [],
    policies: [],
    exchanges: [],
    queues: [],
    bindings: [],
    userLimits: [],
    vhostLimits: [],
  };
  private readonly newUsers = new Set<string>();
  private readonly newVhosts = new Map<string, VhostSettings>();
  private readonly queues = new Map<string, QueueShape>();
  private readonly exchanges = new Map<string, ExchangeShape>();

  constructor(
    private readonly broker: Broker,
    /** the per-vhost form's vhost */
    private readonly only?: string,
  ) {}

  check(defs: Obj): Plan {
    if (this.only === undefined) {
      for (const u of list(defs, 'users')) this.user(u);
      for (const v of list(defs, 'vhosts')) this.vhost(v);
      for (const p of list(defs, 'permissions')) this.permission(p);
      for (const t of list(defs, 'topic_permissions')) this.topicPermission(t);
      // Global parameters (cluster_name, internal_cluster_id) are not kept: accepted, so
      // that any RabbitMQ export imports, and ignored.
      list(defs, 'global_parameters');
    }
    for (const p of list(defs, 'parameters')) this.parameter(p);
    for (const p of list(defs, 'policies')) this.policy(p);
    for (const q of list(defs, 'queues')) this.queue(q);
    for (const e of list(defs, 'exchanges')) this.exchange(e);
    for (const b of list(defs, 'bindings')) this.binding(b);
    this.checkQueueLimits();
    return this.plan;
  }

  /**
   * As RabbitMQ: a document whose new queues would take a vhost past its max-queues (the
   * limit in force before the import) is refused whole, with its text as an Erlang string.
   */
  private checkQueueLimits(): void {
    const added = new Map<string, number>();
    for (const k of this.queues.keys()) {
      const vhost = k.slice(0, k.indexOf('\0'));
      added.set(vhost, (added.get(vhost) ?? 0) + 1);
    }
    for (const [vhost, n] of added) {
      const limit = this.broker.limits.maxQueues(vhost);
      const current = this.broker.vhosts.get(vhost)?.queues.size ?? 0;
      if (limit < 0 || current + n <= limit) continue;
      const text = `Adding ${n} queue(s) to virtual host "${vhost}" would exceed the limit of ${limit} queue(s).\n\nThis virtual host currently has ${current} queue(s) defined.\n\nImport aborted!`;
      throw badRequest(['vhost_limit_exceeded', [...text].map((ch) => ch.codePointAt(0))]);
    }
  }

  private userExists(name: string): boolean {
    return this.newUsers.has(name) || this.broker.users.get(name) !== undefined;
  }

  private vhostExists(name: string): boolean {
    return this.newVhosts.has(name) || this.broker.vhosts.has(name);
  }

  /** The item's vhost: the per-vhost form's, else its own, which must exist. */
  private vhostOf(o: Obj, what: string): string {
    if (this.only !== undefined) return this.only;
    const vhost = str(o, 'vhost', what);
    if (!this.vhostExists(vhost)) throw badRequest(['no_such_vhost', vhost]);
    return vhost;
  }

  private user(u: Obj): void {
    const name = str(u, 'name', 'user');
    this.plan.users.push(userFromBody(name, u, this.userExists(name)));
    const limits = userLimitsFromBody(name, u);
    if (limits !== null) this.plan.userLimits.push({ user: name, limits });
    this.newUsers.add(name);
  }

  private vhost(v: Obj): void {
    const name = str(v, 'name', 'vhost');
    const meta = isObject(v.metadata) ? v.metadata : {};
    // What the item does not give is kept (RabbitMQ's HTTP export names vhosts only).
    const known = this.newVhosts.get(name) ?? this.broker.vhosts.get(name);
    const description = meta.description ?? v.description ?? known?.description ?? '';
    const rawTags = meta.tags ?? v.tags ?? known?.tags ?? [];
    const tags = typeof rawTags === 'string' ? rawTags.split(',') : rawTags;
    if (typeof description !== 'string' || !Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))
      throw badRequest(`vhost ${name}: bad description or tags`);
    const dqt = meta.default_queue_type ?? v.default_queue_type ?? known?.defaultQueueType ?? null;
    if (dqt !== null && (typeof dqt !== 'string' || !QUEUE_TYPES.includes(dqt)))
      throw badRequest(`vhost ${name}: default_queue_type must be one of ${QUEUE_TYPES.join(', ')}`);
    const settings = {
      name,
      description,
      tags: tags.map((t) => t.trim()).filter((t) => t !== ''),
      defaultQueueType: dqt,
    };
    this.plan.vhosts.push(settings);
    this.newVhosts.set(name, settings);
  }

  /** Of the runtime parameters only vhost limits are kept; others (federation, shovels) are ignored. */
  private parameter(p: Obj): void {
    if (p.component !== 'vhost-limits') return;
    const vhost = this.vhostOf(p, 'parameter');
    this.plan.vhostLimits.push({ vhost, limits: limitSetFrom(p.value, 'vhost', `vhost-limits of ${vhost}`) });
  }

  private grantee(p: Obj, what: string): { user: string; vhost: string } {
    const user = str(p, 'user', what);
    const vhost = str(p, 'vhost', what);
    if (!this.userExists(user)) throw badRequest(['no_such_user', user]);
    if (!this.vhostExists(vhost)) throw badRequest(['no_such_vhost', vhost]);
    return { user, vhost };
  }

  private permission(p: Obj): void {
    const who = this.grantee(p, 'permission');
    const triple = {
      configure: pattern(p, 'configure', 'permission'),
      write: pattern(p, 'write', 'permission'),
      read: pattern(p, 'read', 'permission'),
    };
    this.plan.permissions.push({ ...who, ...triple });
  }

  private topicPermission(t: Obj): void {
    const who = this.grantee(t, 'topic permission');
    const exchange = str(t, 'exchange', 'topic permission');
    this.plan.topicPermissions.push({
      ...who,
      exchange,
      write: pattern(t, 'write', 'topic permission'),
      read: pattern(t, 'read', 'topic permission'),
    });
  }

  private policy(p: Obj): void {
    const vhost = this.vhostOf(p, 'policy');
    const name = str(p, 'name', 'policy');
    if (name === '') throw badRequest('policy: name must not be empty');
    this.plan.policies.push({ vhost, policy: policyFromBody(name, p, ` (${vhost}/${name})`) });
  }

  /** What vhost.declareQueue would refuse, refused here. */
  private queue(o: Obj): void {
    const vhost = this.vhostOf(o, 'queue');
    const name = str(o, 'name', 'queue');
    const what = `queue '${name}' in vhost '${vhost}'`;
    const durable = bool(o, 'durable', true, what);
    const autoDelete = bool(o, 'auto_delete', false, what);
    const dqt = this.newVhosts.get(vhost)?.defaultQueueType ?? this.broker.vhosts.get(vhost)?.defaultQueueType ?? null;
    const args = withDefaultQueueType(dqt, table(o, what), durable);
    const existing = this.queues.get(key(vhost, name)) ?? this.brokerQueue(vhost, name);
    refuse(queueDeclarationError(vhost, name, durable, autoDelete, args, existing));
    // A restored server-named queue (amq.gen-...) cannot be declared again, and is there.
    if (existing !== undefined && isReservedName(name)) return;
    if (existing === undefined) this.queues.set(key(vhost, name), { durable, autoDelete, args, exclusiveOwner: null });
    this.plan.queues.push({ vhost, name, durable, autoDelete, args });
  }

  private brokerQueue(vhost: string, name: string): QueueShape | undefined {
    return this.broker.vhosts.get(vhost)?.queues.get(name);
  }

  /** What vhost.declareExchange would refuse, refused here. */
  private exchange(o: Obj): void {
    const vhost = this.vhostOf(o, 'exchange');
    const name = str(o, 'name', 'exchange');
    const what = `exchange '${name}' in vhost '${vhost}'`;
    const type = str(o, 'type', what);
    const durable = bool(o, 'durable', true, what);
    const autoDelete = bool(o, 'auto_delete', false, what);
    const internal = bool(o, 'internal', false, what);
    const args = table(o, what);
    const existing = this.exchanges.get(key(vhost, name)) ?? this.brokerExchange(vhost, name);
    refuse(exchangeDeclarationError(vhost, name, { type, durable, autoDelete, internal, args }, existing));
    if (existing === undefined) this.exchanges.set(key(vhost, name), { type, durable, autoDelete, internal, args });
    this.plan.exchanges.push({ vhost, name, type, durable, autoDelete, internal, args });
  }

  private brokerExchange(vhost: string, name: string): ExchangeShape | undefined {
    // A vhost the document creates starts with the predeclared exchanges (amq.direct, ...).
    return (this.broker.vhosts.get(vhost) ?? (this.newVhosts.has(vhost) ? EMPTY_VHOST : undefined))?.exchanges.get(name);
  }

  /**
   * Both ends must exist, already or by this document (RabbitMQ 3.10.8 skips a binding
   * whose end is missing without a word; a 400 says the document is incomplete).
   */
  private binding(o: Obj): void {
    const vhost = this.vhostOf(o, 'binding');
    const source = str(o, 'source', 'binding');
    const destination = str(o, 'destination', 'binding');
    const kind = str(o, 'destination_type', 'binding');
    if (kind !== 'queue' && kind !== 'exchange') throw badRequest(`binding: destination_type must be 'queue' or 'exchange', not '${kind}'`);
    const routingKey = o.routing_key === undefined ? '' : str(o, 'routing_key', 'binding');
    const args = table(o, `binding of exchange '${source}' in vhost '${vhost}'`);
    const src = this.exchanges.get(key(vhost, source)) ?? this.brokerExchange(vhost, source);
    const dest =
      kind === 'queue'
        ? (this.queues.get(key(vhost, destination)) ?? this.brokerQueue(vhost, destination))
        : (this.exchanges.get(key(vhost, destination)) ?? this.brokerExchange(vhost, destination));
    refuse(bindingError(vhost, source, src, kind, destination, dest, args));
    this.plan.bindings.push({ vhost, source, destination, kind, routingKey, args });
  }
}

const isObject = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function list(defs: Obj, name: string): Obj[] {
  const v = Object.hasOwn(defs, name) ? defs[name] : undefined;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every(isObject)) throw badRequest(`${name} must be a list of objects`);
  return v;
}

function str(o: Obj, k: string, what: string): string {
  const v = Object.hasOwn(o, k) ? o[k] : undefined;
  if (typeof v !== 'string') throw badRequest(`${what}: ${k} must be a string`);
  return v;
}

/** A flag, `dflt` when absent (as RabbitMQ's PUT /api/queues and /api/exchanges take them). */
function bool(o: Obj, k: string, dflt: boolean, what: string): boolean {
  const v = Object.hasOwn(o, k) ? o[k] : undefined;
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw badRequest(`${what}: ${k} must be true or false`);
  return v;
}

function table(o: Obj, what: string): FieldTable {
  const v = Object.hasOwn(o, 'arguments') ? o.arguments : undefined;
  if (v === undefined || v === null) return {};
  const t = jsonToTable(v);
  if (t === null) throw badRequest(`${what}: arguments must be an object of AMQP field values`);
  return t;
}

function pattern(o: Obj, k: string, what: string): string {
  const p = str(o, k, what);
  const bad = regexError(p);
  if (bad !== null) throw badRequest(bad);
  return p;
}
