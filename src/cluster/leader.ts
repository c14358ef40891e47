import type { Etcd3, IKeyValue } from 'etcd3';
import type { ClusterKeys } from './keys';
import type { IsrRecord, LeaderClaim } from './isr';
import type { NodeLease } from './lease';

/** The leader key as read from etcd; `term` is its create revision, new for every election. */
export interface LeaderRecord {
  node: string;
  lease: string;
  electedAt: string;
  term: number;
  value: string;
}

export function parseLeader(kv: IKeyValue): LeaderRecord {
  const value = kv.value.toString();
  let v: { node?: unknown; electedAt?: unknown } = {};
  try {
    v = JSON.parse(value) as typeof v;
  } catch {
    // A foreign value still names a leader: nobody may campaign while it exists.
  }
  return {
    node: typeof v.node === 'string' ? v.node : '?',
    lease: kv.lease,
    electedAt: typeof v.electedAt === 'string' ? v.electedAt : '',
    term: Number(kv.create_revision),
    value,
  };
}

export type CampaignResult =
  | { won: true; claim: LeaderClaim; revision: number }
  | { won: false; revision: number; leaderKv: IKeyValue | undefined; isrKv: IKeyValue | undefined };

/**
 * One attempt to become leader, as a single etcd transaction:
 *
 *   if leader key absent (create_revision == 0)
 *      and the ISR is what we read (mod_revision == R, which listed us)
 *          or absent (create_revision == 0: first node of a new cluster)
 *   then put leader key on our lease (+ put ISR = [us] when bootstrapping)
 *   else read both
 *
 * etcd serialises transactions, so of several concurrent candidates exactly one sees the leader
 * key absent; and since the ISR's mod revision is compared, a candidate dropped from the ISR after
 * it read it cannot win on the stale read. Bootstrapping the ISR in the same transaction makes the
 * first node's claim to it race-free as well.
 */
export class LeaderElection {
  constructor(
    private readonly client: Etcd3,
    private readonly keys: ClusterKeys,
    private readonly nodeName: string,
  ) {}

  async campaign(lease: NodeLease, isr: IsrRecord | null): Promise<CampaignResult> {
    const value = JSON.stringify({ node: this.nodeName, lease: lease.id, electedAt: new Date().toISOString() });
    const { client, keys } = this;
    const txn = client.if(keys.leader, 'Create', '==', 0);
    const puts = [client.put(keys.leader).value(value).lease(lease.id)];
    if (isr) {
      txn.and(keys.isr, 'Mod', '==', isr.modRevision);
    } else {
      txn.and(keys.isr, 'Create', '==', 0);
      puts.push(client.put(keys.isr).value(JSON.stringify([this.nodeName])));
    }
    const res = await txn
      .then(...puts)
      .else(client.get(keys.leader), client.get(keys.isr))
      .commit();
    const revision = Number(res.header.revision);
    if (res.succeeded) return { won: true, claim: { term: revision, value }, revision };
    return {
      won: false,
      revision,
      leaderKv: res.responses[0]?.response_range?.kvs[0],
      isrKv: res.responses[1]?.response_range?.kvs[0],
    };
  }
}
