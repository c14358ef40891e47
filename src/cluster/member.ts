import type { Etcd3 } from 'etcd3';
import { ClusterError } from './errors';
import type { ClusterKeys } from './keys';
import type { NodeLease } from './lease';

/** What a node publishes about itself under /leveret/<cluster>/members/<node>. */
export interface MemberInfo {
  name: string;
  advertiseHost: string;
  replicationPort: number;
  amqpPort: number;
  httpPort: number;
  /**
   * The amqps and HTTPS ports, when this node has TLS (absent in the key otherwise, and in keys
   * written before followers forwarded TLS): 0 here means none, so a follower binds no pass-through
   * to it.
   */
  amqpsPort: number;
  httpsPort: number;
  /** ISO time this session registered (a node that lost its lease and came back gets a new one). */
  joinedAt: string;
}

export function parseMember(name: string, value: string): MemberInfo {
  try {
    const v = JSON.parse(value) as Partial<MemberInfo>;
    return {
      name,
      advertiseHost: String(v.advertiseHost ?? ''),
      replicationPort: Number(v.replicationPort ?? 0),
      amqpPort: Number(v.amqpPort ?? 0),
      httpPort: Number(v.httpPort ?? 0),
      amqpsPort: Number(v.amqpsPort ?? 0),
      httpsPort: Number(v.httpsPort ?? 0),
      joinedAt: String(v.joinedAt ?? ''),
    };
  } catch {
    return { name, advertiseHost: '', replicationPort: 0, amqpPort: 0, httpPort: 0, amqpsPort: 0, httpsPort: 0, joinedAt: '' };
  }
}

/**
 * Puts this node's member key on its lease, so the key vanishes when the process dies or is cut
 * off for a TTL. Creation is compare-and-put: two live processes with one name would otherwise
 * overwrite each other's key and both believe they are that member.
 */
export class MemberRegistry {
  constructor(
    private readonly client: Etcd3,
    private readonly keys: ClusterKeys,
  ) {}

  /**
   * Registers `info` on `lease`. If the name is held by another lease, waits up to `waitMs` for it
   * to go (the usual case is our own previous process, killed less than a TTL ago), then fails.
   */
  async register(info: MemberInfo, lease: NodeLease, waitMs: number): Promise<void> {
    const key = this.keys.member(info.name);
    // Without TLS the key is written as before this node knew of TLS ports.
    const { amqpsPort, httpsPort, ...plain } = info;
    const value = JSON.stringify({ ...plain, ...(amqpsPort > 0 && { amqpsPort }), ...(httpsPort > 0 && { httpsPort }) });
    const giveUpAt = Date.now() + waitMs;
    for (;;) {
      const res = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(value).lease(lease.id))
        .else(this.client.get(key))
        .commit();
      if (res.succeeded) return;
      const holder = res.responses[0]?.response_range?.kvs[0];
      if (!holder) continue; // deleted between compare and read: try again at once
      if (holder.lease === lease.id) return;
      if (lease.lost) throw new ClusterError('stopped', 'the lease ended while registering');
      if (Date.now() >= giveUpAt) {
        throw new ClusterError(
          'name-in-use',
          `node name "${info.name}" is already registered in cluster "${this.keys.clusterName}" ` +
            `by a live process (etcd lease ${holder.lease}); give each node a distinct --node-name`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
