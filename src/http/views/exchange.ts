import type { Exchange } from '../../broker/exchanges/exchange';
import type { Vhost } from '../../broker/vhost';
import type { Stats } from '../stats/stats';
import { EXCHANGE } from '../stats/kinds';
import { detailed } from '../stats/json';
import { tableJson } from './field-json';

type Obj = Record<string, unknown>;

/** Who declared each exchange over the management API (the model does not record it). */
export const declaredBy = new WeakMap<Exchange, string>();

const PREDECLARED = new Set(['', 'amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'amq.match']);

/** One exchange as RabbitMQ 3.10's /api/exchanges shows it; the default one is named "". */
export function exchangeJson(ex: Exchange, v: Vhost, stats: Stats, opts: { single: boolean; statsDisabled: boolean }): Obj {
  const out: Obj = {
    arguments: tableJson(ex.args),
    auto_delete: ex.autoDelete,
    durable: ex.durable,
  };
  if (opts.single) out.incoming = [];
  out.internal = ex.internal;
  // RabbitMQ shows message_stats once something was published to the exchange.
  if (!opts.statsDisabled && (ex.publishIn > 0 || ex.publishOut > 0)) {
    const row = new Float64Array(EXCHANGE.fields.length);
    EXCHANGE.read(ex, row);
    out.message_stats = detailed(EXCHANGE.fields, row, stats.rates(ex, EXCHANGE.fields.length));
  }
  out.name = ex.name;
  if (opts.single) out.outgoing = [];
  const policy = ex.name === '' ? null : v.policies.match('exchange', ex.name);
  if (policy !== null) out.policy = policy.name;
  out.type = ex.type;
  out.user_who_performed_action = declaredBy.get(ex) ?? (PREDECLARED.has(ex.name) ? 'rmq-internal' : '');
  out.vhost = v.name;
  return out;
}
