/**
 * npm run fuzz -- --frames N [--seed S] [--uri amqp://...] [--http-port P] [--json FILE]
 * Prints a summary; exits 1 when the run found anything.
 */
import { writeFileSync } from 'node:fs';
import { DEFAULTS, runFuzz, type FuzzOptions } from './run';
import { describe } from './cli-summary';

function parse(argv: string[]): Partial<FuzzOptions> & { json?: string } {
  const o: Partial<FuzzOptions> & { json?: string } = {};
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) throw new Error(`${flag} wants a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const v = argv[i + 1];
    switch (flag) {
      case '--frames':
        o.frames = num(flag, v);
        i++;
        break;
      case '--seed':
        o.seed = num(flag, v);
        i++;
        break;
      case '--uri':
        o.uri = v;
        i++;
        break;
      case '--http-port':
        o.httpPort = num(flag, v);
        i++;
        break;
      case '--json':
        o.json = v;
        i++;
        break;
      case '--connections-per-round':
        o.connectionsPerRound = num(flag, v);
        i++;
        break;
      case '--frames-per-connection':
        o.framesPerConnection = num(flag, v);
        i++;
        break;
      case '--concurrency':
        o.concurrency = num(flag, v);
        i++;
        break;
      case '--mutation-rate':
        o.mutationRate = num(flag, v);
        i++;
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  return o;
}

async function main(): Promise<void> {
  const { json, ...opts } = parse(process.argv.slice(2));
  const s = await runFuzz({ ...opts, progress: (l) => console.error(l) });
  console.log(describe(s));
  if (json !== undefined) writeFileSync(json, JSON.stringify({ options: { ...DEFAULTS, ...opts }, ...s }, null, 2));
  process.exitCode = s.ok ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 2;
});
