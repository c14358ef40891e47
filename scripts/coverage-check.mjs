// Fails (exit 1) when a file of src/store/ or src/server/ has less than MIN_LINES % of its lines
// covered, reading coverage/coverage-summary.json as scripts/coverage-report.mjs wrote it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MIN_LINES = 80;
const GATED = ['src/store/', 'src/server/'];

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const summary = JSON.parse(readFileSync(path.join(ROOT, 'coverage', 'coverage-summary.json'), 'utf8'));

const below = [];
let checked = 0;
for (const [file, s] of Object.entries(summary)) {
  if (file === 'total') continue;
  const rel = path.relative(ROOT, file).split(path.sep).join('/');
  if (!GATED.some((d) => rel.startsWith(d))) continue;
  checked++;
  if (s.lines.pct < MIN_LINES) below.push(`  ${rel}: ${s.lines.pct} % (${s.lines.covered}/${s.lines.total} lines)`);
}
if (checked === 0) {
  console.error(`coverage-check: no file of ${GATED.join(' or ')} in the summary`);
  process.exit(1);
}
if (below.length > 0) {
  console.error(`coverage-check: ${below.length} file(s) of ${GATED.join(' and ')} below ${MIN_LINES} % lines:\n${below.join('\n')}`);
  process.exit(1);
}
console.log(`coverage-check: all ${checked} files of ${GATED.join(' and ')} have at least ${MIN_LINES} % of their lines covered`);
