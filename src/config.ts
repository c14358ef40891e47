/**
 * Broker settings. SCHEMA below declares each setting once; its command-line flag,
 * environment variable and config-file key are derived from the name, so adding a
 * setting is one entry. Precedence: flag > environment > config file > default.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDiskFreeLimit, parseMemoryWatermark, type ResourceLimit } from './resource-limits';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Thrown by loadConfig for --help / --version; the caller prints `text` and exits 0. */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
  constructor(readonly text: string) {
    super('help requested');
  }
}

export class VersionRequested extends Error {
  override name = 'VersionRequested';
  constructor(readonly text: string) {
    super('version requested');
  }
}

interface Setting<T> {
  description: string;
  default: T;
  /** Shown in usage after the flag, e.g. "<int>". */
  argName: string;
  /** Constraint shown in usage, e.g. "0-65535". */
  constraint?: string;
  /** Kept out of logs. */
  secret?: boolean;
  /** Parses a flag or environment value; returns an error message on failure. */
  fromText(raw: string): T | Invalid;
  /** Validates a value from the JSON config file. */
  fromJson(value: unknown): T | Invalid;
}

class Invalid {
  constructor(readonly message: string) {}
}

interface IntOptions {
  default: number;
  min: number;
  max: number;
  description: string;
}

function int(o: IntOptions): Setting<number> {
  const range = `an integer from ${o.min} to ${o.max}`;
  const check = (n: number, shown: string): number | Invalid =>
    Number.isSafeInteger(n) && n >= o.min && n <= o.max ? n : new Invalid(`must be ${range}, got ${shown}`);
  return {
    description: o.description,
    default: o.default,
    argName: '<int>',
    constraint: `${o.min}-${o.max}`,
    // Strict digits only: Number() would accept '', ' 1', '1e3', '0x10'.
    fromText: (raw) =>
      /^-?\d+$/.test(raw) ? check(Number(raw), JSON.stringify(raw)) : new Invalid(`must be ${range}, got ${JSON.stringify(raw)}`),
    fromJson: (v) => (typeof v === 'number' ? check(v, String(v)) : new Invalid(`must be ${range}, got ${JSON.stringify(v)}`)),
  };
}

function str(o: { default: string; description: string; secret?: boolean; argName?: string }): Setting<string> {
  const check = (v: unknown): string | Invalid =>
    typeof v === 'string' && v !== '' ? v : new Invalid(`must be a non-empty string, got ${JSON.stringify(v)}`);
  return {
    description: o.description,
    default: o.default,
    argName: o.argName ?? '<string>',
    secret: o.secret,
    fromText: check,
    fromJson: check,
  };
}

function oneOf<const V extends readonly string[]>(values: V, o: { default: V[number]; description: string }): Setting<V[number]> {
  const check = (v: unknown): V[number] | Invalid =>
    typeof v === 'string' && values.includes(v) ? v : new Invalid(`must be one of ${values.join(', ')}; got ${JSON.stringify(v)}`);
  return {
    description: o.description,
    default: o.default,
    argName: `<${values.join('|')}>`,
    fromText: check,
    fromJson: check,
  };
}

/** Comma-separated on the command line and in the environment; an empty value is an empty list. */
function list(o: { default: string[]; description: string }): Setting<string[]> {
  return {
    description: o.description,
    default: o.default,
    argName: '<a,b,...>',
    fromText: (raw) =>
      raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    fromJson: (v) =>
      Array.isArray(v) && v.every((s) => typeof s === 'string')
        ? [...v]
        : new Invalid(`must be an array of strings, got ${JSON.stringify(v)}`),
  };
}

/** "true" or "false" on the command line and in the environment; a JSON boolean in the file. */
function bool(o: { default: boolean; description: string }): Setting<boolean> {
  return {
    description: o.description,
    default: o.default,
    argName: '<true|false>',
    fromText: (raw) => (raw === 'true' ? true : raw === 'false' ? false : new Invalid(`must be true or false, got ${JSON.stringify(raw)}`)),
    fromJson: (v) => (typeof v === 'boolean' ? v : new Invalid(`must be true or false, got ${JSON.stringify(v)}`)),
  };
}

/** A resource limit (see resource-limits.ts), kept as written and checked here. */
function resourceLimit(
  parse: (t: string) => ResourceLimit | string,
  o: { default: string; description: string; argName: string },
): Setting<string> {
  const check = (v: unknown): string | Invalid => {
    if (typeof v === 'number') v = String(v);
    if (typeof v !== 'string') return new Invalid(`must be a string, got ${JSON.stringify(v)}`);
    const r = parse(v);
    return typeof r === 'string' ? new Invalid(`${r}; got ${JSON.stringify(v)}`) : v;
  };
  return { description: o.description, default: o.default, argName: o.argName, fromText: check, fromJson: check };
}

/**
 * `--cluster-etcd`: etcd endpoints, a comma list (an array in the config file); empty means a
 * single node. The cluster code is required only when a value is given, so a single-node
 * broker loads nothing from src/cluster.
 */
function etcdEndpoints(o: { description: string }): Setting<string[]> {
  const check = (entries: string[]): string[] | Invalid => {
    if (entries.every((e) => e.trim() === '')) return [];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parseEtcdEndpoints } = require('./cluster/endpoints') as typeof import('./cluster/endpoints');
    try {
      parseEtcdEndpoints(entries);
    } catch (err) {
      return new Invalid(`must list etcd endpoints as http://host:port[,http://host:port...]: ${(err as Error).message}`);
    }
    return entries.map((e) => e.trim());
  };
  return {
    description: o.description,
    default: [],
    argName: '<url,url,...>',
    fromText: (raw) => check(raw.split(',')),
    fromJson: (v) =>
      typeof v === 'string'
        ? check(v.split(','))
        : Array.isArray(v) && v.every((e) => typeof e === 'string')
          ? check(v)
          : new Invalid(`must be a comma list or an array of http://host:port strings, got ${JSON.stringify(v)}`),
  };
}

/** A name that becomes an etcd key segment (cluster name): checked by src/cluster's rule. */
function clusterName(o: { default: string; description: string }): Setting<string> {
  const check = (v: unknown): string | Invalid => {
    if (typeof v !== 'string') return new Invalid(`must be a string, got ${JSON.stringify(v)}`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { checkName } = require('./cluster/keys') as typeof import('./cluster/keys');
    try {
      checkName('cluster name', v);
    } catch (err) {
      return new Invalid(`must be a valid name (${(err as Error).message})`);
    }
    return v;
  };
  return { description: o.description, default: o.default, argName: '<name>', fromText: check, fromJson: check };
}

/** pino's levels, most severe first; 'silent' logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const SCHEMA = {
  port: int({ default: 5672, min: 0, max: 65535, description: 'TCP port for AMQP connections (0 picks a free port).' }),
  host: str({
    default: '0.0.0.0',
    argName: '<address>',
    description: "Address to listen on; '::' listens on IPv6 (and IPv4 where the OS allows).",
  }),
  httpPort: int({ default: 15672, min: 0, max: 65535, description: 'TCP port for the HTTP management API (0 picks a free port).' }),
  statsInterval: int({
    default: 5000,
    min: 100,
    max: 3600000,
    description: 'Milliseconds between the samples the management API computes message rates from.',
  }),
  nodeName: str({
    default: '',
    argName: '<name>',
    description:
      "Node name shown by the management API (default leveret@<hostname>); in cluster mode the node's name in etcd (default <hostname>; letters, digits, '.', '_', '-').",
  }),
  dataDir: str({ default: './data', argName: '<path>', description: 'Directory for durable state.' }),
  logLevel: oneOf(LOG_LEVELS, {
    default: 'info',
    description: 'Minimum level of log lines written; changeable while running (PUT /api/log-level).',
  }),
  logFormat: oneOf(['auto', 'json', 'pretty'] as const, {
    default: 'auto',
    description: 'Log lines as JSON, or pretty for a person (needs the optional pino-pretty); auto: pretty on a terminal, JSON otherwise.',
  }),
  logFile: str({
    default: '',
    argName: '<path>',
    description: 'Append log lines to this file instead of stdout; reopened on SIGUSR1 (for logrotate).',
  }),
  heartbeat: int({ default: 60, min: 0, max: 65535, description: 'Heartbeat interval in seconds proposed to clients (0 disables).' }),
  frameMax: int({
    default: 131072,
    min: 4096,
    max: 4294967295,
    description: 'Largest frame in bytes the broker accepts, proposed to clients.',
  }),
  channelMax: int({ default: 2047, min: 1, max: 65535, description: 'Most channels per connection, proposed to clients.' }),
  // setTimeout cannot wait longer than 2^31-1 ms.
  handshakeTimeout: int({
    default: 10000,
    min: 1,
    max: 2147483647,
    description: 'Milliseconds a client may take from TCP connect to connection.open.',
  }),
  defaultUser: str({ default: 'guest', description: 'User created when no users exist yet.' }),
  defaultPass: str({ default: 'guest', secret: true, description: 'Password of the default user.' }),
  loopbackUsers: list({ default: ['guest'], description: 'Users that may only connect from a loopback address.' }),
  segmentSize: int({
    default: 8 * 1024 * 1024,
    min: 4096,
    max: 1024 * 1024 * 1024,
    description: 'Bytes after which a queue starts a new message segment file.',
  }),
  queueMemoryBudget: int({
    default: 8 * 1024 * 1024,
    min: 0,
    max: 2 ** 40,
    description: 'Bytes of messages a queue keeps in memory; the rest of its backlog waits on disk.',
  }),
  // TLS: the amqps and HTTPS listeners run when tlsCert and tlsKey are both given (RabbitMQ's ssl_options).
  tlsPort: int({
    default: 5671,
    min: -1,
    max: 65535,
    description: 'TCP port for AMQP over TLS (amqps) when --tls-cert and --tls-key are given (0 picks a free port, -1 turns it off).',
  }),
  tlsCert: str({
    default: '',
    argName: '<path>',
    description: "PEM file with the server's certificate (and its chain); with --tls-key it turns TLS on. Reloaded on SIGHUP.",
  }),
  tlsKey: str({ default: '', argName: '<path>', description: "PEM file with the server certificate's private key. Reloaded on SIGHUP." }),
  tlsCa: str({
    default: '',
    argName: '<path>',
    description: 'PEM bundle of the CAs that client certificates must chain to (default: the system CAs). Reloaded on SIGHUP.',
  }),
  tlsPassphrase: str({ default: '', secret: true, description: 'Passphrase of an encrypted --tls-key.' }),
  tlsVerify: oneOf(['verify_none', 'verify_peer'] as const, {
    default: 'verify_none',
    description:
      "verify_peer asks clients for a certificate and refuses one that does not chain to --tls-ca (RabbitMQ's ssl_options.verify).",
  }),
  tlsFailIfNoPeerCert: bool({ default: false, description: 'With verify_peer, also refuse clients that present no certificate.' }),
  tlsCertLoginFrom: oneOf(['common_name', 'distinguished_name'] as const, {
    default: 'common_name',
    description:
      "What names the user of an EXTERNAL login: the client certificate's CN, or its whole subject in RFC 4514 form (RabbitMQ's ssl_cert_login_from).",
  }),
  httpsPort: int({
    default: 15671,
    min: -1,
    max: 65535,
    description:
      "TCP port for the management API over HTTPS, with the TLS certificate (RabbitMQ's management.ssl.port; 0 picks a free port, -1 turns it off).",
  }),
  shutdownTimeout: int({
    default: 10000,
    min: 1,
    max: 2147483647,
    description:
      'Milliseconds a stop (SIGTERM, SIGINT) may take to close clients and flush the store before the process exits anyway (code 1).',
  }),
  maxMessageSize: int({
    default: 128 * 1024 * 1024,
    min: 0,
    max: 512 * 1024 * 1024,
    description:
      "Largest message body in bytes a publisher may send (RabbitMQ's max_message_size); a larger one closes the channel with 406.",
  }),
  maxConnections: int({
    default: 0,
    min: 0,
    max: 2147483647,
    description: "Most client connections the node keeps open (RabbitMQ's connection_max); 0: no limit.",
  }),
  // setTimeout cannot wait longer than 2^31-1 ms.
  consumerTimeout: int({
    default: 1800000,
    min: 0,
    max: 2147483647,
    description:
      "Milliseconds a delivery may stay unacknowledged before its channel is closed with 406 (RabbitMQ's consumer_timeout); 0: never.",
  }),
  vmMemoryHighWatermark: resourceLimit(parseMemoryWatermark, {
    default: '0.4',
    argName: '<fraction|amount>',
    description:
      "Memory use (RSS) above which publishers are blocked: a fraction of the machine's (or cgroup's) memory, or an amount such as 512MB.",
  }),
  diskFreeLimit: resourceLimit(parseDiskFreeLimit, {
    default: '50MB',
    argName: '<amount|mem_relative:N>',
    description:
      "Free space on the data directory's disk below which publishers are blocked: an amount such as 1GB, or mem_relative:1.0 (a multiple of memory).",
  }),
  // Cluster mode (issue 15, experimental): only with --cluster-etcd; see docs/cluster.md.
  clusterEtcd: etcdEndpoints({
    description:
      'etcd endpoints (http://host:port, comma-separated) of a cluster to join; without them Leveret is a single node (experimental).',
  }),
  clusterName: clusterName({
    default: 'leveret',
    description: 'Name of the cluster in etcd (its keys live under /leveret/<name>/); nodes of one cluster share it.',
  }),
  advertiseHost: str({
    default: '',
    argName: '<host>',
    description: 'Host other cluster nodes reach this one at (default: --host, or the hostname when --host is 0.0.0.0 or ::).',
  }),
  replicationPort: int({
    default: 5679,
    min: 0,
    max: 65535,
    description: "TCP port the cluster leader serves followers' replication on (0 picks a free port at start).",
  }),
  minIsr: int({
    default: 1,
    min: 0,
    max: 255,
    description: 'In-sync followers besides the leader that must hold a persistent message before it is confirmed (cluster mode).',
  }),
  replicationMaxLag: int({
    default: 10,
    min: 1,
    max: 3600,
    description:
      'Seconds a follower may go without acking before the leader drops it from the in-sync replicas (cluster mode); confirms wait for every in-sync follower until then.',
  }),
  clusterLeaseTtl: int({
    default: 5,
    min: 1,
    max: 3600,
    description:
      'Seconds of the etcd lease: a leader cut off from etcd this long stops serving (etcd raises values below its minimum, about 2).',
  }),
  clusterSecret: str({
    default: '',
    secret: true,
    description:
      "Shared secret authenticating replication between nodes (default: the cluster's 'secret' key in etcd, made by the first leader).",
  }),
} satisfies Record<string, Setting<unknown>>;

type Schema = typeof SCHEMA;
type SettingName = keyof Schema;
type ConfigShape = { [K in SettingName]: Schema[K] extends Setting<infer T> ? T : never };

// An interface (not a type alias) so editors show `Config` rather than the mapped type.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Config extends ConfigShape {}

export interface SettingInfo {
  name: SettingName;
  flag: string;
  env: string;
  key: string;
  setting: Setting<unknown>;
}

const toKebab = (name: string) => name.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Every setting with its derived names, in declaration order. */
export const SETTINGS: readonly SettingInfo[] = (Object.keys(SCHEMA) as SettingName[]).map((name) => ({
  name,
  flag: '--' + toKebab(name),
  env: 'LEVERET_' + toKebab(name).replace(/-/g, '_').toUpperCase(),
  key: name,
  setting: SCHEMA[name],
}));

const CONFIG_FLAG = '--config';
const CONFIG_ENV = 'LEVERET_CONFIG';

export function defaultConfig(): Config {
  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) out[s.name] = structuredClone(s.setting.default);
  return out as unknown as Config;
}

/** The config with secret values masked, for logging. */
export function redactConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const s of SETTINGS) if (s.setting.secret) out[s.name] = '***';
  return out;
}

export function version(): string {
  // package.json sits one level above both src/ and dist/.
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Builds the configuration from command-line arguments (without node and script),
 * the environment, and the JSON file named by --config or LEVERET_CONFIG.
 * Throws ConfigError on bad input, HelpRequested / VersionRequested for --help / --version.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const flags = parseFlags(argv);
  if (flags.help) throw new HelpRequested(usage());
  if (flags.version) throw new VersionRequested(`leveret ${version()}\n`);

  const configPath = flags.config ?? env[CONFIG_ENV];
  const file = configPath !== undefined ? readConfigFile(configPath) : {};

  const config = defaultConfig() as unknown as Record<string, unknown>;
  for (const s of SETTINGS) {
    const flagValue = flags.values.get(s.name);
    const envValue = env[s.env];
    let value: unknown;
    let source: string;
    if (flagValue !== undefined) {
      value = s.setting.fromText(flagValue);
      source = s.flag;
    } else if (envValue !== undefined) {
      value = s.setting.fromText(envValue);
      source = `environment variable ${s.env}`;
    } else if (Object.hasOwn(file, s.key)) {
      value = s.setting.fromJson(file[s.key]);
      source = `config file ${configPath}: key "${s.key}"`;
    } else {
      continue;
    }
    if (value instanceof Invalid) throw new ConfigError(`${source} ${value.message}`);
    config[s.name] = value;
  }
  const out = config as unknown as Config;
  if (out.clusterEtcd.length > 0) checkClusterMode(out);
  return out;
}

/** In cluster mode the node name becomes an etcd key segment: it must pass the cluster's rule. */
function checkClusterMode(config: Config): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { clusterNodeName } = require('./cluster/cluster-settings') as typeof import('./cluster/cluster-settings');
  try {
    clusterNodeName(config);
  } catch (err) {
    throw new ConfigError(`--node-name in cluster mode: ${(err as Error).message}`);
  }
}

interface ParsedFlags {
  help: boolean;
  version: boolean;
  config?: string;
  values: Map<SettingName, string>;
}

function parseFlags(argv: string[]): ParsedFlags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  };
  for (const s of SETTINGS) options[s.flag.slice(2)] = { type: 'string' };

  let values: Record<string, string | boolean | undefined>;
  try {
    // Strict mode already rejects unknown flags, missing values and positionals; repeated flags: last wins.
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      // Node's wording starts with a capital and may span lines; fit it into one "leveret: ..." line.
      const message = (err as Error).message.replace(/\s*\n\s*/g, ' ');
      throw new ConfigError(`${message[0].toLowerCase()}${message.slice(1)} (see --help)`);
    }
    throw err;
  }

  const out: ParsedFlags = {
    help: values.help === true,
    version: values.version === true,
    config: values.config as string | undefined,
    values: new Map(),
  };
  for (const s of SETTINGS) {
    const v = values[s.flag.slice(2)];
    if (typeof v === 'string') out.values.set(s.name, v);
  }
  return out;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
};

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = (e.code && READ_ERRORS[e.code]) ?? e.message;
    throw new ConfigError(`cannot read config file ${path}: ${reason}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must contain a JSON object`);
  }
  const known = new Set(SETTINGS.map((s) => s.key));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      throw new ConfigError(`config file ${path}: unknown key "${key}" (known keys: ${[...known].join(', ')})`);
    }
  }
  return parsed as Record<string, unknown>;
}

export function usage(): string {
  const lines = [
    'Usage: leveret [options]',
    '',
    'Every setting can be given as a command-line flag (--name value or --name=value),',
    'an environment variable, or a key in a JSON config file.',
    'Precedence: flag > environment > config file > default.',
    '',
    'Options:',
    `  ${CONFIG_FLAG} <path>   (env ${CONFIG_ENV})`,
    '      JSON config file: an object whose keys are the setting keys below.',
    '  -h, --help',
    '      Print this help and exit.',
    '  --version',
    '      Print the version and exit.',
    '',
    'Settings:',
  ];
  for (const s of SETTINGS) {
    const { setting } = s;
    const def = Array.isArray(setting.default) ? setting.default.join(',') : String(setting.default);
    const range = setting.constraint ? `range ${setting.constraint}, ` : '';
    lines.push(`  ${s.flag} ${setting.argName}   (env ${s.env}, key "${s.key}")`);
    lines.push(`      ${setting.description} [${range}default: ${def === '' ? '(none)' : def}]`);
  }
  return lines.join('\n') + '\n';
}
