import { fsOps } from './fs-ops';
import { storeTap } from './store-tap';
import { ioCounts } from './io-counters';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../logger';
import { Reader } from '../protocol/reader';
import { Writer } from '../protocol/writer';
import type { FieldTable } from '../protocol/types';

/**
 * Durable definitions, as an append-only log of JSON records, one per line behind its
 * crc32: `xxxxxxxx {"op":...}`. Declares and deletes append a record and fsync before
 * they are applied and answered; start-up replays the log and rewrites it compacted. Users carry no vhost: they belong to the broker.
 */
export type Definition =
  | { op: 'exchange'; vhost: string; name: string; type: string; autoDelete: boolean; internal: boolean; args: string }
  | { op: 'exchange.delete'; vhost: string; name: string }
  | { op: 'queue'; vhost: string; name: string; autoDelete: boolean; args: string }
  | { op: 'queue.delete'; vhost: string; name: string }
  | {
      op: 'policy';
      vhost: string;
      name: string;
      pattern: string;
      applyTo: 'queues' | 'exchanges' | 'all';
      priority: number;
      definition: Record<string, unknown>;
    }
  | { op: 'policy.delete'; vhost: string; name: string }
  | UserDefinition
  | { op: 'user.delete'; name: string }
  /** Written by compaction in place of the users when none is left (see DefinitionSet.seeded). */
  | { op: 'users.seeded' }
  | { op: 'permission'; vhost: string; user: string; configure: string; write: string; read: string }
  | { op: 'permission.delete'; vhost: string; user: string }
  | { op: 'topic-permission'; vhost: string; user: string; exchange: string; write: string; read: string }
  | { op: 'topic-permission.delete'; vhost: string; user: string; exchange: string }
  | VhostDefinition
  /** A vhost and everything in it (exchanges, queues, bindings, policies, permissions) goes. */
  | { op: 'vhost.delete'; name: string }
  /** Written by compaction in place of the vhosts when none is left (see DefinitionSet.vhostsSeeded). */
  | { op: 'vhosts.seeded' }
  /** A vhost's whole set of limits; an empty one clears them. */
  | { op: 'vhost-limits'; vhost: string; limits: Record<string, number> }
  /** A user's whole set of limits; an empty one clears them (and the user's deletion does). */
  | { op: 'user-limits'; user: string; limits: Record<string, number> }
  | BindingDefinition;

/** A virtual host with its metadata, as RabbitMQ keeps it. */
export interface VhostDefinition {
  op: 'vhost';
  name: string;
  description: string;
  tags: string[];
  /** null: not set (RabbitMQ's `undefined`) */
  defaultQueueType: string | null;
}

/** A user as RabbitMQ exports it: the salted password_hash and its hashing_algorithm, tags. */
export interface UserDefinition {
  op: 'user';
  name: string;
  passwordHash: string;
  hashingAlgorithm: string;
  tags: string[];
}

export interface BindingDefinition {
  op: 'bind' | 'unbind';
  vhost: string;
  source: string;
  kind: 'queue' | 'exchange';
  destination: string;
  key: string;
  args: string;
}

export function encodeArgs(t: FieldTable): string {
  const w = new Writer();
  w.table(t);
  return Buffer.concat(w.take()).toString('base64');
}

export function decodeArgs(s: string): FieldTable {
  return new Reader().reset(Buffer.from(s, 'base64')).table();
}

const bindingKey = (d: BindingDefinition): string => JSON.stringify([d.vhost, d.source, d.kind, d.destination, d.key, d.args]);

const nameKey = (vhost: string, name: string): string => JSON.stringify([vhost, name]);

/**
 * The current definitions: the log folded record by record, kept up to date as records
 * are appended so that the file can be rewritten compacted at any time.
 */
class DefinitionSet {
  private readonly exchanges = new Map<string, Definition>();
  private readonly queues = new Map<string, Definition>();
  private readonly bindings = new Map<string, BindingDefinition>();
  private readonly policies = new Map<string, Definition>();
  private readonly users = new Map<string, UserDefinition>();
  private readonly permissions = new Map<string, Definition>();
  private readonly topicPermissions = new Map<string, Definition>();
  private readonly vhostLimits = new Map<string, Definition>();
  private readonly userLimits = new Map<string, Definition>();
  /**
   * Users have been stored at some point. The broker creates its default user only on a
   * store that never had any, so an empty set of users must survive compaction as such.
   */
  private seeded = false;
  private readonly vhosts = new Map<string, VhostDefinition>();
  /**
   * Vhosts have been stored at some point: from then on a definition of a vhost that is not
   * there (deleted) is dropped, and `/` is not made again. A log written before vhosts were
   * stored has none: its vhosts are those its definitions name (the broker stores them).
   */
  private vhostsSeeded = false;

  /** A definition of something inside a vhost that was deleted is not kept. */
  private inDeletedVhost(d: Definition): boolean {
    return this.vhostsSeeded && 'vhost' in d && !this.vhosts.has(d.vhost);
  }

  apply(d: Definition): void {
    if (this.inDeletedVhost(d)) return;
    switch (d.op) {
      case 'vhost':
        this.vhosts.set(d.name, d);
        this.vhostsSeeded = true;
        break;
      case 'vhosts.seeded':
        this.vhostsSeeded = true;
        break;
      case 'vhost.delete':
        this.vhosts.delete(d.name);
        this.vhostsSeeded = true;
        for (const m of [
          this.exchanges,
          this.queues,
          this.bindings,
          this.policies,
          this.permissions,
          this.topicPermissions,
          this.vhostLimits,
        ] as Array<Map<string, Definition>>) {
          for (const [k, x] of m) if ('vhost' in x && x.vhost === d.name) m.delete(k);
        }
        break;
      case 'user':
        this.users.set(d.name, d);
        this.seeded = true;
        break;
      case 'user.delete':
        this.users.delete(d.name);
        this.userLimits.delete(d.name);
        break;
      case 'vhost-limits':
        if (Object.keys(d.limits).length === 0) this.vhostLimits.delete(d.vhost);
        else this.vhostLimits.set(d.vhost, d);
        break;
      case 'user-limits':
        if (Object.keys(d.limits).length === 0) this.userLimits.delete(d.user);
        else this.userLimits.set(d.user, d);
        break;
      case 'users.seeded':
        this.seeded = true;
        break;
      case 'permission':
        this.permissions.set(nameKey(d.vhost, d.user), d);
        break;
      case 'permission.delete':
        this.permissions.delete(nameKey(d.vhost, d.user));
        break;
      case 'topic-permission':
        this.topicPermissions.set(JSON.stringify([d.vhost, d.user, d.exchange]), d);
        break;
      case 'topic-permission.delete':
        this.topicPermissions.delete(JSON.stringify([d.vhost, d.user, d.exchange]));
        break;
      case 'exchange':
        this.exchanges.set(nameKey(d.vhost, d.name), d);
        break;
      case 'exchange.delete':
        this.exchanges.delete(nameKey(d.vhost, d.name));
        this.dropBindings((b) => b.vhost === d.vhost && (b.source === d.name || (b.kind === 'exchange' && b.destination === d.name)));
        break;
      case 'queue':
        this.queues.set(nameKey(d.vhost, d.name), d);
        break;
      case 'queue.delete':
        this.queues.delete(nameKey(d.vhost, d.name));
        this.dropBindings((b) => b.vhost === d.vhost && b.kind === 'queue' && b.destination === d.name);
        break;
      case 'policy':
        this.policies.set(nameKey(d.vhost, d.name), d);
        break;
      case 'policy.delete':
        this.policies.delete(nameKey(d.vhost, d.name));
        break;
      case 'bind':
        this.bindings.set(bindingKey(d), d);
        break;
      case 'unbind':
        this.bindings.delete(bindingKey(d));
        break;
    }
  }

  private dropBindings(matches: (b: BindingDefinition) => boolean): void {
    for (const [k, b] of this.bindings) if (matches(b)) this.bindings.delete(k);
  }

  /** Users, vhosts, their limits and permissions, then policies, so that queues and exchanges are rebuilt with them in force. */
  all(): Definition[] {
    const users: Definition[] = this.users.size > 0 ? [...this.users.values()] : this.seeded ? [{ op: 'users.seeded' }] : [];
    const vhosts: Definition[] = this.vhosts.size > 0 ? [...this.vhosts.values()] : this.vhostsSeeded ? [{ op: 'vhosts.seeded' }] : [];
    return [
      ...users,
      ...vhosts,
      ...this.userLimits.values(),
      ...this.vhostLimits.values(),
      ...this.permissions.values(),
      ...this.topicPermissions.values(),
      ...this.policies.values(),
      ...this.exchanges.values(),
      ...this.queues.values(),
      ...this.bindings.values(),
    ];
  }
}

export class DefinitionsLog {
  private fd = -1;
  readonly path: string;
  private readonly current = new DefinitionSet();
  /** Bytes of the file that hold whole records; a failed append is cut back to this. */
  private size = 0;
  /** The file ends in a torn record (kept because it could not be rewritten): start a new line. */
  private needsNewline = false;
  /** Why the start-up rewrite failed (the file then still holds every record ever appended). */
  compactionError: Error | null = null;
  /**
   * A corrupt record was followed by good ones: not a torn tail but damage, so the
   * definitions read may be missing something that still has files on disk.
   */
  damaged = false;

  constructor(
    dataDir: string,
    private readonly log: Logger,
  ) {
    this.path = join(dataDir, 'definitions.log');
  }

  /**
   * Replays the log into the current definitions (in a valid order) and compacts it. If
   * the compacted copy cannot be written (a full disk), the old file is kept as it is and
   * appended to; compactionError says why.
   */
  open(): Definition[] {
    if (fsOps.existsSync(this.path)) this.replay(fsOps.readFileSync(this.path, 'utf8'));
    try {
      this.rewrite();
    } catch (err) {
      this.compactionError = err as Error;
      this.log.warn({ err, file: this.path }, 'definitions log could not be compacted; appending to it as it is');
    }
    this.openForAppend();
    return this.current.all();
  }

  private replay(text: string): void {
    const lines = text.split('\n');
    let corruptAt = -1;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line === '') continue;
      const d = parseLine(line);
      if (d === null) {
        this.log.warn({ file: this.path, line: i + 1 }, 'torn or corrupt definition record ignored');
        if (corruptAt < 0) corruptAt = i;
        continue;
      }
      if (corruptAt >= 0) this.damaged = true;
      this.current.apply(d);
    }
  }

  private openForAppend(): void {
    // a+ rather than a: endsWithNewline reads the last byte back.
    this.fd = fsOps.openSync(this.path, 'a+');
    if (storeTap !== null) storeTap.opened(this.fd, this.path, false);
    this.size = fsOps.fstatSync(this.fd).size;
    this.needsNewline = this.size > 0 && !endsWithNewline(this.fd, this.size);
  }

  /**
   * Appends a record and makes it durable; throws if it could not be, leaving the file
   * as it was (a partly written record is cut off again) and the definitions unchanged.
   */
  append(d: Definition): void {
    const data = Buffer.from((this.needsNewline ? '\n' : '') + formatLine(d));
    try {
      writeFully(this.fd, data);
      fsOps.fdatasyncSync(this.fd);
      ioCounts.syncCount++;
      if (storeTap !== null) storeTap.wrote(this.fd, data, this.size);
    } catch (err) {
      this.cutBack();
      throw err;
    }
    this.size += data.length;
    this.needsNewline = false;
    this.current.apply(d);
  }

  /** Removes what a failed append left behind; if even that fails, the next record starts a new line. */
  private cutBack(): void {
    try {
      fsOps.ftruncateSync(this.fd, this.size);
    } catch {
      this.needsNewline = true;
    }
  }

  /** Rewrites the file to hold just the current definitions (also a probe that writes work). */
  compact(): void {
    this.rewrite();
    this.compactionError = null;
    if (this.fd >= 0) fsOps.closeSync(this.fd);
    this.fd = -1;
    this.openForAppend();
  }

  close(): void {
    if (this.fd >= 0) fsOps.closeSync(this.fd);
    this.fd = -1;
  }

  /** Replaces the file atomically: write aside, fsync, rename, fsync the directory. */
  private rewrite(): void {
    const tmp = this.path + '.tmp';
    try {
      const fd = fsOps.openSync(tmp, 'w');
      const data = Buffer.from(this.current.all().map(formatLine).join(''));
      try {
        writeFully(fd, data);
        fsOps.fsyncSync(fd);
      } finally {
        fsOps.closeSync(fd);
      }
      fsOps.renameSync(tmp, this.path);
      if (storeTap !== null) storeTap.replaced(this.path, data);
    } catch (err) {
      // A half-written copy must not take space the disk is short of.
      fsOps.rmSync(tmp, { force: true });
      throw err;
    }
    const dir = fsOps.openSync(dirname(this.path), 'r');
    try {
      fsOps.fsyncSync(dir);
    } finally {
      fsOps.closeSync(dir);
    }
  }
}

/** writeSync may write less than asked (a disk filling up mid-write): go on until all is written. */
function writeFully(fd: number, data: Buffer): void {
  for (let off = 0; off < data.length;) {
    const n = fsOps.writeSync(fd, data, off, data.length - off);
    ioCounts.writeCount++;
    ioCounts.writeBytes += n;
    off += n;
  }
}

function endsWithNewline(fd: number, size: number): boolean {
  const last = Buffer.alloc(1);
  fsOps.readSync(fd, last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

function formatLine(d: Definition): string {
  const json = JSON.stringify(d);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function parseLine(line: string): Definition | null {
  const json = line.slice(9);
  if (line[8] !== ' ' || crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return null;
  try {
    return JSON.parse(json) as Definition;
  } catch {
    return null;
  }
}
