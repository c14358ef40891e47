import { Etcd3, IOptions, isRecoverableError } from 'etcd3';
import { ClusterError } from './errors';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

const neverAborted = new AbortController().signal;
const noEvent = () => ({ dispose() {} });

/**
 * etcd3's default per-host circuit breaker stops calling a host for 5 s after three failures, and
 * its watch backoff grows to 30 s: both would stretch a failover or the recovery from an etcd
 * restart far past the lease TTL. We let each call through and retry only across hosts; the
 * election loop does its own pacing.
 */
function retryAcrossHosts(attempts: number): Policy {
  const policy = {
    onSuccess: noEvent,
    onFailure: noEvent,
    async execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
      for (let i = 1; ; i++) {
        try {
          return await fn({ signal: neverAborted });
        } catch (err) {
          if (i >= attempts || !(err instanceof Error) || !isRecoverableError(err)) throw err;
        }
      }
    },
  };
  return policy as unknown as Policy;
}

const constantBackoff = (ms: number) => {
  const b = { duration: ms, next: () => b };
  return b;
};

export interface EtcdConnectOptions {
  /** Deadline of every unary call (streams have none): a hung etcd must not hang an election. */
  callTimeoutMs: number;
}

/** Builds the client and proves etcd answers, so that a wrong address fails at start, clearly. */
export async function connectEtcd(hosts: string[], opts: EtcdConnectOptions): Promise<Etcd3> {
  const client = new Etcd3({
    hosts,
    // gRPC's reconnect backoff grows to minutes; after an etcd restart we want to be back within
    // a fraction of the lease TTL.
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + opts.callTimeoutMs }),
    faultHandling: {
      host: () => retryAcrossHosts(1),
      global: retryAcrossHosts(hosts.length),
      watchBackoff: constantBackoff(250),
    },
  });
  try {
    await client.maintenance.status();
  } catch (err) {
    client.close();
    const why = err instanceof Error ? err.message : String(err);
    throw new ClusterError(
      'etcd-unreachable',
      `cannot reach etcd at ${hosts.map((h) => `http://${h}`).join(', ')} within ${opts.callTimeoutMs} ms: ${why}`,
    );
  }
  return client;
}
