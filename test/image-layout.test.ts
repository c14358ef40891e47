// The Docker image without Docker: the Dockerfile's build stage is `COPY . .` (filtered by
// .dockerignore) then scripts/build-image-root.sh, and its runtime stage copies the script's
// output to /. This test makes the same build context, runs the same script into a temporary
// root, and runs the broker from it the way the image does (its ENTRYPOINT, ENV, WORKDIR and
// an unprivileged user), then talks to it with pika, runs the HEALTHCHECK command, and stops
// it with SIGTERM. It also checks the Dockerfile's shape, since hadolint is not installable
// offline (Debian has no package; npm's "hadolint" downloads a binary from GitHub at run time).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, freePort } from './helpers/broker';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';

const REPO = path.resolve(__dirname, '..');
const SCRIPT = 'scripts/build-image-root.sh';
const BUILD_TIMEOUT_MS = 600_000;

// ---- the Dockerfile, read as instructions -------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  body: Instruction[];
}

function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line)) continue; // also inside a continued instruction, as Docker reads it
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full !== '') logical.push(full);
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\w+)\s+([\s\S]*)$/.exec(l);
    if (!m) throw new Error(`cannot read Dockerfile line: ${l}`);
    const op = m[1].toUpperCase();
    const rest = m[2].trim();
    if (op === 'FROM') {
      const fm = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!fm) throw new Error(`cannot read FROM: ${rest}`);
      const from = fm[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args.get(a ?? b) ?? '');
      stages.push({ from, name: fm[2], body: [] });
    } else if (stages.length === 0) {
      if (op !== 'ARG') throw new Error(`${op} before the first FROM`);
      const am = /^(\w+)(?:=(.*))?$/.exec(rest);
      if (am) args.set(am[1], am[2] ?? '');
    } else {
      stages[stages.length - 1].body.push({ op, args: rest });
    }
  }
  return { args, stages };
}

/** KEY=value pairs of ENV instructions (values possibly double-quoted). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.body.filter((x) => x.op === 'ENV')) {
    for (const m of i.args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      env[m[1]] = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
    }
  }
  return env;
}

function execForm(args: string): string[] {
  const v = JSON.parse(args) as unknown;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`not an exec form: ${args}`);
  return v as string[];
}

/** The HEALTHCHECK's options and its CMD, which must be in exec form (no shell in the way). */
function healthcheckOf(stage: Stage): { options: string; cmd: string[] } {
  const hc = stage.body.filter((i) => i.op === 'HEALTHCHECK');
  if (hc.length !== 1) throw new Error(`expected one HEALTHCHECK, found ${hc.length}`);
  const m = /^(.*?)\bCMD\s+(\[[\s\S]*\])$/.exec(hc[0].args);
  if (!m) throw new Error(`HEALTHCHECK is not "CMD [exec form]": ${hc[0].args}`);
  return { options: m[1].trim(), cmd: execForm(m[2]) };
}

const DOCKERFILE = parseDockerfile(fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));
const RUNTIME = DOCKERFILE.stages[DOCKERFILE.stages.length - 1];
const RUNTIME_ENV = envOf(RUNTIME);
const only = (op: string): Instruction[] => RUNTIME.body.filter((i) => i.op === op);

// ---- .dockerignore, as Docker applies it to the build context -----------------------------

function dockerignore(): (rel: string) => boolean {
  const patterns = fs
    .readFileSync(path.join(REPO, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  // Exceptions (!) would need Docker's full last-match-wins rules; this file does not use them.
  if (patterns.some((p) => p.startsWith('!'))) throw new Error('.dockerignore exceptions (!) are not modelled by this test');
  const res = patterns.map((p) => {
    const body = p
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map((seg) =>
        seg === '**'
          ? '(?:.*)'
          : seg
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
      )
      .join('/')
      .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
    return new RegExp(`^${body}$`);
  });
  // Excluding a directory excludes everything under it.
  return (rel) => {
    const parts = rel.split('/');
    return parts.some((_, i) => res.some((re) => re.test(parts.slice(0, i + 1).join('/'))));
  };
}

/** Copies the checkout into `to` as `docker build .` would send it (what .dockerignore leaves). */
function makeBuildContext(to: string): string[] {
  const ignored = dockerignore();
  const sent: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(REPO, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (ignored(r)) continue;
      if (e.isDirectory()) {
        fs.mkdirSync(path.join(to, r), { recursive: true });
        walk(r);
      } else {
        fs.cpSync(path.join(REPO, r), path.join(to, r), { verbatimSymlinks: true });
        sent.push(r);
      }
    }
  };
  walk('');
  return sent;
}

// ---- running the broker as the image would ----------------------------------------------

interface Runner {
  /** argv prefix that drops privileges, or [] when we are not root */
  prefix: string[];
  uid: number;
  gid: number;
  name: string;
}

function unprivileged(): Runner {
  if (process.getuid?.() !== 0) return { prefix: [], uid: process.getuid!(), gid: process.getgid!(), name: os.userInfo().username };
  // CI runs as root; the image runs as a dedicated uid. nobody:nogroup stands in for it.
  const id = (flag: string, who: string): number => {
    const r = spawnSync('id', [flag, who], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`id ${flag} ${who}: ${r.stderr}`);
    return Number(r.stdout.trim());
  };
  const gid = Number(spawnSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).stdout.split(':')[2]);
  if (!Number.isInteger(gid)) throw new Error('no group nogroup');
  return { prefix: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--init-groups', '--'], uid: id('-u', 'nobody'), gid, name: 'nobody' };
}

/** The first non-loopback IPv4 address, to reach the broker as a container's clients do. */
function outsideAddress(): string | null {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

function pikaHello(host: string, port: number, queue: string): { status: number | null; output: string } {
  const code = `
import sys, pika
params = pika.ConnectionParameters(host=sys.argv[1], port=int(sys.argv[2]),
    credentials=pika.PlainCredentials('guest', 'guest'), connection_attempts=3, retry_delay=1)
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.confirm_delivery()
ch.queue_declare(queue=sys.argv[3], durable=True)
ch.basic_publish(exchange='', routing_key=sys.argv[3], body=b'hello',
    properties=pika.BasicProperties(delivery_mode=2))
method, props, body = ch.basic_get(queue=sys.argv[3], auto_ack=True)
print('got', body.decode() if body is not None else None)
conn.close()
`;
  const r = spawnSync(PYTHON, ['-c', code, host, String(port), queue], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

async function waitFor(what: string, ok: () => Promise<boolean>, child: ChildProcess, out: () => string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`broker exited before ${what}:\n${out()}`);
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}:\n${out()}`);
}

// ---- the tests ------------------------------------------------------------------------------

describe('Dockerfile shape (the lint)', () => {
  it('is multi-stage: the build stage runs the layout script, the runtime stage copies its output to /', () => {
    expect(DOCKERFILE.stages.length).toBeGreaterThanOrEqual(2);
    const build = DOCKERFILE.stages.find((s) => s.name !== undefined && s.body.some((i) => i.op === 'RUN' && i.args.includes(SCRIPT)));
    expect(build, `a named stage runs ${SCRIPT}`).toBeDefined();
    const run = build!.body.find((i) => i.op === 'RUN' && i.args.includes(SCRIPT))!;
    const outDir = new RegExp(`${SCRIPT.replace(/\./g, '\\.')}\\s+(\\S+)`).exec(run.args)![1];
    // The build stage sends the whole (ignore-filtered) context: the script is the only file list.
    expect(build!.body.filter((i) => i.op === 'COPY').map((i) => i.args)).toContain('. .');
    expect(only('COPY').map((i) => i.args)).toContain(`--from=${build!.name} ${outDir.replace(/\/?$/, '/')} /`);
    // Nothing else is copied into the runtime stage: the script's output is the whole application.
    expect(only('COPY')).toHaveLength(1);
    expect(only('ADD')).toHaveLength(0);
  });

  it('runs on the slim official Node 20 LTS image, pinned by tag', () => {
    expect(RUNTIME.from).toBe('node:20-bookworm-slim');
    for (const s of DOCKERFILE.stages) expect(s.from).toMatch(/^node:20[-.\w]*$/);
  });

  it('runs as a fixed, non-root uid that owns the data directory', () => {
    const users = only('USER');
    expect(users.length).toBeGreaterThanOrEqual(1);
    const user = users[users.length - 1].args.trim();
    const [uid, gid] = user.split(':');
    expect(uid).toMatch(/^[1-9]\d*$/); // numeric: Kubernetes' runAsNonRoot can verify it
    const runs = only('RUN')
      .map((i) => i.args)
      .join('\n');
    expect(runs).toMatch(new RegExp(`useradd\\b[^\\n]*--uid ${uid}\\b`));
    if (gid !== undefined) expect(runs).toMatch(new RegExp(`groupadd\\b[^\\n]*--gid ${gid}\\b`));
    expect(runs).toMatch(new RegExp(`chown \\S+ ${RUNTIME_ENV.LEVERET_DATA_DIR}(\\s|$)`));
    // No instruction after USER runs as root again.
    const last = RUNTIME.body.lastIndexOf(users[users.length - 1]);
    expect(RUNTIME.body.slice(last + 1).filter((i) => i.op === 'RUN')).toHaveLength(0);
  });

  it('declares the data directory as a VOLUME and points LEVERET_DATA_DIR at it', () => {
    expect(only('VOLUME').map((i) => i.args.trim())).toEqual([RUNTIME_ENV.LEVERET_DATA_DIR]);
    expect(RUNTIME_ENV.LEVERET_DATA_DIR).toBe('/var/lib/leveret');
  });

  it('exposes AMQP, AMQPS, HTTP and HTTPS, matching the broker port defaults', () => {
    const ports = only('EXPOSE').flatMap((i) => i.args.trim().split(/\s+/));
    expect(new Set(ports)).toEqual(new Set(['5672', '5671', '15672', '15671']));
    expect(RUNTIME_ENV.LEVERET_PORT).toBe('5672');
    expect(RUNTIME_ENV.LEVERET_HTTP_PORT).toBe('15672');
  });

  it('sets only settings the broker knows, with values it accepts', () => {
    const help = spawnSync(process.execPath, [path.join(REPO, 'dist', 'cli.js'), '--help'], { encoding: 'utf8' }).stdout;
    const leveretVars = Object.keys(RUNTIME_ENV).filter((k) => k.startsWith('LEVERET_'));
    expect(leveretVars.length).toBeGreaterThanOrEqual(4);
    for (const k of leveretVars) expect(help, `${k} is a setting`).toContain(`(env ${k},`);
  });

  it('starts node itself as PID 1 (exec form), with a node-only HEALTHCHECK on an endpoint without credentials', () => {
    const entry = only('ENTRYPOINT');
    expect(entry).toHaveLength(1);
    const argv = execForm(entry[0].args);
    expect(argv[0]).toBe('node');
    expect(argv[1]).toBe('/app/dist/cli.js');
    const hc = healthcheckOf(RUNTIME);
    expect(hc.cmd[0]).toBe('node');
    expect(hc.options).toMatch(/--timeout=\d+s/);
    expect(hc.cmd.join(' ')).not.toMatch(/curl|wget|guest|authorization/i);
    const stop = only('STOPSIGNAL');
    expect(stop.every((i) => i.args.trim() === 'SIGTERM')).toBe(true);
  });

  it('.dockerignore keeps host artefacts out of the context; compose uses a named volume and publishes the ports', () => {
    const ignored = dockerignore();
    for (const p of ['node_modules', 'dist', 'data', '.git', 'test/out', 'bench/out', 'npm-debug.log']) expect(ignored(p), p).toBe(true);
    for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'src/cli.ts', SCRIPT]) expect(ignored(p), p).toBe(false);
    const compose = fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8');
    const vol = /^\s+-\s+([\w-]+):\/var\/lib\/leveret\s*$/m.exec(compose);
    expect(vol, 'a named volume on /var/lib/leveret').not.toBeNull();
    expect(compose).toMatch(new RegExp(`^volumes:\\s*\\n\\s+${vol![1]}:`, 'm'));
    expect(compose).toMatch(/['"]5672:5672['"]/);
    expect(compose).toMatch(/['"]15672:15672['"]/);
  });
});

describe('the image layout, run as an unprivileged user', () => {
  let base: string;
  let root: string;
  let sent: string[] = [];
  let buildLog = '';
  let pythonError: string | null = null;
  const runner = unprivileged();

  beforeAll(() => {
    pythonError = ensurePythonModules(['pika'], ['python3-pika'], 'the image-layout test');
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-image-'));
    // mkdtemp makes 0700; the unprivileged user must reach the application and its data.
    fs.chmodSync(base, 0o755);
    const context = path.join(base, 'context');
    fs.mkdirSync(context);
    sent = makeBuildContext(context);
    root = path.join(base, 'root');
    const r = spawnSync('bash', [path.join(context, SCRIPT), root], {
      cwd: context,
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT_MS,
      env: { ...process.env, TMPDIR: base },
    });
    buildLog = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`;
    if (r.status !== 0) throw new Error(`${SCRIPT} failed (exit ${r.status}):\n${buildLog}`);
    console.log(buildLog.trim().split('\n').slice(-1)[0]);
  }, BUILD_TIMEOUT_MS + INSTALL_TIMEOUT_MS);

  afterAll(() => {
    if (base) fs.rmSync(base, { recursive: true, force: true });
  });

  it('the build context holds the sources and none of the host build output', () => {
    expect(sent).toContain('src/cli.ts');
    expect(sent.some((f) => f.startsWith('node_modules/') || f.startsWith('dist/') || f === '.git' || f.startsWith('.git/'))).toBe(false);
  });

  it('lays out the runtime files and nothing else: production dependencies, dist/, package files, the data directory', () => {
    expect(fs.readdirSync(root).sort()).toEqual(['app', 'var']);
    const app = path.join(root, 'app');
    expect(fs.readdirSync(app).sort()).toEqual(['dist', 'node_modules', 'package-lock.json', 'package.json']);
    expect(fs.existsSync(path.join(app, 'dist', 'cli.js'))).toBe(true);
    expect(fs.existsSync(path.join(app, 'dist', 'http', 'dashboard'))).toBe(true);
    const pkg = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    for (const d of Object.keys(pkg.dependencies)) expect(fs.existsSync(path.join(app, 'node_modules', d, 'package.json')), d).toBe(true);
    // A dev dependency that a production one also needs (@types/node, through etcd3's protobufjs)
    // is not marked dev-only in the lock file and rightly ships.
    const lock = JSON.parse(fs.readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev === true);
    expect(devOnly.length).toBeGreaterThan(10);
    for (const d of devOnly) expect(fs.existsSync(path.join(app, 'node_modules', d)), `dev dependency ${d}`).toBe(false);
    expect(fs.statSync(path.join(root, RUNTIME_ENV.LEVERET_DATA_DIR)).isDirectory()).toBe(true);
    expect(fs.readdirSync(path.join(root, RUNTIME_ENV.LEVERET_DATA_DIR))).toEqual([]);
  });

  it('starts from the layout as that user, takes a pika "hello", passes the HEALTHCHECK, and exits 0 on SIGTERM', async () => {
    if (pythonError) expect.fail(pythonError);
    const dataDir = path.join(root, RUNTIME_ENV.LEVERET_DATA_DIR);
    fs.chownSync(dataDir, runner.uid, runner.gid);

    // The image's ENTRYPOINT, WORKDIR and ENV, with paths under `root` and free ports.
    const [, script, ...entryArgs] = execForm(only('ENTRYPOINT')[0].args);
    const workdir =
      only('WORKDIR')
        .map((i) => i.args.trim())
        .pop() ?? '/';
    const port = await freePort();
    let httpPort = await freePort();
    while (httpPort === port) httpPort = await freePort();
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...RUNTIME_ENV,
      LEVERET_DATA_DIR: dataDir,
      LEVERET_PORT: String(port),
      LEVERET_HTTP_PORT: String(httpPort),
    };
    const child = spawn(
      runner.prefix[0] ?? process.execPath,
      [...runner.prefix.slice(1), ...(runner.prefix.length ? [process.execPath] : []), path.join(root, script), ...entryArgs],
      {
        cwd: path.join(root, workdir),
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      await waitFor(
        'the AMQP port',
        () => canConnect(port),
        child,
        () => out,
      );
      await waitFor(
        'the HTTP port',
        () => canConnect(httpPort),
        child,
        () => out,
      );

      // It really runs as that user (setpriv execs node in place: same pid).
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      expect(/^Uid:\s+(\d+)/m.exec(status)![1]).toBe(String(runner.uid));
      expect(/^Gid:\s+(\d+)/m.exec(status)![1]).toBe(String(runner.gid));

      // guest from a non-loopback address, as clients reach a container (LEVERET_LOOPBACK_USERS is empty).
      const host = outsideAddress() ?? '127.0.0.1';
      console.log(`pika connects to ${host}:${port}; broker runs as ${runner.name} (${runner.uid}:${runner.gid})`);
      const hello = pikaHello(host, port, 'image-layout-hello');
      expect(hello.status, hello.output).toBe(0);
      expect(hello.output.trim()).toBe('got hello');

      // Everything the broker wrote belongs to that user.
      const written = fs.readdirSync(dataDir, { recursive: true }) as string[];
      expect(written.length).toBeGreaterThan(0);
      for (const f of written) expect(fs.statSync(path.join(dataDir, f)).uid, f).toBe(runner.uid);

      // The HEALTHCHECK's own command, as Docker runs it (the container's environment, node on PATH).
      const hc = healthcheckOf(RUNTIME).cmd;
      const healthy = spawnSync(process.execPath, hc.slice(1), { env, encoding: 'utf8', timeout: 10_000 });
      expect(healthy.status, `${healthy.stdout}${healthy.stderr}`).toBe(0);

      child.kill('SIGTERM');
      const { code, signal } = await exited;
      expect({ code, signal }, out).toEqual({ code: 0, signal: null });
      expect(out).toContain('"msg":"stopped"');

      // With the broker gone the same check fails, so it is not a constant 0.
      const unhealthy = spawnSync(process.execPath, hc.slice(1), { env, encoding: 'utf8', timeout: 10_000 });
      expect(unhealthy.status).toBe(1);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  }, 120_000);
});
