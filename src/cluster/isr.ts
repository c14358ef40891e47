import type { Etcd3 } from 'etcd3';
import { ClusterError } from './errors';
import type { ClusterKeys } from './keys';

/** The in-sync replica set as last read, with the revision a campaign compares against. */
export interface IsrRecord {
  nodes: string[];
  modRevision: number;
}

/** What a leader won: its term (the leader key's create revision) and the exact value it wrote. */
export interface LeaderClaim {
  term: number;
  value: string;
}

export function parseIsr(value: string): string[] {
  try {
    const v: unknown = JSON.parse(value);
    return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * Writes the ISR key (a JSON list of node names). Only the current leader may: the write is a
 * transaction conditional on the leader key still having the create revision (term) and value
 * this leader wrote, so a deposed leader's write fails in etcd even if its own fence is late.
 */
export class IsrStore {
  constructor(
    private readonly client: Etcd3,
    private readonly keys: ClusterKeys,
  ) {}

  async write(claim: LeaderClaim, nodes: readonly string[]): Promise<number> {
    const res = await this.client
      .if(this.keys.leader, 'Create', '==', claim.term)
      .and(this.keys.leader, 'Value', '==', claim.value)
      .then(this.client.put(this.keys.isr).value(JSON.stringify(nodes)))
      .else(this.client.get(this.keys.leader))
      .commit();
    if (!res.succeeded) {
      const now = res.responses[0]?.response_range?.kvs[0];
      const holder = now ? `held by ${now.value.toString()} since revision ${now.create_revision}` : 'absent';
      throw new ClusterError('not-leader', `ISR write refused by etcd: term ${claim.term} is over (leader key ${holder})`);
    }
    return Number(res.header.revision);
  }
}
