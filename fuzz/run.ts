/**
 * The fuzzing run: rounds of fuzzing connections, and after each round the checks that
 * matter: the broker process lives, a well-behaved client still publishes and consumes,
 * and (at the end) the broker's memory is back near where it was after the first round.
 */
import amqp from 'amqplib';
import { subSeed } from './rng';
import { fuzzSession, type SessionResult } from './session';
import { connectionCount, externalTarget, rssOf, startLeveret, tidy, type Target } from './broker';

export interface FuzzOptions {
  /** frames to send in all (at least) */
  frames: number;
  seed: number;
  /** a broker to fuzz instead of starting one (amqp://user:pass@host:port) */
  uri?: string;
  /** its management port, for tidying up (only with uri) */
  httpPort?: number;
  /** frames per fuzzing connection after its handshake */
  framesPerConnection: number;
  connectionsPerRound: number;
  /** connections in flight at once */
  concurrency: number;
  mutationRate: number;
  /** wait for a probe's answer this long before calling the connection silent */
  timeoutMs: number;
  /**
   * Allowed growth of broker RSS from the end of the warm-up (the first tenth of the
   * rounds, at least one) to the end of the run, bytes. V8 grows its heap to the
   * working size of the load during the first rounds and keeps it; a leak keeps growing.
   */
  rssToleranceBytes: number;
  progress?: (line: string) => void;
}

export const DEFAULTS: FuzzOptions = {
  frames: 20_000,
  seed: 1,
  framesPerConnection: 50,
  connectionsPerRound: 200,
  concurrency: 48,
  mutationRate: 0.05,
  timeoutMs: 1500,
  rssToleranceBytes: 48 * 1024 * 1024,
};

export interface Finding {
  round: number;
  what: string;
  /** seeds of the connections of that round, to replay it */
  seeds?: number[];
}

export interface FuzzSummary {
  seed: number;
  frames: number;
  rounds: number;
  connections: number;
  seconds: number;
  /** how each fuzzing connection ended: alive, close <code>, dropped, silent */
  outcomes: Record<string, number>;
  /** channel.close reply codes the broker sent */
  channelCloses: Record<string, number>;
  /** mutated units sent, by kind */
  mutations: Record<string, number>;
  /** broker log lines by pino level (40 warn, 50 error, 60 fatal; text: not pino) */
  logLevels: Record<string, number>;
  /** broker RSS: after round 1, after the warm-up (the baseline), at the end, highest, after each round */
  rss: {
    first: number | null;
    baseline: number | null;
    warmupRounds: number;
    final: number | null;
    max: number | null;
    perRound: (number | null)[];
  };
  healthyChecks: number;
  findings: Finding[];
  errors: string[];
  ok: boolean;
}

const bump = (o: Record<string, number>, k: string, n = 1): void => {
  o[k] = (o[k] ?? 0) + n;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A separate, well-behaved client: declare, publish, consume one message, within 10 s. */
export async function healthyRoundTrip(url: string): Promise<string | null> {
  let conn: amqp.ChannelModel | null = null;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timed out'), 10_000)));
  const work = (async () => {
    conn = await amqp.connect(url);
    conn.on('error', () => {});
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const body = `healthy ${Date.now()}`;
    ch.sendToQueue(queue, Buffer.from(body));
    const got = await new Promise<string>((resolve) => void ch.consume(queue, (m) => m && resolve(m.content.toString()), { noAck: true }));
    if (got !== body) return `got ${got}`;
    await conn.close();
    conn = null;
    return null;
  })().catch((err: Error) => `failed: ${err.message}`);
  const r = await Promise.race([work, timeout]);
  clearTimeout(timer);
  if (conn !== null) (conn as amqp.ChannelModel).close().catch(() => {});
  return r;
}

/** Runs `n` tasks with at most `limit` in flight. */
async function pool<T>(n: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

/** Waits until the broker has let go of the fuzzing connections (at most `ms`). */
async function settle(t: Target, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const n = await connectionCount(t).catch(() => null);
    if (n === null || n === 0) return;
    await sleep(100);
  }
}

export async function runFuzz(opts: Partial<FuzzOptions> = {}): Promise<FuzzSummary> {
  const o: FuzzOptions = { ...DEFAULTS, ...opts };
  const log = o.progress ?? (() => {});
  const target = o.uri ? externalTarget(o.uri, o.httpPort ?? null) : await startLeveret();
  const started = Date.now();
  const s: FuzzSummary = {
    seed: o.seed,
    frames: 0,
    rounds: 0,
    connections: 0,
    seconds: 0,
    outcomes: {},
    channelCloses: {},
    mutations: {},
    logLevels: target.levels,
    rss: { first: null, baseline: null, warmupRounds: 1, final: null, max: null, perRound: [] },
    healthyChecks: 0,
    findings: [],
    errors: target.errors,
    ok: false,
  };
  try {
    const perRound = o.connectionsPerRound * (o.framesPerConnection + 6);
    // An estimate (a connection whose handshake goes wrong sends fewer): rounds go on until
    // the frames are sent, and two at least, so that there is a round after the first.
    const rounds = Math.max(2, Math.ceil(o.frames / perRound));
    s.rss.warmupRounds = Math.max(1, Math.floor(rounds / 10));
    for (let round = 1; (s.frames < o.frames || round <= 2) && s.findings.length === 0; round++) {
      const seeds = Array.from({ length: o.connectionsPerRound }, (_, i) => subSeed(o.seed, round, i));
      const results = await pool(seeds.length, o.concurrency, (i) =>
        fuzzSession({
          host: target.host,
          port: target.port,
          seed: seeds[i],
          frames: o.framesPerConnection,
          mutationRate: o.mutationRate,
          timeoutMs: o.timeoutMs,
        }).catch((err: Error): SessionResult => ({
          seed: seeds[i],
          framesSent: 0,
          outcome: `connect failed: ${err.message}`,
          channelCloses: [],
          kinds: [],
        })),
      );
      for (const r of results) {
        s.frames += r.framesSent;
        s.connections++;
        bump(s.outcomes, r.outcome);
        for (const c of r.channelCloses) bump(s.channelCloses, String(c));
        for (const k of r.kinds) bump(s.mutations, k);
        if (r.outcome.startsWith('handshake failed') || r.outcome.startsWith('connect failed') || r.outcome === 'close 541') {
          s.findings.push({ round, what: `connection seed ${r.seed}: ${r.outcome}`, seeds: [r.seed] });
        }
      }
      s.rounds = round;
      if (!target.alive()) {
        s.findings.push({ round, what: 'the broker process died', seeds });
        break;
      }
      const healthy = await healthyRoundTrip(target.url);
      s.healthyChecks++;
      if (healthy !== null) s.findings.push({ round, what: `the well-behaved client ${healthy}`, seeds });
      await tidy(target).catch((err: Error) => s.findings.push({ round, what: `tidying up over HTTP failed: ${err.message}` }));
      await settle(target, 5000);
      const rss = rssOf(target.pid);
      s.rss.perRound.push(rss);
      if (rss !== null) s.rss.max = Math.max(s.rss.max ?? 0, rss);
      if (round === 1) s.rss.first = rss;
      if (round === s.rss.warmupRounds) s.rss.baseline = rss;
      log(
        `round ${round} (of about ${rounds}): ${s.frames} frames, ${s.connections} connections, rss ${rss === null ? '-' : (rss / 1048576).toFixed(1) + ' MiB'}`,
      );
    }
    // Memory after the garbage collector has had time to run with nothing to do.
    await sleep(3000);
    s.rss.final = rssOf(target.pid);
    if (s.rss.baseline !== null && s.rss.final !== null && s.rss.final > s.rss.baseline + o.rssToleranceBytes) {
      s.findings.push({ round: s.rounds, what: `broker RSS grew from ${mib(s.rss.baseline)} to ${mib(s.rss.final)}` });
    }
    if (target.pid !== null && (target.levels['50'] ?? 0) + (target.levels['60'] ?? 0) > 0) {
      s.findings.push({
        round: s.rounds,
        what: `the broker logged ${(target.levels['50'] ?? 0) + (target.levels['60'] ?? 0)} error lines`,
      });
    }
  } finally {
    s.seconds = (Date.now() - started) / 1000;
    await target.stop();
  }
  s.ok = s.findings.length === 0;
  return s;
}

export function mib(n: number | null): string {
  return n === null ? '-' : `${(n / 1048576).toFixed(1)} MiB`;
}
