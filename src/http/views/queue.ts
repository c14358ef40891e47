import type { Queue } from '../../broker/queue';
import type { Vhost } from '../../broker/vhost';
import type { Connection } from '../../server/connection';
import type { Stats } from '../stats/stats';
import { QUEUE } from '../stats/kinds';
import { detailed } from '../stats/json';
import { tableJson } from './field-json';
import { consumerJson, type LiveView } from './consumer';

type Obj = Record<string, unknown>;

/** What rendering queues needs besides the queue: gathered once per request. */
export interface QueueViewContext {
  readonly node: string;
  readonly stats: Stats;
  readonly live: LiveView;
  readonly connections: ReadonlySet<Connection>;
  /** disable_stats=true: only the queue's definition, as RabbitMQ */
  readonly statsDisabled: boolean;
  /** the single-queue GET adds consumer_details, deliveries and incoming */
  readonly single: boolean;
}

const F = QUEUE.fields;
const DEPTHS = ['messages', 'messages_ready', 'messages_unacknowledged'];
const PUBLISH = ['publish'];
/** RabbitMQ adds the delivery counters together, once anything was delivered or got. */
const DELIVERY = ['ack', 'deliver', 'deliver_get', 'deliver_no_ack', 'get', 'get_no_ack', 'redeliver'];

/**
 * When each queue was last seen doing something (its counters moved), for RabbitMQ's
 * idle_since; learnt as queues are rendered, never on the message path.
 */
const activity = new WeakMap<Queue, { mark: number; since: number }>();

function idleSince(q: Queue, now: number): string {
  const c = q.counters;
  const mark = c.published + c.delivered + c.got + c.acked + q.consumerCount;
  let a = activity.get(q);
  if (a === undefined) activity.set(q, (a = { mark, since: now }));
  else if (a.mark !== mark) {
    a.mark = mark;
    a.since = now;
  }
  // RabbitMQ's format: milliseconds and an explicit offset.
  return new Date(a.since).toISOString().replace('Z', '+00:00');
}

/** The connection that owns an exclusive queue, as RabbitMQ's owner_pid_details. */
function ownerDetails(q: Queue, connections: ReadonlySet<Connection>): Obj | undefined {
  const owner = q.exclusiveOwner;
  if (owner === null) return undefined;
  for (const c of connections) {
    if (c === owner) return { name: c.name, peer_host: c.socket.remoteAddress ?? '', peer_port: c.socket.remotePort ?? 0 };
  }
  return undefined;
}

/** One queue as RabbitMQ 3.10's /api/queues shows it (keys in its order). */
export function queueJson(q: Queue, v: Vhost, ctx: QueueViewContext): Obj {
  const base = {
    arguments: tableJson(q.args),
    auto_delete: q.autoDelete,
    durable: q.durable,
    exclusive: q.exclusiveOwner !== null,
    name: q.name,
    node: ctx.node,
  };
  if (ctx.statsDisabled) {
    // RabbitMQ names the policy even without statistics, and only when one applies.
    const applied = v.policies.match('queue', q.name);
    return { ...base, ...(applied === null ? {} : { policy: applied.name }), state: 'live', type: 'classic', vhost: v.name };
  }

  const row = new Float64Array(F.length);
  QUEUE.read(q, row);
  const rates = ctx.stats.rates(q, F.length);
  const at = (name: string): number => row[F.indexOf(name)];
  const consumers = ctx.live.byQueue.get(q) ?? [];
  const ready = q.store.bytes;
  const unacked = ctx.live.unackedBytes.get(q) ?? 0;
  const policy = v.policies.match('queue', q.name);
  const first = q.consumers.first;
  const stats: Obj = {};
  if (at('publish') > 0) Object.assign(stats, detailed(F, row, rates, PUBLISH));
  if (at('deliver_get') > 0 || at('ack') > 0) Object.assign(stats, detailed(F, row, rates, DELIVERY));

  const out: Obj = {};
  if (ctx.single) out.consumer_details = consumers.map((lc) => consumerJson(lc, ctx.node));
  Object.assign(out, {
    arguments: base.arguments,
    auto_delete: base.auto_delete,
    backing_queue_status: {
      avg_ack_egress_rate: rates[F.indexOf('ack')],
      avg_ack_ingress_rate: rates[F.indexOf('deliver')] + rates[F.indexOf('get')],
      avg_egress_rate: rates[F.indexOf('deliver_get')],
      avg_ingress_rate: rates[F.indexOf('publish')],
      len: q.messageCount,
      mode: 'default',
      target_ram_count: 'infinity',
      version: 1,
    },
    consumer_capacity: q.consumerCount > 0 ? 1 : 0,
    consumer_utilisation: q.consumerCount > 0 ? 1 : 0,
    consumers: q.consumerCount,
  });
  if (ctx.single) out.deliveries = [];
  Object.assign(out, {
    durable: base.durable,
    effective_policy_definition: policy === null ? {} : { ...policy.definition },
    exclusive: base.exclusive,
    exclusive_consumer_tag: first !== undefined && first.exclusive ? first.tag : null,
    head_message_timestamp: null,
    idle_since: idleSince(q, Date.now()),
  });
  if (ctx.single) out.incoming = [];
  Object.assign(out, {
    // What the queue holds in bodies, plus a fixed allowance for the queue itself.
    memory: 1024 + ready + unacked,
    message_bytes: ready + unacked,
    message_bytes_ready: ready,
    message_bytes_unacknowledged: unacked,
  });
  // RabbitMQ's key order: alphabetical.
  if (Object.keys(stats).length > 0) out.message_stats = Object.fromEntries(Object.entries(stats).sort(([x], [y]) => (x < y ? -1 : 1)));
  Object.assign(out, detailed(F, row, rates, DEPTHS));
  out.name = q.name;
  out.node = ctx.node;
  out.operator_policy = null;
  const owner = ownerDetails(q, ctx.connections);
  if (owner !== undefined) out.owner_pid_details = owner;
  out.policy = policy === null ? null : policy.name;
  out.recoverable_slaves = null;
  out.single_active_consumer_tag = q.settings.singleActiveConsumer && first !== undefined ? first.tag : null;
  out.state = 'running';
  out.type = 'classic';
  out.vhost = v.name;
  return out;
}
