#!/usr/bin/env node
/**
 * Side-by-side comparison of Leveret and RabbitMQ on this machine: builds Leveret, then for
 * each scenario starts a fresh Leveret and a fresh RabbitMQ node (on free ports, temp
 * dirs), runs leveret-perf against each in turn with the broker's pid for RSS/CPU
 * sampling, stops it, and writes bench/RESULTS.md plus the raw JSON under bench/out/.
 * Scenario i (recovery) publishes a backlog, kills the broker with SIGKILL, restarts it on
 * the same data and times how long it takes to accept connections and to show the queue.
 *
 * Repetitions run in ABBA order; (a)-(e) also search the highest rate with p99 <= 10 ms; a
 * small summary of each run goes to bench/history/.
 *
 *   npm run bench:compare -- [--quick] [--duration S] [--scenarios a,b,...] [--backlog N]
 *                            [--repeat N] [--search-steps N] [--search-duration S] [--commit REV]
 *                            [--rabbit-uri URI [--rabbit-pid PID]] [--no-build]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Connection, parseUri } from './client';
import { sampleProc } from './proc';
import { CONSUMER_OPTS, SCENARIO_ARGS } from './scenarios';
import { INDEX_RECORD } from '../src/store/message-record';
import { ACK_RECORD } from '../src/store/ack-records';

const ROOT = resolve(__dirname, '..', '..', '..');
const BENCH = join(ROOT, 'bench');
const PERF = join(__dirname, 'perf.js');

// ====================================================================== options

const USAGE = `Usage: npm run bench:compare -- [options]

  --quick               3 s per scenario, a 100,000-message backlog, 3 rate-search steps
  --duration S          measured seconds per scenario and broker (default 10)
  --warmup S            seconds of load before measuring (default 1)
  --scenarios LIST      comma-separated subset of a,b,c,d,e,f,g,h,i,j,k,k2,l,m,n (default all)
  --backlog N           messages in scenarios g and i (default 1,000,000; 100,000 with --quick)
  --repeat N            run each scenario N times per broker in ABBA order, report the median run
  --search-steps N      rate-search runs per broker for (a)-(e): the highest rate with p99 <= 10 ms
                        (default 5, 3 with --quick; 0 skips the search)
  --search-duration S   measured seconds of each search run (default 3)
  --commit REV          benchmark Leveret as of this commit (git archive + tsc in a temp dir)
                        instead of the working tree
  --rabbit-uri URI      use an already running RabbitMQ instead of starting one (not for i)
  --rabbit-pid PID      its beam.smp pid (found from the listening port when omitted)
  --no-build            do not run npm run build first (the existing dist/ is used)
  --results FILE        where to write the report (default bench/RESULTS.md)
`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    scenarios: { type: 'string' },
    backlog: { type: 'string' },
    repeat: { type: 'string' },
    'search-steps': { type: 'string' },
    'search-duration': { type: 'string' },
    commit: { type: 'string' },
    'rabbit-uri': { type: 'string' },
    'rabbit-pid': { type: 'string' },
    'no-build': { type: 'boolean' },
    results: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const QUICK = !!values.quick;
const DURATION = Number(values.duration ?? (QUICK ? 3 : 10));
const WARMUP = Number(values.warmup ?? 1);
const BACKLOG = Number(values.backlog ?? (QUICK ? 100_000 : 1_000_000));
const REPEAT = Number(values.repeat ?? 1);
const SEARCH_STEPS = Number(values['search-steps'] ?? (QUICK ? 3 : 5));
const SEARCH_DURATION = Number(values['search-duration'] ?? 3);
/** The latency bound of the rate search (issue 14, point 5). */
const SEARCH_P99_MS = 10;
/**
 * What one queue writes per message in scenario n, for its target: a message routed to
 * several durable queues is stored once in the shared body log and each queue writes an
 * index record naming it (INDEX_RECORD, 21 bytes, src/store/message-record.ts), plus the two
 * 8-byte records of its ack file that every delivered-then-acked persistent message gets
 * (delivered, then ack; ACK_RECORD): 37 bytes. These are bytes appended; /proc write_bytes
 * counts whole 4 KiB pages dirtied, so each file synced in a group-commit round adds up to a
 * page per round on top.
 */
const INDEX_RECORD_BYTES = INDEX_RECORD + 2 * ACK_RECORD;
/** Scenario n's target: 1.2 KB (the 1 KB body once, with its framing) + 50 index records and their acks. */
const FANOUT_WRITE_TARGET_BYTES = Math.round(1.2 * 1024 + 50 * INDEX_RECORD_BYTES);
if (!Number.isInteger(REPEAT) || REPEAT < 1) {
  process.stderr.write(`compare: --repeat must be a positive integer\n${USAGE}`);
  process.exit(1);
}
/** A broker growing past this is stopped early (above RabbitMQ's own 40 % memory watermark). */
const RSS_LIMIT_MB = Math.round((totalmem() / 1048576) * 0.45);
const RESULTS = resolve(values.results ?? join(BENCH, 'RESULTS.md'));
for (const [name, v] of [
  ['duration', DURATION],
  ['warmup', WARMUP],
  ['backlog', BACKLOG],
  ['search-steps', SEARCH_STEPS],
  ['search-duration', SEARCH_DURATION],
] as const) {
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`compare: bad --${name}\n${USAGE}`);
    process.exit(1);
  }
}

// ====================================================================== scenarios

type Metric =
  | 'consumeRate'
  | 'p99'
  | 'rssPerConnection'
  | 'peakRss'
  | 'recoveryListenMs'
  | 'consumeMBps'
  | 'perQueueSpread'
  | 'cpuPercent'
  | 'writeBytesPerMessage';

interface Target {
  metric: Metric;
  text: string;
  /** Gets Leveret ÷ RabbitMQ (NaN when RabbitMQ's value is missing or 0) and both values. */
  pass: (ratio: number, leveret: number, rabbit: number | null) => boolean;
  higherIsBetter: boolean;
  /** Judged on Leveret's value alone: no RabbitMQ figure is needed. */
  absolute?: boolean;
}

interface Scenario {
  id: string;
  title: string;
  args: string[];
  /** The headline target (the summary's figure); `also` are further targets, all must pass. */
  target: Target;
  also?: Target[];
  /** Not a fixed-duration run. */
  untimed?: boolean;
  /** Measured seconds at least this long whatever --duration says (k2: a 64 MiB message takes a while). */
  minDuration?: number;
  /** Warm-up seconds at least this long (m: let 10,000 fresh connections settle, and span a heartbeat interval). */
  minWarmup?: number;
  /** Seconds the tool may spend setting up before the measured run (scenario m opens 10,000 connections). */
  setupAllowance?: number;
  /** Throughput scenarios (a)-(e): also search the highest rate with p99 ≤ 10 ms; `fanout` copies per message. */
  search?: { fanout: number };
  /** Runs its own sequence instead of one leveret-perf run (scenario i). */
  custom?: (
    s: Scenario,
    which: 'Leveret' | 'RabbitMQ',
    rabbitUri: string | undefined,
  ) => Promise<{ result: PerfResult | null; error: string | null }>;
}

const consumerOpts = CONSUMER_OPTS;
const RECOVERY_QUEUE = 'bench-recovery';
const RECOVERY_DRAIN_ARGS = [
  '--consume-only',
  '--queue',
  RECOVERY_QUEUE,
  '--exchange',
  '',
  '--durable-queue',
  ...consumerOpts,
  '--max-time',
  '1800',
];
/** How long a restarted broker may take to listen, and then to show the whole queue. */
const RECOVERY_TIMEOUT_MS = 900_000;
const throughput = {
  metric: 'consumeRate' as const,
  text: 'consumed msg/s ≥ 3× RabbitMQ',
  pass: (r: number) => r >= 3,
  higherIsBetter: true,
};

const SCENARIOS: Scenario[] = [
  {
    id: 'a',
    title: '1 producer → 1 consumer, 16 B transient, prefetch 1000, multi-ack every 100',
    args: SCENARIO_ARGS.a,
    target: throughput,
    search: { fanout: 1 },
  },
  {
    id: 'b',
    title: '1 producer → 1 consumer, 1 KB transient, prefetch 1000, multi-ack every 100',
    args: SCENARIO_ARGS.b,
    target: throughput,
    search: { fanout: 1 },
  },
  {
    id: 'c',
    title: '1 → 1, 1 KB persistent, confirms (window 256), durable queue',
    args: SCENARIO_ARGS.c,
    target: throughput,
    search: { fanout: 1 },
  },
  {
    id: 'd',
    title: 'fanout 1 → 50 queues, one consumer (connection) per queue, 16 B',
    args: SCENARIO_ARGS.d,
    target: throughput,
    search: { fanout: 50 },
  },
  {
    id: 'e',
    title: 'topic exchange with 10,000 bindings; 1,000 routing keys, each matching one binding; 16 B',
    args: SCENARIO_ARGS.e,
    target: throughput,
    search: { fanout: 1 },
  },
  {
    id: 'f',
    title: '1,000 idle connections, each with a channel and a consumer on its own queue',
    args: ['--producers', '0', '--consumers', '0', '--idle-connections', '1000'],
    target: { metric: 'rssPerConnection', text: 'RSS per connection ≤ ½ RabbitMQ', pass: (r) => r <= 0.5, higherIsBetter: false },
  },
  {
    id: 'g',
    title: `backlog: ${BACKLOG.toLocaleString('en-US')} × 1 KB persistent into a durable queue (confirms, window 256), then drained`,
    args: [
      '--producers',
      '1',
      '--consumers',
      '1',
      '--backlog',
      String(BACKLOG),
      '--size',
      '1024',
      '--persistent',
      '--confirm',
      '256',
      '--durable-queue',
      ...consumerOpts,
      '--max-time',
      '1800',
    ],
    target: { metric: 'peakRss', text: 'peak RSS ≤ ½ RabbitMQ', pass: (r) => r <= 0.5, higherIsBetter: false },
    untimed: true,
  },
  {
    id: 'h',
    title: 'latency at a fixed 5,000 msg/s, 1 → 1, 16 B',
    args: SCENARIO_ARGS.h,
    target: { metric: 'p99', text: 'p99 latency ≤ ½ RabbitMQ', pass: (r) => r <= 0.5, higherIsBetter: false },
  },
  {
    id: 'i',
    title: `recovery: ${BACKLOG.toLocaleString('en-US')} × 1 KB persistent in a durable queue, broker killed (SIGKILL) and restarted, then drained`,
    // The two leveret-perf runs around the kill; see runRecovery.
    args: [
      '--publish-only',
      String(BACKLOG),
      '--size',
      '1024',
      '--persistent',
      '--confirm',
      '256',
      '--durable-queue',
      '--queue',
      RECOVERY_QUEUE,
      '--exchange',
      '',
      '--max-time',
      '1800',
    ],
    target: {
      metric: 'recoveryListenMs',
      text: '≤ 3 s to accepting connections (and below RabbitMQ)',
      pass: (r, l) => l <= 3000 && r < 1,
      higherIsBetter: false,
    },
    untimed: true,
    custom: (s, which, rabbitUri) => runRecovery(s, which, rabbitUri),
  },
  {
    id: 'j',
    title: 'latency under load: a fixed 50,000 msg/s, 1 → 1, 16 B',
    args: SCENARIO_ARGS.j,
    target: { metric: 'p99', text: 'p99 latency ≤ ½ RabbitMQ and ≤ 2 ms', pass: (r, l) => r <= 0.5 && l <= 2, higherIsBetter: false },
  },
  {
    id: 'k',
    title: 'large messages: 1 → 1, 1 MiB bodies, prefetch 50, multi-ack every 10',
    args: SCENARIO_ARGS.k,
    target: { metric: 'consumeMBps', text: 'consumed MB/s ≥ 3× RabbitMQ', pass: (r) => r >= 3, higherIsBetter: true },
  },
  {
    id: 'k2',
    title: 'large messages: 1 → 1, 64 MiB bodies, confirms (window 4), prefetch 4',
    args: SCENARIO_ARGS.k2,
    minDuration: 10,
    target: { metric: 'consumeMBps', text: 'consumed MB/s ≥ 3× RabbitMQ', pass: (r) => r >= 3, higherIsBetter: true },
  },
  {
    id: 'l',
    title: 'many queues: 100 producers → 100 queues → 100 consumers (producer i feeds queue i), 16 B',
    args: SCENARIO_ARGS.l,
    target: throughput,
    also: [
      {
        metric: 'perQueueSpread',
        text: 'per-queue consumed rates within 20 % of each other',
        pass: (_r, l) => l <= 20,
        higherIsBetter: false,
        absolute: true,
      },
    ],
  },
  {
    id: 'm',
    title: '10,000 connections, each with a channel, a consumer on its own queue and 1 publish/s to it, heartbeat 10 s, 16 B',
    args: SCENARIO_ARGS.m,
    minDuration: 20,
    minWarmup: 10,
    target: { metric: 'cpuPercent', text: 'broker CPU ≤ ⅓ RabbitMQ', pass: (r) => r <= 1 / 3, higherIsBetter: false },
    also: [{ metric: 'peakRss', text: 'broker peak RSS ≤ ⅓ RabbitMQ', pass: (r) => r <= 1 / 3, higherIsBetter: false }],
    setupAllowance: 1200,
  },
  {
    id: 'n',
    title: 'fanout 1 → 50 durable queues, 1 KB persistent, confirms (window 256): storage writes per message',
    args: SCENARIO_ARGS.n,
    target: {
      metric: 'writeBytesPerMessage',
      text: `bytes written per message ≤ 1.2 KB + 50 × ${INDEX_RECORD_BYTES} B (index record, delivered and ack records) = ${FANOUT_WRITE_TARGET_BYTES.toLocaleString('en-US')} B`,
      pass: (_r, l) => l <= FANOUT_WRITE_TARGET_BYTES,
      higherIsBetter: false,
      absolute: true,
    },
  },
];

const selected = values.scenarios ? values.scenarios.split(',').map((s) => s.trim().toLowerCase()) : SCENARIOS.map((s) => s.id);
for (const id of selected) {
  if (!SCENARIOS.some((s) => s.id === id)) {
    process.stderr.write(`compare: unknown scenario ${id}\n${USAGE}`);
    process.exit(1);
  }
}

// ====================================================================== helpers

function log(line: string): void {
  process.stderr.write(line + '\n');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolvePort(port));
    });
    srv.on('error', reject);
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids whose command line contains every one of `needles`. */
function findPids(...needles: string[]): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').join(' ');
      if (needles.every((n) => cmd.includes(n))) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** The pid listening on a TCP port, from `ss`. */
function pidListeningOn(port: number): number | null {
  const r = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : null;
}

/** Runs a command with the open-files limit raised to the hard limit (for 1,000 connections). */
const RAISE_NOFILE = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null; exec "$@"';

/**
 * The file system type of the mount holding `path`, from /proc/mounts (the longest mount
 * point that is a prefix of it): tmpfs would make fsync free, so RESULTS.md names it.
 */
function fsTypeOf(path: string): string {
  try {
    let best = '';
    let type = '?';
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mnt, fstype] = line.split(' ');
      if (!mnt) continue;
      const m = mnt.replace(/\\040/g, ' ');
      if ((path === m || path.startsWith(m.endsWith('/') ? m : m + '/')) && m.length >= best.length) {
        best = m;
        type = fstype;
      }
    }
    return type;
  } catch {
    return '?';
  }
}

function tail(file: string, bytes = 3000): string {
  try {
    const s = readFileSync(file, 'utf8');
    return s.slice(-bytes);
  } catch {
    return '';
  }
}

// ====================================================================== brokers

interface RunningBroker {
  name: 'Leveret' | 'RabbitMQ';
  /** Where it keeps its data (null: not started by us). */
  dataDir: string | null;
  uri: string;
  port: number;
  /** Management API with credentials (Leveret: its HTTP port), or null when it has none. */
  mgmt?: string;
  pid: number | null;
  /** performance.now() when the broker's start command was spawned (null: not started by us). */
  spawnedAt: number | null;
  /** Milliseconds from spawning the broker's start command to its AMQP port accepting a TCP connection. */
  listenMs: number | null;
  /** The broker's log (Leveret: its stdout/stderr; RabbitMQ: the start script's output). */
  logFile: string | null;
  /** Stops it politely and removes its temp dir (unless keepDir). */
  stop(keepDir?: boolean): Promise<void>;
  /** SIGKILL (RabbitMQ: beam.smp), keeping the data directory; resolves once it is gone. */
  kill9(): Promise<void>;
  /** Starts it again on the same data directory and ports (after kill9). */
  restart(timeoutMs: number): Promise<RunningBroker>;
}

const cleanups = new Set<() => void>();

/** The Leveret that is benchmarked: a private copy, so that rebuilds of dist/ by others during the run do not change it. */
let LEVERET_CLI = join(ROOT, 'dist', 'cli.js');

/** Polls the port every 10 ms until it accepts a connection; returns ms since t0, or throws. */
async function waitForPort(port: number, t0: number, timeoutMs: number, exited: () => string | null): Promise<number> {
  for (;;) {
    if (await canConnect(port)) return performance.now() - t0;
    const gone = exited();
    if (gone !== null) throw new Error(gone);
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`port ${port} did not accept connections within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(10);
  }
}

interface LeveretPlace {
  dir: string;
  port: number;
  httpPort: number;
}

async function startLeveret(place?: LeveretPlace, timeoutMs = 30_000): Promise<RunningBroker> {
  const dir = place?.dir ?? mkdtempSync(join(tmpdir(), 'leveret-bench-'));
  const port = place?.port ?? (await freePort());
  const httpPort = place?.httpPort ?? (await freePort());
  const logFile = join(dir, 'leveret.log');
  const logStart = existsSync(logFile) ? readFileSync(logFile).length : 0;
  const fd = openSync(logFile, 'a');
  const t0 = performance.now();
  const child = spawn(
    'sh',
    [
      '-c',
      RAISE_NOFILE,
      'sh',
      process.execPath,
      LEVERET_CLI,
      '--port',
      String(port),
      '--http-port',
      String(httpPort),
      '--data-dir',
      join(dir, 'data'),
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  const exit: Promise<void> = new Promise((r) => child.once('exit', () => r()));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  cleanups.add(kill);
  const ownLog = (): string => readFileSync(logFile, 'utf8').slice(logStart);
  let listenMs: number;
  try {
    listenMs = await waitForPort(port, t0, timeoutMs, () =>
      child.exitCode !== null ? `Leveret exited with ${child.exitCode} during start:\n${tail(logFile)}` : null,
    );
    // The port could in theory belong to someone else: make sure this Leveret says it is listening.
    const t = Date.now();
    while (!ownLog().includes('listening')) {
      if (Date.now() - t > 5000) throw new Error(`port ${port} accepts connections but Leveret did not log "listening":\n${tail(logFile)}`);
      await sleep(20);
    }
  } catch (err) {
    kill();
    await exit;
    cleanups.delete(kill);
    if (!place) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const b: RunningBroker & { storeRecovered: Record<string, unknown> | null } = {
    name: 'Leveret',
    dataDir: join(dir, 'data'),
    uri: `amqp://guest:guest@127.0.0.1:${port}/%2f`,
    mgmt: `http://guest:guest@127.0.0.1:${httpPort}`,
    port,
    pid: child.pid!,
    spawnedAt: t0,
    listenMs,
    logFile,
    storeRecovered: null,
    async stop(keepDir = false) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = Date.now();
        while (child.exitCode === null && child.signalCode === null && Date.now() - t < 10_000) await sleep(50);
        if (child.exitCode === null && child.signalCode === null) {
          log('compare: Leveret did not stop within 10 s of SIGTERM; killing it');
          kill();
          await exit;
        }
      }
      cleanups.delete(kill);
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
    async kill9() {
      kill();
      await exit;
      cleanups.delete(kill);
    },
    restart(ms: number) {
      return startLeveret({ dir, port, httpPort }, ms);
    },
  };
  // {"level":30,...,"messages":N,"ms":M,"msg":"store recovered"}
  const line = ownLog()
    .split('\n')
    .find((l) => l.includes('"store recovered"'));
  if (line) {
    try {
      b.storeRecovered = JSON.parse(line);
    } catch {
      // not JSON: leave it out
    }
  }
  return b;
}

function rabbitServerBin(): string {
  for (const p of ['/usr/lib/rabbitmq/bin/rabbitmq-server', '/usr/local/sbin/rabbitmq-server', '/usr/sbin/rabbitmq-server'])
    if (existsSync(p)) return p;
  return 'rabbitmq-server';
}
function rabbitCtlBin(): string {
  for (const p of ['/usr/lib/rabbitmq/bin/rabbitmqctl', '/usr/local/sbin/rabbitmqctl', '/usr/sbin/rabbitmqctl'])
    if (existsSync(p)) return p;
  return 'rabbitmqctl';
}

interface RabbitPlace {
  dir: string;
  port: number;
  distPort: number;
  node: string;
}

/** Whether epmd still lists `node` (its short name). */
function epmdLists(node: string): boolean {
  const names = spawnSync('epmd', ['-names'], { encoding: 'utf8' }).stdout ?? '';
  return new RegExp(`^name ${node.split('@')[0]} at port`, 'm').test(names);
}

async function startRabbit(place?: RabbitPlace, timeoutMs = 90_000): Promise<RunningBroker> {
  const dir = place?.dir ?? mkdtempSync(join(tmpdir(), 'rabbit-bench-'));
  const port = place?.port ?? (await freePort());
  let distPort = place?.distPort ?? (await freePort());
  while (distPort === port) distPort = await freePort();
  const node = place?.node ?? `bench${process.pid}@localhost`;
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The Erlang cookie is created in (and read from) $HOME: keep it in the temp dir.
    HOME: dir,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODENAME: node,
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_DIST_PORT: String(distPort),
    // No config file: stock settings (and /etc/rabbitmq/rabbitmq.conf, if any, is not read).
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
  };
  const epmdBefore = findPids('epmd').length > 0;
  const logFile = join(dir, 'startup.log');
  const fd = openSync(logFile, 'a');
  const t0 = performance.now();
  const child = spawn('sh', ['-c', RAISE_NOFILE, 'sh', rabbitServerBin()], { cwd: dir, env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  let beam: number | null = null;
  const killAll = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    if (beam && alive(beam)) process.kill(beam, 'SIGKILL');
  };
  cleanups.add(killAll);
  let listenMs: number;
  try {
    listenMs = await waitForPort(port, t0, timeoutMs, () =>
      child.exitCode !== null ? `RabbitMQ exited with ${child.exitCode} during start:\n${tail(logFile)}` : null,
    );
  } catch (err) {
    killAll();
    cleanups.delete(killAll);
    if (!place) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  beam = findPids('beam.smp', `-home ${dir}`)[0] ?? pidListeningOn(port);
  if (!beam) log('compare: warning: cannot find the RabbitMQ beam.smp pid; no RSS/CPU for it');
  const epmdCleanup = (): void => {
    // An epmd we caused to start, that no node uses any more, goes too.
    if (!epmdBefore) {
      const names = spawnSync('epmd', ['-names'], { encoding: 'utf8' }).stdout ?? '';
      if (!/name \S+ at port/.test(names)) for (const pid of findPids('epmd')) process.kill(pid, 'SIGTERM');
    }
  };
  return {
    name: 'RabbitMQ',
    dataDir: join(dir, 'mnesia'),
    uri: `amqp://guest:guest@127.0.0.1:${port}/%2f`,
    port,
    pid: beam,
    spawnedAt: t0,
    listenMs,
    logFile,
    async stop(keepDir = false) {
      spawnSync(rabbitCtlBin(), ['-n', node, 'stop'], { env, cwd: dir, stdio: 'ignore', timeout: 60_000 });
      const t = Date.now();
      while (((beam && alive(beam)) || child.exitCode === null) && Date.now() - t < 30_000) await sleep(100);
      if ((beam && alive(beam)) || child.exitCode === null) {
        log('compare: RabbitMQ did not stop within 30 s of rabbitmqctl stop; killing it');
        killAll();
        await sleep(500);
      }
      cleanups.delete(killAll);
      epmdCleanup();
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
    async kill9() {
      if (beam && alive(beam)) process.kill(beam, 'SIGKILL');
      const t = Date.now();
      while (((beam && alive(beam)) || child.exitCode === null) && Date.now() - t < 10_000) await sleep(20);
      // Whatever the start script left behind (erl_child_setup, inet_gethost) goes too.
      killAll();
      cleanups.delete(killAll);
      // The node name must be free in epmd before the node can start again.
      while (epmdLists(node) && Date.now() - t < 20_000) await sleep(50);
    },
    restart(ms: number) {
      return startRabbit({ dir, port, distPort, node }, ms);
    },
  };
}

function externalRabbit(uri: string, pid: number | null): RunningBroker {
  const port = Number(new URL(uri).port || 5672);
  const no = (): never => {
    throw new Error('scenario i needs a RabbitMQ started by the script (not --rabbit-uri)');
  };
  return {
    name: 'RabbitMQ',
    dataDir: null,
    uri,
    port,
    pid: pid ?? pidListeningOn(port),
    spawnedAt: null,
    listenMs: null,
    logFile: null,
    async stop() {},
    kill9: async () => no(),
    restart: async () => no(),
  };
}

process.on('SIGINT', () => {
  log('compare: interrupted; stopping brokers');
  for (const c of cleanups) c();
  process.exit(130);
});
process.on('exit', () => {
  for (const c of cleanups) c();
});

// ====================================================================== running the tool

type PerfResult = Record<string, any>;

interface Outcome {
  broker: 'Leveret' | 'RabbitMQ';
  result: PerfResult | null;
  error: string | null;
  /** 1-minute load average just before the run. */
  loadBefore: number;
  /** 1, 5 and 15-minute load averages just before the run. */
  loadAvgBefore: number[];
  /** File system of the broker's data directory. */
  fsType: string;
  /** (a)-(e): the highest rate sustained with p99 ≤ SEARCH_P99_MS, from the rate search after the run. */
  sustained?: Sustained | null;
  /** With --repeat: the target metric of every run (null for failed ones), in run order. */
  runs?: (number | null)[];
  /** With --repeat: every run's sustained consumed rate, load averages and file system, in run order. */
  sustainedRuns?: (number | null)[];
  loads?: number[][];
  fsTypes?: string[];
}

interface Sustained {
  /** Publish rate (--rate) of the highest passing step, msg/s (0: none passed). */
  rate: number;
  /** Consumed msg/s at that step (null: none passed). */
  consumeRate: number | null;
  p99Ms: number | null;
  steps: { rate: number; consumeRate: number | null; p99Ms: number | null; ok: boolean; error?: string }[];
}

/** The run whose target metric is the median (the lower middle one for an even count). */
function medianOutcome(s: Scenario, runs: Outcome[]): Outcome {
  const ok = runs.filter((r) => r.result && metric(r.result, s.target.metric) !== null);
  const values = runs.map((r) => metric(r.result, s.target.metric));
  const extra: Partial<Outcome> = {
    runs: values,
    loads: runs.map((r) => r.loadAvgBefore),
    fsTypes: runs.map((r) => r.fsType),
  };
  // The sustained rate's median is taken on its own, over the runs that searched.
  const searched = runs.filter((r) => r.sustained).map((r) => r.sustained!);
  if (searched.length > 0) {
    extra.sustainedRuns = runs.map((r) => r.sustained?.consumeRate ?? null);
    searched.sort((x, y) => (x.consumeRate ?? 0) - (y.consumeRate ?? 0));
    extra.sustained = searched[Math.floor((searched.length - 1) / 2)];
  }
  if (ok.length === 0) return { ...runs[runs.length - 1], ...extra };
  ok.sort((x, y) => metric(x.result, s.target.metric)! - metric(y.result, s.target.metric)!);
  return { ...ok[Math.floor((ok.length - 1) / 2)], ...extra };
}

function runPerf(
  scenario: Scenario,
  broker: RunningBroker,
  perfArgs = scenario.args,
  duration = Math.max(DURATION, scenario.minDuration ?? 0),
  quiet = false,
): Promise<{ result: PerfResult | null; error: string | null }> {
  const args = [PERF, '--uri', broker.uri, '--json', ...perfArgs];
  const warmup = Math.max(WARMUP, scenario.minWarmup ?? 0);
  if (!scenario.untimed) args.push('--duration', String(duration), '--warmup', String(warmup));
  if (broker.pid) args.push('--pid', String(broker.pid), '--rss-limit', String(RSS_LIMIT_MB));
  if (broker.mgmt !== undefined) args.push('--mgmt', broker.mgmt);
  if (quiet) args.push('--quiet');
  const timeoutMs = (scenario.untimed ? 1900 : duration + warmup + 180 + (scenario.setupAllowance ?? 0)) * 1000;
  return new Promise((res) => {
    const child: ChildProcess = spawn('sh', ['-c', RAISE_NOFILE, 'sh', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errTail = '';
    let pendingLine = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      const s = d.toString();
      errTail = (errTail + s).slice(-4000);
      const lines = (pendingLine + s).split('\n');
      pendingLine = lines.pop()!;
      for (const l of lines) process.stderr.write(`  ${broker.name.padEnd(8)} ${scenario.id} | ${l}\n`);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        try {
          return res({ result: JSON.parse(out), error: null });
        } catch {
          return res({ result: null, error: `unparsable output: ${out.slice(0, 500)}` });
        }
      }
      const lastErr = errTail
        .split('\n')
        .filter((l) => l.includes('ERROR') || l.includes('Error'))
        .pop();
      res({ result: null, error: `leveret-perf exited with ${signal ?? code}${lastErr ? `: ${lastErr.trim()}` : ''}` });
    });
  });
}

// ====================================================================== rate search (a)-(e)

/**
 * The highest publish rate the broker sustains with p99 ≤ SEARCH_P99_MS, on the broker of
 * the flat-out run just made: short --rate runs, bisecting between 0 and 1.2× what the
 * flat-out run delivered (consumed ÷ copies per message), starting at half of it. A step passes when p99 is within the bound
 * and the consumers kept up (consumed ≥ 95 % of rate × copies per message).
 */
async function searchRate(s: Scenario, broker: RunningBroker, flat: PerfResult): Promise<Sustained | null> {
  const fanout = s.search!.fanout;
  // What the flat-out run delivered, per published message. Not its publish rate: that counts
  // writes into socket buffers, and is 0 in a window where the broker held the publisher back.
  const delivered = (flat.consumeRate ?? 0) / fanout;
  if (!(delivered > 0)) return null;
  let lo = 0;
  let hi = delivered * 1.2;
  let rate = delivered / 2;
  const out: Sustained = { rate: 0, consumeRate: null, p99Ms: null, steps: [] };
  for (let step = 0; step < SEARCH_STEPS; step++) {
    // Round to 2 significant digits: finer steps are below the run-to-run noise.
    const mag = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 1);
    const r = Math.max(1, Math.round(rate / mag) * mag);
    const { result, error } = await runPerf(s, broker, [...s.args, '--rate', String(r)], SEARCH_DURATION, true);
    const p99 = result?.latencyMs?.p99 ?? null;
    const consumed = result?.consumeRate ?? null;
    const ok = !!result && p99 !== null && p99 <= SEARCH_P99_MS && consumed !== null && consumed >= 0.95 * r * fanout;
    out.steps.push({ rate: r, consumeRate: consumed, p99Ms: p99, ok, ...(error ? { error } : {}) });
    log(
      `compare: ${broker.name} ${s.id} rate search: ${r.toLocaleString('en-US')} msg/s -> consumed ${consumed === null ? '–' : Math.round(consumed).toLocaleString('en-US')}/s, p99 ${p99 === null ? '–' : p99.toFixed(2)} ms: ${ok ? 'ok' : 'too much'}`,
    );
    if (ok && r > out.rate) {
      out.rate = r;
      out.consumeRate = consumed;
      out.p99Ms = p99;
    }
    if (ok) lo = r;
    else hi = r;
    rate = (lo + hi) / 2;
  }
  return out;
}

// ====================================================================== scenario i: recovery

const round1 = (n: number | null | undefined): number | null => (n === null || n === undefined ? null : Math.round(n * 10) / 10);
const fmtSec = (ms: number | null | undefined): string => (ms === null || ms === undefined ? '–' : `${(ms / 1000).toFixed(2)} s`);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        res(v);
      },
      (e) => {
        clearTimeout(timer);
        rej(e);
      },
    );
  });
}

interface QueueWait {
  /** ms from t0 to the passive declare that first showed at least `n` messages (null: never). */
  readyMs: number | null;
  /** ms from t0 to the first passive declare-ok of any count. */
  firstDeclareOkMs: number | null;
  /** The last message count seen. */
  count: number | null;
  polls: number;
  lastError: string | null;
}

/**
 * Polls `queue.declare(passive)` until the queue shows at least `n` messages. A failing
 * connection or channel is replaced; a count that stays below `n` for 30 s ends the wait.
 */
async function waitForQueue(uri: string, queue: string, n: number, t0: number, timeoutMs: number): Promise<QueueWait> {
  const u = parseUri(uri);
  let conn: Connection | null = null;
  let ch = 0;
  const w: QueueWait = { readyMs: null, firstDeclareOkMs: null, count: null, polls: 0, lastError: null };
  let countSince = 0;
  while (performance.now() - t0 < timeoutMs) {
    w.polls++;
    try {
      if (!conn || !conn.alive) {
        let timedOut = false;
        const p = Connection.connect(u, 'recovery-probe');
        p.then(
          (c) => {
            if (timedOut) c.destroy();
          },
          () => {},
        );
        try {
          conn = await withTimeout(p, 10_000, 'connect');
        } catch (err) {
          timedOut = true;
          throw err;
        }
        conn.onFatal = () => {};
        ch = await withTimeout(conn.openChannel(), 10_000, 'channel.open');
      }
      const ok = await withTimeout(conn.queueDeclare(ch, queue, { passive: true }), 60_000, 'queue.declare');
      const now = performance.now() - t0;
      w.firstDeclareOkMs ??= now;
      if (ok.messageCount !== w.count) {
        w.count = ok.messageCount;
        countSince = now;
      }
      if (ok.messageCount >= n) {
        w.readyMs = now;
        break;
      }
      if (now - countSince > 30_000) {
        w.lastError = `the queue has shown ${ok.messageCount} of ${n} messages for 30 s`;
        break;
      }
    } catch (err) {
      w.lastError = (err as Error).message;
      conn?.destroy();
      conn = null;
    }
    await sleep(20);
  }
  if (conn) await conn.close(2000);
  return w;
}

/**
 * Scenario i: publish N persistent messages with confirms into a durable queue, SIGKILL the
 * broker, start it again on the same data directory, time it to accepting connections and
 * to the queue showing all N messages, sample its RSS, then drain the queue.
 */
async function runRecovery(
  s: Scenario,
  which: 'Leveret' | 'RabbitMQ',
  rabbitUri: string | undefined,
): Promise<{ result: PerfResult | null; error: string | null }> {
  if (which === 'RabbitMQ' && rabbitUri)
    return { result: null, error: 'scenario i needs a RabbitMQ started by the script (not --rabbit-uri)' };
  const start = (): Promise<RunningBroker> => (which === 'Leveret' ? startLeveret() : startRabbit());
  let broker: RunningBroker | null = null;
  /** The killed broker, until its restart is up (its stop() removes the data directory). */
  let killed: RunningBroker | null = null;
  const rec: Record<string, unknown> = { messages: BACKLOG };
  const result: PerfResult = { recovery: rec };
  try {
    broker = await start();
    rec.emptyStartListenMs = round1(broker.listenMs);
    log(
      `compare: ${which} up at ${broker.uri.replace(/\/\/[^@]*@/, '//')} (pid ${broker.pid ?? '?'}), ${fmtSec(broker.listenMs)} to accepting connections; publishing ${BACKLOG.toLocaleString('en-US')} messages`,
    );
    const pub = await runPerf(s, broker, s.args);
    if (!pub.result) return { result: null, error: `publishing: ${pub.error}` };
    result.publish = pub.result;
    result.broker = pub.result.broker;
    rec.published = pub.result.published;
    rec.confirmed = pub.result.confirmed;
    rec.nacked = pub.result.nacked;
    rec.publishRate = pub.result.publishRate;
    rec.publishSeconds = pub.result.elapsedSeconds;
    rec.publishPeakRssBytes = pub.result.brokerProcess?.peakRssBytes ?? null;
    if (pub.result.interrupted) return { result, error: `publishing ended early: ${pub.result.stopReason}` };
    // What the broker says it holds just before the kill.
    const before = await waitForQueue(broker.uri, RECOVERY_QUEUE, BACKLOG, performance.now(), 60_000);
    rec.countBeforeKill = before.count;
    rec.rssBeforeKillBytes = broker.pid ? (sampleProc(broker.pid)?.rss ?? null) : null;
    log(
      `compare: ${which} holds ${before.count ?? '?'} messages, RSS ${fmtMB(rec.rssBeforeKillBytes as number | null)}; kill -9 ${broker.pid}`,
    );
    await broker.kill9();
    killed = broker;
    broker = null;
    broker = await killed.restart(RECOVERY_TIMEOUT_MS);
    killed = null;
    // broker.listenMs is from spawning the start command to the port accepting a connection.
    rec.listenMs = round1(broker.listenMs);
    const t0 = broker.spawnedAt!;
    const w = await waitForQueue(broker.uri, RECOVERY_QUEUE, BACKLOG, t0, RECOVERY_TIMEOUT_MS);
    rec.readyMs = round1(w.readyMs);
    rec.firstDeclareOkMs = round1(w.firstDeclareOkMs);
    rec.recoveredCount = w.count;
    rec.probePolls = w.polls;
    if (w.readyMs === null) rec.probeError = w.lastError;
    rec.rssAfterRecoveryBytes = broker.pid ? (sampleProc(broker.pid)?.rss ?? null) : null;
    rec.hwmAfterRecoveryBytes = broker.pid ? (sampleProc(broker.pid)?.hwm ?? null) : null;
    const sr = (broker as { storeRecovered?: Record<string, unknown> | null }).storeRecovered;
    if (sr) rec.storeRecovered = { messages: sr.messages ?? null, ms: sr.ms ?? null };
    log(
      `compare: ${which} restarted: ${fmtSec(broker.listenMs)} to accepting connections, ` +
        `${w.readyMs === null ? `queue not complete (${w.lastError})` : `${fmtSec(w.readyMs)} to the queue showing ${w.count} messages`}` +
        `; RSS ${fmtMB(rec.rssAfterRecoveryBytes as number | null)}${sr ? `; Leveret's log: store recovered ${String(sr.messages)} messages in ${String(sr.ms)} ms` : ''}`,
    );
    if (w.count === null || w.count === 0) return { result, error: `after the restart the queue is not usable: ${w.lastError}` };
    const drain = await runPerf(s, broker, RECOVERY_DRAIN_ARGS);
    if (!drain.result) return { result, error: `draining: ${drain.error}` };
    result.drain = drain.result;
    rec.drained = drain.result.consumed;
    rec.drainRate = drain.result.consumeRate;
    rec.drainSeconds = drain.result.elapsedSeconds;
    rec.drainPeakRssBytes = drain.result.brokerProcess?.peakRssBytes ?? null;
    result.brokerProcess = drain.result.brokerProcess;
    result.toolProcess = drain.result.toolProcess;
    result.consumeRate = drain.result.consumeRate;
    result.publishRate = pub.result.publishRate;
    result.loadAverage = drain.result.loadAverage;
    if (drain.result.interrupted) return { result, error: `draining ended early: ${drain.result.stopReason}` };
    return { result, error: null };
  } catch (err) {
    return { result: Object.keys(rec).length > 1 ? result : null, error: (err as Error).message };
  } finally {
    if (broker) await broker.stop();
    else if (killed) await killed.stop();
  }
}

// ====================================================================== report

function machine(): Record<string, string | number> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? '?';
  const mem = /MemTotal:\s*(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  const git = (args: string[]): string => (spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout ?? '').trim();
  const dirty = git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length;
  return {
    cpu: model,
    cores: cpus().length,
    memory: mem ? `${(Number(mem[1]) / 1048576).toFixed(1)} GiB` : `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    node: process.version,
    head: git(['rev-parse', '--short', 'HEAD']) + (dirty ? ` (+${dirty} uncommitted change${dirty === 1 ? '' : 's'} in src/)` : ''),
  };
}

const fmtInt = (n: number | null | undefined): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number | null | undefined): string =>
  n === null || n === undefined ? '–' : n >= 100 ? `${n.toFixed(0)} ms` : `${n.toFixed(2)} ms`;
const fmtMB = (b: number | null | undefined): string => (b === null || b === undefined ? '–' : `${(b / 1048576).toFixed(1)} MB`);
const fmtKB = (b: number | null | undefined): string => (b === null || b === undefined ? '–' : `${(b / 1024).toFixed(1)} kB`);
const fmtRatio = (r: number | null): string => (r === null || !Number.isFinite(r) ? '–' : `${r.toFixed(2)}×`);

function fmtTarget(m: Metric, v: number | null): string {
  switch (m) {
    case 'consumeRate':
      return `${fmtInt(v)} msg/s`;
    case 'p99':
      return fmtMs(v);
    case 'rssPerConnection':
      return fmtKB(v);
    case 'peakRss':
      return fmtMB(v);
    case 'recoveryListenMs':
      return fmtSec(v);
    case 'consumeMBps':
      return v === null ? '–' : `${v.toFixed(1)} MB/s`;
    case 'perQueueSpread':
      return v === null ? '–' : `${v.toFixed(1)} %`;
    case 'cpuPercent':
      return v === null ? '–' : `${v.toFixed(1)}%`;
    case 'writeBytesPerMessage':
      return v === null ? '–' : `${fmtInt(v)} B`;
  }
}

function metric(r: PerfResult | null, m: Metric): number | null {
  if (!r) return null;
  switch (m) {
    case 'consumeRate':
      return r.consumeRate ?? null;
    case 'p99':
      return r.latencyMs?.p99 ?? null;
    case 'rssPerConnection':
      return r.idle?.rssPerConnectionBytes ?? null;
    case 'peakRss':
      return r.brokerProcess?.peakRssBytes ?? null;
    case 'recoveryListenMs':
      return r.recovery?.listenMs ?? null;
    case 'consumeMBps':
      // Body bytes consumed per second, in MB (10^6 bytes), from the count (consumeRate is rounded to whole messages).
      return typeof r.consumed !== 'number' || !(r.elapsedSeconds > 0) || r.options?.size === undefined
        ? null
        : (r.consumed * r.options.size) / r.elapsedSeconds / 1e6;
    case 'perQueueSpread':
      return r.perQueue?.spreadPercent ?? null;
    case 'cpuPercent':
      return r.brokerProcess?.cpuPercent ?? null;
    case 'writeBytesPerMessage':
      // What the broker handed to write calls (its io_write_bytes) where it says; else the
      // kernel's count of storage writes, which rounds every synced file up to whole pages.
      return r.storeWrites?.bytesPerMessage ?? r.brokerProcess?.writeBytesPerMessage ?? null;
  }
}

function ratio(l: number | null | undefined, r: number | null | undefined): number | null {
  if (l === null || l === undefined || r === null || r === undefined || r === 0) return null;
  return l / r;
}

interface Row {
  label: string;
  l: number | null | undefined;
  r: number | null | undefined;
  fmt: (n: number | null | undefined) => string;
  target?: string;
  verdict?: string;
}

function scenarioTable(s: Scenario, lev: Outcome, rab: Outcome): { md: string; verdict: string; ratio: number | null } {
  const L = lev.result;
  const R = rab.result;
  const rows: Row[] = [];
  const tm = s.target.metric;
  const tl = metric(L, tm);
  const tr = metric(R, tm);
  const tRatio = ratio(tl, tr);
  const judge = (t: Target): string => {
    if (!L || (!R && !t.absolute)) return 'ERROR';
    const l = metric(L, t.metric);
    const r = metric(R, t.metric);
    const q = ratio(l, r);
    if (l === null || (q === null && !t.absolute)) return 'n/a';
    return t.pass(q ?? NaN, l, r) ? 'PASS' : 'FAIL';
  };
  const targets = [s.target, ...(s.also ?? [])];
  const verdicts = new Map(targets.map((t) => [t.metric, judge(t)] as const));
  const all = [...verdicts.values()];
  let verdict = all.includes('ERROR') ? 'ERROR' : all.includes('FAIL') ? 'FAIL' : all.includes('n/a') ? 'n/a' : 'PASS';
  // Recovery is only a pass if every confirmed message came back.
  const lost = s.id === 'i' && L?.recovery && L.recovery.recoveredCount !== L.recovery.messages;
  if (lost && verdict === 'PASS') verdict = 'FAIL';
  const mark = (m: Metric) => {
    const t = targets.find((x) => x.metric === m);
    return t ? { target: t.text, verdict: m === tm ? (lost ? 'FAIL' : verdicts.get(m)) : verdicts.get(m) } : {};
  };
  const rate = (n: number | null | undefined): string => `${fmtInt(n)} msg/s`;
  if (s.id === 'i') {
    const a = L?.recovery ?? {};
    const b = R?.recovery ?? {};
    const count = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : fmtInt(n));
    rows.push({ label: 'messages confirmed before the kill', l: a.confirmed, r: b.confirmed, fmt: count });
    rows.push({ label: 'publish rate (confirmed)', l: a.publishRate, r: b.publishRate, fmt: rate });
    rows.push({ label: 'broker RSS just before the kill', l: a.rssBeforeKillBytes, r: b.rssBeforeKillBytes, fmt: fmtMB });
    rows.push({
      label: 'start-up of an empty broker (first start) to accepting connections',
      l: a.emptyStartListenMs,
      r: b.emptyStartListenMs,
      fmt: fmtSec,
    });
    rows.push({
      label: 'restart after kill -9 to accepting connections',
      l: a.listenMs,
      r: b.listenMs,
      fmt: fmtSec,
      ...mark('recoveryListenMs'),
    });
    const beyond = (x: Record<string, number | null | undefined>): number | null =>
      typeof x.listenMs === 'number' && typeof x.emptyStartListenMs === 'number' ? x.listenMs - x.emptyStartListenMs : null;
    rows.push({
      label: 'of which recovery beyond an empty boot (restart − empty start-up)',
      l: beyond(a),
      r: beyond(b),
      fmt: fmtSec,
    });
    rows.push({
      label: `restart to the queue showing all ${fmtInt(BACKLOG)} messages (passive declare)`,
      l: a.readyMs,
      r: b.readyMs,
      fmt: fmtSec,
    });
    rows.push({ label: 'messages in the queue after the restart', l: a.recoveredCount, r: b.recoveredCount, fmt: count });
    rows.push({
      label: "Leveret's own log: store recovered in",
      l: a.storeRecovered?.ms,
      r: null,
      fmt: (n) => (n === null || n === undefined ? '–' : `${fmtInt(n)} ms`),
    });
    rows.push({ label: 'broker RSS right after recovery', l: a.rssAfterRecoveryBytes, r: b.rssAfterRecoveryBytes, fmt: fmtMB });
    rows.push({ label: 'drain rate after recovery', l: a.drainRate, r: b.drainRate, fmt: rate });
    rows.push({ label: 'broker peak RSS while draining', l: a.drainPeakRssBytes, r: b.drainPeakRssBytes, fmt: fmtMB });
    rows.push({
      label: 'broker CPU while draining (% of one core)',
      l: L?.brokerProcess?.cpuPercent,
      r: R?.brokerProcess?.cpuPercent,
      fmt: (n) => (n === null || n === undefined ? '–' : `${n}%`),
    });
    rows.push({
      label: 'load tool CPU while draining (% of one core)',
      l: L?.toolProcess?.cpuPercent,
      r: R?.toolProcess?.cpuPercent,
      fmt: (n) => (n === null || n === undefined ? '–' : `${n}%`),
    });
    rows.push({
      label: 'machine load average before the run',
      l: lev.loadBefore,
      r: rab.loadBefore,
      fmt: (n) => (n === null || n === undefined ? '–' : n.toFixed(2)),
    });
  } else if (s.id === 'g') {
    rows.push({ label: 'publish rate (into backlog, confirmed)', l: L?.backlog?.publishRate, r: R?.backlog?.publishRate, fmt: rate });
    rows.push({ label: 'drain rate', l: L?.backlog?.drainRate, r: R?.backlog?.drainRate, fmt: rate });
    rows.push({
      label: 'broker RSS at the end of publishing',
      l: L?.backlog?.rssAfterPublishBytes,
      r: R?.backlog?.rssAfterPublishBytes,
      fmt: fmtMB,
    });
  } else if (s.id === 'f') {
    rows.push({ label: 'RSS before the connections', l: L?.idle?.rssBeforeBytes, r: R?.idle?.rssBeforeBytes, fmt: fmtMB });
    rows.push({ label: 'RSS with 1,000 connections', l: L?.idle?.rssAfterBytes, r: R?.idle?.rssAfterBytes, fmt: fmtMB });
    rows.push({
      label: 'RSS per connection',
      l: L?.idle?.rssPerConnectionBytes,
      r: R?.idle?.rssPerConnectionBytes,
      fmt: fmtKB,
      ...mark('rssPerConnection'),
    });
    rows.push({
      label: 'time to open them',
      l: L?.idle?.setupSeconds,
      r: R?.idle?.setupSeconds,
      fmt: (n) => (n === null || n === undefined ? '–' : `${n} s`),
    });
  } else if (s.id === 'm') {
    const secs = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : `${n} s`);
    rows.push({ label: 'time to open the connections', l: L?.light?.setupSeconds, r: R?.light?.setupSeconds, fmt: secs });
    rows.push({ label: 'heartbeat negotiated', l: L?.light?.heartbeatSeconds, r: R?.light?.heartbeatSeconds, fmt: secs });
    rows.push({ label: 'RSS before the connections', l: L?.light?.rssBeforeBytes, r: R?.light?.rssBeforeBytes, fmt: fmtMB });
    rows.push({
      label: 'RSS once all are open',
      l: L?.light?.rssAfterOpenBytes,
      r: R?.light?.rssAfterOpenBytes,
      fmt: fmtMB,
    });
    rows.push({ label: 'RSS at the end of the run', l: L?.brokerProcess?.endRssBytes, r: R?.brokerProcess?.endRssBytes, fmt: fmtMB });
    rows.push({ label: 'published msg/s', l: L?.publishRate, r: R?.publishRate, fmt: fmtInt });
    rows.push({ label: 'consumed msg/s', l: L?.consumeRate, r: R?.consumeRate, fmt: fmtInt });
    rows.push({
      label: 'publishes the tool skipped (it fell > 1 s behind)',
      l: L?.light?.skippedPublishes,
      r: R?.light?.skippedPublishes,
      fmt: fmtInt,
    });
  } else {
    rows.push({ label: 'published msg/s', l: L?.publishRate, r: R?.publishRate, fmt: fmtInt });
    if (L?.confirmRate !== null && L?.confirmRate !== undefined)
      rows.push({ label: 'confirmed msg/s', l: L?.confirmRate, r: R?.confirmRate, fmt: fmtInt });
    rows.push({ label: 'consumed msg/s', l: L?.consumeRate, r: R?.consumeRate, fmt: fmtInt, ...mark('consumeRate') });
    if (tm === 'consumeMBps')
      rows.push({
        label: 'messages consumed in the measured window',
        l: L?.consumed,
        r: R?.consumed,
        fmt: fmtInt,
      });
    if (tm === 'consumeMBps')
      rows.push({
        label: 'consumed MB/s (body bytes, 10⁶ B)',
        l: metric(L, 'consumeMBps'),
        r: metric(R, 'consumeMBps'),
        fmt: (n) => fmtTarget('consumeMBps', n ?? null),
        ...mark('consumeMBps'),
      });
    if (L?.perQueue || R?.perQueue) {
      rows.push({ label: 'slowest queue, consumed msg/s', l: L?.perQueue?.minRate, r: R?.perQueue?.minRate, fmt: fmtInt });
      rows.push({ label: 'fastest queue, consumed msg/s', l: L?.perQueue?.maxRate, r: R?.perQueue?.maxRate, fmt: fmtInt });
      rows.push({
        label: 'spread: (fastest − slowest) ÷ fastest',
        l: L?.perQueue?.spreadPercent,
        r: R?.perQueue?.spreadPercent,
        fmt: (n) => fmtTarget('perQueueSpread', n ?? null),
        ...mark('perQueueSpread'),
      });
    }
    if (tm === 'writeBytesPerMessage') {
      rows.push({
        label: 'written to storage in the measured window',
        l: L?.brokerProcess?.writeBytes,
        r: R?.brokerProcess?.writeBytes,
        fmt: fmtMB,
      });
      rows.push({
        label: 'pages written to storage per message (/proc write_bytes)',
        l: L?.brokerProcess?.writeBytesPerMessage,
        r: R?.brokerProcess?.writeBytesPerMessage,
        fmt: (n) => (n === null || n === undefined ? '–' : `${Math.round(n).toLocaleString('en-US')} B`),
      });
      rows.push({
        label: 'bytes written per message published (io_write_bytes where the broker reports it)',
        l: metric(L, 'writeBytesPerMessage'),
        r: metric(R, 'writeBytesPerMessage'),
        fmt: (n) => fmtTarget('writeBytesPerMessage', n ?? null),
        ...mark('writeBytesPerMessage'),
      });
    }
    const sl = lev.sustained;
    const sr = rab.sustained;
    if (sl || sr)
      rows.push({
        label: `highest consumed msg/s with p99 ≤ ${SEARCH_P99_MS} ms (rate search)`,
        l: sl?.consumeRate,
        r: sr?.consumeRate,
        fmt: fmtInt,
      });
  }
  if (s.id !== 'f' && s.id !== 'i') {
    rows.push({ label: 'latency p50', l: L?.latencyMs?.p50, r: R?.latencyMs?.p50, fmt: fmtMs });
    rows.push({ label: 'latency p99', l: L?.latencyMs?.p99, r: R?.latencyMs?.p99, fmt: fmtMs, ...mark('p99') });
    if (s.id === 'h' || s.id === 'j') {
      rows.push({ label: 'latency p99.9', l: L?.latencyMs?.p999, r: R?.latencyMs?.p999, fmt: fmtMs });
      rows.push({ label: 'latency max', l: L?.latencyMs?.max, r: R?.latencyMs?.max, fmt: fmtMs });
    }
  }
  if (s.id !== 'i') {
    rows.push({
      label: 'broker peak RSS',
      l: L?.brokerProcess?.peakRssBytes,
      r: R?.brokerProcess?.peakRssBytes,
      fmt: fmtMB,
      ...mark('peakRss'),
    });
    if (s.id !== 'f') {
      rows.push({
        label: 'broker CPU s per million msgs',
        l: L?.brokerProcess?.cpuSecondsPerMillion,
        r: R?.brokerProcess?.cpuSecondsPerMillion,
        fmt: (n) => (n === null || n === undefined ? '–' : n.toFixed(2)),
      });
    }
    rows.push({
      label: 'broker CPU (% of one core)',
      l: L?.brokerProcess?.cpuPercent,
      r: R?.brokerProcess?.cpuPercent,
      fmt: (n) => (n === null || n === undefined ? '–' : `${n}%`),
      ...mark('cpuPercent'),
    });
    rows.push({
      label: 'load tool CPU (% of one core)',
      l: L?.toolProcess?.cpuPercent,
      r: R?.toolProcess?.cpuPercent,
      fmt: (n) => (n === null || n === undefined ? '–' : `${n}%`),
    });
    rows.push({
      label: 'machine load average before the run',
      l: lev.loadBefore,
      r: rab.loadBefore,
      fmt: (n) => (n === null || n === undefined ? '–' : n.toFixed(2)),
    });
  }

  const lines = ['| metric | Leveret | RabbitMQ | Leveret/RabbitMQ | target | result |', '|---|---:|---:|---:|---|---|'];
  for (const row of rows) {
    const showRatio =
      !row.label.startsWith('machine') &&
      !row.label.startsWith('load tool') &&
      !row.label.startsWith('messages') &&
      !row.label.startsWith("Leveret's");
    lines.push(
      `| ${row.label} | ${row.fmt(row.l)} | ${row.fmt(row.r)} | ${showRatio ? fmtRatio(ratio(row.l, row.r)) : ''} | ${row.target ?? ''} | ${row.verdict ? `**${row.verdict}**` : ''} |`,
    );
  }
  if (lev.runs && lev.runs.length > 1) {
    const f = (v: number | null): string => (v === null ? 'failed' : fmtTarget(s.target.metric, v));
    lines.push(
      '',
      `${lev.runs.length} runs per broker in ABBA order; the table shows each broker's median run by the target metric. ` +
        `All runs: Leveret ${lev.runs.map(f).join(', ')}; RabbitMQ ${(rab.runs ?? []).map(f).join(', ')}.`,
    );
  }
  const sustainedNote = (o: Outcome): string => {
    const x = o.sustained;
    if (x === undefined) return `${o.broker}: no search (the flat-out run failed)`;
    if (x === null) return `${o.broker}: no search (the flat-out run consumed nothing)`;
    const steps = x.steps
      .map((st) => `${fmtInt(st.rate)} → ${st.p99Ms === null ? 'failed' : `p99 ${fmtMs(st.p99Ms)}`}${st.ok ? ' ✓' : ' ✗'}`)
      .join(', ');
    return `${o.broker} ${x.consumeRate === null ? 'none of the steps passed' : `${fmtInt(x.consumeRate)} consumed msg/s at --rate ${fmtInt(x.rate)}`} (median run's steps: ${steps})`;
  };
  if (s.search && (lev.sustained !== undefined || rab.sustained !== undefined)) {
    const runsOf = (o: Outcome): string =>
      o.sustainedRuns && o.sustainedRuns.length > 1
        ? ` [all runs: ${o.sustainedRuns.map((v) => (v === null ? '–' : fmtInt(v))).join(', ')}]`
        : '';
    lines.push(
      '',
      `Rate search (${SEARCH_STEPS} runs of ${SEARCH_DURATION} s per broker after each flat-out run, on the same broker; a step passes with p99 ≤ ${SEARCH_P99_MS} ms and consumers keeping up): ` +
        `${sustainedNote(lev)}${runsOf(lev)}; ${sustainedNote(rab)}${runsOf(rab)}.`,
    );
  }
  const env = (o: Outcome): string => {
    const loads = o.loads ?? [o.loadAvgBefore];
    const fs = [...new Set(o.fsTypes ?? [o.fsType])].join('/');
    return `${o.broker} on ${fs}, load ${loads.map((l) => (l ? l.map((x) => x.toFixed(2)).join(' ') : '?')).join('; ')}`;
  };
  lines.push('', `Data directory file system and load average (1, 5, 15 min) before each run: ${env(lev)}; ${env(rab)}.`);
  if (lost)
    lines.push(
      '',
      `**Leveret lost messages:** ${fmtInt(L!.recovery.confirmed)} were confirmed before the kill, ${L!.recovery.recoveredCount === null ? 'none' : fmtInt(L!.recovery.recoveredCount)} were in the queue after the restart.`,
    );
  if (s.id === 'i' && R?.recovery && R.recovery.recoveredCount !== R.recovery.messages)
    lines.push(
      '',
      `RabbitMQ: ${fmtInt(R.recovery.confirmed)} confirmed before the kill, ${R.recovery.recoveredCount === null ? 'none' : fmtInt(R.recovery.recoveredCount)} in the queue after the restart.`,
    );
  if (L?.stopReason) lines.push('', `Leveret run ended early: ${L.stopReason}.`);
  if (R?.stopReason) lines.push('', `RabbitMQ run ended early: ${R.stopReason}.`);
  if (lev.error) lines.push('', `Leveret run failed: \`${lev.error}\``);
  if (rab.error) lines.push('', `RabbitMQ run failed: \`${rab.error}\``);
  return { md: lines.join('\n'), verdict, ratio: tRatio };
}

// ====================================================================== results.json

/** How results.json shows each target metric: the unit RESULTS.md shows it in. */
const SUMMARY_UNITS: Record<Metric, { label: string; unit: string; scale: number; digits: number }> = {
  consumeRate: { label: 'consumed msg/s', unit: 'msg/s', scale: 1, digits: 0 },
  p99: { label: 'latency p99', unit: 'ms', scale: 1, digits: 2 },
  rssPerConnection: { label: 'RSS per connection', unit: 'kB', scale: 1 / 1024, digits: 1 },
  peakRss: { label: 'broker peak RSS', unit: 'MB', scale: 1 / 1048576, digits: 1 },
  recoveryListenMs: { label: 'restart after kill -9 to accepting connections', unit: 's', scale: 1 / 1000, digits: 2 },
  consumeMBps: { label: 'consumed MB/s', unit: 'MB/s', scale: 1, digits: 1 },
  perQueueSpread: { label: 'per-queue consumed rate spread', unit: '%', scale: 1, digits: 1 },
  cpuPercent: { label: 'broker CPU', unit: '% of one core', scale: 1, digits: 1 },
  writeBytesPerMessage: { label: 'bytes written to storage per message', unit: 'B', scale: 1, digits: 0 },
};

/**
 * The summary rows of RESULTS.md as JSON (bench/results.json, committed): what the README's
 * figures and scripts/bench-chart.mjs read, so that neither has to parse Markdown.
 */
function resultsJson(
  results: { scenario: Scenario; lev: Outcome; rab: Outcome }[],
  run: { started: Date; info: Record<string, string | number>; versions: Record<string, string>; rabbitUri: string | undefined },
): string {
  const round = (n: number | null, digits: number): number | null => (n === null ? null : Number(n.toFixed(digits)));
  const summary = results.map(({ scenario: s, lev, rab }) => {
    const u = SUMMARY_UNITS[s.target.metric];
    const l = metric(lev.result, s.target.metric);
    const r = metric(rab.result, s.target.metric);
    const cpuL = lev.result?.brokerProcess?.cpuSecondsPerMillion as number | undefined;
    const cpuR = rab.result?.brokerProcess?.cpuSecondsPerMillion as number | undefined;
    return {
      scenario: s.id,
      title: s.title,
      metric: u.label,
      unit: u.unit,
      higherIsBetter: s.target.higherIsBetter,
      leveret: round(l === null ? null : l * u.scale, u.digits),
      rabbitmq: round(r === null ? null : r * u.scale, u.digits),
      ratio: round(ratio(l, r), 2),
      target: s.target.text,
      result: scenarioTable(s, lev, rab).verdict,
      ...(s.id !== 'f' && s.id !== 'i' && cpuL !== undefined && cpuR !== undefined
        ? { cpuSecondsPerMillion: { leveret: round(cpuL, 2), rabbitmq: round(cpuR, 2) } }
        : {}),
      ...(s.also
        ? {
            also: s.also.map((t) => {
              const au = SUMMARY_UNITS[t.metric];
              const al = metric(lev.result, t.metric);
              const ar = metric(rab.result, t.metric);
              return {
                metric: au.label,
                unit: au.unit,
                leveret: round(al === null ? null : al * au.scale, au.digits),
                rabbitmq: round(ar === null ? null : ar * au.scale, au.digits),
                target: t.text,
              };
            }),
          }
        : {}),
      ...(s.search && (lev.sustained || rab.sustained)
        ? {
            sustainedConsumeRate: {
              p99BoundMs: SEARCH_P99_MS,
              leveret: lev.sustained?.consumeRate ?? null,
              rabbitmq: rab.sustained?.consumeRate ?? null,
            },
          }
        : {}),
      runs: {
        leveret: (lev.runs ?? []).map((v) => round(v === null ? null : v * u.scale, u.digits)),
        rabbitmq: (rab.runs ?? []).map((v) => round(v === null ? null : v * u.scale, u.digits)),
      },
      loadBefore: { leveret: lev.loads ?? [lev.loadAvgBefore], rabbitmq: rab.loads ?? [rab.loadAvgBefore] },
      fsType: { leveret: [...new Set(lev.fsTypes ?? [lev.fsType])], rabbitmq: [...new Set(rab.fsTypes ?? [rab.fsType])] },
    };
  });
  const doc = {
    source: 'bench/RESULTS.md (summary), written by npm run bench:compare',
    generated: `${run.started.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    command: `npm run bench:compare${process.argv.slice(2).length ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    machine: `${run.info.cpu}, ${run.info.cores} cores, ${run.info.memory} RAM, Linux ${run.info.kernel}`,
    leveret: `${run.versions.Leveret ?? '?'}, commit ${run.info.commit}`,
    rabbitmq: `${run.versions.RabbitMQ ?? '?'}${run.rabbitUri ? ', already running' : ', a fresh node per scenario with stock settings'}`,
    repeat: REPEAT,
    order: REPEAT > 1 ? 'ABBA' : 'Leveret, RabbitMQ',
    durationSeconds: DURATION,
    warmupSeconds: WARMUP,
    backlog: BACKLOG,
    rateSearch: SEARCH_STEPS > 0 ? { steps: SEARCH_STEPS, seconds: SEARCH_DURATION, p99BoundMs: SEARCH_P99_MS } : null,
    scenarios: selected.join(','),
    summary,
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

// ====================================================================== main

/**
 * Puts the Leveret to benchmark in a private temp dir (dist/, package.json and a link to
 * node_modules), so that rebuilds of the shared dist/ during a long run (npm test builds
 * it) do not change what is measured. Returns what was built, for RESULTS.md.
 */
function prepareLeveret(): string {
  const git = (args: string[]): string => (spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout ?? '').trim();
  const snap = mkdtempSync(join(tmpdir(), 'leveret-build-'));
  cleanups.add(() => rmSync(snap, { recursive: true, force: true }));
  symlinkSync(join(ROOT, 'node_modules'), join(snap, 'node_modules'), 'dir');
  let described: string;
  if (values.commit) {
    const sha = git(['rev-parse', '--verify', `${values.commit}^{commit}`]);
    if (!sha) throw new Error(`--commit ${values.commit}: not a commit`);
    log(`compare: building Leveret at commit ${sha.slice(0, 7)} (git archive + tsc in ${snap})`);
    const x = spawnSync('sh', ['-c', 'git archive "$1" src tsconfig.json package.json | tar -x -C "$2"', 'sh', sha, snap], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    if (x.status !== 0) throw new Error('git archive failed');
    const b = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(snap, 'tsconfig.json')], {
      cwd: snap,
      stdio: 'inherit',
    });
    if (b.status !== 0) throw new Error(`tsc failed for commit ${sha.slice(0, 7)}`);
    described = `${git(['rev-parse', '--short', sha])} (built from \`git archive\` of the commit, not from the working tree)`;
  } else {
    if (!values['no-build']) {
      log('compare: building Leveret (npm run build)');
      const b = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
      if (b.status !== 0) throw new Error('npm run build failed');
    }
    if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: build Leveret first');
    cpSync(join(ROOT, 'dist'), join(snap, 'dist'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(snap, 'package.json'));
    const dirty = git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length;
    described = `${git(['rev-parse', '--short', 'HEAD'])}${dirty ? ` (+${dirty} uncommitted change${dirty === 1 ? '' : 's'} in src/)` : ''}${values['no-build'] ? ' (dist/ as found, not rebuilt)' : ''}`;
  }
  LEVERET_CLI = join(snap, 'dist', 'cli.js');
  return described;
}

async function main(): Promise<void> {
  const built = prepareLeveret();

  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d+Z$/, 'Z');
  const outDir = join(BENCH, 'out', stamp);
  mkdirSync(outDir, { recursive: true });
  const info: Record<string, string | number> = { ...machine(), commit: built };
  const started = new Date();
  const loadStart = loadavg();
  const debianRabbit = (spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'rabbitmq-server'], { encoding: 'utf8' }).stdout ?? '').trim();
  log(
    `compare: ${selected.length} scenario(s) × ${REPEAT}, ${DURATION} s each (+${WARMUP} s warm-up), backlog ${BACKLOG}; raw results in ${outDir}`,
  );

  const rabbitUri = values['rabbit-uri'];
  const rabbitPid = values['rabbit-pid'] ? Number(values['rabbit-pid']) : null;
  const results: { scenario: Scenario; lev: Outcome; rab: Outcome }[] = [];
  const versions: Record<string, string> = {};

  for (const s of SCENARIOS.filter((x) => selected.includes(x.id))) {
    log(`\ncompare: scenario ${s.id}: ${s.title}`);
    const runs: Record<'Leveret' | 'RabbitMQ', Outcome[]> = { Leveret: [], RabbitMQ: [] };
    for (let rep = 1; rep <= REPEAT; rep++) {
      // ABBA: odd repetitions run Leveret first, even ones RabbitMQ first, so neither always
      // gets the cooler machine (or the warmer page cache).
      for (const which of rep % 2 === 1 ? (['Leveret', 'RabbitMQ'] as const) : (['RabbitMQ', 'Leveret'] as const)) {
        let broker: RunningBroker | null = null;
        const loadAvgBefore = loadavg().map((x) => Math.round(x * 100) / 100);
        const loadBefore = loadAvgBefore[0];
        // Scenario i's brokers (started by runRecovery) live in temp dirs like the others.
        let fsType = fsTypeOf(tmpdir());
        let outcome: Outcome;
        if (s.custom) {
          if (REPEAT > 1) log(`compare: ${which}, run ${rep} of ${REPEAT}`);
          const { result, error } = await s.custom(s, which, rabbitUri);
          outcome = { broker: which, result, error, loadBefore, loadAvgBefore, fsType };
          if (result?.broker)
            versions[which] = `${result.broker.product ?? which} ${result.broker.version ?? ''} (${result.broker.platform ?? ''})`;
        } else
          try {
            broker = which === 'Leveret' ? await startLeveret() : rabbitUri ? externalRabbit(rabbitUri, rabbitPid) : await startRabbit();
            log(
              `compare: ${which} up at ${broker.uri.replace(/\/\/[^@]*@/, '//')} (pid ${broker.pid ?? '?'})${REPEAT > 1 ? `, run ${rep} of ${REPEAT}` : ''}`,
            );
            if (broker.dataDir) fsType = fsTypeOf(broker.dataDir);
            const { result, error } = await runPerf(s, broker);
            outcome = { broker: which, result, error, loadBefore, loadAvgBefore, fsType };
            if (result && s.search && SEARCH_STEPS > 0) outcome.sustained = await searchRate(s, broker, result);
            if (result?.broker)
              versions[which] = `${result.broker.product ?? which} ${result.broker.version ?? ''} (${result.broker.platform ?? ''})`;
          } catch (err) {
            outcome = { broker: which, result: null, error: (err as Error).message, loadBefore, loadAvgBefore, fsType };
          } finally {
            if (broker) await broker.stop();
          }
        if (outcome.error) log(`compare: ${which} ${s.id}: ${outcome.error}`);
        const suffix = REPEAT > 1 ? `-${rep}` : '';
        writeFileSync(
          join(outDir, `${s.id}-${which.toLowerCase()}${suffix}.json`),
          JSON.stringify({ scenario: s.id, args: s.args, run: rep, ...outcome }, null, 2),
        );
        runs[which].push(outcome);
      }
    }
    const outcomes = [medianOutcome(s, runs.Leveret), medianOutcome(s, runs.RabbitMQ)];
    results.push({ scenario: s, lev: outcomes[0], rab: outcomes[1] });
  }

  // --- RESULTS.md
  const md: string[] = [];
  md.push('# Leveret vs RabbitMQ — benchmark results', '');
  md.push(
    `Generated by \`npm run bench:compare${process.argv.slice(2).length ? ' -- ' + process.argv.slice(2).join(' ') : ''}\` on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
    '',
  );
  md.push('| | |', '|---|---|');
  md.push(`| machine | ${info.cpu}, ${info.cores} cores, ${info.memory} RAM, Linux ${info.kernel} |`);
  md.push(`| Leveret | ${versions.Leveret ?? '?'}, commit ${info.commit} |`);
  md.push(
    `| RabbitMQ | ${versions.RabbitMQ ?? '?'}${rabbitUri ? `, already running at ${rabbitUri.replace(/\/\/[^@]*@/, '//')}` : ', a fresh node per scenario with stock settings'} |`,
  );
  md.push(`| Node.js | ${info.node} (Leveret and the load tool) |`);
  md.push(
    `| runs | ${DURATION} s measured after ${WARMUP} s of warm-up per scenario and broker (scenarios g and i run to completion; k2 measures at least 10 s, m at least 20 s after 10 s of warm-up), each on a fresh broker; ` +
      `${REPEAT > 1 ? `${REPEAT} runs each in ABBA order (run 1: Leveret then RabbitMQ, run 2: RabbitMQ then Leveret, …), median reported` : 'one run each, Leveret then RabbitMQ'} |`,
  );
  if (SEARCH_STEPS > 0)
    md.push(
      `| rate search | (a)–(e): after each flat-out run, ${SEARCH_STEPS} runs of ${SEARCH_DURATION} s at a fixed --rate on the same broker, bisecting for the highest rate with p99 ≤ ${SEARCH_P99_MS} ms |`,
    );
  const fsAll = (b: 'lev' | 'rab'): string => [...new Set(results.flatMap((x) => x[b].fsTypes ?? [x[b].fsType]))].join(', ') || '?';
  md.push(`| data directories | temp dirs under \`${tmpdir()}\`; file system: Leveret ${fsAll('lev')}, RabbitMQ ${fsAll('rab')} |`);
  md.push(
    `| load average | before each run, in each scenario's notes; ${loadStart.map((x) => x.toFixed(2)).join(' ')} (1, 5, 15 min) when the comparison started |`,
  );
  md.push(
    `| raw JSON | \`bench/out/${stamp}/\` (not committed); summary \`${relative(ROOT, join(dirname(RESULTS), 'history', `${stamp}.json`))}\` |`,
    '',
  );
  md.push(
    'The load tool runs on the same machine and shares its cores with the broker; its own CPU use is in each table. ' +
      'Other work on the machine shows up as the load average. Latency is publish-to-deliver inside the tool.',
    '',
  );
  md.push('## How to read this', '');
  const rabbitVersion = /RabbitMQ (\S+)/.exec(versions.RabbitMQ ?? '')?.[1] ?? '?';
  md.push(
    `* RabbitMQ ${rabbitVersion} is the version Debian ships${debianRabbit ? ` (package rabbitmq-server ${debianRabbit} on this machine)` : ''}, run with stock settings. ` +
      'RabbitMQ 3.12 and later keep classic-queue backlogs on disk rather than in memory, so against a newer RabbitMQ the gaps in (g) (peak RSS of a backlog) and (i) (recovery) would narrow.',
    `* (a)–(e) publish as fast as the broker takes messages, so they measure a broker in overload: their latency is mostly queueing. ` +
      `Each also reports the highest rate the broker sustains with p99 ≤ ${SEARCH_P99_MS} ms (the rate search); both figures are in their tables.`,
    "* (i) splits into the empty boot (each broker started on an empty data directory in the same run, timed to accepting connections) and the recovery beyond it (restart after kill -9 minus the empty boot); RabbitMQ's empty boot is the Erlang VM and its boot steps.",
    `* Order: ${REPEAT > 1 ? 'ABBA across repetitions (Leveret first in odd runs, RabbitMQ first in even ones).' : 'one repetition, Leveret first: use --repeat 2 or more for ABBA order.'}`,
    '* Hand-written measurements (A/B runs of Leveret builds, single-broker runs) are in [NOTES.md](NOTES.md); this file is written by the script only.',
    '* Management statistics (issue 11) are always on in these runs: the hot path bumps counters and a 5 s timer samples them. Their cost was measured by A/B in [NOTES.md](NOTES.md#management-statistics-on-the-hot-path-2026-11-30): scenario (a) with statistics on, median 1.2 % below the figure before them (within the ±3 % allowed) and 2.8 % above the build without them in the same session.',
    '',
  );
  md.push('## Summary', '');
  md.push('| scenario | target | Leveret | RabbitMQ | Leveret/RabbitMQ | result |', '|---|---|---:|---:|---:|---|');
  const tables: string[] = [];
  for (const { scenario: s, lev, rab } of results) {
    const t = scenarioTable(s, lev, rab);
    const f = (n: number | null): string => fmtTarget(s.target.metric, n);
    md.push(
      `| (${s.id}) ${s.title} | ${s.target.text} | ${f(metric(lev.result, s.target.metric))} | ${f(metric(rab.result, s.target.metric))} | ${fmtRatio(t.ratio)} | **${t.verdict}** |`,
    );
    const shell = (args: string[]): string => args.map((a) => (a === '' ? '""' : a)).join(' ');
    const cmd = [
      `leveret-perf ${shell(s.args)}${s.untimed ? '' : ` --duration ${Math.max(DURATION, s.minDuration ?? 0)} --warmup ${Math.max(WARMUP, s.minWarmup ?? 0)}`}`,
    ];
    if (s.id === 'i')
      cmd.push(
        '# kill -9 the broker (RabbitMQ: beam.smp), start it again on the same data directory, poll the port and queue.declare(passive)',
        `leveret-perf ${shell(RECOVERY_DRAIN_ARGS)}`,
      );
    tables.push(`## (${s.id}) ${s.title}`, '', '```', ...cmd, '```', '', t.md, '');
  }
  md.push('', ...tables);
  writeFileSync(RESULTS, md.join('\n'));
  writeFileSync(
    join(outDir, 'summary.json'),
    JSON.stringify(
      { machine: info, versions, started, duration: DURATION, warmup: WARMUP, backlog: BACKLOG, repeat: REPEAT, results },
      null,
      2,
    ),
  );
  const summaryJson = join(dirname(RESULTS), 'results.json');
  const doc = resultsJson(results, { started, info, versions, rabbitUri });
  writeFileSync(summaryJson, doc);
  // A small summary of every run stays in the repository (the raw output in out/ does not).
  const history = join(dirname(RESULTS), 'history');
  mkdirSync(history, { recursive: true });
  writeFileSync(join(history, `${stamp}.json`), doc);
  log(`compare: wrote ${join(history, `${stamp}.json`)}`);
  log(`\ncompare: wrote ${RESULTS}`);
  log(`compare: wrote ${summaryJson} (npm run docs:chart draws docs/bench-chart.svg from it)`);
  const from = md.indexOf('## Summary');
  process.stdout.write(md.slice(from, from + 4 + results.length).join('\n') + '\n');
}

main().catch((err) => {
  log(`compare: ${err instanceof Error ? err.message : String(err)}`);
  for (const c of cleanups) c();
  process.exit(1);
});
