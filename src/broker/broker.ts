import { Vhost } from './vhost';
import { UserStore } from '../auth/users';
import { Permissions } from '../auth/permissions';

export interface BrokerOptions {
  defaultUser: string;
  defaultPass: string;
  loopbackUsers: string[];
}

/** The whole model: vhosts, users and permissions. Knows nothing of sockets. */
export class Broker {
  readonly vhosts = new Map<string, Vhost>();
  readonly users: UserStore;
  readonly permissions = new Permissions();

  constructor(options: BrokerOptions) {
    this.users = new UserStore(new Set(options.loopbackUsers));
    this.users.add(options.defaultUser, options.defaultPass, ['administrator']);
    this.vhosts.set('/', new Vhost('/'));
  }
}
