#!/usr/bin/env node
// Writes README.md's configuration table from the settings schema (src/config.ts, compiled to
// dist/config.js), between <!-- config-table:start --> and <!-- config-table:end -->, so the
// README lists every setting with the default the broker really uses.
//
//   node scripts/config-table.mjs            rewrite the table in README.md (npm run docs:config)
//   node scripts/config-table.mjs --check    exit 1 if README.md's table is not what the schema gives
//   --readme FILE                            another file than README.md (the test uses a copy)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

const { values } = parseArgs({ options: { check: { type: 'boolean' }, readme: { type: 'string' } } });
const readmePath = resolve(values.readme ?? join(ROOT, 'README.md'));

const compiled = join(ROOT, 'dist', 'config.js');
if (!existsSync(compiled)) {
  process.stderr.write(`config-table: ${compiled} is missing; run npm run build first\n`);
  process.exit(2);
}
const { SETTINGS } = createRequire(import.meta.url)(compiled);

const MiB = 1024 * 1024;
// A cell must not contain a bare pipe or a line break; in plain text, <name> would be taken for HTML.
const oneLine = (text) =>
  String(text)
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ');
const cell = (text) => oneLine(text).replace(/</g, '&lt;').replace(/>/g, '&gt;');
const code = (text) => '`' + oneLine(text) + '`';

function showDefault(v) {
  if (v === '') return '';
  if (Array.isArray(v)) return v.length ? code(v.join(',')) : '';
  if (typeof v === 'number' && v >= MiB && v % MiB === 0) return `${code(v)} (${v / MiB} MiB)`;
  return code(v);
}

/** The value's shape: an enumeration's choices, an integer's range, or the usage's placeholder. */
function showValues(setting) {
  const choices = setting.argName.slice(1, -1).split('|');
  // <fatal|error|…> lists the values themselves; <fraction|amount> names kinds of value.
  const enumeration = choices.length > 1 && choices.every((c) => String(setting.fromText(c)) === c);
  if (enumeration) return choices.map(code).join(', ');
  if (setting.constraint) return cell(setting.constraint.replace(/^(-?\d+)-/, '$1 to '));
  return code(setting.argName);
}

function table() {
  const rows = ['| flag | environment variable | default | values | what it sets |', '|---|---|---|---|---|'];
  for (const s of SETTINGS) {
    const what = cell(s.setting.description) + (s.setting.secret ? ' Never logged.' : '');
    rows.push(`| ${code(s.flag)} | ${code(s.env)} | ${showDefault(s.setting.default)} | ${showValues(s.setting)} | ${what} |`);
  }
  return rows.join('\n');
}

const readme = readFileSync(readmePath, 'utf8');
const from = readme.indexOf(START);
const to = readme.indexOf(END);
if (from < 0 || to < from) {
  process.stderr.write(`config-table: ${readmePath} has no ${START} ... ${END} section\n`);
  process.exit(2);
}
const wanted = readme.slice(0, from + START.length) + '\n' + table() + '\n' + readme.slice(to);

if (values.check) {
  if (wanted !== readme) {
    process.stderr.write(`config-table: the configuration table in ${readmePath} is stale; run npm run docs:config\n`);
    process.exit(1);
  }
  process.stdout.write(`config-table: ${readmePath} lists all ${SETTINGS.length} settings as the schema declares them\n`);
} else if (wanted !== readme) {
  writeFileSync(readmePath, wanted);
  process.stdout.write(`config-table: wrote ${SETTINGS.length} settings into ${readmePath}\n`);
} else {
  process.stdout.write(`config-table: ${readmePath} is already current\n`);
}
