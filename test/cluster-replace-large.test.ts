// Issue 15: a definitions.log REPLACE larger than one replication frame (1 MiB + 4 KiB). A
// leader (test-only LEVERET_TEST_REPLICATION) with 20,000 durable queues streams to a
// follower in its own process (fixtures/cluster-live-follower.cjs); its definitions.log is
// rewritten while the follower streams (a full disk refuses an append, the store's retry
// compacts the log once space is back). The follower must end with the leader's file, the
// stream unbroken (no retry, no second copy). Then a follower killed -9 between two parts of
// such a REPLACE: its definitions.log stays the old one, whole; a broker on that copy loads
// it and ignores what was written aside; a resumed stream finishes the new one.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type amqp from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { amqplibConnect, waitFor } from './helpers/clients';
import { freePort } from './helpers/broker';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api } from './helpers/http';
import { MAX_PAYLOAD } from '../src/cluster/replication/frame';
import { OpApplier } from '../src/cluster/replication/op-applier';
import { collectOps, OpTap } from '../src/cluster/replication/op-tap';
import { decodeOp, OpKind } from '../src/cluster/replication/store-ops';

const T = 240_000;
const FIXTURE = path.join(__dirname, 'fixtures', 'cluster-live-follower.cjs');
const APPLIER = path.resolve(__dirname, '..', 'dist', 'cluster', 'replication', 'op-applier.js');
const QUEUES = 20_000;
/** Long names: 20,000 queue records then weigh several MiB. */
const qname = (i: number): string => `big.${String(i).padStart(6, '0')}.${'q'.repeat(160)}`;

const dirs: string[] = [];
const mounts: string[] = [];
let brokers: DurableBroker[] = [];
let children: ChildProcess[] = [];
let conns: amqp.ChannelModel[] = [];

afterEach(async () => {
  for (const c of conns) await c.close().catch(() => {});
  conns = [];
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children = [];
  for (const b of brokers) await b.crash();
  brokers = [];
});

afterAll(async () => {
  for (const d of dirs) await removeDataDir(d);
  for (const m of mounts) {
    try {
      execFileSync('umount', [m]);
      fs.rmSync(m, { recursive: true, force: true });
    } catch {
      // left for the machine's tmp cleaner
    }
  }
});

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function mountTmpfs(size: string): string {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs (to fill the leader disk) and needs to run as root (CI does)');
  const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-replace-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint]);
  mounts.push(mountPoint);
  return path.join(mountPoint, 'data');
}

/** Writes a filler file next to the data directory until the disk says ENOSPC. */
function fillDisk(dataDir: string): string {
  const filler = path.join(path.dirname(dataDir), 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(1 << 16, 0x5a);
  for (let n = chunk.length; n >= 1;) {
    try {
      fs.writeSync(fd, chunk, 0, n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      n = Math.floor(n / 2);
    }
  }
  fs.closeSync(fd);
  return filler;
}

async function startLeader(dataDir: string): Promise<{ b: DurableBroker; replPort: number }> {
  const replPort = await freePort();
  // The child copies the environment when it is spawned: set only around that.
  process.env.LEVERET_TEST_REPLICATION = JSON.stringify({ port: replPort, secret: 'test-secret', term: 1, minIsr: 0, isr: [] });
  try {
    const b = await startOn(dataDir, ['--disk-free-limit', '0']);
    brokers.push(b);
    await waitFor(() => b.logLines().some((l) => l.msg === 'replication: listening for followers'), 10_000, 'replication port');
    return { b, replPort };
  } finally {
    delete process.env.LEVERET_TEST_REPLICATION;
  }
}

interface Follower {
  lines: Array<Record<string, unknown>>;
  events(ev: string): Array<Record<string, unknown>>;
  last(ev: string): Record<string, unknown> | undefined;
  stop(): Promise<void>;
  output(): string;
}

function startFollower(dir: string, port: number): Follower {
  const child = spawn(process.execPath, [FIXTURE, '--dir', dir, '--port', String(port), '--node', 'f1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  let out = '';
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const p of parts) {
      if (!p.includes('"status"')) out += p + '\n';
      try {
        lines.push(JSON.parse(p) as Record<string, unknown>);
      } catch {
        // not ours
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    lines,
    events: (ev) => lines.filter((l) => l.ev === ev),
    last: (ev) => [...lines].reverse().find((l) => l.ev === ev),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    output: () => out,
  };
}

async function declareQueues(b: DurableBroker, from: number, to: number): Promise<void> {
  const c = await amqplibConnect(b.url);
  conns.push(c);
  const ch = await c.createChannel();
  // amqplib queues the RPCs: a window of them in flight at a time.
  for (let i = from; i < to; i += 500) {
    const batch: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(to, i + 500); j++) batch.push(ch.assertQueue(qname(j), { durable: true }));
    await Promise.all(batch);
  }
  await ch.close();
}

async function deleteQueues(b: DurableBroker, from: number, to: number): Promise<void> {
  const c = await amqplibConnect(b.url);
  conns.push(c);
  const ch = await c.createChannel();
  const batch: Array<Promise<unknown>> = [];
  for (let j = from; j < to; j++) batch.push(ch.deleteQueue(qname(j)));
  await Promise.all(batch);
  await ch.close();
}

/** A durable declare the full disk refuses (541): the store then retries by compacting its log. */
async function declareRefused(b: DurableBroker): Promise<number> {
  const c = await amqplibConnect(b.url);
  // 541 is a connection error: the connection (and the channel with it) closes.
  const closed = new Promise<number>((r) => {
    const seen = (e: { code?: number }) => r(e.code ?? 0);
    c.on('error', seen);
    setTimeout(() => r(-1), 10_000).unref();
  });
  const ch = await c.createChannel();
  ch.on('error', () => {});
  // The log's last page may still take a few records: declare until one is refused.
  void (async () => {
    for (let i = 0; i < 1000; i++) await ch.assertExchange(`refused.${i}.${'x'.repeat(200)}`, 'direct', { durable: true });
  })().catch(() => {});
  const code = await closed;
  await c.close().catch(() => {});
  return code;
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function within<V>(p: Promise<V>, ms: number, what: string): Promise<V> {
  return Promise.race([p, new Promise<V>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())]);
}

let oldDefinitions: Buffer | null = null;
let newDefinitions: Buffer | null = null;

describe('a definitions.log REPLACE larger than one frame', () => {
  it(
    `a live leader with ${QUEUES} durable queues rewrites its definitions.log while a follower streams: applied in parts, identical, the stream unbroken`,
    async () => {
      const dataDir = mountTmpfs('96m');
      const followerDir = await tempDataDir('leveret-replace-f-');
      dirs.push(followerDir);
      const { b: leader, replPort } = await startLeader(dataDir);
      const t0 = Date.now();
      await declareQueues(leader, 0, QUEUES);
      // Deleted ones leave records a compaction drops: the rewrite is visibly smaller.
      await deleteQueues(leader, QUEUES - 2000, QUEUES);
      const defs = path.join(dataDir, 'definitions.log');
      const grown = fs.statSync(defs).size;
      console.log(`${QUEUES} queues declared, 2000 deleted in ${Date.now() - t0} ms; definitions.log ${grown} bytes`);
      expect(grown).toBeGreaterThan(3 * MAX_PAYLOAD);
      oldDefinitions = fs.readFileSync(defs);

      const f = startFollower(followerDir, replPort);
      await waitFor(() => f.last('complete') !== undefined, 60_000, `follower complete:\n${f.output().slice(-3000)}`);
      const streamStart = f.last('streaming')!;

      // The disk fills: a durable declare is refused, and the store's retry rewrites the log
      // once space is back, live, while the follower streams.
      const filler = fillDisk(dataDir);
      expect(await declareRefused(leader)).toBe(541);
      fs.rmSync(filler);
      await waitFor(() => fs.statSync(defs).size < grown, 15_000, 'the leader rewrote its definitions.log');
      const rewritten = fs.readFileSync(defs);
      newDefinitions = rewritten;
      console.log(`definitions.log rewritten live: ${grown} -> ${rewritten.length} bytes`);
      // An append after the rewrite: the stream goes on past it.
      await within(declareQueues(leader, QUEUES, QUEUES + 10), 20_000, 'declares after the rewrite');

      const leaderLsn = (): number => {
        const s = [...leader.logLines()].reverse().find((l) => l.msg === 'test replication: status');
        return (s?.lsn as number | undefined) ?? -1;
      };
      await waitFor(
        () => {
          const st = f.last('status');
          return st !== undefined && (st.durableLsn as number) >= leaderLsn() && leaderLsn() > 0;
        },
        30_000,
        `follower in step:\n${f.output().slice(-3000)}`,
      );
      // Before the follower's own stop, which ends its stream.
      const ended = leader.logLines().filter((l) => l.msg === 'replication: stream ended');
      const retries = f.events('retry');
      if (retries.length > 0) console.log(`follower retries: ${retries.length}, first: ${JSON.stringify(retries[0])}`);
      await f.stop();
      expect(ended).toEqual([]);
      const end = f.last('stopped');
      expect(end?.complete).toBe(true);
      // One copy at the start, one stream all along: no frame refused, no reconnection, no second copy.
      expect(f.events('retry')).toEqual([]);
      expect(f.events('caught-up').length).toBe(1);
      expect(f.events('streaming').length).toBe(1);
      const followerDefs = path.join(followerDir, 'definitions.log');
      expect(fs.statSync(followerDefs).size).toBe(fs.statSync(defs).size);
      expect(sha(followerDefs)).toBe(sha(defs));
      expect(fs.existsSync(followerDefs + '.tmp')).toBe(false);
      console.log(
        `follower streamed from LSN ${String(streamStart.from)} to ${String(end?.durableLsn)}; definitions.log identical (${rewritten.length} bytes, sha256 ${sha(defs).slice(0, 16)})`,
      );
    },
    T,
  );

  it(
    'a follower killed -9 between two parts keeps its old definitions.log whole; a broker on that copy ignores the part aside; a resumed stream finishes it; missing parts say lagging',
    async () => {
      expect(oldDefinitions, 'the definitions of the first test').not.toBeNull();
      const before = oldDefinitions!;
      const after = newDefinitions!;
      const dir = await tempDataDir('leveret-replace-kill-');
      dirs.push(dir);
      // A data directory a broker made, holding the old definitions (18,000 queues).
      const b0 = await startOn(dir);
      brokers.push(b0);
      await b0.stop();
      brokers = [];
      const defs = path.join(dir, 'definitions.log');
      fs.writeFileSync(defs, before);

      // The ops the leader's tap makes of the rewrite (the same OpTap as the live stream).
      const ops: Buffer[] = [];
      const tap = new OpTap(
        dir,
        collectOps((op) => ops.push(op)),
      );
      tap.replaced(defs, after);
      const kinds = ops.map((o) => decodeOp(o).kind);
      const parts = Math.ceil(after.length / (1024 * 1024));
      expect(kinds).toEqual([...Array<OpKind>(parts).fill(OpKind.REPLACE_PART), OpKind.REPLACE_END]);
      for (const o of ops) expect(o.length).toBeLessThan(MAX_PAYLOAD);
      // Each part says where it goes; the end says how long the whole is.
      expect(ops.map((o) => decodeOp(o).n)).toEqual([...Array.from({ length: parts }, (_, i) => i * 1024 * 1024), after.length]);
      expect(Buffer.concat(ops.slice(0, parts).map((o) => decodeOp(o).data!)).equals(after)).toBe(true);
      const opsFile = path.join(path.dirname(dir), 'ops.bin');
      fs.writeFileSync(opsFile, Buffer.concat(ops.flatMap((o) => [u32le(o.length), o])));

      // A follower process applies two parts, then is killed -9.
      const kept = 2;
      const script = `
        const fs = require('node:fs');
        const { OpApplier } = require(${JSON.stringify(APPLIER)});
        const buf = fs.readFileSync(${JSON.stringify(opsFile)});
        const a = new OpApplier(${JSON.stringify(dir)});
        let at = 0;
        for (let i = 0; i < ${kept}; i++) {
          const n = buf.readUInt32LE(at);
          a.apply(buf.subarray(at + 4, at + 4 + n));
          at += 4 + n;
        }
        process.kill(process.pid, 'SIGKILL');`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const signal = await new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, sig) => r(sig)));
      expect({ signal, err }).toEqual({ signal: 'SIGKILL', err: '' });
      expect(sha(defs)).toBe(createHash('sha256').update(before).digest('hex'));
      expect(fs.statSync(defs + '.tmp').size).toBe(kept * 1024 * 1024);

      // A broker on that copy (a promotion now) loads the old definitions, whole; the part
      // aside is never read, and its own start-up rewrite replaces it.
      const copy = await tempDataDir('leveret-replace-copy-');
      dirs.push(copy);
      fs.cpSync(dir, copy, { recursive: true });
      const b = await startOn(copy);
      brokers.push(b);
      const overview = await api(b.httpPort, 'GET', '/api/overview');
      expect((overview.json as { object_totals: { queues: number } }).object_totals.queues).toBe(QUEUES - 2000);
      await b.stop();
      brokers = [];
      expect(fs.existsSync(path.join(copy, 'definitions.log.tmp'))).toBe(false);

      // The stream resumed after the last part applied: the rest completes the new file.
      const resumed = new OpApplier(dir);
      resumed.appliedLsn = kept;
      for (const o of ops.slice(kept)) resumed.apply(o);
      resumed.close();
      expect(sha(defs)).toBe(createHash('sha256').update(after).digest('hex'));
      expect(fs.existsSync(defs + '.tmp')).toBe(false);

      // Resumed past parts this copy does not hold: not a file with a hole, a catch-up.
      const bare = await tempDataDir('leveret-replace-bare-');
      dirs.push(bare);
      const lacking = new OpApplier(bare);
      lacking.appliedLsn = kept;
      expect(() => lacking.apply(ops[kept])).toThrow(expect.objectContaining({ code: 'lagging' }));
      fs.writeFileSync(path.join(bare, 'definitions.log.tmp'), Buffer.alloc(1000));
      expect(() => lacking.apply(ops[kept])).toThrow(/holds 1000 bytes: catch up again/);
      lacking.close();
      expect(fs.existsSync(path.join(bare, 'definitions.log'))).toBe(false);
      console.log(
        `${ops.length} ops (${parts} parts of at most 1 MiB and an end) for ${after.length} bytes; killed after ${kept}: old file whole, ${QUEUES - 2000} queues on a broker started on the copy; resumed: new file identical`,
      );
    },
    T,
  );
});
