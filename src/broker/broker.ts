import { Vhost } from './vhost';
import { UserStore } from '../auth/users';
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

  constructor(
    options: BrokerOptions,
    /** null: nothing is stored (model tests) */
    private readonly storage: BrokerStorage | null = null,
    private readonly log: Logger | null = null,
  ) {
    this.users = new UserStore(new Set(options.loopbackUsers));
    this.users.add(options.defaultUser, options.defaultPass, ['administrator']);
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

  /** Rebuilds durable exchanges, queues, bindings and queued messages from the store. */
  recover(log: Logger): { queues: number; messages: number } {
    const store = this.storage;
    if (store === null) return { queues: 0, messages: 0 };
    let queues = 0;
    let messages = 0;
    for (const d of store.open()) {
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
    return { queues, messages };
  }
}
