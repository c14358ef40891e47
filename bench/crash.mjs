#!/usr/bin/env node
/**
 * crash.mjs: does Leveret lose or damage a confirmed message when it is killed with SIGKILL?
 *
 * Usage (from the repository root, after `npm run build`):
 *
 *   node bench/crash.mjs [--cycles 20] [--min-ms 200] [--max-ms 1500] [--window 1000]
 *                        [--segment-size BYTES] [--fanout N] [--data-dir DIR] [--keep] [--verbose] [--json]
 *
 *   --cycles N     kill -9 cycles (default 20)
 *   --min-ms/--max-ms
 *                  the broker is killed at a random moment this long into the load
 *                  (default 200..1500 ms)
 *   --window N     most unconfirmed publishes in flight (default 1000)
 *   --segment-size BYTES
 *                  passed to the broker as --segment-size (default: the broker's, 8 MiB);
 *                  a small one (e.g. 65536) makes many segments, so that more of them turn
 *                  sparse and get compacted between the crashes
 *   --fanout N     durable queues bound to the fanout exchange (default 2, at least 1); with
 *                  2 or more each persistent message is stored once in the shared body log
 *                  and named by an index record in every queue, so the crashes exercise it
 *   --data-dir D   use D (must be empty or absent) instead of a fresh temporary directory
 *   --keep         keep the data directory afterwards (it is always kept on failure)
 *   --verbose      a line per cycle
 *   --json         one JSON object with every count (and the first problems) as the last
 *                  line on stdout; the other lines go to stderr (test/crash-cycles.test.ts)
 *
 * Each cycle starts `node dist/cli.js` on the same data directory, then:
 *   1. drains a random share (0-100 %) of each queue, acking, and checks every message;
 *      what is left stays in the queue across the next crash(es);
 *   2. publishes persistent messages with unique ids and random bodies (random sizes, some
 *      larger than a frame) on a confirm channel to a durable fanout exchange bound to the
 *      durable queues (two unless --fanout says otherwise), remembering the sha256 of every body and which ids were confirmed;
 *      in every other cycle a consumer on the first queue acks messages concurrently;
 *      consumers leave about 4 % of their deliveries unacked (requeued when the drain's
 *      channel closes, or redelivered after the kill), so that segments turn sparse and
 *      get compacted under live messages;
 *   3. kills the broker with SIGKILL at a random moment and waits for it to exit.
 * Finally a broker is started once more, every queue is drained completely, and the broker
 * is stopped with SIGTERM.
 *
 * Checks: every confirmed message is delivered from each queue (missing must be 0), every
 * delivered body matches its id's sha256 exactly (corrupt must be 0) and every delivered
 * id was published (unknown must be 0). Duplicates are counted, split into those whose
 * earlier delivery was acked during a load that was then killed (the ack may not have
 * reached the broker; allowed) and others; messages present though never confirmed
 * (in flight at the kill; allowed) are counted too. Exits 1 on any missing, corrupt or
 * unknown message, or if the broker fails to start or to stop cleanly.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const amqp = require('amqplib');

const { values: opt } = parseArgs({
  options: {
    cycles: { type: 'string', default: '20' },
    'min-ms': { type: 'string', default: '200' },
    'max-ms': { type: 'string', default: '1500' },
    window: { type: 'string', default: '1000' },
    'segment-size': { type: 'string' },
    fanout: { type: 'string', default: '2' },
    'data-dir': { type: 'string' },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const CYCLES = Number(opt.cycles);
const MIN_MS = Number(opt['min-ms']);
const MAX_MS = Number(opt['max-ms']);
const WINDOW = Number(opt.window);
const SEGMENT_SIZE = opt['segment-size'] === undefined ? null : Number(opt['segment-size']);
const CLI = path.join(ROOT, 'dist', 'cli.js');
const EXCHANGE = 'crash-x';
const FANOUT = Number(opt.fanout);
if (!Number.isInteger(FANOUT) || FANOUT < 1) {
  console.error('crash: --fanout must be a positive integer');
  process.exit(2);
}
const QUEUES = Array.from({ length: FANOUT }, (_, i) => `crash-q${i + 1}`);
/** Share of deliveries a consumer leaves unacked (at most MAX_HELD per channel). */
const HOLD = 0.04;
const MAX_HELD = 100;

if (!fs.existsSync(CLI)) {
  console.error(`crash: ${CLI} not found; run \`npm run build\` first`);
  process.exit(2);
}

const tmpBase = opt['data-dir'] ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-crash-'));
const DATA_DIR = opt['data-dir'] ?? path.join(tmpBase, 'data');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (b) => createHash('sha256').update(b).digest('hex');
/** Human-readable output: stdout, or stderr with --json (stdout then carries only the JSON). */
const say = (...a) => (opt.json ? console.error(...a) : console.log(...a));
const log = (...a) => opt.verbose && say(...a);

// ------------------------------------------------------------------ state

/** id -> { sha, confirmed } for every message handed to the client library */
const published = new Map();
/** per queue: id -> { count, ackedInKilledLoad } */
const seen = new Map(QUEUES.map((q) => [q, new Map()]));
const stats = {
  published: 0,
  confirmed: 0,
  nacked: 0,
  delivered: 0,
  corrupt: 0,
  unknown: 0,
  dupAckInFlight: 0,
  dupOther: 0,
  redeliveredFlag: 0,
  outOfOrder: 0,
  held: 0,
  ackedInLoad: 0,
  tornWarnings: 0,
  compactions: 0,
  brokerErrors: 0,
};
const problems = [];

let problemCount = 0;
function problem(msg) {
  problemCount++;
  if (problems.length < 20) problems.push(msg);
}

/**
 * Checks one delivered message; `during` names the phase ('drain' or 'load'). A message
 * that is held (left unacked, so that it goes back to the queue) is checked for damage
 * but not counted as seen.
 */
function check(queue, m, during, order, held = false) {
  stats.delivered++;
  const id = m.properties.messageId;
  if (m.fields.redelivered) stats.redeliveredFlag++;
  const p = published.get(id);
  if (p === undefined) {
    stats.unknown++;
    problem(`${queue}: unknown message id ${JSON.stringify(id)} (${m.content.length} bytes)`);
    return;
  }
  if (sha(m.content) !== p.sha) {
    stats.corrupt++;
    problem(`${queue}: message ${id} body differs from what was published (${m.content.length} bytes)`);
  }
  if (held) {
    stats.held++;
    return;
  }
  const s = seen.get(queue).get(id);
  if (s === undefined) {
    seen.get(queue).set(id, { count: 1, ackedInLoad: during === 'load' });
    // Order: within one publishing cycle, first deliveries come in publish order.
    const [cycle, seq] = id.split('.').map(Number);
    const last = order.get(cycle) ?? -1;
    if (seq < last) stats.outOfOrder++;
    else order.set(cycle, seq);
  } else {
    s.count++;
    if (s.ackedInLoad) stats.dupAckInFlight++;
    else {
      stats.dupOther++;
      problem(`${queue}: message ${id} delivered again after it was acked in a drain (redelivered=${m.fields.redelivered})`);
    }
  }
}

// ------------------------------------------------------------------ broker processes

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

async function startBroker() {
  const port = await freePort();
  const httpPort = await freePort();
  const args = [CLI, '--port', String(port), '--http-port', String(httpPort), '--data-dir', DATA_DIR];
  if (SEGMENT_SIZE !== null) args.push('--segment-size', String(SEGMENT_SIZE));
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  exited.then(() => (done = true));
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (done || Date.now() > deadline) {
      child.kill('SIGKILL');
      const r = await exited;
      throw new Error(`broker did not start (exit ${r.code}, signal ${r.signal}):\n${out}`);
    }
    await sleep(20);
  }
  return { port, url: `amqp://guest:guest@127.0.0.1:${port}`, child, exited, output: () => out };
}

/** Counts warnings about damaged segments and error-level lines in a broker's log. */
function scanLog(out) {
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      continue;
    }
    if (l.level === 40 && /torn|corrupt/i.test(l.msg)) stats.tornWarnings++;
    if (l.msg === 'segment compacted') stats.compactions++;
    if (l.level >= 50) {
      stats.brokerErrors++;
      problem(`broker logged ${l.level === 50 ? 'error' : 'fatal'}: ${l.msg} ${l.err ? JSON.stringify(l.err.message) : ''}`);
    }
  }
}

async function connect(url) {
  const c = await amqp.connect(url);
  c.on('error', () => {});
  return c;
}

// ------------------------------------------------------------------ phases

/** Consumes `share` (0..1) of what is in each queue, acking; Infinity-safe for share 1. */
async function drain(conn, share, final) {
  for (const q of QUEUES) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.prefetch(256 + MAX_HELD);
    const total = (await ch.checkQueue(q)).messageCount;
    const target = final ? total : Math.floor(total * share);
    if (target > 0 || final) {
      const order = new Map();
      let taken = 0;
      let held = 0;
      let last = Date.now();
      let resolveDone;
      const done = new Promise((r) => (resolveDone = r));
      await ch.consume(q, (m) => {
        if (m === null) return;
        last = Date.now();
        if (!final && taken >= target) return; // left unacked: requeued when the channel closes
        if (!final && held < MAX_HELD && Math.random() < HOLD) {
          // Left unacked while its neighbours are acked: sparse segments get compacted
          // under it; it goes back to the queue when the channel closes.
          held++;
          check(q, m, 'drain', order, true);
          if (taken + held === total) resolveDone(); // nothing left to take
          return;
        }
        taken++;
        check(q, m, 'drain', order);
        ch.ack(m);
        if (!final && (taken === target || taken + held === total)) resolveDone();
      });
      if (final) {
        // Everything, and then some time for anything beyond the count the queue reported.
        while (Date.now() - last < (taken >= total ? 500 : 5000)) await sleep(20);
        if (taken < total) problem(`${q}: reported ${total} messages, only ${taken} were delivered`);
      } else {
        const timeout = sleep(10_000).then(() => 'timeout');
        if ((await Promise.race([done, timeout])) === 'timeout') problem(`${q}: drain of ${target} stalled at ${taken}`);
      }
    }
    await ch.close().catch(() => {});
  }
}

function bodySize() {
  const r = Math.random();
  if (r < 0.8) return randomInt(0, 1024);
  if (r < 0.97) return randomInt(1024, 16 * 1024);
  return randomInt(16 * 1024, 300 * 1024); // some span several frames
}

/** Publishes until the connection dies; resolves with how many were published. */
async function load(cycle, conn, consumerConn) {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  let outstanding = 0;
  let dead = false;
  conn.on('close', () => (dead = true));

  if (consumerConn !== null) {
    const cc = await consumerConn.createChannel();
    cc.on('error', () => {});
    await cc.prefetch(50 + MAX_HELD);
    const order = new Map();
    let held = 0;
    await cc.consume(QUEUES[0], (m) => {
      if (m === null) return;
      if (held < MAX_HELD && Math.random() < HOLD) {
        held++; // unacked until the kill: comes back redelivered
        check(QUEUES[0], m, 'load', order, true);
        return;
      }
      check(QUEUES[0], m, 'load', order);
      stats.ackedInLoad++;
      try {
        cc.ack(m);
      } catch {
        // the broker is gone
      }
    });
  }

  let seq = 0;
  while (!dead) {
    const id = `${cycle}.${seq++}`;
    const body = randomBytes(bodySize());
    published.set(id, { sha: sha(body), confirmed: false });
    stats.published++;
    outstanding++;
    try {
      ch.publish(EXCHANGE, '', body, { persistent: true, messageId: id }, (err) => {
        outstanding--;
        if (err) {
          // A nack, or the channel closed before the confirm: unconfirmed either way.
          if (/nack/i.test(String(err.message))) stats.nacked++;
          return;
        }
        published.get(id).confirmed = true;
        stats.confirmed++;
      });
    } catch {
      break; // channel closed under us
    }
    while (outstanding >= WINDOW && !dead) await sleep(1);
    if (seq % 64 === 0) await new Promise((r) => setImmediate(r));
  }
}

// ------------------------------------------------------------------ main

async function main() {
  const t0 = Date.now();
  say(`crash: ${CYCLES} cycles, kill -9 at ${MIN_MS}-${MAX_MS} ms, ` + `segment size ${SEGMENT_SIZE ?? 'default'}, data dir ${DATA_DIR}`);
  fs.mkdirSync(DATA_DIR, { recursive: true });

  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const broker = await startBroker();
    const conn = await connect(broker.url);
    const ch = await conn.createChannel();
    await ch.assertExchange(EXCHANGE, 'fanout', { durable: true });
    for (const q of QUEUES) {
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, EXCHANGE, '');
    }
    await ch.close();

    const share = Math.random();
    await drain(conn, share, false);

    const consumerConn = cycle % 2 === 0 ? await connect(broker.url) : null;
    const killAfter = randomInt(MIN_MS, MAX_MS + 1);
    const before = { published: stats.published, confirmed: stats.confirmed };
    const loading = load(cycle, conn, consumerConn);
    await sleep(killAfter);
    broker.child.kill('SIGKILL');
    await broker.exited;
    await loading;
    scanLog(broker.output());
    log(
      `cycle ${cycle}: drained ${(share * 100).toFixed(0)}%, killed after ${killAfter} ms, ` +
        `published ${stats.published - before.published}, confirmed ${stats.confirmed - before.confirmed}` +
        (consumerConn ? ', with a consumer' : ''),
    );
  }

  // Final verification: everything that was confirmed must be there.
  const broker = await startBroker();
  const conn = await connect(broker.url);
  await drain(conn, 1, true);
  await conn.close().catch(() => {});
  broker.child.kill('SIGTERM');
  const { code } = await broker.exited;
  scanLog(broker.output());
  if (code !== 0) problem(`final broker exited with code ${code} on SIGTERM`);

  let missing = 0;
  let unconfirmedPresent = 0;
  for (const q of QUEUES) {
    const s = seen.get(q);
    for (const [id, p] of published) {
      if (p.confirmed && !s.has(id)) {
        missing++;
        problem(`${q}: confirmed message ${id} is missing`);
      }
      if (!p.confirmed && s.has(id)) unconfirmedPresent++;
    }
  }

  const failed = missing > 0 || stats.corrupt > 0 || stats.unknown > 0 || code !== 0;
  for (const p of problems) say(`  ! ${p}`);
  if (problemCount > problems.length) say(`  ! ... and ${problemCount - problems.length} more`);
  say(
    `crash: ${failed ? 'FAIL' : 'OK'} cycles=${CYCLES} published=${stats.published} confirmed=${stats.confirmed} ` +
      `queues=${QUEUES.length} delivered=${stats.delivered} missing=${missing} corrupt=${stats.corrupt} unknown=${stats.unknown} ` +
      `duplicates=${stats.dupAckInFlight + stats.dupOther} (ack-in-flight-at-kill=${stats.dupAckInFlight} other=${stats.dupOther}) ` +
      `unconfirmed-present=${unconfirmedPresent} nacked=${stats.nacked} redelivered-flag=${stats.redeliveredFlag} ` +
      `held=${stats.held} out-of-order=${stats.outOfOrder} compactions=${stats.compactions} ` +
      `torn-tail-warnings=${stats.tornWarnings} broker-errors=${stats.brokerErrors} ` +
      `time=${((Date.now() - t0) / 1000).toFixed(1)}s`,
  );
  const kept = failed || opt.keep;
  if (kept) say(`crash: data directory kept at ${DATA_DIR}`);
  else if (tmpBase) fs.rmSync(tmpBase, { recursive: true, force: true });
  if (opt.json) {
    const { dupAckInFlight, dupOther, ...rest } = stats;
    const summary = {
      ok: !failed,
      cycles: CYCLES,
      segmentSize: SEGMENT_SIZE,
      queues: QUEUES.length,
      ...rest,
      missing,
      duplicates: dupAckInFlight + dupOther,
      dupAckInFlight,
      dupOther,
      unconfirmedPresent,
      finalExitCode: code,
      problemCount,
      problems,
      dataDir: kept ? DATA_DIR : null,
      seconds: (Date.now() - t0) / 1000,
    };
    console.log(JSON.stringify(summary));
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  // With --json the absence of a JSON line on stdout tells the caller that the run broke off.
  console.error(`crash: ${err.stack ?? err}`);
  console.error(`crash: data directory kept at ${DATA_DIR}`);
  process.exit(1);
});
