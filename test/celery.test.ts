// Real Python applications against the broker: a celery worker (pyamqp://
// transport, rpc:// result backend) driven by conformance/celery/driver.py,
// and kombu producer/consumer checks (x-max-priority, per-message expiration)
// in conformance/celery/kombu_check.py.
//
// Needs Debian's python3-celery and python3-kombu for /usr/bin/python3 (the
// pyenv python3 first on PATH has neither): installed here with apt-get when
// missing and running as root; if they still cannot be imported the test
// FAILS (it never skips).
//
// LEVERET_TEST_URL=amqp://guest:guest@127.0.0.1:5672 runs it against an
// external broker instead (see test/helpers/broker.ts).
// LEVERET_AMQP_TRACE=/tmp/trace.log records every AMQP method the Python
// processes send (conformance/celery/amqp_trace.py).
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';
import { startBroker } from './helpers/broker';

type Broker = Awaited<ReturnType<typeof startBroker>>;

const PACKAGES = ['python3-celery', 'python3-kombu'];
const DIR = path.resolve(__dirname, '..', 'conformance', 'celery');
const READY_MARKER = 'LEVERET-CELERY-WORKER-READY';
const READY_TIMEOUT_MS = 45_000;
const SCRIPT_TIMEOUT_MS = 100_000;
const TEST_TIMEOUT_MS = 120_000;

const PREFIX = `leveret-celery-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

function indent(text: string): string {
  // Indented so that the scripts' "N passed, M failed" lines are not taken
  // for this test runner's own summary.
  return text
    .trim()
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}

function pythonEnv(url: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LEVERET_URL: url,
    LEVERET_CELERY_PREFIX: PREFIX,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

function runScript(script: string, url: string): Promise<{ code: number | null; output: string; secs: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(PYTHON, [script], { cwd: DIR, env: pythonEnv(url), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const killer = setTimeout(() => {
      output += `\n[killed after ${SCRIPT_TIMEOUT_MS / 1000} s]`;
      child.kill('SIGKILL');
    }, SCRIPT_TIMEOUT_MS);
    const done = (code: number | null) => {
      clearTimeout(killer);
      resolve({ code, output, secs: (Date.now() - started) / 1000 });
    };
    child.on('error', (e) => {
      output += `\n[spawn error] ${e.message}`;
      done(null);
    });
    child.on('close', (code) => done(code));
  });
}

interface Worker {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
  hasExited: () => boolean;
}

function startWorker(url: string): Worker {
  const args = ['-m', 'celery', '-A', 'tasks', 'worker', '--pool=threads', '--concurrency=4', '-l', 'warning', '-n', `${PREFIX}@%h`];
  const child = spawn(PYTHON, args, { cwd: DIR, env: pythonEnv(url), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  child.on('error', (e) => (out += `\n[spawn error] ${e.message}`));
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      out += `\n[worker exited: code ${code}, signal ${signal}]`;
      resolve();
    });
  });
  return { child, output: () => out, exited: exitedP, hasExited: () => exited };
}

async function waitReady(worker: Worker): Promise<string | null> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (worker.output().includes(READY_MARKER)) return null;
    if (worker.hasExited()) return `the celery worker exited before it was ready:\n${indent(worker.output())}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  return `the celery worker was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${indent(worker.output())}`;
}

async function stopWorker(worker: Worker): Promise<void> {
  if (worker.hasExited()) return;
  worker.child.kill('SIGTERM');
  const t = setTimeout(() => {
    if (!worker.hasExited()) worker.child.kill('SIGKILL');
  }, 8000);
  await worker.exited;
  clearTimeout(t);
}

/** Deletes what the worker leaves behind (its other queues auto-delete). */
async function deleteCeleryEntities(url: string): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    conn.on('error', () => {});
    const names: Array<['queue' | 'exchange', string]> = [
      ['queue', PREFIX],
      ['exchange', PREFIX],
      ['exchange', `${PREFIX}.pidbox`],
      ['exchange', `reply.${PREFIX}.pidbox`],
      ['exchange', `${PREFIX}.ev`],
    ];
    for (const [kind, name] of names) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      try {
        if (kind === 'queue') await ch.deleteQueue(name);
        else await ch.deleteExchange(name);
        await ch.close();
      } catch {
        // channel closed by the broker (e.g. unknown entity): next one
      }
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

describe('celery and kombu (Debian python3-celery / python3-kombu, pyamqp transport)', () => {
  let packageProblem: string | null = null;
  let broker: Broker | undefined;
  let worker: Worker | undefined;
  let workerProblem: string | null = null;

  beforeAll(async () => {
    packageProblem = ensurePythonModules(['celery', 'kombu', 'amqp'], PACKAGES, 'The celery and kombu tests');
    if (packageProblem) return;
    broker = await startBroker();
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    if (worker) await stopWorker(worker);
    if (broker && worker) await deleteCeleryEntities(broker.url).catch((e) => console.error(`[celery] cleanup: ${e}`));
    await broker?.stop();
  }, 30_000);

  function brokerTail(): string {
    const log = broker?.output().trim();
    return log ? `\nlast broker output:\n${indent(log.split('\n').slice(-30).join('\n'))}` : '';
  }

  it('has python3-celery and python3-kombu for /usr/bin/python3', () => {
    expect(packageProblem, packageProblem ?? '').toBeNull();
  });

  it(
    'a celery worker runs tasks sent by driver.py (rpc:// results, countdown, failures, 50 in parallel)',
    async () => {
      expect(packageProblem, packageProblem ?? '').toBeNull();
      const started = Date.now();
      worker = startWorker(broker!.url);
      workerProblem = await waitReady(worker);
      expect(workerProblem, `${workerProblem}${brokerTail()}`).toBeNull();
      const readySecs = ((Date.now() - started) / 1000).toFixed(1);
      const { code, output, secs } = await runScript('driver.py', broker!.url);
      const report = `driver.py exited ${code} after ${secs.toFixed(1)} s (worker ready after ${readySecs} s):\n${indent(output)}`;
      if (code !== 0) {
        console.error(`[celery] ${report}\n[celery] worker output:\n${indent(worker.output())}${brokerTail()}`);
      } else {
        console.log(`[celery] ${report}`);
      }
      expect(code, report).toBe(0);
      expect(output).toMatch(/^\d+ passed, 0 failed$/m);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'kombu: round trip, x-max-priority order, per-message expiration (kombu_check.py)',
    async () => {
      expect(packageProblem, packageProblem ?? '').toBeNull();
      const { code, output, secs } = await runScript('kombu_check.py', broker!.url);
      const report = `kombu_check.py exited ${code} after ${secs.toFixed(1)} s:\n${indent(output)}`;
      if (code !== 0) console.error(`[celery] ${report}${brokerTail()}`);
      else console.log(`[celery] ${report}`);
      expect(code, report).toBe(0);
      expect(output).toMatch(/^\d+ passed, 0 failed$/m);
    },
    TEST_TIMEOUT_MS,
  );
});
