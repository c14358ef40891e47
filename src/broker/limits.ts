/**
 * RabbitMQ's vhost limits (max-connections, max-queues) and user limits (max-connections,
 * max-channels): the values in force, and the open connections they are counted against.
 * A negative value, as in RabbitMQ, means no limit; 0 allows nothing.
 */
export const VHOST_LIMIT_NAMES: readonly string[] = ['max-connections', 'max-queues'];
export const USER_LIMIT_NAMES: readonly string[] = ['max-connections', 'max-channels'];

/** One vhost's or user's limits, name → value, in the order RabbitMQ shows them. */
export type LimitSet = Readonly<Record<string, number>>;

/** What a connection shows the limits: how many channels it has open. */
export interface LimitedConnection {
  readonly channelCount: number;
}

const NONE: LimitSet = Object.freeze({});

/** A set with one limit set: RabbitMQ lists a vhost's most recently set limit first. */
export function withVhostLimit(set: LimitSet, name: string, value: number): LimitSet {
  const out: Record<string, number> = { [name]: value };
  for (const [k, v] of Object.entries(set)) if (k !== name) out[k] = v;
  return out;
}

/** A set with one limit set: RabbitMQ lists a user's limits by name. */
export function withUserLimit(set: LimitSet, name: string, value: number): LimitSet {
  return sortedByName({ ...set, [name]: value });
}

export function sortedByName(set: LimitSet): LimitSet {
  return Object.fromEntries(Object.entries(set).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function without(set: LimitSet, name: string): LimitSet {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(set)) if (k !== name) out[k] = v;
  return out;
}

export class Limits {
  private readonly vhostLimits = new Map<string, LimitSet>();
  private readonly userLimits = new Map<string, LimitSet>();
  /** open connections (past connection.open) by vhost and by user */
  private readonly byVhost = new Map<string, Set<LimitedConnection>>();
  private readonly byUser = new Map<string, Set<LimitedConnection>>();
  private open = 0;

  /** The node-wide connection limit (--max-connections); 0: none. */
  constructor(public maxConnections = 0) {}

  vhost(name: string): LimitSet {
    return this.vhostLimits.get(name) ?? NONE;
  }

  user(name: string): LimitSet {
    return this.userLimits.get(name) ?? NONE;
  }

  /** Every vhost with limits set, by name. */
  vhosts(): Array<[string, LimitSet]> {
    return [...this.vhostLimits].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Every user with limits set, by name. */
  users(): Array<[string, LimitSet]> {
    return [...this.userLimits].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Replaces a vhost's limits; an empty set clears them. */
  setVhost(name: string, set: LimitSet): void {
    if (Object.keys(set).length === 0) this.vhostLimits.delete(name);
    else this.vhostLimits.set(name, set);
  }

  setUser(name: string, set: LimitSet): void {
    if (Object.keys(set).length === 0) this.userLimits.delete(name);
    else this.userLimits.set(name, set);
  }

  /**
   * Why a connection to `vhost` by `user` is refused (RabbitMQ's texts: the node's limit,
   * then the vhost's, then the user's), or null when it may open.
   */
  connectionRefusal(vhost: string, user: string): string | null {
    if (this.maxConnections > 0 && this.open >= this.maxConnections) {
      return `connection refused: node connection limit (${this.maxConnections}) is reached`;
    }
    const perVhost = limitOf(this.vhost(vhost), 'max-connections');
    if (perVhost >= 0 && (this.byVhost.get(vhost)?.size ?? 0) >= perVhost) {
      return `access to vhost '${vhost}' refused for user '${user}': connection limit (${perVhost}) is reached`;
    }
    const perUser = limitOf(this.user(user), 'max-connections');
    if (perUser >= 0 && (this.byUser.get(user)?.size ?? 0) >= perUser) {
      return `connection refused for user '${user}': user connection limit (${perUser}) is reached`;
    }
    return null;
  }

  /** Why one more channel for `user` is refused (its max-channels, over all its connections), or null. */
  channelRefusal(user: string): string | null {
    const max = limitOf(this.user(user), 'max-channels');
    if (max < 0) return null;
    let open = 0;
    for (const c of this.byUser.get(user) ?? []) open += c.channelCount;
    return open >= max ? `number of channels opened for user '${user}' has reached the maximum allowed user limit of (${max})` : null;
  }

  /** The vhost's max-queues, -1 for none. */
  maxQueues(vhost: string): number {
    return limitOf(this.vhost(vhost), 'max-queues');
  }

  connectionOpened(c: LimitedConnection, vhost: string, user: string): void {
    this.open++;
    member(this.byVhost, vhost).add(c);
    member(this.byUser, user).add(c);
  }

  connectionClosed(c: LimitedConnection, vhost: string, user: string): void {
    this.open--;
    leave(this.byVhost, vhost, c);
    leave(this.byUser, user, c);
  }
}

/** A limit's value; -1 when it is not set or negative (no limit). */
function limitOf(set: LimitSet, name: string): number {
  const v = set[name];
  return v === undefined || v < 0 ? -1 : v;
}

function member(m: Map<string, Set<LimitedConnection>>, key: string): Set<LimitedConnection> {
  let s = m.get(key);
  if (s === undefined) m.set(key, (s = new Set()));
  return s;
}

function leave(m: Map<string, Set<LimitedConnection>>, key: string, c: LimitedConnection): void {
  const s = m.get(key);
  if (s === undefined) return;
  s.delete(c);
  if (s.size === 0) m.delete(key);
}
