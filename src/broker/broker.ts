import { Vhost } from './vhost';
import { NodeCounters } from './node-counters';
import { UserStore, userWithPassword, type User } from '../auth/users';
import { isHashingAlgorithm } from '../auth/password-hash';
import { Permissions, FULL_ACCESS, regexError } from '../auth/permissions';
import type { BrokerStorage, VhostSettings } from './storage';
import { Limits, withUserLimit, withVhostLimit, without, sortedByName, type LimitSet } from './limits';
import type { Logger } from '../logger';

export interface BrokerOptions {
  defaultUser: string;
  defaultPass: string;
  loopbackUsers: string[];
}

/** What RabbitMQ calls `/` when it makes it on its first start. */
export const DEFAULT_VHOST_DESCRIPTION = 'Default virtual host';

/** Stands for "the broker itself" as the declaring connection while recovering. */
const RECOVERY = {};

/** The whole model: vhosts, users and permissions. Knows nothing of sockets. */
export class Broker {
  readonly vhosts = new Map<string, Vhost>();
  readonly users: UserStore;
  readonly permissions = new Permissions();
  /** connections, channels and queues opened and closed, node-wide (for /metrics) */
  readonly nodeCounters = new NodeCounters();
  /** vhost and user limits, and the connections counted against them */
  readonly limits = new Limits();
  /** Told after a user is deleted, to close that user's connections (set by the server). */
  onUserDeleted: ((name: string) => void) | null = null;
  /** Told after a vhost is deleted, to close its connections (set by the server). */
  onVhostDeleted: ((name: string) => void) | null = null;

  constructor(
    private readonly options: BrokerOptions,
    /** null: nothing is stored (model tests) */
    private readonly storage: BrokerStorage | null = null,
    private readonly log: Logger | null = null,
  ) {
    this.users = new UserStore(new Set(options.loopbackUsers));
    // With a store, the default user is made by recover(), and only on a fresh store.
    if (storage === null) this.users.add(options.defaultUser, options.defaultPass, ['administrator']);
    // With a store, `/` is made by recover(), and only on a fresh store.
    if (storage === null) this.vhost('/').description = DEFAULT_VHOST_DESCRIPTION;
    // As RabbitMQ's first start: the default user may do everything on `/`, nobody else
    // anything. With a store, that grant is stored when the default user is made.
    if (storage === null) this.permissions.set('/', options.defaultUser, FULL_ACCESS);
  }

  /** A vhost, made in memory if there is none (model tests; see putVhost for a stored one). */
  vhost(name: string): Vhost {
    let v = this.vhosts.get(name);
    if (v === undefined) {
      this.vhosts.set(name, (v = new Vhost(name, this.storage, this.nodeCounters)));
      v.maxQueues = this.limits.maxQueues(name);
      const log = this.log;
      if (log !== null) v.notice = (text) => log.info({ vhost: name }, text);
      v.logger = log;
    }
    return v;
  }

  // ---- vhosts ----------------------------------------------------------------------

  /** Creates a vhost or changes its settings, stored first; true when the vhost is new. */
  putVhost(settings: VhostSettings): boolean {
    this.storage?.vhostChanged(settings);
    const created = !this.vhosts.has(settings.name);
    this.applyVhostSettings(this.vhost(settings.name), settings);
    return created;
  }

  private applyVhostSettings(v: Vhost, s: VhostSettings): void {
    v.description = s.description;
    v.tags = [...s.tags];
    v.defaultQueueType = s.defaultQueueType;
  }

  /**
   * Deletes a vhost: the deletion is stored first (one record that takes everything in it
   * when the log is read back), then its connections are closed (320), its queues drop
   * their messages and folders, and its policies and permissions go. False when there was none.
   */
  deleteVhost(name: string): boolean {
    const v = this.vhosts.get(name);
    if (v === undefined) return false;
    this.storage?.vhostDeleted(name);
    this.vhosts.delete(name);
    v.deleted = true;
    this.nodeCounters.routedInDeletedVhosts += v.counters.routed;
    this.nodeCounters.channelsOfDeletedVhosts.add(v.retiredChannels);
    this.onVhostDeleted?.(name);
    v.destroy();
    // The stored deletion covers its permissions; these clears are stored too, and a disk
    // that refuses one changes nothing that a restart would not also drop.
    this.clearPermissionsOf({ vhost: name }, (clear) => this.clearStored(clear));
    this.permissions.forget({ vhost: name });
    // The stored deletion takes its limits with it.
    this.limits.setVhost(name, {});
    return true;
  }

  // ---- limits ----------------------------------------------------------------------

  /** Sets one of a vhost's limits (max-connections, max-queues), stored first. */
  setVhostLimit(vhost: string, name: string, value: number): void {
    this.setVhostLimits(vhost, withVhostLimit(this.limits.vhost(vhost), name, value));
  }

  /** Clears one of a vhost's limits; false when it was not set. */
  clearVhostLimit(vhost: string, name: string): boolean {
    const set = this.limits.vhost(vhost);
    if (!Object.hasOwn(set, name)) return false;
    this.setVhostLimits(vhost, without(set, name));
    return true;
  }

  /** Replaces a vhost's limits (an empty set clears them), stored first. */
  setVhostLimits(vhost: string, set: LimitSet): void {
    this.storage?.vhostLimitsChanged(vhost, set);
    this.applyVhostLimits(vhost, set);
  }

  private applyVhostLimits(vhost: string, set: LimitSet): void {
    this.limits.setVhost(vhost, set);
    const v = this.vhosts.get(vhost);
    if (v !== undefined) v.maxQueues = this.limits.maxQueues(vhost);
  }

  /** Sets one of a user's limits (max-connections, max-channels), stored first. */
  setUserLimit(user: string, name: string, value: number): void {
    this.setUserLimits(user, withUserLimit(this.limits.user(user), name, value));
  }

  clearUserLimit(user: string, name: string): boolean {
    const set = this.limits.user(user);
    if (!Object.hasOwn(set, name)) return false;
    this.setUserLimits(user, without(set, name));
    return true;
  }

  setUserLimits(user: string, set: LimitSet): void {
    const sorted = sortedByName(set);
    this.storage?.userLimitsChanged(user, sorted);
    this.limits.setUser(user, sorted);
  }

  private clearStored(clear: () => unknown): void {
    try {
      clear();
    } catch (err) {
      this.log?.warn({ err }, "the clearing of a deleted vhost's permission could not be stored (the vhost's deletion covers it)");
    }
  }

  /** Clears, each clearing stored, every permission and topic permission of a user or vhost. */
  private clearPermissionsOf(filter: { vhost?: string; user?: string }, run: (clear: () => unknown) => void = (clear) => clear()): void {
    for (const p of this.permissions.list(filter)) run(() => this.clearPermission(p.vhost, p.user));
    for (const t of this.permissions.listTopic(filter)) run(() => this.clearTopicPermission(t.vhost, t.user, t.exchange));
  }

  // ---- users ---------------------------------------------------------------------

  /** Creates or replaces a user, stored first; true when the user is new. */
  putUser(user: User): boolean {
    this.storage?.userChanged(user);
    const created = this.users.get(user.name) === undefined;
    this.users.set(user);
    return created;
  }

  /** Deletes a user (stored first) and has its connections closed; false when there was none. */
  deleteUser(name: string): boolean {
    if (this.users.get(name) === undefined) return false;
    this.storage?.userDeleted(name);
    this.users.delete(name);
    // Its limits go with it; the stored deletion covers them.
    this.limits.setUser(name, {});
    // Its permissions go with it, as in RabbitMQ (each removal stored first).
    this.clearPermissionsOf({ user: name });
    this.onUserDeleted?.(name);
    return true;
  }

  // ---- permissions -----------------------------------------------------------------

  /** Sets a user's configure/write/read regexes on a vhost, stored first; true when new. */
  setPermission(vhost: string, user: string, perms: { configure: string; write: string; read: string }): boolean {
    assertPatterns(perms.configure, perms.write, perms.read);
    const created = this.permissions.get(vhost, user) === undefined;
    this.storage?.permissionChanged({ kind: 'permission', user, vhost, value: { user, vhost, ...perms } });
    this.permissions.set(vhost, user, perms);
    return created;
  }

  clearPermission(vhost: string, user: string): boolean {
    if (this.permissions.get(vhost, user) === undefined) return false;
    this.storage?.permissionChanged({ kind: 'permission', user, vhost, value: null });
    this.permissions.clear(vhost, user);
    return true;
  }

  /** Sets a user's topic permission for one exchange of a vhost, stored first; true when new. */
  setTopicPermission(vhost: string, user: string, exchange: string, perms: { write: string; read: string }): boolean {
    assertPatterns(perms.write, perms.read);
    const created = !this.permissions.listTopic({ vhost, user }).some((t) => t.exchange === exchange);
    this.storage?.permissionChanged({ kind: 'topic-permission', user, vhost, exchange, value: { user, vhost, exchange, ...perms } });
    this.permissions.setTopic(vhost, user, exchange, perms);
    return created;
  }

  /** Clears one exchange's topic permission, or all of the user's in the vhost; how many went. */
  clearTopicPermission(vhost: string, user: string, exchange?: string): number {
    const gone = this.permissions.listTopic({ vhost, user }).filter((t) => exchange === undefined || t.exchange === exchange);
    for (const t of gone) {
      this.storage?.permissionChanged({ kind: 'topic-permission', user, vhost, exchange: t.exchange, value: null });
      this.permissions.clearTopic(vhost, user, t.exchange);
    }
    return gone.length;
  }

  /** Rebuilds users, durable exchanges, queues, bindings and queued messages from the store. */
  recover(log: Logger): { users: number; queues: number; messages: number } {
    const store = this.storage;
    if (store === null) return { users: this.users.size, queues: 0, messages: 0 };
    let queues = 0;
    let messages = 0;
    let seeded = false;
    let vhostsSeeded = false;
    /** vhosts named by definitions of a log written before vhosts were stored */
    const legacy = new Set<string>();
    for (const d of store.open()) {
      if (d.op === 'vhosts.seeded') {
        vhostsSeeded = true;
        continue;
      }
      if (d.op === 'vhost') {
        vhostsSeeded = true;
        this.applyVhostSettings(this.vhost(d.name), d);
        continue;
      }
      if (d.op === 'users.seeded') {
        seeded = true;
        continue;
      }
      if (d.op === 'permission') {
        this.permissions.set(d.vhost, d.user, d);
        continue;
      }
      if (d.op === 'vhost-limits') {
        this.applyVhostLimits(d.vhost, d.limits);
        continue;
      }
      if (d.op === 'user-limits') {
        this.limits.setUser(d.user, d.limits);
        continue;
      }
      if (d.op === 'topic-permission') {
        this.permissions.setTopic(d.vhost, d.user, d.exchange, d);
        continue;
      }
      if (d.op === 'user') {
        seeded = true;
        if (isHashingAlgorithm(d.hashingAlgorithm))
          this.users.set({ name: d.name, passwordHash: d.passwordHash, hashingAlgorithm: d.hashingAlgorithm, tags: d.tags });
        else log.warn({ user: d.name, hashingAlgorithm: d.hashingAlgorithm }, 'stored user has an unknown hashing algorithm: not restored');
        continue;
      }
      let v = this.vhosts.get(d.vhost);
      if (v === undefined) {
        // The store drops what was in a deleted vhost; a log from before vhosts were stored names them only here.
        if (vhostsSeeded) {
          log.warn({ definition: d }, 'stored definition of a vhost that does not exist: not restored');
          continue;
        }
        legacy.add(d.vhost);
        v = this.vhost(d.vhost);
      }
      try {
        switch (d.op) {
          case 'exchange':
            v.declareExchange(d.name, d.type, false, true, d.autoDelete, d.internal, d.args);
            break;
          case 'queue': {
            const q = v.restoreQueue(d.name, d.autoDelete, d.args);
            queues++;
            messages += q.store.recover();
            break;
          }
          case 'policy':
            v.setPolicy({ name: d.name, pattern: d.pattern, applyTo: d.applyTo, priority: d.priority, definition: d.definition });
            break;
          case 'bind':
            if (d.kind === 'queue') v.bindQueue(d.destination, d.source, d.key, d.args, RECOVERY);
            else v.bindExchange(d.destination, d.source, d.key, d.args);
            break;
        }
      } catch (err) {
        log.warn({ err, definition: d }, 'stored definition could not be restored');
      }
    }
    store.replayDone();
    if (!vhostsSeeded) this.seedVhosts(legacy, log);
    if (!seeded) this.seedDefaultUser(log);
    return { users: this.users.size, queues, messages };
  }

  /**
   * RabbitMQ makes `/` on its first start only, so that deleting it is not undone by a
   * restart; a log written before vhosts were stored gets records for the vhosts it uses.
   */
  private seedVhosts(legacy: Set<string>, log: Logger): void {
    const names = new Set(['/', ...legacy]);
    for (const name of names) {
      const v = this.vhosts.get(name);
      const settings: VhostSettings = {
        name,
        description: v?.description || (name === '/' ? DEFAULT_VHOST_DESCRIPTION : ''),
        tags: v?.tags ?? [],
        defaultQueueType: v?.defaultQueueType ?? null,
      };
      try {
        this.putVhost(settings);
      } catch (err) {
        // Still usable until the broker stops; stored on a later start.
        this.applyVhostSettings(this.vhost(name), settings);
        log.warn({ err, vhost: name }, 'the vhost could not be stored; it exists until the broker stops');
      }
    }
  }

  /**
   * RabbitMQ's default_user/default_pass: created, as administrator, on a store that has
   * never held users, so that deleting it is not undone by a restart.
   */
  private seedDefaultUser(log: Logger): void {
    const { defaultUser, defaultPass } = this.options;
    try {
      this.putUser(userWithPassword(defaultUser, defaultPass, ['administrator']));
      this.setPermission('/', defaultUser, FULL_ACCESS);
      log.info({ user: defaultUser }, 'created the default user');
    } catch (err) {
      // A disk too full to store it still lets the operator in; it is stored on a later start.
      this.users.add(defaultUser, defaultPass, ['administrator']);
      this.permissions.set('/', defaultUser, FULL_ACCESS);
      log.warn({ err, user: defaultUser }, 'the default user could not be stored; it exists until the broker stops');
    }
  }
}

/** Permission patterns are checked before they are stored: one that does not compile is refused. */
function assertPatterns(...patterns: string[]): void {
  for (const p of patterns) {
    const bad = regexError(p);
    if (bad !== null) throw new Error(bad);
  }
}
