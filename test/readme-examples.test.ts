// The client examples README.md shows are the files in examples/, and they work: each README
// block marked `<!-- example: examples/FILE -->` must be that file's text, and each file is run
// against a real Leveret on free ports (pika and celery with Debian's /usr/bin/python3,
// amqplib with this Node), the way the README tells a newcomer to run it.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';

const ROOT = path.resolve(__dirname, '..');
const EXAMPLES = path.join(ROOT, 'examples');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const RUN_TIMEOUT_MS = 60_000;

/** README's example blocks: the marker names the file, the fenced block after it is its text. */
function readmeExamples(): Map<string, string> {
  const out = new Map<string, string>();
  const re = /<!-- example: (examples\/[\w.-]+) -->\n```\w*\n([\s\S]*?)```\n/g;
  for (const m of README.matchAll(re)) out.set(m[1], m[2]);
  return out;
}

interface Run {
  code: number | null;
  output: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: EXAMPLES, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const killer = setTimeout(() => {
      output += `\n[killed after ${RUN_TIMEOUT_MS / 1000} s]`;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.on('error', (e) => (output += `\n[spawn error] ${e.message}`));
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, output });
    });
  });
}

const PY_ENV = { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };

describe('README examples', () => {
  it('every file in examples/ is shown in README.md exactly as it is', () => {
    const shown = readmeExamples();
    const files = readdirSync(EXAMPLES).filter((f) => !f.startsWith('.') && f !== '__pycache__');
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const key = `examples/${f}`;
      expect(shown.has(key), `README.md has no <!-- example: ${key} --> block`).toBe(true);
      expect(shown.get(key), `README.md's copy of ${key} differs from the file: paste the file into README.md`).toBe(
        readFileSync(path.join(EXAMPLES, f), 'utf8'),
      );
    }
    for (const key of shown.keys()) expect(files, `README.md shows ${key}, which is not in examples/`).toContain(key.slice(9));
  });
});

describe('README examples run against Leveret', () => {
  let broker: StartedBroker;
  let pythonProblem: string | null = null;
  let worker: ChildProcess | undefined;

  beforeAll(async () => {
    pythonProblem = ensurePythonModules(
      ['pika', 'celery', 'kombu'],
      ['python3-pika', 'python3-celery', 'python3-kombu'],
      "README's Python examples",
    );
    broker = await startBroker();
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      const t = setTimeout(() => worker!.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    }
    await broker?.stop();
  }, 30_000);

  it('examples/pika_hello.py prints Hello World!', async () => {
    expect(pythonProblem, pythonProblem ?? '').toBeNull();
    const r = await run(PYTHON, ['pika_hello.py'], { ...PY_ENV, AMQP_URL: `${broker.url}/%2F` });
    expect(r.code, r.output).toBe(0);
    expect(r.output.trim()).toBe('Hello World!');
  }, 70_000);

  it('examples/amqplib-hello.mjs prints what it published', async () => {
    const r = await run(process.execPath, ['amqplib-hello.mjs'], { AMQP_URL: broker.url });
    expect(r.code, r.output).toBe(0);
    expect(r.output.trim()).toBe('Hello from amqplib');
  }, 70_000);

  it('a celery worker from examples/celery_app.py runs the task examples/celery_hello.py sends', async () => {
    expect(pythonProblem, pythonProblem ?? '').toBeNull();
    const env = { ...process.env, ...PY_ENV, AMQP_URL: `${broker.url}//` };
    // As the README starts it (-l warning instead of info: the test shows only what goes wrong).
    worker = spawn(PYTHON, ['-m', 'celery', '-A', 'celery_app', 'worker', '--pool=threads', '-l', 'warning'], {
      cwd: EXAMPLES,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let workerOutput = '';
    worker.stdout!.on('data', (d: Buffer) => (workerOutput += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (workerOutput += d.toString()));
    // The task waits in its queue until the worker is up, so the driver needs no readiness signal.
    const r = await run(PYTHON, ['celery_hello.py'], env);
    expect(r.code, `${r.output}\nworker:\n${workerOutput}`).toBe(0);
    expect(r.output.trim()).toBe('2 + 3 = 5');
  }, 90_000);
});
