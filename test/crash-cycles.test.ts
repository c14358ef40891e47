// The short version of bench/crash.mjs (issue 9, item 4): kill -9 cycles under confirmed
// load into two durable queues, with a small --segment-size and consumers that leave some
// deliveries unacked, so that segments turn sparse and get compacted between the crashes.
// Every confirmed message must come back from both queues, byte for byte; a duplicate is
// allowed only where at-least-once allows it (its ack was sent during a load that was then
// killed, so the ack may never have been stored). The script does the work (real broker
// processes on free ports, amqplib over real sockets); this test runs it with --json and
// asserts on its summary. On failure the data directory is kept and its path printed.
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..');
const SCRIPT = path.join(REPO_ROOT, 'bench', 'crash.mjs');
const CYCLES = 5;
const SEGMENT_SIZE = 65536;
/** The script's own time limit; 5 cycles normally take 10-15 s. */
const RUN_LIMIT_MS = 75_000;

interface Summary {
  ok: boolean;
  cycles: number;
  published: number;
  confirmed: number;
  delivered: number;
  missing: number;
  corrupt: number;
  unknown: number;
  duplicates: number;
  dupAckInFlight: number;
  dupOther: number;
  ackedInLoad: number;
  held: number;
  compactions: number;
  brokerErrors: number;
  finalExitCode: number | null;
  problemCount: number;
  problems: string[];
}

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-crash-test-'));
const dataDir = path.join(base, 'data');
let child: ChildProcess | null = null;
let keep = true;

afterAll(() => {
  // crash.mjs runs in its own process group with the brokers it starts: if it is still
  // running (the test timed out), that group, and nothing else, is killed.
  if (child !== null && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (keep) console.error(`crash-cycles: data directory kept at ${dataDir}`);
  else fs.rmSync(base, { recursive: true, force: true });
});

function runCrash(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [SCRIPT, ...args], { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new Error(`crash.mjs did not finish within ${RUN_LIMIT_MS} ms:\n${stderr}`));
    }, RUN_LIMIT_MS);
    c.once('error', (e) => (clearTimeout(timer), reject(e)));
    c.once('exit', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

describe('kill -9 cycles under confirmed load (bench/crash.mjs)', () => {
  it(
    `loses, damages or invents no confirmed message over ${CYCLES} crashes with segment compaction`,
    async () => {
      const { code, stdout, stderr } = await runCrash([
        '--cycles',
        String(CYCLES),
        '--segment-size',
        String(SEGMENT_SIZE),
        '--data-dir',
        dataDir,
        '--verbose',
        '--json',
      ]);
      const last = stdout.trim().split('\n').pop() ?? '';
      let s: Summary;
      try {
        s = JSON.parse(last) as Summary;
      } catch {
        throw new Error(`crash.mjs (exit ${code}) printed no JSON summary:\n${stdout}\n${stderr}`);
      }
      const context = `${stderr}\nproblems: ${JSON.stringify(s.problems, null, 2)}`;

      // The run did something worth checking.
      expect(s.cycles, context).toBe(CYCLES);
      expect(s.confirmed, context).toBeGreaterThan(1000);
      expect(s.compactions, `no 'segment compacted' line in any broker log\n${context}`).toBeGreaterThan(0);

      // Never lose, damage or invent a confirmed message.
      expect(s.missing, context).toBe(0);
      expect(s.corrupt, context).toBe(0);
      expect(s.unknown, context).toBe(0);

      // Duplicates only where an ack may have been cut off by the kill.
      expect(s.dupOther, context).toBe(0);
      expect(s.duplicates, context).toBe(s.dupAckInFlight);
      expect(s.dupAckInFlight, context).toBeLessThanOrEqual(s.ackedInLoad);

      // No error-level log line (e.g. a failed compaction), a clean final shutdown.
      expect(s.brokerErrors, context).toBe(0);
      expect(s.finalExitCode, context).toBe(0);
      expect(s.problemCount, context).toBe(0);
      expect(s.ok, context).toBe(true);
      expect(code, context).toBe(0);
      keep = false;
    },
    RUN_LIMIT_MS + 15_000,
  );
});
