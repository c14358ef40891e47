// The first picture of a chart from the broker's own history: RabbitMQ answers
// ?msg_rates_age=&msg_rates_incr=&lengths_age=&lengths_incr= with "samples" (newest first):
// cumulative counts for message stats, current values for lengths.

/** The query that asks for the last `seconds` of samples, one every `step`. */
export function historyQuery(seconds = 600, step = 5) {
  return `lengths_age=${seconds}&lengths_incr=${step}&msg_rates_age=${seconds}&msg_rates_incr=${step}`;
}

function samplesOf(details) {
  const s = details?.samples;
  if (!Array.isArray(s)) return [];
  return s.filter((x) => typeof x?.sample === 'number' && typeof x?.timestamp === 'number').sort((a, b) => a.timestamp - b.timestamp);
}

/** timestamp (s) → rate, from successive cumulative counts. */
export function rates(details) {
  const s = samplesOf(details);
  const out = new Map();
  for (let i = 1; i < s.length; i++) {
    const dt = (s[i].timestamp - s[i - 1].timestamp) / 1000;
    if (dt > 0) out.set(s[i].timestamp / 1000, Math.max(0, (s[i].sample - s[i - 1].sample) / dt));
  }
  return out;
}

/** timestamp (s) → value. */
export function lengths(details) {
  return new Map(samplesOf(details).map((x) => [x.timestamp / 1000, x.sample]));
}

/** Rows [t, v1, v2, …] over the timestamps any series has, oldest first. */
export function rows(series) {
  const times = [...new Set(series.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  return times.map((t) => [t, ...series.map((m) => m.get(t))]);
}
