#!/usr/bin/env node
// The flood: one publisher at full speed (no confirms, transient messages) into a
// queue nobody consumes from, against a fresh broker with a memory watermark; prints the
// broker's peak RSS against the watermark, what was published and paged, and whether the
// memory alarm went off. Nothing here is part of npm test.
//
//   node bench/alarm-flood.mjs [--seconds 60] [--watermark 150MB] [--size 200] [--queues 1] [-- <broker args>]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import path from 'node:path';
import { AMQPClient } from '@cloudamqp/amqp-client';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const own = sep < 0 ? argv : argv.slice(0, sep);
const brokerArgs = sep < 0 ? [] : argv.slice(sep + 1);
const opt = (name, dflt) => {
  const i = own.indexOf(name);
  return i < 0 ? dflt : own[i + 1];
};
const seconds = Number(opt('--seconds', '60'));
const watermark = opt('--watermark', '150MB');
const size = Number(opt('--size', '200'));
const queues = Number(opt('--queues', '1'));

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const du = (dir) => {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? du(p) : fs.statSync(p).size;
  }
  return n;
};
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

const port = await freePort();
const httpPort = await freePort();
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-flood-'));
const broker = spawn(
  process.execPath,
  [
    path.join(root, 'dist', 'cli.js'),
    '--port',
    String(port),
    '--http-port',
    String(httpPort),
    '--data-dir',
    dataDir,
    '--vm-memory-high-watermark',
    watermark,
    ...brokerArgs,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let log = '';
broker.stdout.on('data', (d) => (log += d));
for (let i = 0; i < 200 && !/listening for AMQP/.test(log); i++) await new Promise((r) => setTimeout(r, 50));

const url = `amqp://guest:guest@127.0.0.1:${port}`;
const setup = new AMQPClient(url);
await setup.connect();
const sch = await setup.channel();
for (let q = 0; q < queues; q++) await sch.queueDeclare(`flood-${q}`, { durable: false });

const idle = rss(broker.pid);
let peakDisk = 0;
// RSS is sampled from a worker thread: the publishers below keep this thread's event loop
// busy (amqp-client's writes complete in process.nextTick while the socket takes them), and
// a timer here fires only a few times a minute. The peak (kB) and the count are shared.
const cells = new Int32Array(new SharedArrayBuffer(8));
cells[0] = Math.floor(idle / 1024);
const sampler = new Worker(
  `const { workerData: { pid, cells } } = require('node:worker_threads');
   const fs = require('node:fs');
   setInterval(() => {
     try {
       const kb = Number(/VmRSS:\\s+(\\d+) kB/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'))[1]);
       Atomics.store(cells, 0, Math.max(Atomics.load(cells, 0), kb));
       Atomics.add(cells, 1, 1);
     } catch {}
   }, 100);`,
  { eval: true, workerData: { pid: broker.pid, cells } },
);
const diskSampler = setInterval(() => (peakDisk = Math.max(peakDisk, du(dataDir))), 2000);
let blockedFor = 0;

/** A connection and channel for one publisher, opened before any publishing starts. */
async function open() {
  const c = new AMQPClient(url);
  await c.connect();
  return { c, ch: await c.channel() };
}

async function publisher({ c, ch }, queue) {
  const body = Buffer.alloc(size, 'x');
  const end = Date.now() + seconds * 1000;
  let n = 0;
  const batch = [];
  while (Date.now() < end) {
    if (c.blocked !== undefined) {
      const t = Date.now();
      while (c.blocked !== undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      blockedFor += Date.now() - t;
      continue;
    }
    for (let i = 0; i < 200; i++) batch.push(ch.basicPublish('', queue, body));
    await Promise.all(batch).catch(() => undefined);
    n += batch.length;
    batch.length = 0;
  }
  await c.close();
  return n;
}

// Every publisher connects first: one that is already flooding would otherwise hold up the
// handshakes of the others in this process (this script is one event loop) past the
// broker's handshake timeout.
const conns = [];
for (let q = 0; q < queues; q++) conns.push(await open());
const t0 = Date.now();
const counts = await Promise.all(conns.map((conn, q) => publisher(conn, `flood-${q}`)));
const elapsed = (Date.now() - t0) / 1000;
const peak = Atomics.load(cells, 0) * 1024;
const samples = Atomics.load(cells, 1);
await sampler.terminate();
clearInterval(diskSampler);
let depth = 0;
for (let q = 0; q < queues; q++) depth += (await sch.queueDeclare(`flood-${q}`, { passive: true })).messageCount;
await setup.close();
const published = counts.reduce((a, b) => a + b, 0);
console.log(`${seconds} s flood, ${queues} queue(s), ${size} B transient messages, watermark ${watermark}:`);
console.log(
  `  published ${published.toLocaleString()} (${Math.round(published / elapsed).toLocaleString()} msg/s), ${depth.toLocaleString()} in the queue(s)`,
);
console.log(`  broker RSS ${mb(idle)} idle, peak ${mb(peak)} (${samples} samples); data directory peak ${mb(peakDisk)}`);
console.log(
  `  memory alarm ${/memory resource limit alarm set/.test(log) ? 'raised' : 'never raised'}; publishers blocked for ${(blockedFor / 1000).toFixed(1)} s`,
);
broker.kill('SIGTERM');
await new Promise((r) => broker.once('exit', r));
fs.rmSync(dataDir, { recursive: true, force: true });
