import type { Broker } from '../../broker/broker';
import type { Vhost } from '../../broker/vhost';
import type { Connection } from '../../server/connection';
import {
  CHANNEL,
  CONNECTION,
  EXCHANGE,
  QUEUE,
  TOTAL_DEPTH_AT,
  TOTAL_FIELDS,
  TOTAL_OCTETS_AT,
  addChannelCounters,
  type Kind,
} from './kinds';
import { History } from './history';

/**
 * An object's row as of the last sample, and its rates per second since the one before.
 * Rows that are all zeros (an idle queue or channel, a steady object's rates) are the
 * shared ZERO row of their width instead of arrays of their own: a thousand idle
 * connections would otherwise keep six arrays each.
 */
interface Sample {
  values: Float64Array;
  rates: Float64Array;
  at: number;
}

/** How many samples of the node's totals are kept for charts (10 minutes at the default interval). */
const HISTORY_SAMPLES = 120;

/**
 * Rates for the management API, from counters the hot path bumps: every `intervalMs` each
 * queue, exchange, connection, channel, vhost and the node is read into a row, and the
 * difference from its previous row gives its rates. Nothing happens per message; an
 * object's rows go with it (weakly held).
 */
export class Stats {
  private readonly samples = new WeakMap<object, Sample>();
  readonly nodeHistory = new History(TOTAL_FIELDS.length, HISTORY_SAMPLES);
  private timer: NodeJS.Timeout | null = null;
  private readonly node = {};
  /** Read into first, so that an object's row is only copied out when it is not all zeros. */
  private scratch = new Float64Array(0);

  constructor(
    private readonly broker: Broker,
    private readonly connections: ReadonlySet<Connection>,
    readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads every object once (the timer calls this; tests may too). */
  sample(now = Date.now()): void {
    const node = new Float64Array(TOTAL_FIELDS.length);
    // Deleted vhosts' counts stay in the node's, so its rates do not dip when one goes.
    addChannelCounters(this.broker.nodeCounters.channelsOfDeletedVhosts, node);
    for (const v of this.broker.vhosts.values()) {
      const row = this.totals(v);
      this.store(v, row, now);
      for (let i = 0; i < row.length; i++) node[i] += row[i];
      for (const q of v.queues.values()) this.record(q, QUEUE, q, now);
      for (const ex of v.exchanges.values()) this.record(ex, EXCHANGE, ex, now);
    }
    for (const c of this.connections) {
      this.record(c, CONNECTION, c, now);
      for (const ch of c.openChannels()) this.record(ch, CHANNEL, ch.countersNow(), now);
    }
    this.store(this.node, node, now);
    this.nodeHistory.push(now, node);
  }

  /** A vhost's totals now (TOTAL_FIELDS order), or the node's with no vhost given. */
  totals(v?: Vhost): Float64Array {
    const row = new Float64Array(TOTAL_FIELDS.length);
    const vhosts = v === undefined ? this.broker.vhosts.values() : [v];
    // The node's closed channels include those of vhosts deleted since.
    if (v === undefined) addChannelCounters(this.broker.nodeCounters.channelsOfDeletedVhosts, row);
    for (const vh of vhosts) {
      addChannelCounters(vh.retiredChannels, row);
      for (const q of vh.queues.values()) {
        row[TOTAL_DEPTH_AT] += q.messageCount + q.unackedCount;
        row[TOTAL_DEPTH_AT + 1] += q.messageCount;
        row[TOTAL_DEPTH_AT + 2] += q.unackedCount;
      }
    }
    for (const c of this.connections) {
      if (c.vhost === null || (v !== undefined && c.vhost !== v)) continue;
      for (const ch of c.openChannels()) addChannelCounters(ch.countersNow(), row);
      row[TOTAL_OCTETS_AT] += c.counters.recvBytes;
      row[TOTAL_OCTETS_AT + 1] += c.sentBytes;
    }
    return row;
  }

  /** An object's rates per second as of the last sample (zeros before its second one). */
  rates(key: object, width: number): Float64Array {
    return this.samples.get(key)?.rates ?? new Float64Array(width);
  }

  nodeRates(): Float64Array {
    return this.rates(this.node, TOTAL_FIELDS.length);
  }

  vhostRates(v: Vhost): Float64Array {
    return this.rates(v, TOTAL_FIELDS.length);
  }

  private record<T>(key: object, kind: Kind<T>, source: T, now: number): void {
    const width = kind.fields.length;
    if (this.scratch.length !== width) this.scratch = new Float64Array(width);
    const row = this.scratch;
    row.fill(0);
    kind.read(source, row);
    this.store(key, row, now);
  }

  /** Records `row` (which the caller may reuse afterwards: it is copied when kept). */
  private store(key: object, row: Float64Array, now: number): void {
    const prev = this.samples.get(key);
    if (prev === undefined) {
      const zero = zeroRow(row.length);
      this.samples.set(key, { values: allZero(row) ? zero : row.slice(), rates: zero, at: now });
      return;
    }
    const secs = (now - prev.at) / 1000;
    if (secs <= 0) return;
    let moved = false;
    for (let i = 0; i < row.length; i++) {
      if (row[i] !== prev.values[i]) {
        moved = true;
        break;
      }
    }
    if (moved) {
      let rates = prev.rates;
      if (isZeroRow(rates)) rates = prev.rates = new Float64Array(row.length);
      for (let i = 0; i < row.length; i++) {
        // Counters never go back, depths do: both are a change per second.
        rates[i] = Math.round(((row[i] - prev.values[i]) / secs) * 10) / 10;
      }
      if (allZero(row)) prev.values = zeroRow(row.length);
      else if (isZeroRow(prev.values)) prev.values = row.slice();
      else prev.values.set(row);
    } else if (!isZeroRow(prev.rates)) {
      // Nothing moved since the last sample: the rates are zero again.
      prev.rates = zeroRow(row.length);
    }
    prev.at = now;
  }
}

/** One read-only row of zeros per width, shared by every sample that is all zeros. */
const ZERO_ROWS: Float64Array[] = [];

function zeroRow(width: number): Float64Array {
  return (ZERO_ROWS[width] ??= new Float64Array(width));
}

function isZeroRow(row: Float64Array): boolean {
  return ZERO_ROWS[row.length] === row;
}

function allZero(row: Float64Array): boolean {
  for (let i = 0; i < row.length; i++) if (row[i] !== 0) return false;
  return true;
}
