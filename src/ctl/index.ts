// `leveret COMMAND ...`: the operator's side of the management API, in the spirit of
// rabbitmqctl and rabbitmqadmin. It is only an HTTP client: it reaches the broker the way
// any other tool would, with the same users and permissions.
import { parseArgs } from 'node:util';
import { createClient, Refused, Unreachable } from './client';
import { COMMANDS, Failed, readInputFile, UsageError, writeOutputFile, type Command, type Options, type Values } from './commands';
import { FORMATS, type Format } from './table';

/** sysexits-style codes, so scripts can tell a refusal from a typo from a broker that is down. */
export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNAVAILABLE = 69; // EX_UNAVAILABLE

const DEFAULT_URL = 'http://127.0.0.1:15672';
const DEFAULT_TIMEOUT_S = 30;

const GLOBAL_OPTIONS: Options = {
  url: { type: 'string' },
  user: { type: 'string', short: 'u' },
  password: { type: 'string' },
  vhost: { type: 'string', short: 'p' },
  format: { type: 'string', short: 'f' },
  ca: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const VERBS = [...new Set(COMMANDS.map((c) => c.words[0]))];

/** True when argv[0] names an operator command rather than a broker flag. */
export function isCtlCommand(word: string | undefined): boolean {
  return word !== undefined && (word === 'help' || VERBS.includes(word));
}

export interface Io {
  stdout: (text: string) => void;
  stderr(text: string): void;
}

const processIo: Io = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/** Runs one command; resolves with the process's exit code (it never throws). */
export async function runCtl(argv: string[], env: NodeJS.ProcessEnv, io: Io = processIo): Promise<number> {
  const fail = (message: string, code: number): number => {
    io.stderr(`leveret: ${message}\n`);
    return code;
  };
  let found: { command: Command; args: string[]; values: Values };
  try {
    if (argv[0] === 'help') {
      io.stdout(argv.length > 1 ? verbUsage(argv[1]) : ctlUsage());
      return EXIT_OK;
    }
    const parsed = parseCommand(argv);
    if (parsed === 'help') {
      io.stdout(verbUsage(argv[0], argv[1]));
      return EXIT_OK;
    }
    found = parsed;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`leveret: ${err.message}\n\n${verbUsage(argv[0], argv[1])}`);
      return EXIT_USAGE;
    }
    throw err;
  }

  const { command, args, values } = found;
  try {
    const format = (values.format ?? 'table') as Format;
    if (!FORMATS.includes(format))
      throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(values.format)}`);
    const timeout = values.timeout === undefined ? DEFAULT_TIMEOUT_S : Number(values.timeout);
    if (!(timeout > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(values.timeout)}`);
    let ca: string | undefined;
    if (typeof values.ca === 'string') ca = readInputFile(values.ca);
    let client;
    try {
      client = createClient({
        url: str(values.url) ?? env.LEVERET_MGMT_URL ?? DEFAULT_URL,
        user: str(values.user) ?? env.LEVERET_MGMT_USER ?? 'guest',
        password: str(values.password) ?? env.LEVERET_MGMT_PASSWORD ?? 'guest',
        ca,
        timeoutMs: timeout * 1000,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    await command.run(
      {
        client,
        format,
        vhost: str(values.vhost),
        values,
        out: io.stdout,
        readInput: readInputFile,
        writeOutput: (file, text) => writeOutputFile(file, text, io.stdout),
      },
      args,
    );
    return EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`leveret: ${err.message}\n\n${commandUsage(command)}`);
      return EXIT_USAGE;
    }
    if (err instanceof Refused) return fail(err.message, EXIT_REFUSED);
    if (err instanceof Unreachable) return fail(err.message, EXIT_UNAVAILABLE);
    if (err instanceof Failed) return fail(err.message, EXIT_REFUSED);
    return fail(err instanceof Error ? err.message : String(err), EXIT_REFUSED);
  }
}

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/** Finds the command the words name and parses its flags; 'help' when -h/--help was asked for. */
function parseCommand(argv: string[]): { command: Command; args: string[]; values: Values } | 'help' {
  const [verb, kind] = argv;
  const candidates = COMMANDS.filter((c) => c.words[0] === verb);
  let command = candidates.find((c) => c.words.length === 1);
  if (command === undefined) {
    if (kind === '-h' || kind === '--help') return 'help';
    command = candidates.find((c) => c.words[1] === kind);
    if (command === undefined) {
      const kinds = candidates.map((c) => c.words[1]).join(', ');
      throw new UsageError(
        kind === undefined || kind.startsWith('-')
          ? `${verb} what? One of: ${kinds}`
          : `cannot ${verb} ${JSON.stringify(kind)}; one of: ${kinds}`,
      );
    }
  }
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv.slice(command.words.length),
      options: { ...GLOBAL_OPTIONS, ...(command.options ?? {}) },
      strict: true,
      allowPositionals: true,
    }) as { values: Values; positionals: string[] };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      const message = (err as Error).message.replace(/\s*\n\s*/g, ' ');
      throw new UsageError(message[0].toLowerCase() + message.slice(1));
    }
    throw err;
  }
  if (parsed.values.help === true) return 'help';
  const required = command.args.filter((a) => !a.startsWith('[')).length;
  const unbounded = command.args.some((a) => a.includes('...'));
  const n = parsed.positionals.length;
  if (n < required) throw new UsageError(`${command.words.join(' ')} needs ${command.args.filter((a) => !a.startsWith('[')).join(' ')}`);
  if (!unbounded && n > command.args.length)
    throw new UsageError(
      `${command.words.join(' ')} takes ${command.args.length === 0 ? 'no arguments' : command.args.join(' ')}; unexpected ${JSON.stringify(parsed.positionals[command.args.length])}`,
    );
  return { command, args: parsed.positionals, values: parsed.values };
}

const CONNECTION_HELP = [
  'Connection options (every command):',
  `  --url URL          management API (env LEVERET_MGMT_URL; default ${DEFAULT_URL})`,
  '  -u, --user NAME    (env LEVERET_MGMT_USER; default guest)',
  '  --password PASS    (env LEVERET_MGMT_PASSWORD; default guest)',
  '  --ca FILE          PEM certificate authority for an https:// URL',
  `  --timeout SECONDS  give up on an unanswered request (default ${DEFAULT_TIMEOUT_S})`,
  '  -p, --vhost VHOST  the virtual host (lists: only this one; others: default /)',
  '  -f, --format F     table (default), tsv (no header) or json',
];

const EXIT_HELP = [
  'Exit status: 0 done; 1 refused by the broker (its error and reason on stderr) or a file',
  'could not be read or written; 2 bad usage; 69 the management API could not be reached.',
];

function synopsis(c: Command): string {
  return `leveret ${[...c.words, ...c.args].join(' ')}`;
}

export function commandUsage(c: Command): string {
  const lines = [`Usage: ${synopsis(c)} [options]`, '', `  ${c.summary}`];
  if (c.flags !== undefined && c.flags.length > 0) lines.push('', 'Options:', ...c.flags.map((f) => `  ${f}`));
  return [...lines, '', ...CONNECTION_HELP, ''].join('\n');
}

/** Usage for `leveret VERB [KIND]`: the one command, all of the verb's, or everything. */
function verbUsage(verb: string | undefined, kind?: string): string {
  const cs = COMMANDS.filter((c) => c.words[0] === verb);
  if (cs.length === 0) return ctlUsage();
  const exact = cs.find((c) => c.words.length === 1 || c.words[1] === kind);
  if (exact !== undefined) return commandUsage(exact);
  const lines = ['Usage:', ...cs.map((c) => `  ${synopsis(c)}`), '', ...cs.map((c) => `  ${c.words.join(' ')}: ${c.summary}`)];
  return [...lines, '', ...CONNECTION_HELP, ''].join('\n');
}

/** The full list, for `leveret help`. */
export function ctlUsage(): string {
  return [
    'Usage: leveret [serve] [broker options]   start the broker (see leveret --help)',
    '       leveret COMMAND [arguments] [options]',
    '',
    'Commands (a client of the management HTTP API, with its users and permissions):',
    ...COMMANDS.map((c) => `  ${synopsis(c)}`),
    '',
    '`leveret help COMMAND` or `leveret COMMAND --help` describes one.',
    '',
    ...CONNECTION_HELP,
    '',
    ...EXIT_HELP,
    '',
  ].join('\n');
}

/** A few lines for the broker's --help, pointing at the commands. */
export function ctlSummary(): string {
  return [
    '',
    'Commands for operators (run `leveret help` for the full list):',
    '  leveret serve [options]        start the broker (the same as no command)',
    '  leveret status                 version, node, uptime, listeners, totals, rates, alarms',
    `  leveret list KIND [COLUMN...]  ${[...new Set(COMMANDS.filter((c) => c.words[0] === 'list').map((c) => c.words[1]))].join('|')}`,
    '  leveret purge|delete|declare|add|set|close ...   change objects through the management API',
    '  leveret export|import definitions FILE',
    '',
  ].join('\n');
}
