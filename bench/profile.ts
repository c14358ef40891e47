#!/usr/bin/env node
/**
 * bench:profile — where does Leveret spend its CPU under one scenario? Starts the built broker
 * (dist/cli.js) under `node --cpu-prof` on free ports and a temp data dir, runs leveret-perf
 * with the scenario's arguments from scenarios.ts, stops the broker with SIGTERM (the profile
 * is written at exit), and writes to bench/out/profile-<scenario>-<time>/:
 *   summary.md       top functions and files by self time, GC and idle shares, µs per message
 *   stacks.folded    folded stacks for a flame graph (speedscope, flamegraph.pl, inferno)
 *   *.cpuprofile     the raw profile (opens in Chrome DevTools or speedscope)
 *
 *   npm run bench:profile -- <a|b|c|d|e|h> [--duration S] [--warmup S] [--top N] [--broker-arg ARG]...
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { summarise, type Row } from './cpuprofile';
import { SCENARIO_ARGS } from './scenarios';

const ROOT = resolve(__dirname, '..', '..', '..');
const PERF = join(__dirname, 'perf.js');
const CLI = join(ROOT, 'dist', 'cli.js');

const USAGE = `Usage: npm run bench:profile -- <scenario> [options]

  scenario              one of ${Object.keys(SCENARIO_ARGS).join(', ')} (as in bench:compare)
  --duration S          measured seconds (default 10)
  --warmup S            seconds of load before measuring (default 1)
  --top N               rows in the function table (default 30)
  --broker-arg ARG      pass ARG to the broker (repeatable), e.g. --broker-arg=--segment-size=65536
  --node-arg ARG        pass ARG to node running the broker (repeatable), e.g. --node-arg=--max-semi-space-size=32
`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    top: { type: 'string' },
    'broker-arg': { type: 'string', multiple: true },
    'node-arg': { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help || positionals.length !== 1 || !(positionals[0] in SCENARIO_ARGS)) {
  process.stderr.write(USAGE);
  process.exit(values.help ? 0 : 2);
}
const ID = positionals[0] as keyof typeof SCENARIO_ARGS;
const DURATION = Number(values.duration ?? 10);
const WARMUP = Number(values.warmup ?? 1);
const TOP = Number(values.top ?? 30);

function log(line: string): void {
  process.stderr.write(line + '\n');
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => res(port));
    });
  });
}

async function waitForPort(port: number, exited: () => boolean): Promise<void> {
  const t = Date.now();
  for (;;) {
    if (exited()) throw new Error('the broker exited during start');
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), res(true)));
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() - t > 30_000) throw new Error(`the broker did not listen on ${port} within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function runPerf(uri: string, pid: number): Promise<Record<string, unknown>> {
  const args = [PERF, '--uri', uri, '--json', '--pid', String(pid), '--duration', String(DURATION), '--warmup', String(WARMUP)];
  const child = spawn(process.execPath, [...args, ...SCENARIO_ARGS[ID]], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((res, rej) =>
    child.once('exit', (code) => {
      if (code !== 0) return rej(new Error(`leveret-perf exited with ${code}`));
      res(JSON.parse(out) as Record<string, unknown>);
    }),
  );
}

const pct = (us: number, of: number) => `${((100 * us) / of).toFixed(1)} %`;

function table(rows: Row[], busyUs: number, usPerMsg: number | null, withWhere: boolean): string {
  const head = withWhere ? '| self | µs/msg | function | where |\n|---:|---:|---|---|' : '| self | µs/msg | file |\n|---:|---:|---|';
  const lines = rows.map((r) => {
    const perMsg = usPerMsg === null ? '' : ((r.selfUs / busyUs) * usPerMsg).toFixed(3);
    return withWhere
      ? `| ${pct(r.selfUs, busyUs)} | ${perMsg} | \`${r.name}\` | ${r.where} |`
      : `| ${pct(r.selfUs, busyUs)} | ${perMsg} | ${r.name} |`;
  });
  return [head, ...lines].join('\n');
}

async function main(): Promise<void> {
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\..*/, 'Z');
  const out = join(ROOT, 'bench', 'out', `profile-${ID}-${stamp}`);
  mkdirSync(out, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'leveret-profile-'));
  const port = await freePort();
  const brokerArgs = [`--port=${port}`, '--http-port=0', `--data-dir=${join(dataDir, 'data')}`];
  const broker = spawn(
    process.execPath,
    [...(values['node-arg'] ?? []), '--cpu-prof', '--cpu-prof-dir', out, CLI, ...brokerArgs, ...(values['broker-arg'] ?? [])],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  let exited = false;
  const exit = new Promise<void>((r) => broker.once('exit', () => ((exited = true), r())));
  try {
    await waitForPort(port, () => exited);
    log(`profile: scenario ${ID}, broker pid ${broker.pid} on port ${port}; leveret-perf ${SCENARIO_ARGS[ID].join(' ')}`);
    const result = await runPerf(`amqp://guest:guest@127.0.0.1:${port}/%2f`, broker.pid!);
    broker.kill('SIGTERM');
    await exit;
    const file = readdirSync(out).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error(`no .cpuprofile in ${out}: did the broker exit normally?`);
    const s = summarise(JSON.parse(readFileSync(join(out, file), 'utf8')), ROOT);
    const bp = result.brokerProcess as { cpuSecondsPerMillion: number | null; cpuPercent: number } | undefined;
    const usPerMsg = bp?.cpuSecondsPerMillion ?? null;
    const busyUs = s.totalUs - s.idleUs;
    writeFileSync(join(out, 'stacks.folded'), s.folded);
    const md = [
      `# CPU profile of Leveret under scenario (${ID})`,
      '',
      `\`leveret-perf ${SCENARIO_ARGS[ID].join(' ')} --duration ${DURATION} --warmup ${WARMUP}\``,
      '',
      `Consumed ${String(result.consumeRate)} msg/s; broker CPU ${bp?.cpuPercent ?? '?'} % of one core, ` +
        `${usPerMsg ?? '?'} µs per message in the measured window. The profile covers the broker's whole life ` +
        `(start, warm-up, run, stop): shares are of its busy time (${(busyUs / 1e6).toFixed(2)} s, idle ${(s.idleUs / 1e6).toFixed(2)} s), ` +
        `and µs/msg spreads the measured CPU per message by those shares.`,
      '',
      `Garbage collection ${pct(s.gcUs, busyUs)}, (program) ${pct(s.programUs, busyUs)} (V8 and native work outside JavaScript).`,
      '',
      `## Top ${TOP} functions by self time`,
      '',
      table(s.functions.filter((r) => r.name !== '(idle)').slice(0, TOP), busyUs, usPerMsg, true),
      '',
      '## Files by self time',
      '',
      table(
        s.files.filter((r) => r.selfUs / busyUs >= 0.002),
        busyUs,
        usPerMsg,
        false,
      ),
      '',
    ].join('\n');
    writeFileSync(join(out, 'summary.md'), md);
    process.stdout.write(md);
    log(`profile: wrote ${relative(process.cwd(), out)}/{summary.md,stacks.folded,${file}}`);
  } finally {
    if (!exited) broker.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  log(`profile: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
