#!/usr/bin/env node
/**
 * The cluster benchmark of issue 15 (point 6): scenario (c) of bench:compare (1 → 1, 1 KB
 * persistent, confirms window 256, durable queue) against
 *   - a three-node Leveret cluster on loopback (one etcd, --min-isr 1, clients on the leader),
 *   - a single-node Leveret,
 *   - a three-node RabbitMQ cluster on loopback with a quorum queue (x-queue-type quorum),
 * each started fresh for every run, in an order that alternates between repetitions. Broker
 * CPU per message is summed over every node of a cluster. Writes the cluster section of
 * bench/RESULTS.md (between its markers, leaving the rest as bench:compare wrote it) and a
 * summary under bench/history/.
 *
 *   npm run bench:cluster -- [--repeat N] [--duration S] [--warmup S] [--only lc,l1,rq]
 *                            [--no-build] [--no-write] [--nice N]
 *   node bench/cluster.mjs --from-json bench/history/<stamp>-cluster.json   (rewrite the section from a summary)
 *
 * Needs etcd (Debian's etcd-server) and, for the RabbitMQ cluster, rabbitmq-server; the
 * RabbitMQ nodes get their own names (d15bench<pid>-<i>@localhost), ports, cookie and
 * directories, so a RabbitMQ already running on 5672 is not touched.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const PERF = join(ROOT, 'bench', 'dist', 'bench', 'perf.js');
const RESULTS = join(ROOT, 'bench', 'RESULTS.md');
const BEGIN = '<!-- cluster section: written by bench/cluster.mjs -->';
const END = '<!-- end of cluster section -->';

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    only: { type: 'string', default: 'lc,l1,rq' },
    'no-build': { type: 'boolean' },
    'no-write': { type: 'boolean' },
    'from-json': { type: 'string' },
    nice: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}
const REPEAT = Number(values.repeat);
const DURATION = Number(values.duration);
const WARMUP = Number(values.warmup);
/** The load tool's niceness: the brokers run at the same one, so neither is favoured. */
const NICE = Number(values.nice);
const ONLY = values.only.split(',');

/** bench:compare's scenario (c), word for word (bench/scenarios.ts). */
const SCENARIO_C = [
  '--producers',
  '1',
  '--consumers',
  '1',
  '--size',
  '1024',
  '--persistent',
  '--confirm',
  '256',
  '--durable-queue',
  '--prefetch',
  '1000',
  '--multi-ack-every',
  '100',
];

const log = (s) => process.stderr.write(s + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cleanups = new Set();
process.on('exit', () => {
  for (const c of cleanups) c();
});
process.on('SIGINT', () => {
  log('cluster bench: interrupted; stopping brokers');
  process.exit(130);
});

// ---------------------------------------------------------------- processes and ports

const handedOut = new Set();
/** A free port below the ephemeral range, so that RabbitMQ's CLI port (dist + 10000) stays valid. */
async function port() {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 10000);
    if (handedOut.has(p)) continue;
    const free = await new Promise((res) => {
      const srv = net.createServer();
      srv.once('error', () => res(false));
      srv.listen(p, '127.0.0.1', () => srv.close(() => res(true)));
    });
    if (free) {
      handedOut.add(p);
      return p;
    }
  }
}

function canConnect(p) {
  return new Promise((res) => {
    const s = net.connect(p, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

async function waitFor(what, check, ms) {
  const until = Date.now() + ms;
  for (;;) {
    const r = await check();
    if (r) return r;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return null;
  }
}

function findPids(...needles) {
  const out = [];
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

/** Spawns `cmd` at the benchmark's niceness, its output to a file. */
function launch(cmd, args, { cwd = ROOT, env = process.env, logFile, detached = false }) {
  const fd = openSync(logFile, 'a');
  const child = spawn('nice', ['-n', String(NICE), cmd, ...args], { cwd, env, stdio: ['ignore', fd, fd], detached });
  closeSync(fd);
  return child;
}

function getJson(httpPort, path) {
  return new Promise((res) => {
    const req = http.get({ host: '127.0.0.1', port: httpPort, path, auth: 'guest:guest', timeout: 2000 }, (r) => {
      let body = '';
      r.on('data', (d) => (body += d));
      r.on('end', () => {
        try {
          res(r.statusCode === 200 ? JSON.parse(body) : null);
        } catch {
          res(null);
        }
      });
    });
    req.on('error', () => res(null));
    req.on('timeout', () => {
      req.destroy();
      res(null);
    });
  });
}

// ---------------------------------------------------------------- etcd

async function startEtcd() {
  const dir = mkdtempSync(join(tmpdir(), 'd15-etcd-'));
  const client = `http://127.0.0.1:${await port()}`;
  const peer = `http://127.0.0.1:${await port()}`;
  const child = launch(
    '/usr/bin/etcd',
    [
      '--name',
      'bench',
      '--data-dir',
      join(dir, 'data'),
      '--listen-client-urls',
      client,
      '--advertise-client-urls',
      client,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `bench=${peer}`,
      '--log-level',
      'warn',
    ],
    { logFile: join(dir, 'etcd.log') },
  );
  const kill = () => child.exitCode === null && child.kill('SIGKILL');
  cleanups.add(kill);
  await waitFor('etcd', () => getJsonRaw(client + '/health'), 20_000);
  return {
    endpoint: client,
    pid: child.pid,
    stop() {
      kill();
      cleanups.delete(kill);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function getJsonRaw(url) {
  return new Promise((res) => {
    http
      .get(url, { timeout: 1000 }, (r) => {
        let b = '';
        r.on('data', (d) => (b += d));
        r.on('end', () => res(r.statusCode === 200 && b.includes('true')));
      })
      .on('error', () => res(false));
  });
}

// ---------------------------------------------------------------- Leveret

async function startLeveretNode(dir, extra) {
  const amqp = await port();
  const httpPort = await port();
  mkdirSync(dir, { recursive: true });
  const child = launch(
    process.execPath,
    [CLI, '--host', '127.0.0.1', '--port', String(amqp), '--http-port', String(httpPort), '--data-dir', join(dir, 'data'), ...extra],
    { logFile: join(dir, 'leveret.log') },
  );
  // `nice` execs node, so the child's pid is the broker's.
  const kill = () => child.exitCode === null && child.kill('SIGKILL');
  cleanups.add(kill);
  return {
    amqp,
    httpPort,
    pid: child.pid,
    dir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = Date.now();
        while (child.exitCode === null && child.signalCode === null && Date.now() - t < 15_000) await sleep(50);
      }
      kill();
      cleanups.delete(kill);
    },
  };
}

async function startLeveretSingle() {
  const dir = mkdtempSync(join(tmpdir(), 'd15-leveret1-'));
  const n = await startLeveretNode(dir, []);
  await waitFor('single Leveret', () => canConnect(n.amqp), 30_000);
  return {
    kind: 'l1',
    uri: `amqp://guest:guest@127.0.0.1:${n.amqp}/%2f`,
    leaderPid: n.pid,
    pids: [n.pid],
    nodes: [{ name: 'leveret', pid: n.pid, role: 'single' }],
    async stop() {
      await n.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let clusterSeq = 0;
async function startLeveretCluster(etcd) {
  const base = mkdtempSync(join(tmpdir(), 'd15-leveret3-'));
  const cluster = `d15bench${process.pid}-${++clusterSeq}`;
  const nodes = [];
  for (const name of ['n1', 'n2', 'n3']) {
    const repl = await port();
    const n = await startLeveretNode(join(base, name), [
      '--cluster-etcd',
      etcd.endpoint,
      '--cluster-name',
      cluster,
      '--node-name',
      name,
      '--replication-port',
      String(repl),
      '--min-isr',
      '1',
    ]);
    nodes.push({ name, ...n });
  }
  const stopAll = async () => {
    for (const n of nodes) await n.stop();
    rmSync(base, { recursive: true, force: true });
  };
  try {
    // Ready when the leader lists all three members in the ISR, both followers streaming.
    const members = await waitFor(
      'a leader with both followers in sync',
      async () => {
        for (const n of nodes) {
          const list = await getJson(n.httpPort, '/api/nodes');
          if (!Array.isArray(list) || list.length !== 3) continue;
          const ok = list.every((m) => m.in_sync === true && (m.cluster_role === 'leader' || m.replication?.streaming === true));
          if (ok) return list;
        }
        return null;
      },
      60_000,
    );
    const leaderName = members.find((m) => m.cluster_role === 'leader').name;
    const leader = nodes.find((n) => n.name === leaderName);
    await waitFor('the leader to accept AMQP', () => canConnect(leader.amqp), 10_000);
    return {
      kind: 'lc',
      uri: `amqp://guest:guest@127.0.0.1:${leader.amqp}/%2f`,
      leaderPid: leader.pid,
      pids: nodes.map((n) => n.pid),
      nodes: nodes.map((n) => ({ name: n.name, pid: n.pid, role: n.name === leaderName ? 'leader' : 'follower' })),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

// ---------------------------------------------------------------- RabbitMQ

function rabbitBin(name) {
  for (const d of ['/usr/lib/rabbitmq/bin', '/usr/local/sbin', '/usr/sbin']) if (existsSync(join(d, name))) return join(d, name);
  return name;
}

let rabbitSeq = 0;
async function startRabbitCluster() {
  const base = mkdtempSync(join(tmpdir(), 'd15-rabbit3-'));
  // One cookie for the three nodes and the CLI, read from $HOME: each node has its own HOME
  // (beam.smp's command line names only `-home`, which is how its pid is found).
  const cookie = `D15BENCH${process.pid}${Date.now()}`;
  writeFileSync(join(base, 'enabled_plugins'), '[].\n'); // management off
  const run = ++rabbitSeq;
  const nodes = [];
  const envFor = (n) => ({
    ...process.env,
    HOME: n.dir,
    RABBITMQ_NODENAME: n.node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(n.amqp),
    RABBITMQ_DIST_PORT: String(n.dist),
    RABBITMQ_MNESIA_BASE: join(n.dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(n.dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    // No config file: stock settings.
    RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(base, 'advanced.config'),
  });
  const ctl = (n, ...args) => {
    const r = spawnSync(rabbitBin('rabbitmqctl'), ['-n', n.node, ...args], {
      env: envFor(n),
      cwd: base,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (r.status !== 0) throw new Error(`rabbitmqctl -n ${n.node} ${args.join(' ')}: ${r.status}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const killAll = () => {
    for (const n of nodes) {
      try {
        process.kill(-n.child.pid, 'SIGKILL');
      } catch {
        // gone
      }
      if (n.beam && alive(n.beam)) process.kill(n.beam, 'SIGKILL');
    }
  };
  cleanups.add(killAll);
  const stop = async () => {
    for (const n of nodes) {
      try {
        ctl(n, 'stop');
      } catch (err) {
        log(`cluster bench: ${err.message.split('\n')[0]}; killing it`);
      }
    }
    const t = Date.now();
    while (nodes.some((n) => n.beam && alive(n.beam)) && Date.now() - t < 30_000) await sleep(100);
    killAll();
    cleanups.delete(killAll);
    rmSync(base, { recursive: true, force: true });
  };
  try {
    for (let i = 1; i <= 3; i++) {
      const n = { node: `d15bench${process.pid}r${run}n${i}@localhost`, amqp: await port(), dist: await port(), dir: join(base, `n${i}`) };
      mkdirSync(n.dir, { recursive: true });
      writeFileSync(join(n.dir, '.erlang.cookie'), cookie);
      chmodSync(join(n.dir, '.erlang.cookie'), 0o400);
      n.child = launch('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', rabbitBin('rabbitmq-server')], {
        cwd: base,
        env: envFor(n),
        logFile: join(n.dir, 'startup.log'),
        detached: true,
      });
      nodes.push(n);
    }
    for (const n of nodes) {
      await waitFor(`${n.node} to listen`, () => canConnect(n.amqp), 120_000);
      n.beam = findPids('beam.smp', `-home ${n.dir} `)[0] ?? null;
      if (!n.beam) throw new Error(`cannot find the beam.smp of ${n.node}`);
    }
    for (const n of nodes.slice(1)) {
      ctl(n, 'stop_app');
      ctl(n, 'reset');
      ctl(n, 'join_cluster', nodes[0].node);
      ctl(n, 'start_app');
    }
    for (const n of nodes) await waitFor(`${n.node} to listen again`, () => canConnect(n.amqp), 60_000);
    const status = ctl(nodes[0], 'cluster_status', '--formatter', 'json');
    const running = JSON.parse(status.slice(status.indexOf('{'))).running_nodes ?? [];
    if (running.length !== 3) throw new Error(`RabbitMQ cluster has ${running.length} running nodes: ${status}`);
    const version = /RabbitMQ version: (\S+)/.exec(ctl(nodes[0], 'status'))?.[1] ?? null;
    return {
      kind: 'rq',
      version,
      // Clients on the first node: a quorum queue declared there has its leader there (client-local).
      uri: `amqp://guest:guest@127.0.0.1:${nodes[0].amqp}/%2f`,
      leaderPid: nodes[0].beam,
      pids: nodes.map((n) => n.beam),
      nodes: nodes.map((n, i) => ({ name: n.node, pid: n.beam, role: i === 0 ? 'clients, queue leader' : 'queue follower' })),
      // The queue is kept (the cluster goes anyway) so that its type and members can be listed.
      extraPerfArgs: ['--queue-type', 'quorum', '--keep-queues'],
      queues() {
        const out = ctl(nodes[0], 'list_queues', 'name', 'type', 'leader', 'members', '--formatter', 'json');
        return JSON.parse(out.slice(out.indexOf('[')));
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------- one run

function runPerf(broker) {
  const args = [
    PERF,
    '--uri',
    broker.uri,
    ...SCENARIO_C,
    ...(broker.extraPerfArgs ?? []),
    '--duration',
    String(DURATION),
    '--warmup',
    String(WARMUP),
    '--pid',
    String(broker.leaderPid),
    ...(broker.pids.length > 1 ? ['--also-pids', broker.pids.filter((p) => p !== broker.leaderPid).join(',')] : []),
    '--json',
    '--quiet',
  ];
  return new Promise((res) => {
    const child = spawn('nice', ['-n', String(NICE), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      try {
        res({ result: JSON.parse(out), error: code === 0 ? null : `exit ${code}: ${err.slice(-500)}` });
      } catch {
        res({ result: null, error: `exit ${code}: ${err.slice(-1500)}` });
      }
    });
  });
}

const KINDS = {
  lc: { label: 'Leveret, 3-node cluster (--min-isr 1)', start: (etcd) => startLeveretCluster(etcd) },
  l1: { label: 'Leveret, single node', start: () => startLeveretSingle() },
  rq: { label: 'RabbitMQ, 3-node cluster, quorum queue', start: () => startRabbitCluster() },
};

async function oneRun(kind, etcd) {
  const load = loadavg().map((x) => Math.round(x * 100) / 100);
  let broker;
  try {
    broker = await KINDS[kind].start(etcd);
  } catch (err) {
    return { kind, load, error: `start failed: ${err.message}` };
  }
  try {
    const { result, error } = await runPerf(broker);
    let queues;
    try {
      queues = broker.queues?.();
    } catch (err) {
      queues = `cannot list: ${err.message.split('\n')[0]}`;
    }
    if (!result) return { kind, load, error };
    const leaderCpu = result.brokerProcess?.cpuSeconds ?? null;
    const others = result.otherProcesses ?? [];
    const cpuTotal = leaderCpu === null ? null : leaderCpu + others.reduce((a, o) => a + o.cpuSeconds, 0);
    const consumed = result.consumed;
    const perNode = [{ pid: broker.leaderPid, cpuSeconds: leaderCpu }, ...others].map((c) => ({
      ...broker.nodes.find((n) => n.pid === c.pid),
      cpuSeconds: c.cpuSeconds,
    }));
    return {
      kind,
      load,
      loadAfter: result.loadAverage,
      error,
      version: broker.version ?? `${result.product ?? '?'} ${result.version ?? ''}`.trim(),
      consumeRate: result.consumeRate,
      confirmRate: result.confirmRate,
      publishRate: result.publishRate,
      p50: result.latencyMs?.p50 ?? null,
      p99: result.latencyMs?.p99 ?? null,
      cpuSeconds: cpuTotal,
      cpuSecondsPerMillion: cpuTotal !== null && consumed > 0 ? cpuTotal / (consumed / 1e6) : null,
      cpuPercent: cpuTotal !== null ? (cpuTotal / result.elapsedSeconds) * 100 : null,
      toolCpuPercent: result.toolProcess?.cpuPercent ?? null,
      perNode,
      ...(queues !== undefined ? { queues } : {}),
    };
  } finally {
    await broker.stop();
  }
}

// ---------------------------------------------------------------- report

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const int = (x) => (x === null ? '–' : Math.round(x).toLocaleString('en-US'));
const fix = (x, d) => (x === null ? '–' : x.toFixed(d));

/** CPU s per million messages of the node the clients use (the leader; the single node). */
function busiestPerMillion(r) {
  const total = r.perNode.reduce((a, n) => a + (n.cpuSeconds ?? 0), 0);
  return r.cpuSecondsPerMillion === null || total === 0 ? null : (r.perNode[0].cpuSeconds / total) * r.cpuSecondsPerMillion;
}

/** One line per other summary in bench/history/ (older than `stamp`), so a re-run does not hide them. */
function earlierRuns(stamp) {
  const dir = join(ROOT, 'bench', 'history');
  if (!existsSync(dir)) return [];
  const out = [];
  for (const f of readdirSync(dir).sort()) {
    const m = /^(.+)-cluster\.json$/.exec(f);
    if (!m || m[1] >= stamp) continue;
    try {
      const j = JSON.parse(readFileSync(join(dir, f), 'utf8'));
      const md = j.medians;
      const loads = j.runs.map((r) => r.load[0]);
      out.push(
        `${j.started.slice(0, 16).replace('T', ' ')} UTC (commit ${j.commit}, ${j.repeat ?? Math.max(...j.runs.map((r) => r.rep))} repetitions, load ${fix(Math.min(...loads), 1)}–${fix(Math.max(...loads), 1)}): ` +
          `cluster ${int(md.lc?.consumeRate ?? null)}, single ${int(md.l1?.consumeRate ?? null)}, RabbitMQ quorum ${int(md.rq?.consumeRate ?? null)} msg/s; ` +
          `cluster ÷ RabbitMQ ${j.targets.clusterVsRabbitQuorum.ratio === null ? '–' : fix(j.targets.clusterVsRabbitQuorum.ratio, 2) + '×'}, ` +
          `cluster ÷ single ${j.targets.clusterVsSingle.ratio === null ? '–' : fix(j.targets.clusterVsSingle.ratio * 100, 0) + ' %'} (\`${f}\`)`,
      );
    } catch {
      // not a summary of ours
    }
  }
  return out;
}

/** What `rabbitmqctl list_queues` said after the RabbitMQ runs, when they recorded it. */
function queuesChecked(runs) {
  const rq = runs.filter((r) => r.kind === 'rq' && !r.error);
  if (rq.length === 0 || rq.some((r) => !Array.isArray(r.queues))) return '';
  const ok = rq.filter(
    (r) =>
      r.queues.length === 1 &&
      r.queues[0].type === 'quorum' &&
      r.queues[0].members.length === 3 &&
      r.queues[0].leader === r.perNode[0].name,
  );
  return ` (rabbitmqctl list_queues after each run: type quorum, three members, led by the clients' node in ${ok.length} of ${rq.length} runs)`;
}

function section(runs, info) {
  const { repeat, duration, warmup, nice } = info;
  const by = (k) => runs.filter((r) => r.kind === k);
  const med = {};
  for (const k of Object.keys(KINDS)) {
    const ok = by(k).filter((r) => !r.error);
    med[k] = {
      runs: by(k).length,
      ok: ok.length,
      consumeRate: median(ok.map((r) => r.consumeRate)),
      p99: median(ok.map((r) => r.p99)),
      p50: median(ok.map((r) => r.p50)),
      cpuSecondsPerMillion: median(ok.map((r) => r.cpuSecondsPerMillion)),
      cpuPercent: median(ok.map((r) => r.cpuPercent)),
      toolCpuPercent: median(ok.map((r) => r.toolCpuPercent)),
      busiestPerMillion: median(ok.map(busiestPerMillion)),
    };
  }
  const lc = med.lc.consumeRate;
  const l1 = med.l1.consumeRate;
  const rq = med.rq.consumeRate;
  const vsRabbit = lc !== null && rq ? lc / rq : null;
  const vsSingle = lc !== null && l1 ? lc / l1 : null;
  const verdict = (ok) => (ok === null ? 'not measured' : ok ? '**met**' : '**not met**');
  const md = [];
  md.push(BEGIN, '', '## Cluster: scenario (c) on three nodes (issue 15)', '');
  md.push(
    `Generated by \`npm run bench:cluster -- --repeat ${repeat}${nice ? ` --nice ${nice}` : ''}\` on ${info.started.slice(0, 16).replace('T', ' ')} UTC, commit ${info.commit}${info.dirty ? ` (${info.dirty} uncommitted changes in src/)` : ''}. ` +
      'This section is written by `bench/cluster.mjs` only; running `bench:compare` rewrites the file above it and drops it, so run `bench:cluster` after it.',
    '',
  );
  md.push('```', `leveret-perf ${SCENARIO_C.join(' ')} --duration ${duration} --warmup ${warmup}`, '```', '');
  md.push(
    '* **Leveret cluster**: three `dist/cli.js` processes on loopback with `--cluster-etcd` (one etcd, default lease TTL 5 s) and `--min-isr 1`; the load tool connects to the leader. A confirm waits until both followers in the ISR have the message on disk.',
    '* **Leveret single node**: one `dist/cli.js`, the broker of bench:compare.',
    `* **RabbitMQ cluster**: three ${info.rabbitVersion ? `RabbitMQ ${info.rabbitVersion}` : 'RabbitMQ'} nodes on loopback (own node names, ports, Erlang cookie and directories, no plugins, stock settings), joined with \`rabbitmqctl join_cluster\`; the queue is declared with \`x-queue-type: quorum\` (\`--queue-type quorum\`, the only argument that differs) on the node the tool connects to, which therefore leads it; the quorum queue has a member on each node${queuesChecked(runs)}.`,
    "* Every broker is started fresh for each run, with data directories on the same file system; CPU is user + system time over the measured window, **summed over every node** of a cluster (each node's share is in the JSON), divided by the messages consumed.",
    `* Order alternates between repetitions (${info.orders.map((o) => o.join(' → ')).join('; ')}), so no configuration always runs first or last. The load tool and the brokers run at the same niceness (${nice}); other sessions used the machine meanwhile: its load average before each run is listed below.`,
    '',
  );
  md.push(
    '| | consumed msg/s (median) | latency p50 | latency p99 | broker CPU s per million msgs (all nodes) | of which the node the clients use | broker CPU (% of one core, all nodes) | load tool CPU | runs |',
  );
  md.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [k, v] of Object.entries(KINDS)) {
    const m = med[k];
    md.push(
      `| ${v.label} | ${int(m.consumeRate)} | ${m.p50 === null ? '–' : fix(m.p50, 2) + ' ms'} | ${m.p99 === null ? '–' : fix(m.p99, 2) + ' ms'} | ${fix(m.cpuSecondsPerMillion, 2)} | ${fix(m.busiestPerMillion, 2)} | ${m.cpuPercent === null ? '–' : fix(m.cpuPercent, 0) + ' %'} | ${m.toolCpuPercent === null ? '–' : fix(m.toolCpuPercent, 0) + ' %'} | ${m.ok}/${m.runs} |`,
    );
  }
  md.push('');
  md.push('| target | figure | result |', '|---|---:|---|');
  md.push(
    `| Leveret cluster ≥ 3× RabbitMQ's quorum-queue throughput | ${vsRabbit === null ? '–' : fix(vsRabbit, 2) + '×'} | ${verdict(vsRabbit === null ? null : vsRabbit >= 3)} |`,
  );
  md.push(
    `| Leveret cluster no more than 40 % below single-node Leveret | ${vsSingle === null ? '–' : `${fix(vsSingle * 100, 0)} % of single node (${fix((1 - vsSingle) * 100, 0)} % below)`} | ${verdict(vsSingle === null ? null : vsSingle >= 0.6)} |`,
  );
  // How much the shared machine moved the figures: the spread of each configuration's runs.
  const spread = Object.entries(KINDS)
    .map(([k, v]) => {
      const ok = by(k).filter((r) => !r.error);
      if (ok.length === 0) return null;
      const rates = ok.map((r) => r.consumeRate);
      const cpu = ok.map((r) => r.cpuSecondsPerMillion).filter((x) => x !== null);
      return `${v.label}: ${int(Math.min(...rates))}–${int(Math.max(...rates))} msg/s, ${fix(Math.min(...cpu), 1)}–${fix(Math.max(...cpu), 1)} CPU s per million`;
    })
    .filter(Boolean);
  const loads = runs.map((r) => r.load[0]);
  md.push(
    '',
    `Load average (1 min) before the runs: ${fix(Math.min(...loads), 1)}–${fix(Math.max(...loads), 1)} on ${info.machine.split(', ')[1] ?? '?'}. ` +
      `Range over the runs: ${spread.join('; ')}. Throughput moves with what else the machine runs; CPU per message moves much less.`,
  );
  md.push('', 'Every run (load average 1/5/15 min before it; CPU seconds in the measured window per node):', '');
  for (const [k, v] of Object.entries(KINDS)) {
    const rs = by(k);
    if (rs.length === 0) continue;
    md.push(`* ${v.label}:`);
    for (const r of rs) {
      md.push(
        r.error
          ? `  * run ${r.rep}: failed (\`${r.error.split('\n')[0].slice(0, 160)}\`); load ${r.load.join(' ')}`
          : `  * run ${r.rep}: ${int(r.consumeRate)} msg/s, p99 ${fix(r.p99, 1)} ms, ${fix(r.cpuSecondsPerMillion, 1)} CPU s per million (${r.perNode.map((n) => `${n.role} ${fix(n.cpuSeconds, 2)} s`).join(', ')}); load ${r.load.join(' ')}`,
      );
    }
  }
  const errs = runs.filter((r) => r.error);
  if (errs.length) md.push('', `${errs.length} run(s) failed; their errors are in the JSON summary.`);
  const earlier = earlierRuns(info.stamp);
  if (earlier.length > 0) {
    md.push('', 'Earlier runs of this script (their summaries in `bench/history/`), medians:', '');
    for (const e of earlier) md.push(`* ${e}`);
  }
  md.push('', `Summary JSON: \`bench/history/${info.stamp}-cluster.json\`. Machine: ${info.machine}.`, '', END);
  return { md: md.join('\n'), med, vsRabbit, vsSingle };
}

// ---------------------------------------------------------------- main

/** Rewrites the section from a summary JSON written earlier (no run). */
function fromJson(file) {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  const arg = (name, def) => {
    const i = j.args.indexOf(name);
    return i >= 0 ? Number(j.args[i + 1]) : def;
  };
  const stamp = j.stamp ?? /([^/]+)-cluster\.json$/.exec(file)[1];
  const info = {
    started: j.started,
    stamp,
    commit: j.commit,
    dirty: j.uncommittedSrcChanges,
    orders: j.orders,
    rabbitVersion: j.runs.find((r) => r.kind === 'rq' && r.version)?.version ?? null,
    machine: j.machine,
    repeat: j.repeat ?? Math.max(...j.runs.map((r) => r.rep)),
    duration: arg('--duration', 10),
    warmup: arg('--warmup', 1),
    nice: j.nice ?? 0,
  };
  return { runs: j.runs, info };
}

function writeSection(md) {
  const old = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
  const a = old.indexOf(BEGIN);
  const b = old.indexOf(END);
  const next = a >= 0 && b > a ? old.slice(0, a) + md + old.slice(b + END.length) : old.replace(/\n*$/, '\n\n') + md + '\n';
  writeFileSync(RESULTS, next);
}

async function main() {
  if (values['from-json']) {
    const { runs, info } = fromJson(values['from-json']);
    const { md } = section(runs, info);
    process.stdout.write(md + '\n');
    if (!values['no-write']) writeSection(md);
    return;
  }
  if (!values['no-build']) {
    for (const script of ['build', 'bench:build']) {
      const r = spawnSync('npm', ['run', script, '--silent'], { cwd: ROOT, stdio: 'inherit' });
      if (r.status !== 0) throw new Error(`npm run ${script} failed`);
    }
  }
  const started = new Date().toISOString();
  const stamp = started.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean).length;
  const etcd = ONLY.includes('lc') ? await startEtcd() : null;
  const runs = [];
  const orders = [];
  try {
    for (let rep = 1; rep <= REPEAT; rep++) {
      const order = rep % 2 === 1 ? ['lc', 'l1', 'rq'] : ['rq', 'l1', 'lc'];
      const mine = order.filter((k) => ONLY.includes(k));
      orders.push(mine);
      for (const kind of mine) {
        log(
          `cluster bench: run ${rep}/${REPEAT}: ${KINDS[kind].label} (load ${loadavg()
            .map((x) => x.toFixed(2))
            .join(' ')})`,
        );
        const r = await oneRun(kind, etcd);
        r.rep = rep;
        runs.push(r);
        log(
          r.error
            ? `  failed: ${r.error}`
            : `  ${int(r.consumeRate)} msg/s, p99 ${fix(r.p99, 2)} ms, ${fix(r.cpuSecondsPerMillion, 2)} CPU s per million (${r.perNode.map((n) => `${n.role} ${n.cpuSeconds}`).join(', ')})${r.queues ? `; queues ${JSON.stringify(r.queues)}` : ''}`,
        );
      }
    }
  } finally {
    etcd?.stop();
  }
  const rabbitVersion = runs.find((r) => r.kind === 'rq' && r.version)?.version ?? null;
  const machine = `${cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? '?'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node.js ${process.version}`;
  const info = {
    started,
    stamp,
    commit,
    dirty,
    orders,
    rabbitVersion,
    machine,
    repeat: REPEAT,
    duration: DURATION,
    warmup: WARMUP,
    nice: NICE,
  };
  const { md, med, vsRabbit, vsSingle } = section(runs, info);
  process.stdout.write(md + '\n');
  if (values['no-write']) return;
  const summary = {
    kind: 'cluster',
    started,
    stamp,
    repeat: REPEAT,
    commit,
    uncommittedSrcChanges: dirty,
    machine,
    args: [...SCENARIO_C, '--duration', String(DURATION), '--warmup', String(WARMUP)],
    nice: NICE,
    orders,
    medians: med,
    targets: {
      clusterVsRabbitQuorum: { ratio: vsRabbit, target: 3, met: vsRabbit === null ? null : vsRabbit >= 3 },
      clusterVsSingle: { ratio: vsSingle, target: 0.6, met: vsSingle === null ? null : vsSingle >= 0.6 },
    },
    runs,
  };
  const history = join(ROOT, 'bench', 'history');
  mkdirSync(history, { recursive: true });
  writeFileSync(join(history, `${stamp}-cluster.json`), JSON.stringify(summary, null, 2) + '\n');
  writeSection(md);
  log(`cluster bench: wrote the cluster section of ${RESULTS} and bench/history/${stamp}-cluster.json`);
}

main().catch((err) => {
  log(`cluster bench: ${err.stack ?? err}`);
  process.exit(1);
});
