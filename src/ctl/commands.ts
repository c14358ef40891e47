// The operator commands: each is a few calls to the management API. RabbitMQ's
// rabbitmqctl and rabbitmqadmin name what they do; the API paths are RabbitMQ's /api.
import { readFileSync, writeFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { seg, type Client } from './client';
import { defaultColumns, LISTINGS } from './listings';
import { readStatus, renderStatus } from './status';
import { render, type Format } from './table';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** What a command runs with: the parsed flags and a way to speak. */
export interface Context {
  client: Client;
  format: Format;
  /** --vhost as given; commands that need one use `vhostOr()`. */
  vhost: string | undefined;
  values: Values;
  out(text: string): void;
  readInput(file: string): string;
  writeOutput(file: string, text: string): void;
}

/** The operation could not be done for a reason of the operator's making (a bad file, a bad JSON argument). */
export class Failed extends Error {
  override name = 'Failed';
}

/** The arguments do not make a valid command; exits 2 with the command's usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Command {
  /** The words that name it: ['status'] or ['list', 'queues']. */
  words: string[];
  /** Positional arguments as shown in usage; '[X]' is optional, 'X...' takes any number. */
  args: string[];
  summary: string;
  options?: Options;
  /** Extra usage lines for the command's own flags. */
  flags?: string[];
  run(ctx: Context, args: string[]): Promise<void>;
}

const DEFAULT_VHOST = '/';
const vhostOr = (ctx: Context): string => ctx.vhost ?? DEFAULT_VHOST;
const done = (ctx: Context, what: string): void =>
  ctx.out(ctx.format === 'json' ? JSON.stringify({ ok: true, done: what }) + '\n' : `${what}\n`);

function jsonArg(text: string | boolean | undefined, flag: string): Record<string, unknown> | undefined {
  if (typeof text !== 'string') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UsageError(`${flag} must be a JSON object, got ${JSON.stringify(text)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`${flag} must be a JSON object, got ${text}`);
  return v as Record<string, unknown>;
}

const listCommands: Command[] = Object.entries(LISTINGS).map(([kind, listing]) => ({
  words: ['list', kind],
  args: ['[COLUMN...]'],
  summary: `${listing.summary}; default columns: ${listing.columns.join(' ')}`,
  async run(ctx, columns) {
    if (ctx.vhost !== undefined && listing.inVhost === undefined) throw new UsageError(`${kind} belong to no virtual host: drop --vhost`);
    const path = ctx.vhost === undefined ? listing.all : listing.inVhost!(ctx.vhost);
    const rows = await ctx.client.get(path);
    if (!Array.isArray(rows)) throw new Failed(`${path} did not answer with a list`);
    ctx.out(render(rows, columns.length > 0 ? columns : defaultColumns(listing, ctx.vhost), ctx.format));
  },
}));

/** DELETE /api/{kind}/{vhost}/{name}, or /api/{kind}/{name} for objects outside vhosts. */
function deleteCommand(
  kind: string,
  inVhost: boolean,
  options: Options = {},
  flags: string[] = [],
  query: (v: Values) => string = () => '',
): Command {
  const singular = kind.replace(/s$/, '').replace(/ie$/, 'y');
  return {
    words: ['delete', singular],
    args: ['NAME'],
    summary: `delete a ${singular}${inVhost ? ' (in --vhost, default /)' : ''}`,
    options,
    flags,
    async run(ctx, [name]) {
      const path = inVhost ? `/api/${kind}/${seg(vhostOr(ctx))}/${seg(name)}` : `/api/${kind}/${seg(name)}`;
      await ctx.client.delete(path + query(ctx.values));
      done(ctx, `deleted ${singular} ${JSON.stringify(name)}${inVhost ? ` in vhost ${JSON.stringify(vhostOr(ctx))}` : ''}`);
    },
  };
}

const ifFlags =
  (names: string[]) =>
  (v: Values): string => {
    const set = names.filter((n) => v[n] === true).map((n) => `${n}=true`);
    return set.length > 0 ? `?${set.join('&')}` : '';
  };

export const COMMANDS: Command[] = [
  {
    words: ['status'],
    args: [],
    summary: 'version, node, uptime, listeners, object totals, message rates, alarms',
    async run(ctx) {
      ctx.out(renderStatus(await readStatus(ctx.client), ctx.format));
    },
  },
  ...listCommands,
  {
    words: ['purge', 'queue'],
    args: ['NAME'],
    summary: 'remove the ready messages of a queue',
    async run(ctx, [name]) {
      await ctx.client.delete(`/api/queues/${seg(vhostOr(ctx))}/${seg(name)}/contents`);
      done(ctx, `purged queue ${JSON.stringify(name)} in vhost ${JSON.stringify(vhostOr(ctx))}`);
    },
  },
  deleteCommand(
    'queues',
    true,
    { 'if-empty': { type: 'boolean' }, 'if-unused': { type: 'boolean' } },
    ['--if-empty   refuse if the queue has messages', '--if-unused  refuse if the queue has consumers'],
    ifFlags(['if-empty', 'if-unused']),
  ),
  deleteCommand(
    'exchanges',
    true,
    { 'if-unused': { type: 'boolean' } },
    ['--if-unused  refuse if the exchange has bindings'],
    ifFlags(['if-unused']),
  ),
  deleteCommand('users', false),
  deleteCommand('vhosts', false),
  deleteCommand('policies', true),
  {
    words: ['declare', 'queue'],
    args: ['NAME'],
    summary: 'declare a queue (durable unless --transient)',
    options: {
      transient: { type: 'boolean' },
      'auto-delete': { type: 'boolean' },
      type: { type: 'string' },
      arguments: { type: 'string' },
    },
    flags: [
      '--transient      not durable',
      '--auto-delete',
      '--type TYPE      queue type (x-queue-type), e.g. classic',
      '--arguments JSON  e.g. \'{"x-max-length":1000}\'',
    ],
    async run(ctx, [name]) {
      const args = jsonArg(ctx.values.arguments, '--arguments') ?? {};
      if (typeof ctx.values.type === 'string') args['x-queue-type'] = ctx.values.type;
      const body = { durable: ctx.values.transient !== true, auto_delete: ctx.values['auto-delete'] === true, arguments: args };
      await ctx.client.put(`/api/queues/${seg(vhostOr(ctx))}/${seg(name)}`, body);
      done(ctx, `declared queue ${JSON.stringify(name)} in vhost ${JSON.stringify(vhostOr(ctx))}`);
    },
  },
  {
    words: ['declare', 'exchange'],
    args: ['NAME'],
    summary: 'declare an exchange (durable unless --transient)',
    options: {
      type: { type: 'string' },
      transient: { type: 'boolean' },
      'auto-delete': { type: 'boolean' },
      internal: { type: 'boolean' },
      arguments: { type: 'string' },
    },
    flags: [
      '--type TYPE      direct (default), fanout, topic, headers',
      '--transient      not durable',
      '--auto-delete',
      '--internal',
      '--arguments JSON',
    ],
    async run(ctx, [name]) {
      const body = {
        type: typeof ctx.values.type === 'string' ? ctx.values.type : 'direct',
        durable: ctx.values.transient !== true,
        auto_delete: ctx.values['auto-delete'] === true,
        internal: ctx.values.internal === true,
        arguments: jsonArg(ctx.values.arguments, '--arguments') ?? {},
      };
      await ctx.client.put(`/api/exchanges/${seg(vhostOr(ctx))}/${seg(name)}`, body);
      done(ctx, `declared exchange ${JSON.stringify(name)} in vhost ${JSON.stringify(vhostOr(ctx))}`);
    },
  },
  {
    words: ['declare', 'binding'],
    args: ['SOURCE', 'DESTINATION'],
    summary: 'bind a queue (or with --destination-type exchange, an exchange) to an exchange',
    options: { 'routing-key': { type: 'string' }, 'destination-type': { type: 'string' }, arguments: { type: 'string' } },
    flags: ['--routing-key KEY', '--destination-type queue|exchange  (default queue)', '--arguments JSON'],
    async run(ctx, [source, destination]) {
      const type = ctx.values['destination-type'] ?? 'queue';
      if (type !== 'queue' && type !== 'exchange')
        throw new UsageError(`--destination-type must be queue or exchange, got ${JSON.stringify(type)}`);
      const body = { routing_key: ctx.values['routing-key'] ?? '', arguments: jsonArg(ctx.values.arguments, '--arguments') ?? {} };
      await ctx.client.post(`/api/bindings/${seg(vhostOr(ctx))}/e/${seg(source)}/${type[0]}/${seg(destination)}`, body);
      done(ctx, `bound ${type} ${JSON.stringify(destination)} to exchange ${JSON.stringify(source)}`);
    },
  },
  {
    words: ['export', 'definitions'],
    args: ['FILE'],
    summary: 'save users, vhosts, permissions, policies, queues, exchanges and bindings (FILE - for stdout; --vhost for one vhost)',
    async run(ctx, [file]) {
      const path = ctx.vhost === undefined ? '/api/definitions' : `/api/definitions/${seg(ctx.vhost)}`;
      const defs = await ctx.client.get(path);
      ctx.writeOutput(file, JSON.stringify(defs, null, 2) + '\n');
      if (file !== '-') done(ctx, `exported definitions to ${file}`);
    },
  },
  {
    words: ['import', 'definitions'],
    args: ['FILE'],
    summary: 'load definitions exported by Leveret or RabbitMQ (FILE - for stdin; --vhost into one vhost)',
    async run(ctx, [file]) {
      const text = ctx.readInput(file);
      let defs: unknown;
      try {
        defs = JSON.parse(text);
      } catch (err) {
        throw new Failed(`${file === '-' ? 'standard input' : file} is not JSON: ${(err as Error).message}`);
      }
      const path = ctx.vhost === undefined ? '/api/definitions' : `/api/definitions/${seg(ctx.vhost)}`;
      await ctx.client.post(path, defs);
      done(ctx, `imported definitions from ${file === '-' ? 'standard input' : file}`);
    },
  },
  {
    words: ['add', 'user'],
    args: ['NAME', 'PASSWORD'],
    summary: 'create a user, or change its password and tags',
    options: { tags: { type: 'string' } },
    flags: ['--tags T1,T2   e.g. administrator, monitoring, management (default none)'],
    async run(ctx, [name, password]) {
      const tags =
        typeof ctx.values.tags === 'string'
          ? ctx.values.tags
              .split(',')
              .map((t) => t.trim())
              .filter((t) => t !== '')
          : [];
      await ctx.client.put(`/api/users/${seg(name)}`, { password, tags: tags.join(',') });
      done(ctx, `added user ${JSON.stringify(name)}${tags.length > 0 ? ` with tags ${tags.join(',')}` : ''}`);
    },
  },
  {
    words: ['add', 'vhost'],
    args: ['NAME'],
    summary: 'create a virtual host',
    options: { description: { type: 'string' } },
    flags: ['--description TEXT'],
    async run(ctx, [name]) {
      const body = typeof ctx.values.description === 'string' ? { description: ctx.values.description } : {};
      await ctx.client.put(`/api/vhosts/${seg(name)}`, body);
      done(ctx, `added vhost ${JSON.stringify(name)}`);
    },
  },
  {
    words: ['set', 'permissions'],
    args: ['USER', 'CONFIGURE', 'WRITE', 'READ'],
    summary: "set a user's permission patterns in --vhost (default /), e.g. '.*' '.*' '.*'",
    async run(ctx, [user, configure, write, read]) {
      await ctx.client.put(`/api/permissions/${seg(vhostOr(ctx))}/${seg(user)}`, { configure, write, read });
      done(ctx, `set permissions of user ${JSON.stringify(user)} in vhost ${JSON.stringify(vhostOr(ctx))}`);
    },
  },
  {
    words: ['set', 'policy'],
    args: ['NAME', 'PATTERN', 'DEFINITION'],
    summary: 'set a policy in --vhost (default /); DEFINITION is JSON, e.g. \'{"max-length":1000}\'',
    options: { priority: { type: 'string' }, 'apply-to': { type: 'string' } },
    flags: ['--priority N', '--apply-to queues|exchanges|all  (default all)'],
    async run(ctx, [name, pattern, definition]) {
      const priority = ctx.values.priority;
      if (priority !== undefined && !/^-?\d+$/.test(String(priority)))
        throw new UsageError(`--priority must be an integer, got ${JSON.stringify(priority)}`);
      const body = {
        pattern,
        definition: jsonArg(definition, 'DEFINITION'),
        priority: priority === undefined ? 0 : Number(priority),
        'apply-to': ctx.values['apply-to'] ?? 'all',
      };
      await ctx.client.put(`/api/policies/${seg(vhostOr(ctx))}/${seg(name)}`, body);
      done(ctx, `set policy ${JSON.stringify(name)} in vhost ${JSON.stringify(vhostOr(ctx))}`);
    },
  },
  {
    // rabbitmqctl set_log_level; lasts until the broker stops.
    words: ['set', 'log_level'],
    args: ['LEVEL'],
    summary: "change the broker's log level while it runs: fatal, error, warn, info, debug, trace or silent",
    async run(ctx, [level]) {
      await ctx.client.put('/api/log-level', { level });
      done(ctx, `set log level to ${JSON.stringify(level)}`);
    },
  },
  {
    words: ['close', 'connection'],
    args: ['NAME', '[REASON]'],
    summary: 'close a client connection (320 CONNECTION_FORCED, with REASON as its text)',
    async run(ctx, [name, reason]) {
      await ctx.client.delete(`/api/connections/${seg(name)}`, reason === undefined ? {} : { 'x-reason': reason });
      done(ctx, `closed connection ${JSON.stringify(name)}`);
    },
  },
];

/** Reads FILE, or standard input for '-'. */
export function readInputFile(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new Failed(`cannot read ${file}: ${(err as Error).message}`);
  }
}

export function writeOutputFile(file: string, text: string, stdout: (t: string) => void): void {
  if (file === '-') return stdout(text);
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new Failed(`cannot write ${file}: ${(err as Error).message}`);
  }
}
