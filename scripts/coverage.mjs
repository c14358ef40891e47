// npm run coverage [-- vitest args]: the test suite exactly as `npm test` runs it, under coverage, then
// the merged report (scripts/coverage-report.mjs) and the per-file gate (scripts/coverage-check.mjs).
// NODE_V8_COVERAGE makes every node process of the run - vitest and the brokers the tests spawn from
// dist/cli.js - write its V8 coverage when it exits (a broker killed with SIGKILL writes none);
// `--coverage` turns on vitest's own provider for the code the tests import in-process.
// Exit status: the tests' when they failed (the report is still written), else the gate's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'coverage');
rmSync(OUT, { recursive: true, force: true });
mkdirSync(path.join(OUT, 'v8'), { recursive: true });

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const tests = spawnSync(npm, ['test', '--', '--coverage', ...process.argv.slice(2)], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, NODE_V8_COVERAGE: path.join(OUT, 'v8') },
});
const testStatus = tests.status ?? 1;

const { buildReport } = await import('./coverage-report.mjs');
await buildReport();
const check = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'coverage-check.mjs')], { cwd: ROOT, stdio: 'inherit' });

if (testStatus !== 0) {
  console.error(`coverage: the tests failed (exit ${testStatus})`);
  process.exit(testStatus);
}
process.exit(check.status ?? 1);
