import { AmqpError } from '../protocol/errors';
import { ACCESS_REFUSED } from '../protocol/constants';

export type Permission = 'configure' | 'write' | 'read';
export type ResourceKind = 'queue' | 'exchange';

/** Who is asking: a user record or just its name (the HTTP API knows names only). */
type UserRef = { readonly name: string } | string;
const nameOf = (u: UserRef): string => (typeof u === 'string' ? u : u.name);

/** RabbitMQ's permission triple for one user in one vhost, as its HTTP API shows it. */
export interface UserPermission {
  readonly user: string;
  readonly vhost: string;
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

/** RabbitMQ's topic permission: regexes on routing keys for one topic exchange. */
export interface TopicPermission {
  readonly user: string;
  readonly vhost: string;
  readonly exchange: string;
  readonly write: string;
  readonly read: string;
}

/** What a definitions sink records; `null` means the entry was cleared. */
export type PermissionChange =
  | { readonly kind: 'permission'; readonly user: string; readonly vhost: string; readonly value: UserPermission | null }
  | {
      readonly kind: 'topic-permission';
      readonly user: string;
      readonly vhost: string;
      readonly exchange: string;
      readonly value: TopicPermission | null;
    };

/** Full rights: what RabbitMQ gives its default user on `/`. */
export const FULL_ACCESS = { configure: '.*', write: '.*', read: '.*' } as const;

/**
 * A permission regex as RabbitMQ applies it: `re:run(Name, Regex)`, an unanchored search
 * unless the pattern anchors itself, and the empty pattern stands for `^$` (which matches
 * no resource: names are never empty once the default exchange is called amq.default).
 * JavaScript's RegExp without flags is the closest match to PCRE's defaults; they differ
 * on exotic syntax and because PCRE runs on the name's UTF-8 bytes (`.` is one byte).
 */
export function compilePermissionRegex(pattern: string): RegExp {
  return new RegExp(pattern === '' ? '^$' : pattern);
}

/** The error text RabbitMQ gives for a pattern that does not compile, or null. */
export function regexError(pattern: string): string | null {
  try {
    compilePermissionRegex(pattern);
    return null;
  } catch (err) {
    return `Invalid regexp: ${(err as Error).message}`;
  }
}

/**
 * RabbitMQ expands `{username}` and `{vhost}` in a topic permission (literally, not
 * regex-escaped) before matching the routing key.
 */
export function expandTopicVariables(pattern: string, user: string, vhost: string): string {
  return pattern.split('{username}').join(user).split('{vhost}').join(vhost);
}

/** The default exchange's name for permission purposes, as rabbit_access_control renames it. */
export const permissionName = (kind: ResourceKind, name: string): string => (kind === 'exchange' && name === '' ? 'amq.default' : name);

export function accessRefused(kind: ResourceKind, name: string, vhost: string, user: string): AmqpError {
  return new AmqpError(ACCESS_REFUSED, `access to ${kind} '${permissionName(kind, name)}' in vhost '${vhost}' refused for user '${user}'`);
}

/** RabbitMQ 3.10's wording: the permission (read/write) is not named. */
export function topicAccessRefused(exchange: string, routingKey: string, vhost: string, user: string): AmqpError {
  return new AmqpError(
    ACCESS_REFUSED,
    `access to topic '${routingKey}' in exchange '${exchange}' in vhost '${vhost}' refused for user '${user}'`,
  );
}

interface Grant {
  readonly value: UserPermission;
  readonly configure: RegExp;
  readonly write: RegExp;
  readonly read: RegExp;
}

interface TopicGrant {
  readonly value: TopicPermission;
  /** compiled with {username}/{vhost} expanded: both are fixed by the grant's key */
  readonly write: RegExp;
  readonly read: RegExp;
}

const key = (...parts: string[]): string => parts.join('\0');

/**
 * Per-vhost permissions (RabbitMQ's configure/write/read regexes) and topic permissions.
 * The model only: channels ask here through their own cache (permission-cache.ts), at the
 * points where RabbitMQ's channel asks; connection.open asks canAccessVhost.
 */
export class Permissions {
  private readonly grants = new Map<string, Grant>(); // vhost \0 user
  private readonly topics = new Map<string, TopicGrant>(); // vhost \0 user \0 exchange
  /** Told of every change, so that a definitions store can record it. */
  onChange: ((change: PermissionChange) => void) | null = null;

  // ---- user permissions --------------------------------------------------------------

  /** Sets (replaces) the triple; throws on a pattern that does not compile. */
  set(vhost: string, user: string, perms: { configure: string; write: string; read: string }): UserPermission {
    const value: UserPermission = { user, vhost, configure: perms.configure, write: perms.write, read: perms.read };
    const grant: Grant = {
      value,
      configure: compileChecked(perms.configure),
      write: compileChecked(perms.write),
      read: compileChecked(perms.read),
    };
    this.grants.set(key(vhost, user), grant);
    this.onChange?.({ kind: 'permission', user, vhost, value });
    return value;
  }

  /** Removes the triple (and so the access to the vhost); true if there was one. */
  clear(vhost: string, user: string): boolean {
    if (!this.grants.delete(key(vhost, user))) return false;
    this.onChange?.({ kind: 'permission', user, vhost, value: null });
    return true;
  }

  get(vhost: string, user: string): UserPermission | undefined {
    return this.grants.get(key(vhost, user))?.value;
  }

  /** Every triple, optionally only those of one vhost and/or one user. */
  list(filter: { vhost?: string; user?: string } = {}): UserPermission[] {
    return [...this.grants.values()].map((g) => g.value).filter((p) => matches(p, filter));
  }

  // ---- topic permissions -------------------------------------------------------------

  setTopic(vhost: string, user: string, exchange: string, perms: { write: string; read: string }): TopicPermission {
    // Validated with the variables left in, as RabbitMQ stores them.
    compileChecked(perms.write);
    compileChecked(perms.read);
    const value: TopicPermission = { user, vhost, exchange, write: perms.write, read: perms.read };
    const expanded = (pattern: string): RegExp => new RegExp(expandTopicVariables(pattern === '' ? '^$' : pattern, user, vhost));
    this.topics.set(key(vhost, user, exchange), { value, write: expanded(perms.write), read: expanded(perms.read) });
    this.onChange?.({ kind: 'topic-permission', user, vhost, exchange, value });
    return value;
  }

  /** Clears one exchange's topic permission, or all of the user's in the vhost (exchange undefined). */
  clearTopic(vhost: string, user: string, exchange?: string): number {
    const gone = this.listTopic({ vhost, user }).filter((t) => exchange === undefined || t.exchange === exchange);
    for (const t of gone) {
      this.topics.delete(key(vhost, user, t.exchange));
      this.onChange?.({ kind: 'topic-permission', user, vhost, exchange: t.exchange, value: null });
    }
    return gone.length;
  }

  listTopic(filter: { vhost?: string; user?: string } = {}): TopicPermission[] {
    return [...this.topics.values()].map((t) => t.value).filter((p) => matches(p, filter));
  }

  /** A deleted user or vhost takes its permissions with it, as in RabbitMQ. */
  forget(filter: { vhost?: string; user?: string }): void {
    for (const p of this.list(filter)) this.clear(p.vhost, p.user);
    for (const t of this.listTopic(filter)) this.clearTopic(t.vhost, t.user, t.exchange);
  }

  // ---- checks ------------------------------------------------------------------------

  /** RabbitMQ's check_vhost_access: any permission entry for the vhost lets the user in. */
  canAccessVhost(user: UserRef, vhost: string): boolean {
    return this.grants.has(key(vhost, nameOf(user)));
  }

  allows(user: UserRef, vhost: string, permission: Permission, kind: ResourceKind, name: string): boolean {
    const grant = this.grants.get(key(vhost, nameOf(user)));
    return grant !== undefined && grant[permission].test(permissionName(kind, name));
  }

  /** Throws RabbitMQ's 403 when the user may not `permission` the resource. */
  check(user: UserRef, vhost: string, permission: Permission, kind: ResourceKind, name: string): void {
    if (!this.allows(user, vhost, permission, kind, name)) throw accessRefused(kind, name, vhost, nameOf(user));
  }

  /** Whether a topic permission lets the routing key through; none for the exchange allows all. */
  allowsTopic(user: UserRef, vhost: string, permission: 'write' | 'read', exchange: string, routingKey: string): boolean {
    const t = this.topics.get(key(vhost, nameOf(user), exchange));
    return t === undefined || t[permission].test(routingKey);
  }

  checkTopic(user: UserRef, vhost: string, permission: 'write' | 'read', exchange: string, routingKey: string): void {
    if (!this.allowsTopic(user, vhost, permission, exchange, routingKey)) {
      throw topicAccessRefused(exchange, routingKey, vhost, nameOf(user));
    }
  }
}

function compileChecked(pattern: string): RegExp {
  const bad = regexError(pattern);
  if (bad !== null) throw new Error(bad);
  return compilePermissionRegex(pattern);
}

function matches(p: { vhost: string; user: string }, filter: { vhost?: string; user?: string }): boolean {
  return (filter.vhost === undefined || p.vhost === filter.vhost) && (filter.user === undefined || p.user === filter.user);
}
