import { ClusterError } from './errors';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** The etcd key layout of one cluster; every key lives under /leveret/<cluster-name>/. */
export class ClusterKeys {
  readonly prefix: string;
  readonly membersPrefix: string;
  readonly leader: string;
  readonly isr: string;

  constructor(readonly clusterName: string) {
    checkName('cluster name', clusterName);
    this.prefix = `/leveret/${clusterName}/`;
    this.membersPrefix = `${this.prefix}members/`;
    this.leader = `${this.prefix}leader`;
    this.isr = `${this.prefix}isr`;
  }

  member(nodeName: string): string {
    return this.membersPrefix + nodeName;
  }
}

/** Names become etcd key segments and log fields, so keep them to a safe alphabet. */
export function checkName(what: string, name: string): void {
  if (!NAME.test(name)) {
    throw new ClusterError(
      'bad-option',
      `invalid ${what} "${name}": use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}
