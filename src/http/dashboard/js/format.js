// Numbers as people read them; anything missing (an endpoint or field not there) is "—".

export const DASH = '—';

/** get(obj, 'message_stats.publish_details.rate') without throwing on a missing level. */
export function get(obj, path) {
  let v = obj;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[k];
  }
  return v;
}

const int = new Intl.NumberFormat('en-US');
const dec = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? int.format(v) : DASH;
}

export function rate(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return DASH;
  return `${v >= 100 ? int.format(Math.round(v)) : dec.format(v)}/s`;
}

export function bytes(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : dec.format(v)} ${units[i]}`;
}

export function byteRate(v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${bytes(v)}/s` : DASH;
}

/** Short numbers for chart axes: 1.2k, 3.4M. */
export function short(v) {
  if (v === null || v === undefined) return '';
  const a = Math.abs(v);
  if (a >= 1e6) return `${dec.format(v / 1e6)}M`;
  if (a >= 1e3) return `${dec.format(v / 1e3)}k`;
  return dec.format(v);
}

export function text(v) {
  return v === undefined || v === null || v === '' ? DASH : String(v);
}

export function yesNo(v) {
  return v === true ? 'yes' : v === false ? 'no' : DASH;
}

export function when(ms) {
  if (typeof ms !== 'number') return DASH;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? DASH : d.toLocaleString();
}
