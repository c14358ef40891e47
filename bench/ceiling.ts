#!/usr/bin/env node
/**
 * Measures leveret-perf's own ceiling, so that its numbers can be trusted not to be the
 * tool's limit:
 *   1. in-process: the publish path (template copy + stamp into batches) and the consume
 *      path (frame parsing, delivery handling, latency recording, acks) with no sockets;
 *   2. over TCP against bench/sink.js: publish-only into a discarding sink, consume-only
 *      from a flooding sink, and both roles through an echoing sink.
 * Prints a markdown table on stdout.
 *
 *   node bench/dist/bench/ceiling.js [--duration 5]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Connection } from './client';
import { buildTemplates, Consumer, MAGIC_A, MAGIC_B, Producer, stats } from './load';
import { Writer } from '../src/protocol/writer';
import * as M from '../src/protocol/generated';

const { values } = parseArgs({ options: { duration: { type: 'string' } } });
const DURATION = Number(values.duration ?? 5);

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function encodeRate(size: number, n: number): Promise<number> {
  let bytes = 0;
  const fake = {
    socket: new EventEmitter(),
    writeRaw(buf: Buffer): boolean {
      bytes += buf.length;
      return true;
    },
  } as unknown as Connection;
  const templates = buildTemplates({ size, persistent: false }, [{ exchange: 'perf', routingKey: 'perf-q' }], 131072);
  const p = new Producer(fake, templates, 0, 0, 0);
  const t0 = performance.now();
  await p.start(n);
  const s = (performance.now() - t0) / 1000;
  if (bytes === 0) throw new Error('nothing encoded');
  return n / s;
}

function decodeRate(size: number, rounds: number): number {
  // A stream of 10,000 deliveries, stamped with this process's marker, cut into 64 KB reads.
  const w = new Writer();
  const body = Buffer.alloc(size, 0x78);
  if (size >= 16) {
    body.writeUInt32LE(MAGIC_A, 8);
    body.writeUInt32LE(MAGIC_B, 12);
  }
  const parts: Buffer[] = [];
  const per = 10_000;
  for (let i = 0; i < per; i++) {
    if (size >= 16) body.writeDoubleLE(performance.now(), 0);
    M.encodeBasicDeliver(w, 1, 'amq.ctag-perf', i + 1, false, 'perf', 'perf-q');
    w.beginFrame(2, 1);
    w.u16(60);
    w.u16(0);
    w.u64(size);
    M.encodeBasicProperties(w, { deliveryMode: 1 });
    w.endFrame();
    w.bodyFrame(1, body, 0, size);
    parts.push(...w.take());
  }
  const stream = Buffer.concat(parts);
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += 65536) chunks.push(stream.subarray(off, Math.min(stream.length, off + 65536)));
  const conn = Connection.detached();
  const consumer = new Consumer(conn, 1, 100, false);
  conn.setDeliveryHandler(1, consumer);
  stats.measuring = true;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const c of chunks) {
      conn.feed(c);
      if (!conn.writer.empty) conn.writer.take();
    }
  }
  const s = (performance.now() - t0) / 1000;
  stats.measuring = false;
  if (consumer.consumed !== per * rounds) throw new Error(`decoded ${consumer.consumed} of ${per * rounds}`);
  return (per * rounds) / s;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function startSink(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(__dirname, 'sink.js'), '--port', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`sink exited with ${code}`)));
  });
  return { child, port };
}

function runPerf(port: number, pid: number, args: string[]): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        join(__dirname, 'perf.js'),
        '--uri',
        `amqp://guest:guest@127.0.0.1:${port}`,
        '--pid',
        String(pid),
        '--duration',
        String(DURATION),
        '--warmup',
        '1',
        '--json',
        '--quiet',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`perf exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const rows: string[] = [];
  rows.push('| case | body | published msg/s | consumed msg/s | latency p50 / p99 | tool CPU | sink CPU |');
  rows.push('|---|---|---:|---:|---:|---:|---:|');
  for (const size of [16, 1024]) {
    const enc = await encodeRate(size, size === 16 ? 5_000_000 : 2_000_000);
    rows.push(`| in-process publish path (no socket) | ${size} B | ${fmt(enc)} | | | 100 % (1 core) | |`);
    const dec = decodeRate(size, size === 16 ? 300 : 100);
    rows.push(`| in-process consume path (no socket) | ${size} B | | ${fmt(dec)} | | 100 % (1 core) | |`);
  }
  process.stderr.write('in-process done\n');
  const cases: { name: string; sink: string[]; perf: string[] }[] = [
    { name: 'publish into discarding sink', sink: [], perf: ['--consumers', '0'] },
    { name: 'publish with confirms (window 256)', sink: [], perf: ['--consumers', '0', '--confirm', '256'] },
    { name: 'consume from flooding sink', sink: [], perf: ['--producers', '0', '--prefetch', '1000', '--multi-ack-every', '100'] },
    { name: 'both roles through echoing sink', sink: ['--echo'], perf: ['--prefetch', '1000', '--multi-ack-every', '100'] },
    {
      name: 'echoing sink at a fixed 5,000 msg/s',
      sink: ['--echo'],
      perf: ['--prefetch', '1000', '--multi-ack-every', '100', '--rate', '5000'],
    },
  ];
  for (const size of [16, 1024]) {
    for (const c of cases) {
      const sink = await startSink([...c.sink, '--size', String(size)]);
      try {
        const r = await runPerf(sink.port, sink.child.pid!, [...c.perf, '--size', String(size)]);
        rows.push(
          `| ${c.name} | ${size} B | ${r.publishRate ? fmt(r.publishRate) : ''} | ${r.consumeRate ? fmt(r.consumeRate) : ''} | ${r.latencyMs ? `${r.latencyMs.p50} / ${r.latencyMs.p99} ms` : ''} | ${r.toolProcess.cpuPercent} % | ${r.brokerProcess?.cpuPercent ?? '?'} % |`,
        );
        process.stderr.write(`${c.name} ${size} B done\n`);
      } finally {
        sink.child.kill();
      }
    }
  }
  process.stdout.write(rows.join('\n') + '\n');
  process.stdout.write(
    `\nload average after: ${(await import('node:os'))
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`ceiling: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
