#!/usr/bin/env node
/**
 * leveret-perf: an AMQP 0-9-1 load generator in the spirit of RabbitMQ's PerfTest, for any
 * broker. Speaks AMQP itself over `net` with Leveret's own codec; see bench/README.md.
 *
 * Message bodies carry a timestamp (performance.now(), a monotonic hrtime clock, as a
 * float64 in bytes 0-7) and a per-process marker (bytes 8-15), so latency is measured
 * publisher-to-consumer inside one process. Bodies under 16 bytes carry no timestamp.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Connection, parseUri, BrokerClosed, type AmqpUri, type DeliveryHandler } from './client';
import { Histogram } from './histogram';
import { ProcWatcher } from './proc';
import { buildTemplates, Consumer, histTick, histTotal, Producer, stats, type Route, type Template } from './load';

// ====================================================================== options

const USAGE = `Usage: leveret-perf [options]

Connection
  --uri URI                 broker (default amqp://guest:guest@127.0.0.1:5672/%2f)
  --pid PID                 broker process: sample its RSS and CPU from /proc
  --also-pids PID,...       more broker processes (a cluster's other nodes): their CPU in the
                            measured window is reported as otherProcesses
  --rss-limit MB            end the run early if the broker's RSS exceeds this (needs --pid)
  --mgmt URL                management API (http://user:pass@host:port): read the store's
                            io_write_bytes from /api/nodes around the measured window

Load
  --producers N             publishing connections (default 1)
  --consumers N             consuming connections (default 1)
  --size BYTES              body size (default 16; >= 16 carries a latency timestamp)
  --persistent              delivery-mode 2
  --confirm WINDOW          publisher confirms, at most WINDOW unconfirmed per producer
  --rate MSG/S              fixed publish rate per producer, spread over 1 ms ticks
  --prefetch N              basic.qos prefetch-count per consumer (default 0 = unlimited)
  --multi-ack-every N       ack with multiple=true every N deliveries (default 1 = single acks)
  --auto-ack                consume with no-ack

Topology
  --queues N                queues (default 1); consumer i reads queue i mod N
  --queue NAME              queue name (NAME-i when --queues > 1); such queues are not deleted
  --durable-queue           declare queues (and the exchange) durable
  --queue-type TYPE         declare queues with x-queue-type TYPE (e.g. quorum)
  --exchange-type TYPE      direct | fanout | topic | headers (default direct)
  --exchange NAME           exchange name (default: a fresh one per run; "" = default exchange)
  --bindings N              N bindings spread over the queues (topic "perf.i.*", direct "k.i",
                            headers {k: i}); each publish then matches exactly one of them
  --route-per-producer      producer i publishes only to route i mod routes (with --queues N and
                            the direct exchange: producer i feeds queue i mod N)
  --routing-keys K          distinct routing keys the producers cycle through (default min(N,1000))
  --fanout-queues N         fanout exchange to N queues with one consumer each
  --idle-connections N      N extra connections, each with a channel and a consumer on its
                            own queue; reports broker RSS growth per connection (needs --pid)
  --light-connections N     N extra connections, each with a channel, a consumer on its own
                            queue and a publisher to it at --light-rate (opened in batches)
  --light-rate MSG/S        publish rate of each light connection (default 1)
  --heartbeat S             heartbeat every connection asks for in tune-ok (default 0 = none)

Run
  --duration S              measured seconds (default 10)
  --warmup S                seconds run before measuring starts (default 0)
  --publish-only N          publish N messages (no consumers), report the publish rate
  --consume-only            drain what the queues hold, report the consume rate
  --backlog N               publish N with no consumer, then drain them; report both rates
  --max-time S              time limit for --publish-only/--consume-only/--backlog (default 3600)
  --keep-queues             do not delete the queues at the end
  --json                    print one JSON result object on stdout
  --quiet                   no per-second progress lines
  --help
`;

interface Options {
  uri: string;
  pid: number;
  alsoPids: number[];
  queueType: string | null;
  rssLimit: number;
  /** management API base URL with credentials, or null */
  mgmt: string | null;
  producers: number;
  consumers: number;
  size: number;
  persistent: boolean;
  confirm: number;
  rate: number;
  prefetch: number;
  multiAckEvery: number;
  autoAck: boolean;
  queues: number;
  queue: string | null;
  durableQueue: boolean;
  exchangeType: 'direct' | 'fanout' | 'topic' | 'headers';
  exchange: string | null;
  bindings: number;
  routingKeys: number;
  routePerProducer: boolean;
  idleConnections: number;
  lightConnections: number;
  lightRate: number;
  heartbeat: number;
  duration: number;
  warmup: number;
  publishOnly: number;
  consumeOnly: boolean;
  backlog: number;
  maxTime: number;
  keepQueues: boolean;
  json: boolean;
  quiet: boolean;
}

function usage(message: string): never {
  process.stderr.write(`leveret-perf: ${message}\n\n${USAGE}`);
  process.exit(1);
}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        uri: { type: 'string' },
        pid: { type: 'string' },
        'also-pids': { type: 'string' },
        'queue-type': { type: 'string' },
        'rss-limit': { type: 'string' },
        mgmt: { type: 'string' },
        producers: { type: 'string' },
        consumers: { type: 'string' },
        size: { type: 'string' },
        persistent: { type: 'boolean' },
        confirm: { type: 'string' },
        rate: { type: 'string' },
        prefetch: { type: 'string' },
        'multi-ack-every': { type: 'string' },
        'auto-ack': { type: 'boolean' },
        queues: { type: 'string' },
        queue: { type: 'string' },
        'durable-queue': { type: 'boolean' },
        'exchange-type': { type: 'string' },
        exchange: { type: 'string' },
        bindings: { type: 'string' },
        'routing-keys': { type: 'string' },
        'route-per-producer': { type: 'boolean' },
        'fanout-queues': { type: 'string' },
        'idle-connections': { type: 'string' },
        'light-connections': { type: 'string' },
        'light-rate': { type: 'string' },
        heartbeat: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        'publish-only': { type: 'string' },
        'consume-only': { type: 'boolean' },
        backlog: { type: 'string' },
        'max-time': { type: 'string' },
        'keep-queues': { type: 'boolean' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    usage((err as Error).message);
  }
  const values = parsed.values;
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const num = (name: keyof typeof values, def: number, min = 0, integer = true): number => {
    const raw = values[name];
    if (raw === undefined) return def;
    const n = Number(raw);
    if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      usage(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const exchangeType = (values['exchange-type'] ?? 'direct') as Options['exchangeType'];
  if (!['direct', 'fanout', 'topic', 'headers'].includes(exchangeType)) usage(`unknown --exchange-type ${exchangeType}`);
  const o: Options = {
    uri: values.uri ?? 'amqp://guest:guest@127.0.0.1:5672/%2f',
    pid: num('pid', 0),
    alsoPids: (values['also-pids'] ?? '')
      .split(',')
      .filter((x) => x.trim() !== '')
      .map((x) => {
        const n = Number(x);
        if (!Number.isInteger(n) || n <= 0) usage(`--also-pids: bad pid ${JSON.stringify(x)}`);
        return n;
      }),
    queueType: values['queue-type'] ?? null,
    rssLimit: num('rss-limit', 0),
    mgmt: values.mgmt ?? null,
    producers: num('producers', 1),
    consumers: num('consumers', 1),
    size: num('size', 16),
    persistent: !!values.persistent,
    confirm: num('confirm', 0),
    rate: num('rate', 0, 0, false),
    prefetch: num('prefetch', 0),
    multiAckEvery: num('multi-ack-every', 1, 1),
    autoAck: !!values['auto-ack'],
    queues: num('queues', 1, 1),
    queue: values.queue ?? null,
    durableQueue: !!values['durable-queue'],
    exchangeType,
    exchange: values.exchange ?? null,
    bindings: num('bindings', 0),
    routingKeys: num('routing-keys', 0),
    routePerProducer: !!values['route-per-producer'],
    idleConnections: num('idle-connections', 0),
    lightConnections: num('light-connections', 0),
    lightRate: num('light-rate', 1, 0, false),
    heartbeat: num('heartbeat', 0),
    duration: num('duration', 10, 0, false),
    warmup: num('warmup', 0, 0, false),
    publishOnly: num('publish-only', 0),
    consumeOnly: !!values['consume-only'],
    backlog: num('backlog', 0),
    maxTime: num('max-time', 3600, 1, false),
    keepQueues: !!values['keep-queues'],
    json: !!values.json,
    quiet: !!values.quiet,
  };
  const fanout = num('fanout-queues', 0);
  if (fanout > 0) {
    o.exchangeType = 'fanout';
    o.queues = fanout;
    if (values.consumers === undefined) o.consumers = fanout;
  }
  if (o.lightConnections > 0 && !(o.lightRate > 0 && o.lightRate <= 100)) usage('--light-rate must be > 0 and at most 100');
  if (o.heartbeat > 65535) usage('--heartbeat is a 16-bit field: at most 65535 s');
  if (o.prefetch > 65535) usage('--prefetch is a 16-bit field: at most 65535');
  if (o.prefetch > 0 && o.multiAckEvery > o.prefetch) {
    process.stderr.write(
      `leveret-perf: --multi-ack-every ${o.multiAckEvery} > --prefetch ${o.prefetch} would stall; using ${o.prefetch}\n`,
    );
    o.multiAckEvery = o.prefetch;
  }
  if ([o.publishOnly > 0, o.consumeOnly, o.backlog > 0].filter(Boolean).length > 1) {
    usage('--publish-only, --consume-only and --backlog exclude each other');
  }
  if (o.exchange === '' && o.exchangeType !== 'direct') usage('the default exchange ("") is a direct exchange');
  if (o.exchange === '' && o.bindings > 0) usage('the default exchange takes no bindings');
  if (o.exchangeType === 'fanout' && o.bindings > 0) usage('--bindings makes no sense with a fanout exchange');
  if (o.routingKeys === 0) o.routingKeys = o.bindings > 0 ? Math.min(o.bindings, 1000) : 0;
  if (o.publishOnly > 0 || o.backlog > 0) {
    if (o.producers === 0) usage('--publish-only/--backlog need at least one producer');
  }
  if (o.publishOnly > 0) o.consumers = 0;
  if (o.consumeOnly) o.producers = 0;
  if ((o.consumeOnly || o.backlog > 0) && o.consumers === 0) usage('--consume-only/--backlog need at least one consumer');
  return o;
}

// ====================================================================== helpers

function log(line: string): void {
  process.stderr.write(line + '\n');
}

function die(err: unknown): never {
  const msg = err instanceof BrokerClosed ? err.message : err instanceof Error ? err.message : String(err);
  log(`leveret-perf: ERROR: ${msg}`);
  process.exit(err instanceof BrokerClosed ? 3 : 2);
}

const idleHandler: DeliveryHandler = { onDeliver() {}, onHeader() {}, onBody() {} };

// ====================================================================== topology

interface Topology {
  exchange: string;
  queues: string[];
  routes: Route[];
  /** Queues and exchange this run created and should delete. */
  ownQueues: boolean;
  ownExchange: boolean;
  initialMessages: number;
}

function stride(n: number): number {
  for (const p of [7919, 104729, 1]) if (n % p !== 0) return p;
  return 1;
}

async function setupTopology(o: Options, admin: Connection, ch: number, runId: string): Promise<Topology> {
  const ownQueues = o.queue === null && !o.keepQueues;
  const queues: string[] = [];
  for (let i = 0; i < o.queues; i++) {
    queues.push(o.queue !== null ? (o.queues === 1 ? o.queue : `${o.queue}-${i}`) : `perf-${runId}-${i}`);
  }
  let initialMessages = 0;
  for (const q of queues) {
    const ok = await admin.queueDeclare(ch, q, {
      durable: o.durableQueue,
      args: o.queueType === null ? undefined : { 'x-queue-type': o.queueType },
    });
    initialMessages += ok.messageCount;
  }
  const useDefault = o.exchange === '';
  const exchange = useDefault ? '' : (o.exchange ?? `perf-${runId}-${o.exchangeType}`);
  const ownExchange = o.exchange === null && !o.keepQueues;
  if (!useDefault && !exchange.startsWith('amq.')) await admin.exchangeDeclare(ch, exchange, o.exchangeType, o.durableQueue);

  const routes: Route[] = [];
  const binds: Promise<unknown>[] = [];
  const Q = queues.length;
  const N = o.bindings;
  if (useDefault) {
    for (const q of queues) routes.push({ exchange, routingKey: q });
  } else if (o.exchangeType === 'fanout') {
    for (const q of queues) binds.push(admin.queueBind(ch, q, exchange, ''));
    routes.push({ exchange, routingKey: '' });
  } else if (N > 0) {
    const key = (i: number): string => (o.exchangeType === 'topic' ? `perf.${i}.*` : `k.${i}`);
    for (let i = 0; i < N; i++) {
      const q = queues[i % Q];
      if (o.exchangeType === 'headers') binds.push(admin.queueBind(ch, q, exchange, '', { 'x-match': 'all', k: String(i) }));
      else binds.push(admin.queueBind(ch, q, exchange, key(i)));
      // Keep the pipeline bounded: a few thousand binds in flight at a time.
      if (binds.length >= 2000) await Promise.all(binds.splice(0));
    }
    const s = stride(N);
    for (let j = 0; j < o.routingKeys; j++) {
      const i = (j * s) % N;
      if (o.exchangeType === 'topic') routes.push({ exchange, routingKey: `perf.${i}.x` });
      else if (o.exchangeType === 'direct') routes.push({ exchange, routingKey: `k.${i}` });
      else routes.push({ exchange, routingKey: '', headers: { k: String(i) } });
    }
  } else {
    for (const q of queues) {
      if (o.exchangeType === 'headers') {
        binds.push(admin.queueBind(ch, q, exchange, '', { 'x-match': 'all', q }));
        routes.push({ exchange, routingKey: '', headers: { q } });
      } else if (o.exchangeType === 'topic') {
        binds.push(admin.queueBind(ch, q, exchange, `${q}.#`));
        routes.push({ exchange, routingKey: `${q}.x` });
      } else {
        binds.push(admin.queueBind(ch, q, exchange, q));
        routes.push({ exchange, routingKey: q });
      }
    }
  }
  await Promise.all(binds);
  return { exchange, queues, routes, ownQueues, ownExchange: ownExchange && !useDefault && !exchange.startsWith('amq.'), initialMessages };
}

// ====================================================================== reporting

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (us: number): string =>
  Number.isNaN(us) ? '-' : us >= 10_000 ? `${(us / 1000).toFixed(0)} ms` : `${(us / 1000).toFixed(2)} ms`;
const fmtMB = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MB`;
const round = (n: number, digits = 3): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

interface Tick {
  t: number;
  published: number;
  confirmed: number;
  consumed: number;
  p50Ms: number | null;
  p99Ms: number | null;
  rssBytes: number | null;
  cpuPercent: number | null;
}

function latencySummary(h: Histogram): Record<string, number> | null {
  if (h.count === 0) return null;
  const ms = (us: number): number => round(us / 1000, 3);
  return {
    count: h.count,
    min: ms(h.min),
    mean: ms(h.mean()),
    p50: ms(h.percentile(50)),
    p75: ms(h.percentile(75)),
    p95: ms(h.percentile(95)),
    p99: ms(h.percentile(99)),
    p999: ms(h.percentile(99.9)),
    max: ms(h.max),
  };
}

// ====================================================================== main

async function runPool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const uri: AmqpUri = parseUri(o.uri);
  const runId = randomBytes(4).toString('hex');
  const watcher = o.pid > 0 ? new ProcWatcher(o.pid) : null;
  if (watcher && !watcher.sample()) usage(`--pid ${o.pid}: no such process (or /proc not readable)`);
  const others = o.alsoPids.map((pid) => new ProcWatcher(pid));
  for (const w of others) if (!w.sample()) usage(`--also-pids ${w.pid}: no such process (or /proc not readable)`);
  if (o.idleConnections > 0 && !watcher) log('leveret-perf: note: --idle-connections without --pid cannot report RSS per connection');

  const startedAt = new Date().toISOString();
  const connections: Connection[] = [];
  const connect = async (name: string): Promise<Connection> => {
    const c = await Connection.connect(uri, name, o.heartbeat);
    c.onFatal = die;
    c.onBlocked = (reason) =>
      log(reason === null ? `leveret-perf: ${name} unblocked` : `leveret-perf: ${name} BLOCKED by the broker: ${reason}`);
    connections.push(c);
    return c;
  };

  // --- topology, on an admin connection
  const admin = await connect('admin').catch(die);
  const adminCh = await admin.openChannel();
  const broker = admin.serverProperties;
  const brokerName = `${String(broker.product ?? '?')} ${String(broker.version ?? '')}`.trim();
  const topo = await setupTopology(o, admin, adminCh, runId);
  const templates = buildTemplates(o, topo.routes, admin.frameMax);

  // --- consumers (subscribed now, or after the publish phase of a backlog run)
  const ackEvery = o.autoAck ? 1 : o.multiAckEvery;
  const consumerConns = await runPool(o.consumers, 20, async (i) => {
    const c = await connect(`consumer-${i}`);
    const ch = await c.openChannel();
    if (o.prefetch > 0 && !o.autoAck) await c.qos(ch, o.prefetch);
    return { c, ch, queue: topo.queues[i % topo.queues.length], consumer: new Consumer(c, ch, ackEvery, o.autoAck) };
  });
  const subscribe = async (): Promise<void> => {
    await Promise.all(consumerConns.map((x, i) => x.c.consume(x.ch, x.queue, `perf-${runId}-${i}`, o.autoAck, x.consumer)));
  };
  // Backlog and consume-only runs subscribe when their measurement starts.
  if (o.backlog === 0 && !o.consumeOnly) await subscribe();

  // --- producers
  const producers = await runPool(o.producers, 20, async (i) => {
    const c = await connect(`producer-${i}`);
    const ch = await c.openChannel();
    if (ch !== 1) throw new Error('internal: producer channel must be 1');
    const p = new Producer(c, o.routePerProducer ? [templates[i % templates.length]] : templates, o.confirm, o.rate, i);
    if (o.confirm > 0) await c.confirmSelect(ch, p);
    return p;
  });

  // --- idle connections
  let idle: Record<string, number> | null = null;
  if (o.idleConnections > 0) {
    await sleep(500);
    const before = watcher?.sample();
    const t0 = performance.now();
    let opened = 0;
    await runPool(o.idleConnections, 50, async (i) => {
      const c = await connect(`idle-${i}`);
      const ch = await c.openChannel();
      const q = await c.queueDeclare(ch, '', { exclusive: true, autoDelete: true });
      await c.consume(ch, q.queue, '', false, idleHandler);
      if (++opened % 250 === 0 && !o.quiet) log(`leveret-perf: ${opened} idle connections open`);
    });
    const setupSeconds = (performance.now() - t0) / 1000;
    await sleep(2000);
    const after = watcher?.sample();
    idle = { connections: o.idleConnections, setupSeconds: round(setupSeconds, 2) };
    if (before && after) {
      idle.rssBeforeBytes = before.rss;
      idle.rssAfterBytes = after.rss;
      idle.rssPerConnectionBytes = Math.round((after.rss - before.rss) / o.idleConnections);
    }
    log(
      `leveret-perf: ${o.idleConnections} idle connections opened in ${setupSeconds.toFixed(1)} s` +
        (before && after
          ? `; broker RSS ${fmtMB(before.rss)} -> ${fmtMB(after.rss)} = ${fmtInt((after.rss - before.rss) / o.idleConnections / 1024)} kB per connection`
          : ''),
    );
  }

  // --- light connections: each publishes to and consumes from its own queue at a low rate
  const lights: { c: Connection; tpl: Template }[] = [];
  let light: Record<string, number> | null = null;
  if (o.lightConnections > 0) {
    await sleep(500);
    const before = watcher?.sample();
    const t0 = performance.now();
    let opened = 0;
    // Opened 50 at a time: a burst of thousands of handshakes would overflow the broker's
    // accept backlog and hit its handshake timeout, which measures nothing useful.
    await runPool(o.lightConnections, 50, async (i) => {
      const c = await connect(`light-${i}`);
      const ch = await c.openChannel();
      const q = await c.queueDeclare(ch, '', { exclusive: true, autoDelete: true });
      await c.consume(ch, q.queue, '', false, new Consumer(c, ch, 1, false));
      lights[i] = { c, tpl: buildTemplates(o, [{ exchange: '', routingKey: q.queue }], c.frameMax)[0] };
      if (++opened % 1000 === 0 && !o.quiet) log(`leveret-perf: ${opened} light connections open`);
    });
    const setupSeconds = (performance.now() - t0) / 1000;
    const after = watcher?.sample();
    light = {
      connections: o.lightConnections,
      ratePerConnection: o.lightRate,
      heartbeatSeconds: lights[0].c.heartbeat,
      setupSeconds: round(setupSeconds, 2),
    };
    if (before && after) {
      light.rssBeforeBytes = before.rss;
      light.rssAfterOpenBytes = after.rss;
    }
    log(
      `leveret-perf: ${o.lightConnections} light connections opened in ${setupSeconds.toFixed(1)} s (heartbeat ${lights[0].c.heartbeat} s)` +
        (before && after ? `; broker RSS ${fmtMB(before.rss)} -> ${fmtMB(after.rss)}` : ''),
    );
  }
  let lightTicker: NodeJS.Timeout | null = null;
  let lightSkipped = 0;
  if (lights.length > 0) {
    // Connection i publishes in slot i mod `slots` of 10 ms each, so the load is spread evenly
    // over the second instead of 10,000 publishes at once.
    const SLOT_MS = 10;
    const slots = Math.max(1, Math.round(1000 / o.lightRate / SLOT_MS));
    const t0 = performance.now();
    let done = 0;
    lightTicker = setInterval(() => {
      const now = performance.now();
      const due = Math.floor((now - t0) / SLOT_MS);
      // After a stall, skip what is more than one round late rather than bursting it (and count it:
      // a tool that falls behind must say so).
      if (due - done > slots) {
        lightSkipped += Math.round(((due - slots - done) * lights.length) / slots);
        done = due - slots;
      }
      for (; done < due; done++) {
        for (let i = done % slots; i < lights.length; i += slots) {
          const l = lights[i];
          // A copy per message: socket.write keeps the buffer until it is sent.
          const out = Buffer.from(l.tpl.buf);
          if (l.tpl.stampOff >= 0) out.writeDoubleLE(now, l.tpl.stampOff);
          l.c.writeRaw(out);
          stats.published++;
        }
      }
    }, SLOT_MS);
  }

  // --- heartbeats: one sweep for all connections, every half interval, on those that wrote nothing since the last
  let heartbeatTimer: NodeJS.Timeout | null = null;
  if (o.heartbeat > 0) {
    const seen: number[] = [];
    heartbeatTimer = setInterval(
      () => {
        for (let i = 0; i < connections.length; i++) {
          const c = connections[i];
          if (c.heartbeat > 0 && c.writes === seen[i]) c.sendHeartbeat();
          seen[i] = c.writes;
        }
      },
      (o.heartbeat * 1000) / 2,
    );
  }

  /** Messages consumed so far from each queue (consumer i reads queue i mod --queues). */
  const perQueue = (): number[] => {
    const out = new Array<number>(topo.queues.length).fill(0);
    for (let i = 0; i < consumerConns.length; i++) out[i % topo.queues.length] += consumerConns[i].consumer.consumed;
    return out;
  };
  let perQueueStart: number[] | null = null;
  /** What each producer had published, and the broker had read from each producer's connection, at the start. */
  let perProducerStart: number[] | null = null;
  let readStart: Map<number, number> | null = null;

  // --- progress reporting and broker sampling
  const ticks: Tick[] = [];
  const tStart = performance.now();
  let last = { at: tStart, pub: 0, conf: 0, cons: 0, cpu: watcher?.last?.cpu ?? 0 };
  let sampleN = 0;
  const sampler = setInterval(() => {
    const s = watcher?.sample() ?? null;
    if (s && o.rssLimit > 0 && s.rss > o.rssLimit * 1048576) stopEarly(`broker RSS ${fmtMB(s.rss)} is over --rss-limit ${o.rssLimit} MB`);
    if (watcher?.gone) stopEarly('the broker process is gone');
    if (++sampleN % 4 !== 0) return;
    const now = performance.now();
    const dt = (now - last.at) / 1000;
    const tick: Tick = {
      t: round((now - tStart) / 1000, 1),
      published: Math.round((stats.published - last.pub) / dt),
      confirmed: Math.round((stats.confirmed - last.conf) / dt),
      consumed: Math.round((stats.consumed - last.cons) / dt),
      p50Ms: histTick.count ? round(histTick.percentile(50) / 1000) : null,
      p99Ms: histTick.count ? round(histTick.percentile(99) / 1000) : null,
      rssBytes: s ? s.rss : null,
      cpuPercent: s ? round(((s.cpu - last.cpu) / dt) * 100, 1) : null,
    };
    ticks.push(tick);
    if (!o.quiet) {
      log(
        `[${tick.t.toFixed(0).padStart(4)}s] published ${fmtInt(tick.published).padStart(9)}/s` +
          (o.confirm > 0 ? `  confirmed ${fmtInt(tick.confirmed).padStart(9)}/s` : '') +
          `  consumed ${fmtInt(tick.consumed).padStart(9)}/s` +
          (histTick.count ? `  latency p50 ${fmtMs(histTick.percentile(50))} p99 ${fmtMs(histTick.percentile(99))}` : '') +
          (s ? `  broker rss ${fmtMB(s.rss)} cpu ${tick.cpuPercent}%` : ''),
      );
    }
    histTick.reset();
    last = { at: now, pub: stats.published, conf: stats.confirmed, cons: stats.consumed, cpu: s ? s.cpu : last.cpu };
  }, 250);

  let ticker: NodeJS.Timeout | null = null;
  if (o.rate > 0) {
    ticker = setInterval(() => {
      const now = performance.now();
      for (const p of producers) p.tick(now);
    }, 1);
  }

  let interrupted = false;
  let stopReason: string | null = null;
  let interrupt: () => void = () => {};
  const stopEarly = (reason: string): void => {
    if (interrupted) return;
    interrupted = true;
    stopReason = reason;
    log(`leveret-perf: ${reason}; ending the run and reporting what was measured so far`);
    interrupt();
  };
  process.once('SIGINT', () => stopEarly('interrupted'));
  const waitOr = (ms: number, ...promises: Promise<unknown>[]): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      interrupt = () => {
        clearTimeout(timer);
        resolve();
      };
      if (promises.length > 0) {
        Promise.all(promises).then(() => {
          clearTimeout(timer);
          resolve();
        });
      }
    });

  const result: Record<string, unknown> = {
    tool: 'leveret-perf',
    startedAt,
    uri: `amqp://${uri.host}:${uri.port}/${encodeURIComponent(uri.vhost)}`,
    broker: { product: broker.product ?? null, version: broker.version ?? null, platform: broker.platform ?? null },
    options: o,
  };
  const snap = () => ({
    at: performance.now(),
    pub: stats.published,
    conf: stats.confirmed,
    cons: stats.consumed,
    cpu: process.cpuUsage(),
  });
  let measured: { seconds: number; published: number; confirmed: number; consumed: number; cpu: NodeJS.CpuUsage };

  if (o.backlog > 0 || o.publishOnly > 0) {
    // ---- publish N (no consumers), then (backlog) drain them
    const n = o.backlog || o.publishOnly;
    stats.measuring = true;
    watcher?.markCpu();
    for (const w of others) w.markCpu();
    const deadline = o.maxTime * 1000;
    const t0 = snap();
    const per = Math.floor(n / producers.length);
    const done = producers.map((p, i) => p.start(per + (i < n % producers.length ? 1 : 0)));
    await waitOr(deadline, ...done);
    // Without confirms, a round trip on each producer channel tells us the broker has
    // taken in everything we wrote.
    if (o.confirm === 0 && !interrupted) await Promise.all(producers.map((p) => p.conn.qos(1, 0)));
    const t1 = snap();
    const pubSeconds = (t1.at - t0.at) / 1000;
    const backlog: Record<string, unknown> = {
      messages: n,
      published: t1.pub - t0.pub,
      publishSeconds: round(pubSeconds, 3),
      publishRate: Math.round((t1.pub - t0.pub) / pubSeconds),
      rssAfterPublishBytes: watcher?.sample()?.rss ?? null,
    };
    log(
      `leveret-perf: published ${fmtInt(t1.pub - t0.pub)} messages in ${pubSeconds.toFixed(2)} s = ${fmtInt((t1.pub - t0.pub) / pubSeconds)} msg/s`,
    );
    let t2 = t1;
    if (o.backlog > 0 && !interrupted) {
      const target = stats.consumed + n + topo.initialMessages;
      const drained = new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (stats.consumed >= target) {
            clearInterval(check);
            resolve();
          }
        }, 5);
      });
      const d0 = snap();
      await subscribe();
      await waitOr(Math.max(1, deadline - (d0.at - t0.at)), drained);
      t2 = snap();
      const drainSeconds = (t2.at - d0.at) / 1000;
      backlog.consumed = t2.cons - d0.cons;
      backlog.drainSeconds = round(drainSeconds, 3);
      backlog.drainRate = Math.round((t2.cons - d0.cons) / drainSeconds);
      log(
        `leveret-perf: drained ${fmtInt(t2.cons - d0.cons)} messages in ${drainSeconds.toFixed(2)} s = ${fmtInt((t2.cons - d0.cons) / drainSeconds)} msg/s`,
      );
    }
    result.mode = o.backlog > 0 ? 'backlog' : 'publish-only';
    result.backlog = backlog;
    measured = {
      seconds: (t2.at - t0.at) / 1000,
      published: t2.pub - t0.pub,
      confirmed: t2.conf - t0.conf,
      consumed: t2.cons - t0.cons,
      cpu: process.cpuUsage(t0.cpu),
    };
  } else if (o.consumeOnly) {
    // ---- drain what is there
    stats.measuring = true;
    watcher?.markCpu();
    for (const w of others) w.markCpu();
    const target = topo.initialMessages;
    log(`leveret-perf: draining ${fmtInt(target)} messages`);
    const drained = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (stats.consumed >= target) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });
    const t0 = snap();
    await subscribe();
    await waitOr(o.maxTime * 1000, drained);
    const t1 = snap();
    result.mode = 'consume-only';
    measured = { seconds: (t1.at - t0.at) / 1000, published: 0, confirmed: 0, consumed: t1.cons - t0.cons, cpu: process.cpuUsage(t0.cpu) };
  } else {
    // ---- steady state for a fixed time
    for (const p of producers) void p.start();
    if (o.warmup > 0) await waitOr(o.warmup * 1000);
    const io0 = o.mgmt === null ? null : await storeWrites(o.mgmt);
    stats.measuring = true;
    watcher?.markCpu();
    for (const w of others) w.markCpu();
    const t0 = snap();
    perQueueStart = perQueue();
    perProducerStart = producers.map((p) => p.published);
    if (o.mgmt !== null && producers.length > 1) readStart = await connectionReads(o.mgmt);
    if (!interrupted) await waitOr(o.duration * 1000);
    const t1 = snap();
    const io1 = o.mgmt === null ? null : await storeWrites(o.mgmt);
    if (io0 !== null && io1 !== null) {
      const published = t1.pub - t0.pub;
      result.storeWrites = {
        bytes: io1 - io0,
        bytesPerMessage: published > 0 ? Math.round((io1 - io0) / published) : null,
      };
    }
    stats.measuring = false;
    result.mode = 'duration';
    measured = {
      seconds: (t1.at - t0.at) / 1000,
      published: t1.pub - t0.pub,
      confirmed: t1.conf - t0.conf,
      consumed: t1.cons - t0.cons,
      cpu: process.cpuUsage(t0.cpu),
    };
  }

  const perQueueEnd = perQueue();
  const perProducerEnd = producers.map((p) => p.published);
  const readEnd = readStart !== null && o.mgmt !== null ? await connectionReads(o.mgmt) : null;
  for (const p of producers) p.stop();
  if (ticker) clearInterval(ticker);
  if (lightTicker) clearInterval(lightTicker);
  if (heartbeatTimer) clearInterval(heartbeatTimer);
  clearInterval(sampler);
  const final = watcher?.sample() ?? null;
  for (const w of others) w.sample();

  const sec = measured.seconds;
  result.elapsedSeconds = round(sec, 3);
  result.published = measured.published;
  result.confirmed = measured.confirmed;
  result.nacked = stats.nacked;
  result.consumed = measured.consumed;
  const bl = result.backlog as Record<string, number> | undefined;
  // Backlog runs: each rate over its own phase.
  result.publishRate = bl ? bl.publishRate : Math.round(measured.published / sec);
  result.confirmRate = o.confirm > 0 ? (bl ? bl.publishRate : Math.round(measured.confirmed / sec)) : null;
  result.consumeRate = bl ? (bl.drainRate ?? 0) : Math.round(measured.consumed / sec);
  result.latencyMs = latencySummary(histTotal);
  if (idle) result.idle = idle;
  if (light) {
    light.skippedPublishes = lightSkipped;
    result.light = light;
    if (lightSkipped > 0) log(`leveret-perf: WARNING: the tool fell behind and skipped ${fmtInt(lightSkipped)} light publishes`);
  }
  // Per-queue consumed rates (steady-state runs with several queues): how evenly the broker serves them.
  if (perQueueStart && topo.queues.length > 1 && consumerConns.length >= topo.queues.length) {
    const rates = perQueueEnd.map((n, i) => (n - perQueueStart![i]) / sec);
    const min = Math.min(...rates);
    const max = Math.max(...rates);
    result.perQueue = {
      queues: rates.length,
      minRate: Math.round(min),
      maxRate: Math.round(max),
      meanRate: Math.round(rates.reduce((a, b) => a + b, 0) / rates.length),
      // How far the slowest queue is below the fastest, in % of the fastest.
      spreadPercent: max > 0 ? round(((max - min) / max) * 100, 1) : null,
      consumed: perQueueEnd.map((n, i) => n - perQueueStart![i]),
    };
  }
  // Per-producer publish rates: whether the tool itself spreads its publishing evenly.
  if (perProducerStart && producers.length > 1) {
    result.perProducer = spreadOf(perProducerEnd.map((n, i) => (n - perProducerStart![i]) / sec));
  }
  // Bytes the broker read from each producer's connection (its recv_oct, from the management API).
  if (readStart !== null && readEnd !== null) {
    const rates: number[] = [];
    for (const p of producers) {
      const port = p.conn.socket.localPort ?? 0;
      const a = readStart.get(port);
      const b = readEnd.get(port);
      if (a !== undefined && b !== undefined) rates.push((b - a) / sec);
    }
    if (rates.length > 1) result.brokerReadPerProducer = spreadOf(rates);
  }
  if (watcher && watcher.first) {
    const cpu = watcher.cpuSinceMark();
    // Cost per delivered message when there are consumers, else per published one.
    const msgs = measured.consumed > 0 ? measured.consumed : measured.published;
    const written = watcher.ioWriteSinceMark();
    result.brokerProcess = {
      pid: watcher.pid,
      peakRssBytes: watcher.peakRss,
      hwmBytes: final?.hwm ?? watcher.last?.hwm ?? null,
      startRssBytes: watcher.first.rss,
      endRssBytes: final?.rss ?? watcher.last?.rss ?? null,
      cpuSeconds: round(cpu, 2),
      cpuPercent: round((cpu / sec) * 100, 1),
      cpuSecondsPerMillion: msgs > 0 ? round(cpu / (msgs / 1e6), 3) : null,
      // Storage writes in the measured window, per message published (not per copy delivered).
      writeBytes: written,
      writeBytesPerMessage: written !== null && measured.published > 0 ? Math.round(written / measured.published) : null,
      gone: watcher.gone,
    };
  }
  if (others.length > 0) result.otherProcesses = others.map((w) => ({ pid: w.pid, cpuSeconds: round(w.cpuSinceMark(), 2), gone: w.gone }));
  const toolCpu = (measured.cpu.user + measured.cpu.system) / 1e6;
  result.toolProcess = { cpuSeconds: round(toolCpu, 2), cpuPercent: round((toolCpu / sec) * 100, 1) };
  result.loadAverage = loadavg().map((x) => round(x, 2));
  result.perSecond = ticks;
  result.interrupted = interrupted;
  result.stopReason = stopReason;

  // --- summary
  const lat = histTotal;
  log('');
  log(`== leveret-perf: ${brokerName || 'broker'} at ${uri.host}:${uri.port}, ${result.mode} ==`);
  log(`measured      ${sec.toFixed(2)} s${o.warmup > 0 && result.mode === 'duration' ? ` (after ${o.warmup} s warm-up)` : ''}`);
  const phase = bl ? ' (publish phase)' : '';
  log(`published     ${fmtInt(result.publishRate as number).padStart(10)} msg/s  (${fmtInt(measured.published)} msgs)${phase}`);
  if (o.confirm > 0)
    log(
      `confirmed     ${fmtInt(result.confirmRate as number).padStart(10)} msg/s  (${fmtInt(measured.confirmed)} msgs, ${fmtInt(stats.nacked)} nacked)${phase}`,
    );
  log(
    `consumed      ${fmtInt(result.consumeRate as number).padStart(10)} msg/s  (${fmtInt(measured.consumed)} msgs)${bl ? ' (drain phase)' : ''}`,
  );
  if (lat.count > 0) {
    log(
      `latency       p50 ${fmtMs(lat.percentile(50))}  p95 ${fmtMs(lat.percentile(95))}  p99 ${fmtMs(lat.percentile(99))}  p99.9 ${fmtMs(lat.percentile(99.9))}  max ${fmtMs(lat.max)}  (${fmtInt(lat.count)} samples)`,
    );
  }
  const pq = result.perQueue as Record<string, number> | undefined;
  if (pq)
    log(
      `per queue     ${pq.queues} queues: consumed ${fmtInt(pq.minRate)} to ${fmtInt(pq.maxRate)} msg/s (mean ${fmtInt(pq.meanRate)}), spread ${pq.spreadPercent} %`,
    );
  const pp = result.perProducer as Spread | undefined;
  if (pp)
    log(
      `per producer  ${pp.n} producers: published ${fmtInt(pp.min)} to ${fmtInt(pp.max)} msg/s (mean ${fmtInt(pp.mean)}), spread ${pp.spreadPercent} %`,
    );
  const br = result.brokerReadPerProducer as Spread | undefined;
  if (br)
    log(
      `broker read   per producer connection ${fmtInt(br.min)} to ${fmtInt(br.max)} B/s (mean ${fmtInt(br.mean)}), spread ${br.spreadPercent} %`,
    );
  const sw = result.storeWrites as { bytes: number; bytesPerMessage: number | null } | undefined;
  if (sw)
    log(
      `store         handed ${fmtMB(sw.bytes)} to write calls (io_write_bytes)` +
        (sw.bytesPerMessage !== null ? ` = ${fmtInt(sw.bytesPerMessage)} B per message published` : ''),
    );
  const bp = result.brokerProcess as Record<string, number> | undefined;
  log(`tool          CPU ${round(toolCpu, 2)} s (${round((toolCpu / sec) * 100, 1)}%)`);
  if (bp) {
    log(
      `broker        peak RSS ${fmtMB(bp.peakRssBytes)}  CPU ${bp.cpuSeconds} s (${bp.cpuPercent}%)` +
        (bp.cpuSecondsPerMillion !== null ? `, ${bp.cpuSecondsPerMillion} s per million msgs` : ''),
    );
    if (bp.writeBytes !== null)
      log(
        `broker        wrote ${fmtMB(bp.writeBytes)} to storage` +
          (bp.writeBytesPerMessage !== null ? ` = ${fmtInt(bp.writeBytesPerMessage)} B per message published` : ''),
      );
  }

  // --- cleanup: tear down traffic connections, then delete what we declared
  for (const c of connections)
    if (c !== admin) {
      c.onFatal = () => {};
      c.destroy();
    }
  admin.onFatal = () => {};
  // A broker deep in overload can take minutes to delete queues holding millions of messages:
  // the result is measured already, so report it rather than wait.
  const cleanup = (async () => {
    if (topo.ownQueues) for (const q of topo.queues) await admin.queueDelete(adminCh, q);
    if (topo.ownExchange) await admin.exchangeDelete(adminCh, topo.exchange);
    await admin.close(2000);
  })();
  let cleanupTimer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    cleanupTimer = setTimeout(() => {
      log('leveret-perf: cleanup (deleting the queues) took over 60 s; reporting without waiting for it');
      admin.destroy();
      resolve();
    }, 60_000);
  });
  try {
    await Promise.race([cleanup, gaveUp]);
  } catch (err) {
    log(`leveret-perf: cleanup failed: ${(err as Error).message}`);
  }
  clearTimeout(cleanupTimer);
  if (o.json) process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
  else process.exit(0);
}

main().catch(die);

interface Spread {
  n: number;
  min: number;
  max: number;
  mean: number;
  /** How far the lowest is below the highest, in % of the highest (as for the per-queue rates). */
  spreadPercent: number | null;
}

function spreadOf(rates: number[]): Spread {
  const min = Math.min(...rates);
  const max = Math.max(...rates);
  return {
    n: rates.length,
    min: Math.round(min),
    max: Math.round(max),
    mean: Math.round(rates.reduce((a, b) => a + b, 0) / rates.length),
    spreadPercent: max > 0 ? round(((max - min) / max) * 100, 1) : null,
  };
}

/** recv_oct of every connection by its client port, from the management API (null when it does not say). */
async function connectionReads(mgmt: string): Promise<Map<number, number> | null> {
  try {
    const u = new URL('/api/connections?columns=peer_port,recv_oct', mgmt);
    const auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    u.username = u.password = '';
    const res = await fetch(u, { headers: { authorization: `Basic ${auth}` } });
    if (!res.ok) return null;
    const rows = (await res.json()) as Array<{ peer_port?: number; recv_oct?: number }>;
    const out = new Map<number, number>();
    for (const r of rows) if (typeof r.peer_port === 'number' && typeof r.recv_oct === 'number') out.set(r.peer_port, r.recv_oct);
    return out;
  } catch {
    return null;
  }
}

/**
 * Bytes the broker's store has handed to write calls so far (RabbitMQ's io_write_bytes in
 * /api/nodes), or null when the management API does not say.
 */
async function storeWrites(mgmt: string): Promise<number | null> {
  try {
    const u = new URL('/api/nodes', mgmt);
    const auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
    u.username = u.password = '';
    const res = await fetch(u, { headers: { authorization: `Basic ${auth}` } });
    if (!res.ok) return null;
    const nodes = (await res.json()) as Array<{ io_write_bytes?: number }>;
    const v = nodes[0]?.io_write_bytes;
    return typeof v === 'number' ? v : null;
  } catch {
    return null;
  }
}
