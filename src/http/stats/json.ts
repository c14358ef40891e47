import type { History } from './history';

type Obj = Record<string, unknown>;

/** Which samples a request asked for (RabbitMQ's msg_rates_age/msg_rates_incr, lengths_age/lengths_incr). */
export interface SampleAsk {
  ageMs: number;
  history: History;
  now: number;
}

/**
 * RabbitMQ's rendering of counters: `name: value` and `name_details: {rate}`, for the
 * fields named (all by default). With samples asked for, details also carry them.
 */
export function detailed(
  fields: readonly string[],
  values: Float64Array,
  rates: Float64Array,
  names: readonly string[] = fields,
  ask?: SampleAsk,
): Obj {
  const out: Obj = {};
  for (const name of names) {
    const i = fields.indexOf(name);
    if (i < 0) continue;
    out[name] = values[i];
    const d: Obj = { rate: rates[i] };
    if (ask !== undefined) {
      const samples = ask.history.field(i, ask.now, ask.ageMs);
      d.samples = samples;
      if (samples.length > 1) {
        const first = samples[samples.length - 1];
        const last = samples[0];
        d.avg = samples.reduce((s, x) => s + x.sample, 0) / samples.length;
        d.avg_rate = (last.sample - first.sample) / Math.max(1, (last.timestamp - first.timestamp) / 1000);
      } else {
        d.avg = samples.length === 1 ? samples[0].sample : 0;
        d.avg_rate = 0;
      }
    }
    out[`${name}_details`] = d;
  }
  return out;
}

/** msg_rates_age / lengths_age from a query (seconds), null when not asked. */
export function sampleAge(query: Record<string, unknown>, key: 'msg_rates_age' | 'lengths_age'): number | null {
  const v = query[key];
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return null;
  return Number(v) * 1000;
}
