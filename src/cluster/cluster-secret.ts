import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import type { ClusterKeys } from './keys';

/** The key holding the replication secret when no `--cluster-secret` is given. */
export function secretKey(keys: ClusterKeys): string {
  return `${keys.prefix}secret`;
}

/**
 * The cluster's replication secret from etcd. A leader creates it if absent (compare-and-put, so
 * two first leaders of successive terms cannot each write their own); a follower only reads it
 * and gets null until some leader made it. The key has no lease: it outlives every node.
 */
export async function readOrCreateSecret(client: Etcd3, keys: ClusterKeys, create: boolean): Promise<string | null> {
  const key = secretKey(keys);
  if (!create) return client.get(key).string();
  const fresh = randomBytes(32).toString('base64url');
  const res = await client.if(key, 'Create', '==', 0).then(client.put(key).value(fresh)).else(client.get(key)).commit();
  if (res.succeeded) return fresh;
  const kv = res.responses[0]?.response_range?.kvs[0];
  return kv ? kv.value.toString() : null;
}
