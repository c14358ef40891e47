import { Vhost } from './vhost';
import { UserStore, userWithPassword, type User } from '../auth/users';
import { isHashingAlgorithm } from '../auth/password-hash';
import { Permissions, FULL_ACCESS } from '../auth/permissions';
import type { BrokerStorage } from './storage';
import type { Logger } from '../logger';

export interface BrokerOptions {
  defaultUser: string;
  defaultPass: string;
  loopbackUsers: string[];
}

/** Stands for "the broker itself" as the declaring connection while recovering. */
const RECOVERY = {};

/** The whole model: vhosts, users and permissions. Knows nothing of sockets. */
export class Broker {
  readonly vhosts = new Map<string, Vhost>();
  readonly users: UserStore;
  readonly permissions = new Permissions();
  /** Told after a user is deleted, to close that user's connections (set by the server). */
  onUserDeleted: ((name: string) => void) | null = null;

  constructor(
    private readonly options: BrokerOptions,
    /** null: nothing is stored (model tests) */
    private readonly storage: BrokerStorage | null = null,
    private readonly log: Logger | null = null,
  ) {
    this.users = new UserStore(new Set(options.loopbackUsers));
    // With a store, the default user is made by recover(), and only on a fresh store.
    if (storage === null) this.users.add(options.defaultUser, options.defaultPass, ['administrator']);
    this.vhost('/');
    // As RabbitMQ's first start: the default user may do everything on `/`, nobody else anything.
    this.permissions.set('/', options.defaultUser, FULL_ACCESS);
  }

  vhost(name: string): Vhost {
    let v = this.vhosts.get(name);
    if (v === undefined) {
      this.vhosts.set(name, (v = new Vhost(name, this.storage)));
      const log = this.log;
      if (log !== null) v.notice = (text) => log.info({ vhost: name }, text);
      v.logger = log;
    }
    return v;
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
    this.onUserDeleted?.(name);
    return true;
  }

  /** Rebuilds users, durable exchanges, queues, bindings and queued messages from the store. */
  recover(log: Logger): { users: number; queues: number; messages: number } {
    const store = this.storage;
    if (store === null) return { users: this.users.size, queues: 0, messages: 0 };
    let queues = 0;
    let messages = 0;
    let seeded = false;
    for (const d of store.open()) {
      if (d.op === 'users.seeded') {
        seeded = true;
        continue;
      }
      if (d.op === 'user') {
        seeded = true;
        if (isHashingAlgorithm(d.hashingAlgorithm)) this.users.set({ name: d.name, passwordHash: d.passwordHash, hashingAlgorithm: d.hashingAlgorithm, tags: d.tags });
        else log.warn({ user: d.name, hashingAlgorithm: d.hashingAlgorithm }, 'stored user has an unknown hashing algorithm: not restored');
        continue;
      }
      const v = this.vhost(d.vhost);
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
    if (!seeded) this.seedDefaultUser(log);
    return { users: this.users.size, queues, messages };
  }

  /**
   * RabbitMQ's default_user/default_pass: created, as administrator, on a store that has
   * never held users, so that deleting it is not undone by a restart.
   */
  private seedDefaultUser(log: Logger): void {
    const { defaultUser, defaultPass } = this.options;
    try {
      this.putUser(userWithPassword(defaultUser, defaultPass, ['administrator']));
      log.info({ user: defaultUser }, 'created the default user');
    } catch (err) {
      // A disk too full to store it still lets the operator in; it is stored on a later start.
      this.users.add(defaultUser, defaultPass, ['administrator']);
      log.warn({ err, user: defaultUser }, 'the default user could not be stored; it exists until the broker stops');
    }
  }
}
