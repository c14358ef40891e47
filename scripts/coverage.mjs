// npm run coverage [-- vitest args]: the test suite exactly as `npm test` runs it, under coverage, then
// the merged report (scripts/coverage-report.mjs) and the per-file gate (scripts/coverage-check.mjs).
// NODE_V8_COVERAGE makes every node process of the run - vitest and the brokers the tests spawn from
// dist/cli.js - write its V8 coverage when it exits (a broker killed with SIGKILL writes none);
// `--coverage` turns on vitest's own provider for the code the tests import in-process.
// Exit status: the tests' when they failed (the report is still written), else the gate's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'coverage');
rmSync(OUT, { recursive: true, force: true });
mkdirSync(path.join(OUT, 'v8'), { recursive: true });

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// The json reporter's file lets the failures be named again after the long coverage table, where a
// CI log that keeps only its tail still shows them.
const RESULTS = path.join(OUT, 'test-results.json');
const reporters = ['--reporter=default', '--reporter=json', `--outputFile.json=${RESULTS}`];
const tests = spawnSync(npm, ['test', '--', '--coverage', ...reporters, ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, NODE_V8_COVERAGE: path.join(OUT, 'v8') },
});
const testStatus = tests.status ?? 1;

const { buildReport } = await import('./coverage-report.mjs');
await buildReport();
const check = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'coverage-check.mjs')], { cwd: ROOT, stdio: 'inherit' });

if (testStatus !== 0) {
  printFailures();
  console.error(`coverage: the tests failed (exit ${testStatus})`);
  process.exit(testStatus);
}
process.exit(check.status ?? 1);

function printFailures() {
  let results;
  try {
    results = JSON.parse(readFileSync(RESULTS, 'utf8'));
  } catch {
    console.error('coverage: no test results file to name the failures from');
    return;
  }
  for (const file of results.testResults ?? []) {
    const name = path.relative(ROOT, file.name);
    const failed = (file.assertionResults ?? []).filter((t) => t.status === 'failed');
    if (failed.length === 0 && file.status === 'failed') {
      console.error(`FAILED ${name}: ${firstLines(file.message ?? '')}`);
    }
    for (const t of failed) {
      console.error(`FAILED ${name} > ${t.fullName}: ${firstLines((t.failureMessages ?? []).join('\n'))}`);
    }
  }
}

function firstLines(text) {
  return text.split('\n').slice(0, 6).join('\n    ').slice(0, 1500);
}
