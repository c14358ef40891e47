import pino from 'pino';

export type Logger = pino.Logger;

export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LogOptions {
  level: string;
  format: LogFormat;
  /** append to this file instead of stdout; '' for stdout */
  file: string;
}

/** The logger and what the process needs to manage where its lines go. */
export interface LogOutput {
  logger: Logger;
  /** 'json' or 'pretty': what was chosen (auto resolved, pretty falls back when pino-pretty is missing) */
  format: 'json' | 'pretty';
  /** Opens the log file again by its path (after logrotate moved it); nothing to do on stdout. */
  reopen(): void;
}

/** pino-pretty's synchronous formatter: one JSON line in, one human line out. */
type Prettifier = (line: string) => string;

/**
 * JSON lines by default, for machines; human lines when asked, or on a terminal when the
 * format is auto. pino-pretty is an optional dependency (a production image may lack it):
 * without it the lines stay JSON and nothing is said, as a log line about logging would
 * itself be in the wrong format.
 */
export function createLogOutput(o: LogOptions): LogOutput {
  const toFile = o.file !== '';
  const wantPretty = o.format === 'pretty' || (o.format === 'auto' && !toFile && process.stdout.isTTY === true);
  const prettify = wantPretty ? loadPrettifier(!toFile && process.stdout.isTTY === true) : null;
  // append: a restart (or a second process) must not wipe what is there. sync: a line is
  // written when logged, so a fatal line just before exit is kept, and a stdout whose reader
  // has gone (EPIPE) cannot hang the exit (sonic-boom's flush at exit retries such a write
  // forever); there are few lines (none per message), so writing each one costs nothing.
  const destination = pino.destination({ dest: toFile ? o.file : 1, append: true, sync: true, mkdir: toFile });
  const stream = prettify === null ? destination : { write: (line: string) => destination.write(prettify(line)) };
  const logger = pino({ level: o.level }, stream);
  return {
    logger,
    format: prettify === null ? 'json' : 'pretty',
    reopen: () => {
      if (toFile) destination.reopen();
    },
  };
}

/** JSON lines on stdout (tests, tools that need no options). */
export function createLogger(level: string): Logger {
  return createLogOutput({ level, format: 'json', file: '' }).logger;
}

function loadPrettifier(colorize: boolean): Prettifier | null {
  let mod: { prettyFactory(options: Record<string, unknown>): Prettifier };
  try {
    // Loaded only when wanted: the JSON path never pays for it, and its absence is not an error.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('pino-pretty') as typeof mod;
  } catch {
    return null;
  }
  const pretty = mod.prettyFactory({ colorize, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'pid,hostname' });
  return (line) => pretty(line);
}
