// Unit tests of a queue's segment log (src/store), in-process and without sockets: what a
// restart (a new QueueLog + recover() over the same directory) brings back after failed
// writes and syncs, torn writes, flipped bits and bytes, and a crash at each step of a
// compaction. Faults are injected by replacing single calls of `fsOps`; every test runs in
// its own temporary directory with a real SyncScheduler, driving the event loop with small
// awaits (writes happen in setImmediate, retries on timers).
import { describe, it, expect, afterEach, vi } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../src/logger';
import { fsOps } from '../src/store/fs-ops';
import { QueueLog } from '../src/store/queue-log';
import { SyncScheduler, type SyncWaiter } from '../src/store/sync-scheduler';
import { segmentName, type Run } from '../src/store/segment';
import { scanSegment } from '../src/store/segment-scan';
import { ACK, ACK_RECORD, encodeAckRecord, readAcks } from '../src/store/ack-records';
import { FLAG_MOVED, RECORD_HEADER, recordIntact, recordSize } from '../src/store/message-record';

// ---- helpers (local on purpose: the broker/store boundary is being reworked) ----------

const realFsOps = { ...fsOps };
/** Captured before any test fakes timers. */
const realSetTimeout = globalThis.setTimeout;
const sleep = (ms: number): Promise<void> => new Promise((r) => realSetTimeout(r, ms));
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

const tempDirs: string[] = [];
const procs: Proc[] = [];

afterEach(() => {
  Object.assign(fsOps, realFsOps);
  vi.useRealTimers();
  for (const p of procs.splice(0)) abandon(p);
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-seglog-'));
  tempDirs.push(d);
  return d;
}

type AppendArg = Parameters<QueueLog['append']>[0];

/** Every message of these tests is built here: body `msg-NNN`, so every record has one size. */
function message(i: number): AppendArg {
  const body = Buffer.from(`msg-${String(i).padStart(3, '0')}`);
  return {
    exchange: 'ex',
    routingKey: 'rk',
    rawProperties: Buffer.from([0x10, 0x00, 2]), // delivery-mode 2
    body,
    bodySize: body.length,
    copyBody: (target: Buffer, at: number) => body.copy(target, at),
    persistent: true,
  } as unknown as AppendArg;
}

/** The body of the record at `pos` (the only decoding these tests do). */
function bodyOf(buf: Buffer, pos: number, size: number): string {
  let p = pos + RECORD_HEADER;
  p += 1 + ((buf[p] & FLAG_MOVED) !== 0 ? 8 : 0) + 8; // flags, [origin], published-at
  p += 1 + buf[p]; // exchange
  p += 1 + buf[p]; // routing key
  p += 4 + buf.readUInt32BE(p); // properties
  return buf.toString('utf8', p, pos + size);
}
const name = (i: number): string => `msg-${String(i).padStart(3, '0')}`;
const names = (is: number[]): string[] => is.map(name);
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);

interface LogLine {
  level: string;
  obj: unknown;
  msg: string;
}

function testLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (obj: unknown, msg?: string) => void lines.push({ level, obj, msg: msg ?? String(obj) });
  const l: Record<string, unknown> = {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    fatal: at('fatal'),
  };
  l.child = () => l;
  return l as unknown as Logger;
}

/** One "process": a scheduler and a queue log over a directory. */
interface Proc {
  dir: string;
  scheduler: SyncScheduler;
  log: QueueLog;
  failures: Array<Error | null>;
  lines: LogLine[];
  dead: boolean;
}

function open(dir: string, segmentSize: number): Proc {
  const failures: Array<Error | null> = [];
  const lines: LogLine[] = [];
  const scheduler = new SyncScheduler((err) => failures.push(err));
  const log = new QueueLog(dir, scheduler, segmentSize, testLogger(lines));
  const p = { dir, scheduler, log, failures, lines, dead: false };
  procs.push(p);
  return p;
}

interface Stored {
  i: number;
  segment: number;
  position: number;
  size: number;
}

function put(p: Proc, i: number): Stored {
  const position = p.log.append(message(i), Date.now(), 0);
  return { i, segment: p.log.lastSegment, position, size: p.log.lastSize };
}

const ack = (p: Proc, s: Stored): void => p.log.ack(s.segment, s.position);

/** Waits until the scheduler has written and synced everything (writes must work). */
async function settle(p: Proc): Promise<void> {
  const s = p.scheduler as unknown as { syncing: boolean; scheduled: boolean; dirty: Set<unknown>; retryTimer: unknown };
  for (let n = 0; n < 1000; n++) {
    await tick();
    if (!s.syncing && !s.scheduled && s.dirty.size === 0 && s.retryTimer === null) return;
    await sleep(1);
  }
  throw new Error('scheduler never settled');
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/**
 * A kill -9 of the process that owns `p`: what was written to the OS stays, what was only
 * pending in memory is gone, and nothing of the old objects runs again (no write, no
 * fdatasync callback, no compaction, no cleanup). Its descriptors are closed, as the OS would.
 */
function crash(p: Proc): void {
  const log = p.log as unknown as Record<string, unknown>;
  log.writePending = () => {};
  log.compactSparse = () => {};
  const s = p.scheduler as unknown as Record<string, unknown>;
  s.run = () => {};
  s.synced = () => {};
  p.scheduler.stop();
  abandon(p);
}

function abandon(p: Proc): void {
  if (p.dead) return;
  p.dead = true;
  p.scheduler.stop();
  const fds: number[] = [];
  for (const seg of p.log.segments.values()) fds.push(seg.fd, seg.ackFd);
  fds.push(...(p.scheduler as unknown as { toClose: number[] }).toClose.splice(0));
  // An fdatasync may still be running on the thread pool: close once it is done.
  realSetTimeout(() => {
    for (const fd of fds) {
      try {
        fs.closeSync(fd);
      } catch {
        // closed already
      }
    }
  }, 50);
}

interface Got {
  body: string;
  segment: number;
  position: number;
  delivered: boolean;
}

/**
 * Reads recovered runs back the way the paged queue store does: record by record, skipping
 * what a run says to skip; a record failing its checksum is dropped (and acked).
 */
function readBack(p: Proc, runs: Run[]): { got: Got[]; corrupt: Array<[number, number]> } {
  const got: Got[] = [];
  const corrupt: Array<[number, number]> = [];
  for (const run of runs) {
    const buf = p.log.read(run.segment, run.position, run.end - run.position);
    let off = 0;
    let left = run.count;
    while (off < buf.length && left > 0) {
      const size = recordSize(buf, off, buf.length);
      if (size < 0 || off + size > buf.length) break;
      const pos = run.position + off;
      off += size;
      if (run.skip?.has(pos)) continue;
      left--;
      if (!recordIntact(buf, off - size, size)) {
        corrupt.push([run.segment, pos]);
        p.log.ack(run.segment, pos);
        continue;
      }
      const delivered = p.log.segments.get(run.segment)?.delivered?.has(pos) ?? false;
      got.push({ body: bodyOf(buf, off - size, size), segment: run.segment, position: pos, delivered });
    }
    expect(left, `run ${run.segment}:${run.position} holds as many records as it counts`).toBe(0);
  }
  return { got, corrupt };
}

/** A restart over `dir`: a new process recovers the log and reads every message back. */
function restart(
  dir: string,
  segmentSize: number,
): { p: Proc; runs: Run[]; got: Got[]; bodies: string[]; corrupt: Array<[number, number]> } {
  const p = open(dir, segmentSize);
  const runs = p.log.recover();
  const { got, corrupt } = readBack(p, runs);
  return { p, runs, got, bodies: got.map((g) => g.body), corrupt };
}

const segPath = (dir: string, id: number, ext = 'seg'): string => path.join(dir, `${segmentName(id)}.${ext}`);

function flipByte(file: string, at: number, mask = 0xff): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= mask;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

function errno(code: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: injected`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

type WriteSync = (fd: number, buf: Buffer, off: number, len: number, pos: number) => number;
const realWrite = realFsOps.writeSync as unknown as WriteSync;
function setWriteSync(fn: WriteSync): void {
  fsOps.writeSync = fn as unknown as typeof fsOps.writeSync;
}

/** Size of one record of these tests. */
const REC = (() => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-seglog-'));
  try {
    const s = new SyncScheduler(() => {});
    const l = new QueueLog(d, s, 1 << 20, testLogger([]));
    l.append(message(0), 0, 0);
    const size = l.lastSize;
    l.destroy();
    return size;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
})();

const BIG = 1 << 20;

// ---- tests --------------------------------------------------------------------------

describe('segment log', () => {
  it('happy path: the un-acked come back in order after a restart, delivered flags kept', async () => {
    const dir = tempDir();
    const segmentSize = REC * 8; // three segments for 20 records
    const a = open(dir, segmentSize);
    const stored = range(0, 20).map((i) => put(a, i));
    expect(new Set(stored.map((s) => s.segment)).size).toBe(3);
    await settle(a);
    const acked = [0, 3, 4, 9, 10, 15, 19];
    const delivered = [1, 3, 8, 11, 16];
    for (const i of delivered) a.log.delivered(stored[i].segment, stored[i].position);
    for (const i of acked) ack(a, stored[i]);
    await settle(a);
    crash(a);

    const b = restart(dir, segmentSize);
    const live = range(0, 20).filter((i) => !acked.includes(i));
    expect(b.bodies).toEqual(names(live));
    expect(b.got.filter((g) => g.delivered).map((g) => g.body)).toEqual(names(delivered.filter((i) => !acked.includes(i))));
    expect(b.corrupt).toEqual([]);
    expect(b.p.log.damage).toEqual({ ranges: 0, bytes: 0 });

    // And a second restart after acking more, with the acks made on recovered segments.
    for (const g of b.got.slice(0, 3)) b.p.log.ack(g.segment, g.position);
    await settle(b.p);
    crash(b.p);
    expect(restart(dir, segmentSize).bodies).toEqual(names(live.slice(3)));
  });

  it('a full disk (ENOSPC on write): failure reported once, one retry timer backing off 250 ms to 2 s, nothing lost', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const dir = tempDir();
    const a = open(dir, BIG);
    const waiter = { failed: 0, synced: [] as number[] };
    a.scheduler.addWaiter({ storeFailed: () => waiter.failed++, storeSynced: (e) => waiter.synced.push(e) });
    const stored = [put(a, 0), put(a, 1)];
    await settle(a);

    let attempts = 0;
    setWriteSync(() => {
      attempts++;
      throw errno('ENOSPC');
    });
    stored.push(put(a, 2));
    await tick();
    expect(attempts).toBe(1);
    expect(a.scheduler.failure).toMatchObject({ code: 'ENOSPC' });
    expect(a.failures.map((f) => (f as NodeJS.ErrnoException | null)?.code)).toEqual(['ENOSPC']);
    expect(waiter.failed).toBe(1);
    expect(vi.getTimerCount()).toBe(1);

    // Many appends while failing: no write attempt of their own, still one timer.
    for (let i = 3; i < 103; i++) {
      stored.push(put(a, i));
      if (i % 10 === 0) await tick();
    }
    await tick();
    expect(attempts).toBe(1);
    expect(vi.getTimerCount()).toBe(1);

    // Backoff: 250, 500, 1000, 2000, then 2000 at most.
    for (const delay of [250, 500, 1000, 2000, 2000, 2000]) {
      const before = attempts;
      vi.advanceTimersByTime(delay - 1);
      expect(attempts, `no retry before ${delay} ms`).toBe(before);
      vi.advanceTimersByTime(1);
      expect(attempts, `one retry after ${delay} ms`).toBe(before + 1);
      expect(vi.getTimerCount()).toBe(1);
    }
    expect(a.failures.length).toBe(1); // onFailure once for the whole outage
    expect(waiter.failed).toBe(1);
    expect(waiter.synced).not.toContain(a.scheduler.epoch);

    // Writes work again: the next retry writes everything pending, the failure clears.
    Object.assign(fsOps, { writeSync: realFsOps.writeSync });
    vi.advanceTimersByTime(2000);
    expect(a.scheduler.failure).toBeNull();
    expect(a.failures.map((f) => (f as NodeJS.ErrnoException | null)?.code ?? null)).toEqual(['ENOSPC', null]);
    expect(a.log.segments.get(1)!.pendingBytes).toBe(0);
    expect(fs.statSync(segPath(dir, 1)).size).toBe(103 * REC);
    vi.useRealTimers();
    await settle(a);
    expect(a.scheduler.syncedEpoch).toBe(a.scheduler.epoch - 1);
    // After a good retry, the backoff starts over at 250 ms.
    expect((a.scheduler as unknown as { retryDelay: number }).retryDelay).toBe(250);
    crash(a);

    expect(restart(dir, BIG).bodies).toEqual(names(range(0, 103)));
  });

  it('short write then ENOSPC: the torn bytes are overwritten, no torn record mid-file, ack file stays aligned', async () => {
    const dir = tempDir();
    const a = open(dir, BIG);
    const stored = range(0, 6).map((i) => put(a, i));
    await settle(a);

    // Each armed period: the first write gets only half its bytes out, the rest hit ENOSPC.
    let armed = false;
    let tore = 0;
    setWriteSync((fd, buf, off, len, pos) => {
      if (!armed) return realWrite(fd, buf, off, len, pos);
      if (tore++ === 0) return realWrite(fd, buf, off, Math.ceil(len / 2), pos);
      throw errno('ENOSPC');
    });

    // A torn append.
    armed = true;
    stored.push(...range(6, 10).map((i) => put(a, i)));
    await until(() => a.scheduler.failure !== null, 'the write to fail');
    expect(fs.statSync(segPath(dir, 1)).size).toBe(6 * REC + Math.ceil((4 * REC) / 2)); // torn bytes on disk
    armed = false;
    await until(() => a.scheduler.failure === null, 'the retry to succeed');
    await settle(a);
    const seg = fs.readFileSync(segPath(dir, 1));
    expect(seg.length).toBe(10 * REC);
    expect(scanSegment(seg, true)).toEqual({ records: range(0, 10).map((k) => k * REC), damaged: [], end: 10 * REC });

    // A torn ack write: 3 records, 12 bytes get out.
    armed = true;
    tore = 0;
    for (const i of [1, 4, 7]) ack(a, stored[i]);
    await until(() => a.scheduler.failure !== null, 'the ack write to fail');
    expect(fs.statSync(segPath(dir, 1, 'ack')).size).toBe(12); // a record and a half
    armed = false;
    await until(() => a.scheduler.failure === null, 'the retry to succeed');
    await settle(a);
    const acks = fs.readFileSync(segPath(dir, 1, 'ack'));
    expect(acks.length).toBe(3 * ACK_RECORD);
    const scan = readAcks(acks);
    expect(scan.damaged).toBe(0);
    expect([...scan.acked].sort((x, y) => x - y)).toEqual([1, 4, 7].map((i) => stored[i].position));
    crash(a);

    const b = restart(dir, BIG);
    expect(b.bodies).toEqual(names([0, 2, 3, 5, 6, 8, 9]));
    expect(b.p.log.damage).toEqual({ ranges: 0, bytes: 0 });
  });

  it('a crash while a torn ack write is still on disk: the torn record is cut, later acks stay aligned', async () => {
    const dir = tempDir();
    const a = open(dir, BIG);
    const stored = range(0, 6).map((i) => put(a, i));
    await settle(a);
    let tore = 0;
    setWriteSync((fd, buf, off, len, pos) => {
      if (tore++ === 0) return realWrite(fd, buf, off, 12, pos);
      throw errno('ENOSPC');
    });
    ack(a, stored[1]);
    ack(a, stored[2]);
    await until(() => a.scheduler.failure !== null, 'the ack write to fail');
    crash(a); // the disk never came back in this process
    Object.assign(fsOps, realFsOps);

    const b = restart(dir, BIG);
    // The whole first record made it (stays acked); the half second one is cut (comes back).
    expect(b.bodies).toEqual(names([0, 2, 3, 4, 5]));
    expect(fs.statSync(segPath(dir, 1, 'ack')).size).toBe(ACK_RECORD);
    b.p.log.ack(b.got[1].segment, b.got[1].position); // msg 2
    b.p.log.ack(b.got[3].segment, b.got[3].position); // msg 4
    await settle(b.p);
    const acks = fs.readFileSync(segPath(dir, 1, 'ack'));
    expect(acks.length).toBe(3 * ACK_RECORD);
    expect(readAcks(acks).damaged).toBe(0);
    crash(b.p);
    expect(restart(dir, BIG).bodies).toEqual(names([0, 3, 5]));
  });

  it('EIO on fdatasync: the waiter gets storeFailed for that epoch, later appends are synced normally', async () => {
    const dir = tempDir();
    const a = open(dir, BIG);
    const events: Array<['synced', number] | ['failed']> = [];
    const waiter: SyncWaiter = { storeSynced: (e) => void events.push(['synced', e]), storeFailed: () => void events.push(['failed']) };
    a.scheduler.addWaiter(waiter);

    put(a, 0);
    await settle(a);
    expect(events).toEqual([['synced', 1]]);
    events.length = 0;

    let failing = true;
    const realSync = realFsOps.fdatasync;
    fsOps.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      if (failing) setImmediate(() => cb(errno('EIO')));
      else realSync(fd, cb);
    }) as typeof fsOps.fdatasync;
    const failedEpoch = a.scheduler.epoch;
    put(a, 1);
    put(a, 2);
    await until(() => events.length > 0, 'the sync to be reported');
    await sleep(5);
    expect(events).toEqual([['failed']]);
    expect(a.scheduler.failure).toMatchObject({ code: 'EIO' });
    expect(a.scheduler.syncedEpoch).toBeLessThan(failedEpoch);

    failing = false;
    await until(() => a.scheduler.failure === null, 'the retry after the failed sync');
    const nextEpoch = a.scheduler.epoch;
    expect(nextEpoch).toBeGreaterThan(failedEpoch);
    put(a, 3);
    await settle(a);
    expect(events).toEqual([['failed'], ['synced', nextEpoch]]);
    expect(events.some((e) => e[0] === 'synced' && e[1] === failedEpoch)).toBe(false);
    expect(a.scheduler.syncedEpoch).toBe(nextEpoch);
    expect(a.failures.map((f) => (f as NodeJS.ErrnoException | null)?.code ?? null)).toEqual(['EIO', null]);
    crash(a);

    // The nacked appends were written (only their sync failed), so they come back too.
    expect(restart(dir, BIG).bodies).toEqual(names([0, 1, 2, 3]));
  });

  it('EIO on one log sets that log aside: the other logs on the scheduler keep writing and syncing, and the failing one catches up later', async () => {
    const dirA = tempDir();
    const dirB = tempDir();
    const a = open(dirA, BIG);
    // A second log on the same scheduler, as two durable queues share one store.
    const b: Proc = { ...a, dir: dirB, log: new QueueLog(dirB, a.scheduler, BIG, testLogger(a.lines)), dead: false };
    procs.push(b);
    const waiter = { failed: 0, synced: [] as number[] };
    a.scheduler.addWaiter({ storeFailed: () => waiter.failed++, storeSynced: (e) => waiter.synced.push(e) });
    put(a, 0);
    put(b, 0);
    await settle(a);

    // Only log A's segment fails (EIO); log B's writes go through.
    const fdA = a.log.segments.get(1)!.fd;
    setWriteSync((fd, buf, off, len, pos) => {
      if (fd === fdA) throw errno('EIO');
      return realWrite(fd, buf, off, len, pos);
    });
    put(a, 1);
    put(b, 1);
    await until(() => a.log.failure !== null, 'log A to be set aside');
    expect(a.scheduler.failure).toBeNull(); // no alarm: the disk is not full
    expect(b.log.failure).toBeNull();
    expect(waiter.failed).toBe(1); // what waited on that round is nacked
    // B carries on: a later append of B is written and its round synced.
    const epoch = b.log.syncEpoch;
    put(b, 2);
    await until(() => waiter.synced.some((e) => e >= epoch), 'a round of log B to be synced');
    expect(fs.statSync(segPath(dirB, 1)).size).toBe(3 * REC);

    // A's writes work again: the retry writes what it kept.
    Object.assign(fsOps, { writeSync: realFsOps.writeSync });
    await until(() => a.log.failure === null, 'log A to be written again');
    await settle(a);
    crash(a);
    expect(restart(dirA, BIG).bodies).toEqual(names([0, 1]));
    expect(restart(dirB, BIG).bodies).toEqual(names([0, 1, 2]));
  });

  it('acks made while writes fail are written once writes work: the acked do not come back', async () => {
    const dir = tempDir();
    const a = open(dir, BIG);
    const stored = range(0, 8).map((i) => put(a, i));
    await settle(a);
    let attempts = 0;
    setWriteSync(() => {
      attempts++;
      throw errno('ENOSPC');
    });
    for (const i of [1, 3, 5]) ack(a, stored[i]);
    await until(() => a.scheduler.failure !== null, 'the ack write to fail');
    expect(fs.statSync(segPath(dir, 1, 'ack')).size).toBe(0);
    ack(a, stored[6]); // one more while failing
    Object.assign(fsOps, { writeSync: realFsOps.writeSync });
    await until(() => a.scheduler.failure === null, 'the retry');
    await settle(a);
    expect(attempts).toBe(1);
    expect(readAcks(fs.readFileSync(segPath(dir, 1, 'ack'))).acked.size).toBe(4);
    crash(a);
    expect(restart(dir, BIG).bodies).toEqual(names([0, 2, 4, 7]));
  });

  it('a flipped bit in an ack record: only that message comes back, every other ack holds', async () => {
    // Any single flipped bit of an ack record makes it fail its check (never another valid ack).
    const good = encodeAckRecord(4242, ACK);
    for (let bit = 0; bit < ACK_RECORD * 8; bit++) {
      const bad = Buffer.from(good);
      bad[bit >> 3] ^= 0x80 >> (bit & 7);
      const r = readAcks(bad);
      expect(r.acked.size + r.delivered.size, `bit ${bit}`).toBe(0);
      expect(r.damaged, `bit ${bit}`).toBe(1);
    }

    const dir = tempDir();
    const a = open(dir, BIG);
    const stored = range(0, 10).map((i) => put(a, i));
    await settle(a);
    const acked = [2, 4, 5, 7, 9];
    for (const i of acked) ack(a, stored[i]);
    await settle(a);
    crash(a);
    // The ack record of message 5 (third one) gets a bit of its position flipped.
    flipByte(segPath(dir, 1, 'ack'), 2 * ACK_RECORD + 3, 0x01);

    const b = restart(dir, BIG);
    expect(b.bodies).toEqual(names([0, 1, 3, 5, 6, 8]));
    expect(b.p.lines.some((l) => l.level === 'error' && /damaged ack records/.test(l.msg))).toBe(true);
  });

  describe('a damaged byte in a segment', () => {
    // Four records a segment: 0-3 in segment 1, 4-7 in 2, 8-11 in 3 (the newest).
    const segmentSize = REC * 4;
    const cases = [
      { where: 'body of a record in the newest segment', index: 9, at: REC - 2, atRecovery: true },
      { where: 'length of a record in the newest segment', index: 9, at: 0, atRecovery: true },
      { where: 'length of a record in an older segment', index: 5, at: 0, atRecovery: true },
      { where: 'length of the last record of an older segment', index: 7, at: 0, atRecovery: true },
      { where: 'low length bit of a record in an older segment', index: 1, at: 3, atRecovery: true },
      // Older segments are only checksummed record by record when read (their chain of
      // lengths still holds): the record is then found corrupt and dropped, nothing else.
      { where: 'body of a record in an older segment', index: 1, at: REC - 2, atRecovery: false },
    ];
    for (const c of cases) {
      it(`in the ${c.where}: every intact record is recovered, the damaged one is not`, async () => {
        const dir = tempDir();
        const a = open(dir, segmentSize);
        const stored = range(0, 12).map((i) => put(a, i));
        await settle(a);
        crash(a);
        const s = stored[c.index];
        const file = segPath(dir, s.segment);
        const mask = c.at === 3 ? 0x01 : 0x80;
        flipByte(file, s.position + c.at, mask);
        const damagedBytes = fs.readFileSync(file).subarray(s.position, s.position + REC);

        const b = restart(dir, segmentSize);
        expect(b.bodies).toEqual(names(range(0, 12).filter((i) => i !== c.index)));
        const copy = path.join(dir, 'damaged', `${segmentName(s.segment)}-${s.position}.bin`);
        if (c.atRecovery) {
          expect(b.corrupt).toEqual([]);
          expect(b.p.log.damage).toEqual({ ranges: 1, bytes: REC });
          expect(fs.readFileSync(copy)).toEqual(damagedBytes);
        } else {
          expect(b.corrupt).toEqual([[s.segment, s.position]]);
          expect(b.p.log.damage).toEqual({ ranges: 0, bytes: 0 });
        }
        // No file of a segment lost a record that was intact.
        for (const id of [1, 2, 3]) {
          const recs = scanSegment(fs.readFileSync(segPath(dir, id)), true).records.length;
          expect(recs, `segment ${id}`).toBe(id === s.segment ? 3 : 4);
        }

        // A second restart finds the same, once more.
        await settle(b.p);
        crash(b.p);
        const c2 = restart(dir, segmentSize);
        expect(c2.bodies).toEqual(b.bodies);
      });
    }

    it('a torn tail of the newest segment is cut and nothing else is lost', async () => {
      const dir = tempDir();
      const a = open(dir, segmentSize);
      range(0, 11).map((i) => put(a, i)); // segment 3 holds 8, 9, 10
      await settle(a);
      crash(a);
      const file = segPath(dir, 3);
      fs.truncateSync(file, 3 * REC - 10); // the append of 10 was cut short by the crash

      const b = restart(dir, segmentSize);
      expect(b.bodies).toEqual(names(range(0, 10)));
      expect(fs.statSync(file).size).toBe(2 * REC);
      expect(b.p.log.damage).toEqual({ ranges: 0, bytes: 0 });
      expect(fs.existsSync(path.join(dir, 'damaged'))).toBe(false);

      // Appends after the restart follow in order.
      range(20, 23).forEach((i) => put(b.p, i));
      await settle(b.p);
      crash(b.p);
      expect(restart(dir, segmentSize).bodies).toEqual(names([...range(0, 10), 20, 21, 22]));
    });
  });

  describe('compaction', () => {
    // Twenty records a segment: a segment with one live record is compacted (live < 10 %).
    const segmentSize = REC * 20;

    it('moves the few live records forward; after a restart each comes back once, in order, flags kept', async () => {
      const dir = tempDir();
      const a = open(dir, segmentSize);
      const stored = range(0, 70).map((i) => put(a, i)); // segments 1, 2, 3 full; 4 current
      await settle(a);
      a.log.delivered(stored[27].segment, stored[27].position);
      const keep = [5, 27, 45, 60, 62, 63, 64, 65, 66, 67, 68, 69];
      for (const i of range(0, 70)) if (!keep.includes(i) && i !== 61) ack(a, stored[i]);
      ack(a, stored[61]);
      await until(() => ![1, 2, 3].some((id) => fs.existsSync(segPath(dir, id))), 'segments 1-3 to be compacted away');
      await settle(a);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.compacting'))).toEqual([]);
      expect([...a.log.segments.keys()]).toEqual([4]);
      // A moved message acked by its first address: its copy is acked.
      ack(a, stored[45]);
      put(a, 70);
      await settle(a);
      crash(a);

      const b = restart(dir, segmentSize);
      const expected = [5, 27, 60, 62, 63, 64, 65, 66, 67, 68, 69, 70];
      expect(b.bodies).toEqual(names(expected));
      expect(b.got.filter((g) => g.delivered).map((g) => g.body)).toEqual(names([27]));
      expect(b.got.every((g) => g.segment === 4)).toBe(true);

      // Acks of moved records after a restart hold as well.
      b.p.log.ack(b.got[0].segment, b.got[0].position);
      await settle(b.p);
      crash(b.p);
      expect(restart(dir, segmentSize).bodies).toEqual(names(expected.slice(1)));
    });

    it('a record with a bad checksum stops the compaction of its segment: nothing laundered', async () => {
      const dir = tempDir();
      const a = open(dir, segmentSize);
      const stored = range(0, 70).map((i) => put(a, i));
      await settle(a);
      const keep = [5, 27, 45];
      for (const i of range(0, 60)) if (!keep.includes(i)) ack(a, stored[i]);
      // Before the compaction timer fires, a byte of message 5 goes bad on disk.
      flipByte(segPath(dir, 1), stored[5].position + REC - 1);
      await until(() => ![2, 3].some((id) => fs.existsSync(segPath(dir, id))), 'segments 2 and 3 to be compacted away');
      await settle(a);
      expect(fs.existsSync(segPath(dir, 1))).toBe(true);
      expect(fs.existsSync(segPath(dir, 1, 'compacting'))).toBe(false);
      expect(a.lines.some((l) => l.level === 'error' && /damaged record found while compacting/.test(l.msg))).toBe(true);
      // No copy of message 5 anywhere: only 27 and 45 were moved.
      const seg4 = fs.readFileSync(segPath(dir, 4));
      const moved = scanSegment(seg4, true).records.filter((p) => (seg4[p + RECORD_HEADER] & FLAG_MOVED) !== 0);
      expect(moved.map((p) => bodyOf(seg4, p, recordSize(seg4, p, seg4.length)))).toEqual(names([27, 45]));
      crash(a);

      const b = restart(dir, segmentSize);
      expect(b.corrupt).toEqual([[1, stored[5].position]]);
      expect(b.bodies).toEqual(names([27, 45, ...range(60, 70)]));
    });

    /**
     * Compacts segment 1 (messages 5 and 17 live) into segment 2 (30-39 with 31 acked),
     * copying the directory at each step; returns the snapshots.
     */
    async function compactWithSnapshots(): Promise<Map<string, string>> {
      const segSize = REC * 30;
      const dir = tempDir();
      const a = open(dir, segSize);
      const stored = range(0, 40).map((i) => put(a, i));
      await settle(a);
      const snaps = new Map<string, string>();
      const snap = (step: string): void => {
        const to = tempDir();
        fs.cpSync(dir, to, { recursive: true });
        snaps.set(step, to);
      };
      const marker = `${segmentName(1)}.compacting`;
      const { writeFileSync, unlinkSync, rmSync } = realFsOps;
      fsOps.writeFileSync = ((p: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
        (writeFileSync as (...x: unknown[]) => void)(p, ...rest);
        if (String(p).endsWith(marker)) snap('a: marker written');
      }) as typeof fsOps.writeFileSync;
      fsOps.unlinkSync = ((p: fs.PathLike) => {
        if (String(p).endsWith(`${segmentName(1)}.seg`)) snap('b: copies synced, source not yet removed');
        unlinkSync(p);
      }) as typeof fsOps.unlinkSync;
      fsOps.rmSync = ((p: fs.PathLike, o?: fs.RmOptions) => {
        if (String(p).endsWith(marker)) snap('c: source removed, marker not yet');
        rmSync(p, o);
      }) as typeof fsOps.rmSync;
      for (const i of range(0, 30)) if (i !== 5 && i !== 17) ack(a, stored[i]);
      ack(a, stored[31]);
      await until(() => !fs.existsSync(segPath(dir, 1)) && !fs.existsSync(path.join(dir, marker)), 'the compaction to finish');
      await settle(a);
      Object.assign(fsOps, realFsOps);
      snap('d: done');
      crash(a);
      return snaps;
    }
    const expectedAfterCompaction = names([5, 17, 30, ...range(32, 40)]);

    it('a crash at each step of a compaction: every live message comes back exactly once, in order', async () => {
      const snaps = await compactWithSnapshots();
      expect([...snaps.keys()]).toEqual([
        'a: marker written',
        'b: copies synced, source not yet removed',
        'c: source removed, marker not yet',
        'd: done',
      ]);
      for (const [step, dir] of snaps) {
        const b = restart(dir, REC * 30);
        expect(b.bodies, step).toEqual(expectedAfterCompaction);
        expect(b.corrupt, step).toEqual([]);
        expect(
          fs.readdirSync(dir).filter((f) => f.endsWith('.compacting')),
          step,
        ).toEqual([]);
        // What recovery settled (void copies acked) holds at the next restart too.
        await settle(b.p);
        crash(b.p);
        expect(restart(dir, REC * 30).bodies, `${step}, second restart`).toEqual(expectedAfterCompaction);
      }
    });

    it('a crash at each step of a compaction, then a crash again right after recovery: still exactly once', async () => {
      const snaps = await compactWithSnapshots();
      for (const [step, dir] of snaps) {
        const b = restart(dir, REC * 30);
        expect(b.bodies, step).toEqual(expectedAfterCompaction);
        crash(b.p); // before the scheduler's first turn
        expect(restart(dir, REC * 30).bodies, `${step}, second restart`).toEqual(expectedAfterCompaction);
      }
    });

    it('a crash at a step of a compaction, recovered while writes fail: the markers stay until the void acks are written', async () => {
      const snaps = await compactWithSnapshots();
      const dir = snaps.get('b: copies synced, source not yet removed')!;
      setWriteSync(() => {
        throw errno('EIO');
      });
      const b = restart(dir, REC * 30);
      expect(b.bodies).toEqual(expectedAfterCompaction);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.compacting'))).toEqual([`${segmentName(1)}.compacting`]);
      expect(b.p.lines.some((l) => l.level === 'error' && /void compaction copies/.test(l.msg))).toBe(true);
      crash(b.p);
      Object.assign(fsOps, realFsOps);
      const c = restart(dir, REC * 30);
      expect(c.bodies).toEqual(expectedAfterCompaction);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.compacting'))).toEqual([]);
      crash(c.p);
      expect(restart(dir, REC * 30).bodies).toEqual(expectedAfterCompaction);
    });
  });

  it('read(): pending bytes are served from memory, and reading never writes', async () => {
    const dir = tempDir();
    const a = open(dir, BIG);
    range(0, 3).forEach((i) => put(a, i));
    await settle(a);
    let writes = 0;
    setWriteSync((fd, buf, off, len, pos) => {
      writes++;
      return realWrite(fd, buf, off, len, pos);
    });
    range(3, 7).forEach((i) => put(a, i)); // pending: not written until the next turn
    const seg = a.log.segments.get(1)!;
    expect(seg.written).toBe(3 * REC);
    expect(seg.pendingBytes).toBe(4 * REC);

    const all = a.log.read(1, 0, BIG);
    expect(all.length).toBe(7 * REC);
    const bodies = range(0, 7).map((k) => bodyOf(all, k * REC, REC));
    expect(bodies).toEqual(names(range(0, 7)));
    expect(range(0, 7).every((k) => recordIntact(all, k * REC, REC))).toBe(true);
    // Across the written/pending boundary, inside the pending bytes, and cut short by max.
    expect(a.log.read(1, 2 * REC + 5, 2 * REC)).toEqual(all.subarray(2 * REC + 5, 4 * REC + 5));
    expect(a.log.read(1, 4 * REC + 1, REC)).toEqual(all.subarray(4 * REC + 1, 5 * REC + 1));
    expect(a.log.read(1, 6 * REC, BIG)).toEqual(all.subarray(6 * REC));
    expect(a.log.read(1, 7 * REC, BIG).length).toBe(0);
    expect(writes).toBe(0);
    expect(seg.written).toBe(3 * REC);

    // While writes fail, pending bytes still read back, and reading adds no write attempt.
    setWriteSync(() => {
      writes++;
      throw errno('ENOSPC');
    });
    await until(() => a.scheduler.failure !== null, 'the write to fail');
    const attempts = writes;
    expect(a.log.read(1, 0, BIG)).toEqual(all);
    expect(writes).toBe(attempts);

    Object.assign(fsOps, { writeSync: realFsOps.writeSync });
    await until(() => a.scheduler.failure === null, 'the retry');
    await settle(a);
    expect(fs.readFileSync(segPath(dir, 1))).toEqual(all);
  });
});
