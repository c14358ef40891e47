// Runs the pika conformance suite (conformance/run.py, RabbitMQ's expectations)
// against a Leveret broker. Needs Debian's python3-pika for /usr/bin/python3:
// installed here with apt-get when missing and running as root; if it still is
// not importable the test FAILS (it never skips).
//
// LEVERET_TEST_URL=amqp://guest:guest@127.0.0.1:5672 runs it against an
// external broker instead (see test/helpers/broker.ts).
// LEVERET_CONFORMANCE_ARGS adds run.py arguments, e.g. "-x direct_reply_to".
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';
import { startBroker } from './helpers/broker';

type Broker = Awaited<ReturnType<typeof startBroker>>;

const RUN_PY = path.resolve(__dirname, '..', 'conformance', 'run.py');
const PER_CASE_TIMEOUT_S = 15;
const BUDGET_S = 200;
const TEST_TIMEOUT_MS = 240_000;

/** pika needs the vhost in the URL path: amqp://u:p@host:port/%2F */
function withVhost(url: string): string {
  const u = new URL(url);
  if (u.pathname === '' || u.pathname === '/') return `${url.replace(/\/+$/, '')}/%2F`;
  return url;
}

function indent(text: string): string {
  // Indented so that run.py's "N passed, M failed" line is not mistaken for
  // this test runner's own summary.
  return text
    .split('\n')
    .map((l) => `  | ${l}`)
    .join('\n');
}

function runConformance(url: string): Promise<{ code: number | null; output: string }> {
  const extra = (process.env.LEVERET_CONFORMANCE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const args = [RUN_PY, '--url', url, '--timeout', String(PER_CASE_TIMEOUT_S), '--budget', String(BUDGET_S), '-v', ...extra];
  return new Promise((resolve) => {
    const child = spawn(PYTHON, args, {
      cwd: path.dirname(RUN_PY),
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), (BUDGET_S + 30) * 1000);
    child.on('error', (e) => {
      clearTimeout(killer);
      resolve({ code: null, output: `${output}\n[spawn error] ${e.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, output });
    });
  });
}

describe('conformance suite (pika, RabbitMQ expectations)', () => {
  let pikaProblem: string | null = null;
  let broker: Broker | undefined;

  beforeAll(() => {
    pikaProblem = ensurePythonModules(['pika'], ['python3-pika'], 'The conformance suite');
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
  });

  it('has python3-pika for /usr/bin/python3', () => {
    expect(pikaProblem, pikaProblem ?? '').toBeNull();
  });

  it(
    'conformance/run.py passes against the broker',
    async () => {
      expect(pikaProblem, pikaProblem ?? '').toBeNull();
      broker = await startBroker();
      const url = withVhost(broker.url);
      const started = Date.now();
      const { code, output } = await runConformance(url);
      const summary = output.trim().split('\n').pop() ?? '';
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      if (code !== 0) {
        const b = broker as Broker & { output?: () => string };
        const brokerLog = typeof b.output === 'function' ? b.output().trim().split('\n').slice(-40).join('\n') : '';
        console.error(
          `[conformance] run.py exited ${code} after ${secs}s against ${url}:\n${indent(output.trim())}` +
            (brokerLog ? `\n[conformance] last broker output:\n${indent(brokerLog)}` : ''),
        );
      } else {
        console.log(`[conformance] all cases OK in ${secs}s (${summary.replace(/,.*/, '')})`);
      }
      const failures = output
        .split('\n')
        .filter((l) => l.startsWith('FAIL ') || / passed, \d+ failed$/.test(l))
        .join('\n');
      expect(code, `run.py exited ${code}:\n${indent(failures || output.trim())}`).toBe(0);
      expect(summary).toMatch(/^\d+ passed, 0 failed$/);
    },
    TEST_TIMEOUT_MS,
  );
});
