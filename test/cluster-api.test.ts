import { describe, expect, it } from 'vitest';
import { publishConfirmed, settled, tryAmqp, useCluster } from './helpers/cluster';

/**
 * What a cluster shows operators (issue 15, point 4): /api/nodes lists every member with its
 * role, ISR membership and replication lag, /metrics has the role, term and per-follower lag,
 * and a follower's HTTP port answers with the leader's view (it forwards the API).
 */
const h = useCluster();
const auth = { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` };

interface NodeEntry {
  name: string;
  running: boolean;
  cluster_role?: string;
  in_sync?: boolean;
  cluster_term?: number;
  replication?: { streaming: boolean; acked_lsn: number; lag_bytes: number; leader_lsn: number; min_isr: number };
  mem_used?: number;
}

async function nodes(port: number): Promise<NodeEntry[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/nodes`, { headers: auth });
  expect(res.status).toBe(200);
  return (await res.json()) as NodeEntry[];
}

async function until<T>(what: string, fn: () => Promise<T | null>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('cluster: /api/nodes and /metrics', { timeout: 90_000 }, () => {
  it('list every member with role, ISR and lag, through the leader and through a follower', async () => {
    // Followers leave the ISR after 3 s without an ack instead of the default 10.
    const all = await h.startCluster(['--replication-max-lag', '3']);
    const { leader, followers, term } = await settled(all);
    const conn = await tryAmqp(leader.port, 5000);
    expect(conn).not.toBeNull();
    await publishConfirmed(conn!, 'api-q');
    await conn!.close();

    // Both followers stream, are in the ISR and have acked what the leader has.
    const list = await until('both followers in sync with no lag', async () => {
      const l = await nodes(leader.httpPort);
      const fs = l.filter((n) => n.cluster_role === 'follower');
      return fs.length === 2 && fs.every((f) => f.in_sync && f.replication!.streaming && f.replication!.lag_bytes === 0) ? l : null;
    });
    expect(list.map((n) => n.name).sort()).toEqual(['n1', 'n2', 'n3']);
    const me = list.find((n) => n.name === leader.name)!;
    expect(me).toMatchObject({ running: true, cluster_role: 'leader', in_sync: true, cluster_term: term });
    expect(me.mem_used).toBeGreaterThan(0); // the leader's own entry is RabbitMQ's full node object
    for (const f of list.filter((n) => n.name !== leader.name)) {
      expect(f.replication!.acked_lsn).toBe(f.replication!.leader_lsn);
      expect(f.replication!.min_isr).toBe(1);
    }
    // One member by name; an unknown one is 404.
    const one = await fetch(`http://127.0.0.1:${leader.httpPort}/api/nodes/${followers[0].name}`, { headers: auth });
    expect(((await one.json()) as NodeEntry).cluster_role).toBe('follower');
    expect((await fetch(`http://127.0.0.1:${leader.httpPort}/api/nodes/nope`, { headers: auth })).status).toBe(404);

    // A follower's port forwards the API: the same view, naming the same leader.
    const via = await nodes(followers[0].httpPort);
    expect(via.find((n) => n.cluster_role === 'leader')!.name).toBe(leader.name);

    // Prometheus: role, term, ISR size, and each follower's lag labelled by node.
    const text = await (await fetch(`http://127.0.0.1:${leader.httpPort}/metrics`)).text();
    expect(text).toMatch(/^leveret_cluster_leader 1$/m);
    expect(text).toMatch(new RegExp(`^leveret_cluster_term ${term}$`, 'm'));
    expect(text).toMatch(/^leveret_cluster_in_sync_replicas 3$/m);
    for (const f of followers) {
      expect(text).toMatch(new RegExp(`^leveret_replication_follower_lag_bytes\\{node="${f.name}"\\} 0$`, 'm'));
      expect(text).toMatch(new RegExp(`^leveret_replication_follower_in_sync\\{node="${f.name}"\\} 1$`, 'm'));
    }

    // A follower stopped: listed as not running once its lease ran out, then out of the ISR
    // once --replication-max-lag passed.
    const stoppedAt = Date.now();
    followers[1].signal('SIGSTOP');
    const out = await until(
      `${followers[1].name} down and out of the ISR`,
      async () => {
        const l = await nodes(leader.httpPort);
        const f = l.find((n) => n.name === followers[1].name);
        return f && f.running === false && f.in_sync === false ? f : null;
      },
      30_000,
    );
    expect(out.cluster_role).toBe('follower');
    // 3 s of silence (not the default 10) and a check every 250 ms at most.
    expect(Date.now() - stoppedAt).toBeLessThan(9000);
    const after = await (await fetch(`http://127.0.0.1:${leader.httpPort}/metrics`)).text();
    expect(after).toMatch(/^leveret_cluster_in_sync_replicas 2$/m);
    followers[1].signal('SIGCONT');
  });
});
