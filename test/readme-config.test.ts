// README.md's configuration table is generated from the settings schema (scripts/config-table.mjs,
// npm run docs:config); this fails CI when a setting is added or changed and the README is not
// regenerated, and proves the check notices a stale table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const SCRIPT = path.join(ROOT, 'scripts', 'config-table.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'leveret-readme-config-'));

function configTable(...args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8' });
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('README configuration table', () => {
  it('is current with the schema (npm run docs:config regenerates it)', () => {
    const r = configTable('--check');
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });

  it('lists every setting of node dist/cli.js --help', () => {
    const help = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), '--help'], { encoding: 'utf8' }).stdout;
    const flags = [...help.matchAll(/^\s+(--[a-z][a-z-]+)/gm)]
      .map((m) => m[1])
      .filter((f) => !['--config', '--help', '--version'].includes(f));
    expect(flags.length).toBeGreaterThan(20);
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const f of flags) expect(readme, `README.md's table lacks ${f}`).toContain(`| \`${f}\` |`);
  });

  it('--check exits 1 on a stale table, and a rewrite makes it current', () => {
    const copy = path.join(tmp, 'README.md');
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    writeFileSync(copy, readme.replace(/^\| `--heartbeat` \|.*\n/m, ''));
    expect(readFileSync(copy, 'utf8')).not.toBe(readme);
    const stale = configTable('--check', '--readme', copy);
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('stale');
    expect(configTable('--readme', copy).status).toBe(0);
    expect(readFileSync(copy, 'utf8')).toBe(readme);
  });
});
