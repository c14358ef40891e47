// Issue 15, replication step 2: a follower's catch-up of a data directory from the leader over
// the replication protocol (src/cluster/replication). Leader and follower run in child processes
// (test/fixtures/cluster-repl-*.cjs) so that either can be killed with -9 mid-copy. The data is
// a real broker's directory: persistent messages in durable queues, acks, shared bodies, and a
// 64 MiB segment; at the end a broker started on the follower's copy delivers every message.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followerProof, leaderProof } from '../src/cluster/replication/auth';
import { encodeFrame, FrameType, jsonFrame, MAX_PAYLOAD, type Frame } from '../src/cluster/replication/frame';
import { FrameDecoder } from '../src/cluster/replication/frame-decoder';
import { PROTOCOL_VERSION } from '../src/cluster/replication/protocol';
import type { CatchUpStats } from '../src/cluster/replication/catch-up-stats';
import { ReplicationFollower } from '../src/cluster/replication/replication-follower';
import { removeDataDir, startOn, tempDataDir } from './helpers/durable-broker';

const LEADER = path.join(__dirname, 'fixtures', 'cluster-repl-leader.cjs');
const FOLLOWER = path.join(__dirname, 'fixtures', 'cluster-repl-follower.cjs');
const MiB = 1024 * 1024;
const BIG_MESSAGES = 64; // of 1 MiB each, into one 64 MiB segment

interface Ev {
  ev: string;
  [k: string]: unknown;
}

/** A fixture process and the JSON lines it printed. */
class Proc {
  readonly events: Ev[] = [];
  readonly exited: Promise<number | null>;
  private partial = '';
  private stderr = '';
  private readonly waiters: Array<() => void> = [];

  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    proc.stdout.on('data', (d: Buffer) => {
      const lines = (this.partial + d.toString()).split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) this.events.push(JSON.parse(l) as Ev);
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  static start(script: string, args: string[]): Proc {
    return new Proc(spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  async waitFor(pred: (e: Ev) => boolean, timeoutMs = 20_000): Promise<Ev> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) throw new Error(`timed out; events: ${JSON.stringify(this.events).slice(-2000)}\nstderr: ${this.stderr}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), new Promise((r) => setTimeout(r, 100)), this.exited]);
    }
  }

  logs(level?: string): Ev[] {
    return this.events.filter((e) => e.ev === 'log' && (level === undefined || e.level === level));
  }

  async kill9(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  get output(): string {
    return JSON.stringify(this.events) + this.stderr;
  }
}

async function startLeader(dir: string, extra: string[] = []): Promise<{ leader: Proc; port: number }> {
  const leader = Proc.start(LEADER, ['--dir', dir, ...extra]);
  const ev = await leader.waitFor((e) => e.ev === 'listening' || e.ev === 'error');
  if (ev.ev !== 'listening') throw new Error(leader.output);
  return { leader, port: ev.port as number };
}

/** Runs a follower to its end: resolves with its result line and the process. */
async function follow(dir: string, port: number, extra: string[] = []): Promise<{ code: number | null; result: Ev; f: Proc }> {
  const f = Proc.start(FOLLOWER, ['--dir', dir, '--port', String(port), ...extra]);
  const code = await f.exited;
  const result = f.events.find((e) => e.ev === 'done' || e.ev === 'failed');
  if (result === undefined) throw new Error(`follower printed no result (exit ${code}): ${f.output}`);
  return { code, result, f };
}

async function followOk(dir: string, port: number, extra: string[] = []): Promise<CatchUpStats> {
  const { code, result, f } = await follow(dir, port, extra);
  if (code !== 0) throw new Error(`follower failed: ${f.output}`);
  return result.stats as CatchUpStats;
}

const NODE_LOCAL = new Set(['leveret.lock', 'clean-stop', 'catch-up-incomplete']);

/** sha256 of every data file (and a mark for every directory), node-local entries left out. */
function digestTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      if (NODE_LOCAL.has(child) || child.startsWith('paging') || child.endsWith('.tmp')) continue;
      if (e.isDirectory()) {
        out.set(child + '/', 'dir');
        walk(child);
      } else
        out.set(
          child,
          createHash('sha256')
            .update(fs.readFileSync(path.join(dir, child)))
            .digest('hex'),
        );
    }
  };
  walk('');
  return out;
}

function expectIdentical(follower: string, leader: string): void {
  const want = digestTree(leader);
  expect(want.size).toBeGreaterThan(5);
  expect(digestTree(follower)).toEqual(want);
  // A finished catch-up leaves neither its lock nor its "incomplete" mark.
  expect(fs.existsSync(path.join(follower, 'catch-up-incomplete'))).toBe(false);
  expect(fs.existsSync(path.join(follower, 'leveret.lock'))).toBe(false);
}

function totalBytes(dir: string): number {
  let n = 0;
  for (const [rel, d] of digestTree(dir)) if (d !== 'dir') n += fs.statSync(path.join(dir, rel)).size;
  return n;
}

const bodyDigest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A TCP proxy to `port` that flips one byte of one direction's stream, on its first connection only. */
async function corruptingProxy(
  port: number,
  flipAt: number,
  direction: 'to-follower' | 'to-leader',
): Promise<{ port: number; flipped: () => boolean; close: () => void }> {
  let connections = 0;
  let flipped = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const first = connections++ === 0;
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let seen = 0;
    const corrupt = (d: Buffer): Buffer => {
      if (first && !flipped && seen + d.length > flipAt) {
        d = Buffer.from(d);
        d[flipAt - seen] ^= 0x40;
        flipped = true;
      }
      seen += d.length;
      return d;
    };
    upstream.on('data', (d: Buffer) => client.write(direction === 'to-follower' ? corrupt(d) : d));
    client.on('data', (d: Buffer) => upstream.write(direction === 'to-leader' ? corrupt(d) : d));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    flipped: () => flipped,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('replication framing', () => {
  const frames = [
    encodeFrame(FrameType.DATA, 2 ** 40 + 5, randomBytes(MiB + 12)),
    encodeFrame(FrameType.MANIFEST_REQUEST, 7, Buffer.alloc(0)),
    jsonFrame(FrameType.HELLO, 0, { node: 'n1' }),
    encodeFrame(FrameType.DATA, 7, randomBytes(70_000)),
  ];
  const stream = Buffer.concat(frames);
  const same = (got: Frame[]) => {
    expect(got.map((f) => f.type)).toEqual([FrameType.DATA, FrameType.MANIFEST_REQUEST, FrameType.HELLO, FrameType.DATA]);
    expect(got[0].term).toBe(2 ** 40 + 5);
    expect(Buffer.concat(got.map((f) => encodeFrame(f.type, f.term, f.payload))).equals(stream)).toBe(true);
  };

  it('decodes the same frames whatever the split of the stream', () => {
    const whole = new FrameDecoder().push(stream);
    same(whole);
    const bytewise = new FrameDecoder();
    const got: Frame[] = [];
    // byte by byte through the small frames, then the rest in odd-sized pieces
    for (let i = 0; i < stream.length;) {
      const n = i < frames[0].length - 20 ? 65_537 : 1;
      got.push(...bytewise.push(stream.subarray(i, i + n)));
      i += n;
    }
    same(got);
    for (let round = 0; round < 20; round++) {
      const d = new FrameDecoder();
      const out: Frame[] = [];
      for (let i = 0; i < stream.length;) {
        const n = 1 + Math.floor(Math.random() * 200_000);
        out.push(...d.push(stream.subarray(i, i + n)));
        i += n;
      }
      same(out);
    }
  });

  it('refuses a frame longer than the limit, and any flipped byte', () => {
    const huge = Buffer.alloc(17);
    huge.writeUInt32BE(MAX_PAYLOAD + 1, 0);
    expect(() => new FrameDecoder().push(huge)).toThrow(/more than the limit/);
    const small = Buffer.concat([jsonFrame(FrameType.CHECK, 9, { path: 'queues/a/0000000001.seg', lengths: [1, 2] }), frames[1]]);
    const firstLength = small.length - frames[1].length;
    for (let i = 0; i < firstLength; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(small);
        bad[i] ^= bit;
        let out: Frame[] = [];
        let thrown: unknown;
        try {
          out = new FrameDecoder().push(bad);
        } catch (err) {
          thrown = err;
        }
        // Refused, or (a longer length) still waiting for bytes: never a wrong frame.
        if (thrown === undefined) expect(out, `byte ${i}`).toEqual([]);
        else expect(String(thrown), `byte ${i}`).toMatch(/crc32 mismatch|more than the limit/);
      }
    }
  });
});

describe('replication catch-up (issue 15)', () => {
  let source: string; // a stopped broker's data directory: the leader's
  let leader: Proc;
  let leaderPort: number;
  const cleanup: string[] = [];
  /** queue -> digests of the bodies left in it, in order */
  const expected = new Map<string, string[]>();
  let firstCopy: string;

  const tempDir = async (prefix: string) => {
    const d = await tempDataDir(`leveret-repl-${prefix}-`);
    cleanup.push(d);
    return d;
  };

  beforeAll(async () => {
    source = await tempDir('source');
    const broker = await startOn(source, ['--segment-size', String(128 * MiB)]);
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createConfirmChannel();
    for (const q of ['repl-q0', 'repl-q1', 'repl-q2', 'repl-big']) {
      await ch.assertQueue(q, { durable: true });
      expected.set(q, []);
    }
    // Fan-out to two durable queues: one shared body each (data-dir/shared).
    await ch.assertExchange('repl-fan', 'fanout', { durable: true });
    await ch.bindQueue('repl-q0', 'repl-fan', '');
    await ch.bindQueue('repl-q1', 'repl-fan', '');
    for (let i = 0; i < 600; i++) {
      const q = `repl-q${i % 3}`;
      const body = Buffer.from(`${q} #${i} ` + 'x'.repeat((i * 37) % 3000));
      ch.sendToQueue(q, body, { persistent: true });
      expected.get(q)!.push(bodyDigest(body));
    }
    for (let i = 0; i < 50; i++) {
      const body = Buffer.from(`fan #${i} ` + 'y'.repeat(5000));
      ch.publish('repl-fan', '', body, { persistent: true });
      expected.get('repl-q0')!.push(bodyDigest(body));
      expected.get('repl-q1')!.push(bodyDigest(body));
    }
    for (let i = 0; i < BIG_MESSAGES; i++) {
      const body = randomBytes(MiB);
      ch.sendToQueue('repl-big', body, { persistent: true });
      expected.get('repl-big')!.push(bodyDigest(body));
    }
    await ch.waitForConfirms();
    // Some acks, so ack files have records: the first 20 of repl-q2 go.
    const consumer = await conn.createChannel();
    for (let i = 0; i < 20; i++) {
      const m = await consumer.get('repl-q2', { noAck: false });
      expect(m).not.toBe(false);
      consumer.ack(m as amqp.GetMessage);
    }
    expected.set('repl-q2', expected.get('repl-q2')!.slice(20));
    await consumer.close();
    await conn.close();
    expect(await broker.stop()).toBe(0);
    // The big queue's segment really is one 64 MiB file.
    const sizes = [...digestTree(source).keys()].filter((k) => k.endsWith('.seg')).map((k) => fs.statSync(path.join(source, k)).size);
    expect(Math.max(...sizes)).toBeGreaterThan(BIG_MESSAGES * MiB);
    ({ leader, port: leaderPort } = await startLeader(source));
  }, 120_000);

  afterAll(async () => {
    await leader?.kill9();
    for (const d of cleanup) await removeDataDir(d);
  }, 60_000);

  it('copies a broker data directory into an empty follower: every file byte-identical', async () => {
    firstCopy = await tempDir('empty');
    const stats = await followOk(firstCopy, leaderPort);
    expectIdentical(firstCopy, source);
    expect(stats.bytesFetched).toBe(totalBytes(source));
    expect(stats.bytesKept).toBe(0);
    const rate = (ms: number) => (stats.bytesFetched / MiB / (ms / 1000)).toFixed(0);
    console.log(
      `catch-up into an empty dir: ${(stats.bytesFetched / MiB).toFixed(1)} MiB in ${stats.ms} ms = ${rate(stats.ms)} MiB/s overall on loopback ` +
        `(manifest ${stats.manifestMs} ms, fetches ${stats.fetchMs} ms = ${rate(stats.fetchMs)} MiB/s, fsync ${stats.syncMs} ms)`,
    );
    // Nothing is fetched a second time.
    const again = await followOk(firstCopy, leaderPort);
    expect(again.bytesFetched).toBe(0);
    expect(again.filesFetched).toBe(0);
  }, 60_000);

  it('repairs a stale, diverged copy: truncated file, flipped byte in a tail, extra files', async () => {
    const dir = await tempDir('diverged');
    fs.cpSync(source, dir, { recursive: true });
    fs.rmSync(path.join(dir, 'clean-stop'));
    const files = [...digestTree(dir).entries()].filter(([, d]) => d !== 'dir').map(([k]) => k);
    const segs = files
      .filter((f) => f.endsWith('.seg'))
      .sort((a, b) => fs.statSync(path.join(dir, b)).size - fs.statSync(path.join(dir, a)).size);
    const big = path.join(dir, segs[0]);
    const small = path.join(dir, segs[1]);
    // A byte near the end of the 64 MiB segment: only its last 1 MiB step should be fetched again.
    const fd = fs.openSync(big, 'r+');
    const at = fs.fstatSync(fd).size - 1000;
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, at);
    fs.closeSync(fd);
    fs.truncateSync(small, Math.floor(fs.statSync(small).size / 2));
    fs.appendFileSync(path.join(dir, 'definitions.log'), 'garbage past the leader\n');
    fs.writeFileSync(path.join(dir, 'queues', 'extra.seg'), 'not on the leader');
    fs.mkdirSync(path.join(dir, 'queues', 'gone-queue'));
    fs.writeFileSync(path.join(dir, 'queues', 'gone-queue', '0000000001.seg'), 'old');
    fs.writeFileSync(path.join(dir, 'clean-stop'), ''); // node-local: must go, never copied
    const stats = await followOk(dir, leaderPort);
    expectIdentical(dir, source);
    expect(fs.existsSync(path.join(dir, 'clean-stop'))).toBe(false);
    expect(stats.entriesDeleted).toBe(3); // extra.seg, gone-queue/, clean-stop
    expect(stats.filesTruncated).toBe(2); // the big segment (to its last matching MiB) and definitions.log
    expect(stats.filesFetched).toBe(2); // the big segment's tail and the truncated file's rest
    expect(stats.bytesFetched).toBeLessThan(2 * MiB + fs.statSync(small).size);
    console.log(
      `diverged copy repaired: ${stats.bytesFetched} bytes fetched, ${(stats.bytesKept / MiB).toFixed(1)} MiB kept, ${stats.ms} ms`,
    );
  }, 60_000);

  it('resumes after kill -9 of the follower mid-copy of the 64 MiB segment, twice', async () => {
    const dir = await tempDir('killed-follower');
    const total = totalBytes(source);
    let fetchedBefore = 0;
    for (const after of [24 * MiB, 16 * MiB]) {
      const f = Proc.start(FOLLOWER, ['--dir', dir, '--port', String(leaderPort), '--pause-after', String(after)]);
      const paused = await f.waitFor((e) => e.ev === 'paused');
      expect(paused.fetched as number).toBeGreaterThanOrEqual(after);
      await f.kill9();
      fetchedBefore += paused.fetched as number;
      expect(fs.existsSync(path.join(dir, 'catch-up-incomplete'))).toBe(true); // a cut copy says so
    }
    const stats = await followOk(dir, leaderPort);
    expectIdentical(dir, source);
    expect(stats.bytesKept).toBeGreaterThanOrEqual(fetchedBefore);
    expect(stats.bytesFetched).toBe(total - stats.bytesKept);
    console.log(
      `follower kill -9 after 24 MiB, restart, kill -9 after 16 MiB more: the last restart fetched ${(stats.bytesFetched / MiB).toFixed(1)} of ${(total / MiB).toFixed(1)} MiB`,
    );
  }, 60_000);

  it('resumes after kill -9 of the leader mid-copy, from a new leader process', async () => {
    const dir = await tempDir('killed-leader');
    const own = await startLeader(source);
    const f = Proc.start(FOLLOWER, [
      '--dir',
      dir,
      '--port',
      String(own.port),
      '--pause-after',
      String(16 * MiB),
      '--pause-ms',
      '1000',
      '--attempts',
      '2',
    ]);
    await f.waitFor((e) => e.ev === 'paused');
    await own.leader.kill9();
    expect(await f.exited).toBe(1);
    const failed = f.events.find((e) => e.ev === 'failed')!;
    expect(failed.code).toBe('closed');
    const again = await startLeader(source);
    try {
      const stats = await followOk(dir, again.port);
      expectIdentical(dir, source);
      expect(stats.bytesKept).toBeGreaterThanOrEqual(16 * MiB);
    } finally {
      await again.leader.kill9();
    }
  }, 60_000);

  it('handles a file that vanishes on the leader during the copy (a deleted segment): manifests again', async () => {
    const ldir = await tempDir('vanishing');
    fs.cpSync(source, ldir, { recursive: true });
    fs.mkdirSync(path.join(ldir, 'zz-late'));
    fs.writeFileSync(path.join(ldir, 'zz-late', '0000000001.seg'), randomBytes(4096)); // fetched last (sorted)
    fs.writeFileSync(path.join(ldir, 'zz-late', '0000000002.seg'), randomBytes(4096));
    const own = await startLeader(ldir);
    try {
      const dir = await tempDir('vanishing-follower');
      const f = Proc.start(FOLLOWER, ['--dir', dir, '--port', String(own.port), '--pause-after', String(8 * MiB), '--pause-ms', '500']);
      await f.waitFor((e) => e.ev === 'paused');
      fs.rmSync(path.join(ldir, 'zz-late', '0000000001.seg'));
      expect(await f.exited).toBe(0);
      const stats = f.events.find((e) => e.ev === 'done')!.stats as CatchUpStats;
      expect(stats.rounds).toBe(2);
      expect(stats.attempts).toBe(1);
      expectIdentical(dir, ldir);
      expect(f.logs().some((e) => String(e.reason).includes('zz-late/0000000001.seg went from the leader'))).toBe(true);
    } finally {
      await own.leader.kill9();
    }
  }, 60_000);

  it('refuses a wrong secret on both sides, and a stranger that cannot prove it', async () => {
    const dir = await tempDir('wrong-secret');
    const { code, result } = await follow(dir, leaderPort, ['--secret', 'not-the-secret']);
    expect(code).toBe(1);
    expect(result.code).toBe('auth');
    expect(result.message).toMatch(/failed to prove the shared secret: refusing to follow it/);
    await leader.waitFor((e) => e.msg === 'replication: follower refused' && String(e.reason).includes('refusing to follow it'));
    // Nothing was written: the follower never changed anything for an unproven leader.
    expect(fs.readdirSync(dir)).toEqual([]);

    // A stranger that skips checking the leader's proof still cannot prove its own.
    const sock = net.connect(leaderPort, '127.0.0.1');
    const decoder = new FrameDecoder();
    const frames: Array<{ type: number; payload: Buffer }> = [];
    sock.on('data', (d: Buffer) => frames.push(...decoder.push(d)));
    const closed = new Promise((r) => sock.on('close', r));
    sock.write(
      jsonFrame(FrameType.HELLO, 0, { cluster: 'test', node: 'intruder', protocol: PROTOCOL_VERSION, term: 0, nonce: 'a'.repeat(64) }),
    );
    while (frames.length === 0) await new Promise((r) => setTimeout(r, 20));
    const challenge = JSON.parse(frames[0].payload.toString()) as { nonce: string };
    sock.write(jsonFrame(FrameType.PROOF, 7, { proof: followerProof('a guess', challenge.nonce, 'a'.repeat(64), 'intruder') }));
    await closed;
    const error = frames.find((f) => f.type === FrameType.ERROR)!;
    expect(JSON.parse(error.payload.toString())).toMatchObject({ code: 'auth' });
    await leader.waitFor(
      (e) =>
        e.msg === 'replication: follower refused' &&
        String(e.reason).includes('intruder') &&
        String(e.reason).includes('failed to prove the shared secret: refused'),
    );
  }, 60_000);

  it('refuses across terms: a follower that has seen a newer term tells the leader it is deposed, and will not follow an older one', async () => {
    const dir = await tempDir('newer-term');
    const { code, result } = await follow(dir, leaderPort, ['--term', '8']);
    expect(code).toBe(1);
    expect(result.code).toBe('term');
    expect(result.message).toMatch(/has seen term 8, newer than ours \(7\): this leader is deposed/);
    await leader.waitFor((e) => e.msg === 'replication: follower refused' && e.code === 'term');
    expect(fs.readdirSync(dir)).toEqual([]);

    // A deposed leader that still knows the secret, answering for its old term 3 a follower that
    // has seen term 5: the follower refuses to follow it, proof or not.
    const deposed = net.createServer((sock) => {
      const decoder = new FrameDecoder();
      sock.on('data', (d: Buffer) => {
        for (const f of decoder.push(d)) {
          if (f.type !== FrameType.HELLO) continue;
          const hello = JSON.parse(f.payload.toString()) as { nonce: string };
          const nonceL = 'b'.repeat(64);
          sock.write(jsonFrame(FrameType.CHALLENGE, 3, { nonce: nonceL, proof: leaderProof('test-secret', hello.nonce, nonceL, 3) }));
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => deposed.listen(0, '127.0.0.1', r));
    try {
      const old = await follow(dir, (deposed.address() as net.AddressInfo).port, ['--term', '5']);
      expect(old.code).toBe(1);
      expect(old.result.code).toBe('term');
      expect(old.result.message).toMatch(/leads term 3, older than the term 5 we know: refusing to follow a deposed leader/);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      deposed.close();
    }
  }, 60_000);

  it('detects a byte flipped in transit (crc32), retries, and never leaves a wrong file', async () => {
    const proxy = await corruptingProxy(leaderPort, 5 * MiB + 12345, 'to-follower');
    try {
      const dir = await tempDir('corrupted');
      const stats = await followOk(dir, proxy.port, ['--timeout', '3000']);
      expect(proxy.flipped()).toBe(true);
      expect(stats.attempts).toBe(2);
      expectIdentical(dir, source);
      expect(stats.bytesKept).toBeGreaterThan(0); // the second connection resumed
      await leader.waitFor((e) => String(e.reason).includes('frame crc32 mismatch'));
    } finally {
      proxy.close();
    }
    // The other way: a frame corrupted on its way to the leader is refused there, and the
    // follower, told why, retries. (Byte 50 is inside HELLO's payload; a flipped length can
    // instead leave the reader waiting for bytes that never come, which the timeout ends.)
    const back = await corruptingProxy(leaderPort, 50, 'to-leader');
    try {
      const dir = await tempDir('corrupted-request');
      const { code, result, f } = await follow(dir, back.port, ['--timeout', '3000']);
      expect(back.flipped()).toBe(true);
      expect(code, f.output).toBe(0);
      expect((result.stats as CatchUpStats).attempts).toBe(2);
      expect(
        f.logs('warn').some((e) => String(e.reason).includes('ended the connection: frame crc32 mismatch (HELLO')),
        f.output,
      ).toBe(true);
      expectIdentical(dir, source);
    } finally {
      back.close();
    }
  }, 60_000);

  it('copies many small files (manifest over several frames), and refuses a node that is not a member', async () => {
    const ldir = await tempDir('many');
    fs.mkdirSync(ldir, { recursive: true });
    fs.writeFileSync(path.join(ldir, 'VERSION'), 'leveret-store 1\n');
    const queues = path.join(ldir, 'queues');
    for (let q = 0; q < 15; q++) {
      const qdir = path.join(queues, createHash('sha1').update(`many-${q}`).digest('hex'));
      fs.mkdirSync(qdir, { recursive: true });
      // long names, so that the manifest (about 300 KB of JSON) needs more than one frame
      for (let i = 0; i < 100; i++)
        fs.writeFileSync(path.join(qdir, `${String(i).padStart(100, '0')}.seg`), randomBytes(100 + ((q * i) % 900)));
    }
    const own = await startLeader(ldir, ['--members', 'f1,f2']);
    try {
      const dir = await tempDir('many-follower');
      const stats = await followOk(dir, own.port);
      expectIdentical(dir, ldir);
      expect(stats.filesFetched).toBe(1501);
      const served = own.leader.events.find((e) => e.msg === 'replication: manifest served')!;
      expect(served.entries).toBe(1516 + 1); // files, queue folders and queues/
      expect(served.frames as number).toBeGreaterThanOrEqual(3); // two MANIFEST frames or more, and MANIFEST_END
      console.log(
        `1501 small files (${(stats.bytesFetched / 1024).toFixed(0)} KiB) copied in ${stats.ms} ms (manifest ${stats.manifestMs} ms, fetches ${stats.fetchMs} ms, fsync ${stats.syncMs} ms)`,
      );

      const stranger = await follow(await tempDir('not-member'), own.port, ['--node', 'f3']);
      expect(stranger.code).toBe(1);
      expect(stranger.result.code).toBe('auth');
      expect(stranger.result.message).toMatch(/f3 is not a registered member of cluster "test"/);
    } finally {
      await own.leader.kill9();
    }
  }, 60_000);

  it('stops a running catch-up on request, and refuses a directory a live process holds', async () => {
    const dir = await tempDir('stopped');
    let follower: ReplicationFollower | undefined;
    let chunks = 0;
    let fetchedAtStop = 0;
    follower = new ReplicationFollower({
      host: '127.0.0.1',
      port: leaderPort,
      dataDir: dir,
      secret: 'test-secret',
      node: 'f1',
      cluster: 'test',
      onChunk: (e) => {
        if (++chunks === 3) {
          fetchedAtStop = e.fetched;
          follower!.stop();
        }
      },
    });
    await expect(follower.catchUp()).rejects.toMatchObject({ code: 'stopped' });
    expect(chunks).toBe(3); // nothing written after the stop
    expect(fs.existsSync(path.join(dir, 'catch-up-incomplete'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'leveret.lock'))).toBe(false); // released

    // A broker (here: this test process, alive) holding the directory keeps a catch-up out.
    fs.writeFileSync(path.join(dir, 'leveret.lock'), `${process.ppid}\n`);
    follower = new ReplicationFollower({
      host: '127.0.0.1',
      port: leaderPort,
      dataDir: dir,
      secret: 'test-secret',
      node: 'f1',
      cluster: 'test',
    });
    await expect(follower.catchUp()).rejects.toMatchObject({
      code: 'in-use',
      message: expect.stringMatching(/is in use by another Leveret/),
    });
    fs.rmSync(path.join(dir, 'leveret.lock'));
    const stats = await followOk(dir, leaderPort);
    expect(stats.bytesKept).toBeGreaterThanOrEqual(fetchedAtStop);
    expect(fetchedAtStop).toBeGreaterThan(0);
    expectIdentical(dir, source);
  }, 60_000);

  it('a broker started on the follower copy delivers every message with the same bodies', async () => {
    const broker = await startOn(firstCopy);
    try {
      const conn = await amqp.connect(broker.url);
      const ch = await conn.createChannel();
      for (const [q, digests] of expected) {
        const got: string[] = [];
        for (;;) {
          const m = await ch.get(q, { noAck: true });
          if (m === false) break;
          got.push(bodyDigest(m.content));
        }
        expect(got.length, q).toBe(digests.length);
        expect(got, q).toEqual(digests);
      }
      await conn.close();
    } finally {
      await broker.stop();
    }
  }, 60_000);
});
