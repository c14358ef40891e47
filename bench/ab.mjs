#!/usr/bin/env node
// Two Leveret builds side by side on one scenario: each run starts a fresh broker of build A
// and one of build B (alternating which goes first), drives it with leveret-perf, and prints
// the consumed rate and the broker's CPU per message of every run and the medians.
//
//   node bench/ab.mjs --a /tmp/before/dist/cli.js --b dist/cli.js [--runs 6] [--duration 10] -- <perf args>
//
// Needs `npm run bench:build` (bench/dist/bench/perf.js). Nothing here asserts anything.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const own = sep < 0 ? argv : argv.slice(0, sep);
const perfArgs = sep < 0 ? [] : argv.slice(sep + 1);
const opt = (name, dflt) => {
  const i = own.indexOf(name);
  return i < 0 ? dflt : own[i + 1];
};
const builds = { A: opt('--a'), B: opt('--b') };
const runs = Number(opt('--runs', '6'));
const duration = opt('--duration', '10');
if (!builds.A || !builds.B) {
  process.stderr.write('usage: node bench/ab.mjs --a CLI_JS --b CLI_JS [--runs N] [--duration S] -- <perf args>\n');
  process.exit(2);
}
const perf = path.join(path.dirname(new URL(import.meta.url).pathname), 'dist', 'bench', 'perf.js');

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const canConnect = (port) =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

async function runOnce(which) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leveret-ab-'));
  const broker = spawn(
    process.execPath,
    [builds[which], '--port', String(port), '--http-port', '0', '--data-dir', dir, '--log-level', 'warn'],
    { stdio: 'ignore' },
  );
  while (!(await canConnect(port))) await new Promise((r) => setTimeout(r, 50));
  const r = spawnSync(
    process.execPath,
    [
      perf,
      '--uri',
      `amqp://guest:guest@127.0.0.1:${port}/%2f`,
      '--pid',
      String(broker.pid),
      '--duration',
      duration,
      '--warmup',
      '2',
      '--json',
      '--quiet',
      ...perfArgs,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  broker.kill('SIGKILL');
  await new Promise((r2) => broker.once('exit', r2));
  rmSync(dir, { recursive: true, force: true });
  const j = JSON.parse(r.stdout);
  const consumed = j.consumeRate;
  // seconds per million messages = µs per message
  const cpuPerMsg = j.brokerProcess?.cpuSecondsPerMillion ?? null;
  return { consumed, cpuPerMsg, raw: j };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const out = { A: [], B: [] };
for (let i = 0; i < runs; i++) {
  for (const which of i % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
    const r = await runOnce(which);
    out[which].push(r);
    process.stdout.write(
      `run ${i + 1} ${which}: ${Math.round(r.consumed)} msg/s, broker CPU ${r.cpuPerMsg?.toFixed?.(2) ?? '?'} µs/msg, load ${os.loadavg()[0].toFixed(2)}\n`,
    );
  }
}
for (const which of ['A', 'B']) {
  const rs = out[which];
  process.stdout.write(
    `${which} (${builds[which]}): median ${Math.round(median(rs.map((r) => r.consumed)))} msg/s, median CPU ${median(rs.map((r) => r.cpuPerMsg ?? NaN)).toFixed(2)} µs/msg\n`,
  );
}
