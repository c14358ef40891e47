import { spawnSync } from 'node:child_process';

/** Debian's Python: its python3-* packages install for this one, not for a pyenv on PATH. */
export const PYTHON = '/usr/bin/python3';
export const INSTALL_TIMEOUT_MS = 600_000;

function importable(modules: string[]): { ok: boolean; detail: string } {
  const code = `import ${modules.join(', ')}; print(${modules.map((m) => `'${m}', getattr(${m}, '__version__', '?')`).join(', ')})`;
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return { ok: false, detail: `${PYTHON}: ${r.error.message}` };
  return { ok: r.status === 0, detail: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

function apt(args: string[]): string {
  const r = spawnSync('apt-get', args, {
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT_MS / 2,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
  return `$ apt-get ${args.join(' ')} -> ${r.error ? r.error.message : `exit ${r.status}`}\n${tail}`;
}

/**
 * Makes sure Debian's Python can import `modules`, installing `packages` with apt-get when
 * it cannot and we are root. Returns null when they import, else a message naming the
 * packages (the caller fails with it: a suite is never skipped for want of them).
 */
export function ensurePythonModules(modules: string[], packages: string[], purpose: string): string | null {
  let check = importable(modules);
  if (check.ok) return null;
  const log = [`import ${modules.join(', ')} failed: ${check.detail}`];
  if (process.getuid?.() === 0) {
    log.push(apt(['update']));
    log.push(apt(['install', '-y', ...packages]));
    check = importable(modules);
    if (check.ok) return null;
    log.push(`import still fails: ${check.detail}`);
  } else {
    log.push('not root: cannot apt-get install');
  }
  return `${purpose} needs the Debian package(s) ${packages.join(' ')} for ${PYTHON} (apt-get install -y ${packages.join(' ')}), and they are not available.\n${log.join('\n')}`;
}
