// Issue 15, point 5: failover with messages on a real three-node cluster (three dist/cli.js
// processes and one etcd). Publishers send numbered persistent messages on confirm channels
// through any node's port and reconnect on close; after the faults every queue is drained and
// checked (test/helpers/total-queue.ts): a confirmed message that is never consumed is lost, and
// that must never happen. Sent-but-unconfirmed messages may or may not appear.
import { describe, expect, it } from 'vitest';
import { TTL, settled, useCluster, probe, type LeveretNode, type LogLine } from './helpers/cluster';
import { check, drain, Publisher, Relay, type Endpoint, type Verdict } from './helpers/total-queue';
import { digest } from './helpers/dir-digest';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const h = useCluster();
/** kill -9 cycles; the issue asks for 20 (run by hand with FAILOVER_CYCLES=20) */
const CYCLES = Number(process.env.FAILOVER_CYCLES ?? 6);
const LEADING = 'cluster: leading (serving AMQP, HTTP and replication)';
const IN_STEP = 'cluster: data directory in step with the leader';

const ep = (n: LeveretNode): Endpoint => ({ host: n.host, port: n.port });

function startLoad(nodes: () => LeveretNode[], queues: string[], count = 4): Publisher[] {
  return Array.from({ length: count }, (_, i) => new Publisher(`p${i}`, () => nodes().map(ep), queues[i % queues.length], 64, 50, i));
}

const confirmsOf = (pubs: Publisher[]) => pubs.flatMap((p) => p.confirms);
const confirmedCount = (pubs: Publisher[]) => pubs.reduce((s, p) => s + p.confirmed, 0);

async function until<T>(what: string, f: () => T | undefined | null | false, timeoutMs: number, dump = ''): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms\n${dump}`);
    await sleep(20);
  }
}

/** More confirms than now (at least `n`) within `ms`. */
async function confirmsGrow(pubs: Publisher[], n: number, ms: number, dump = ''): Promise<void> {
  const base = confirmedCount(pubs);
  await until(`${n} more confirms`, () => confirmedCount(pubs) >= base + n, ms, dump);
}

const leaderLine = (nodes: LeveretNode[], minTerm: number): { node: LeveretNode; line: LogLine } | undefined => {
  for (const node of nodes) {
    const line = node.logs(LEADING).find((l) => (l.term as number) > minTerm);
    if (line) return { node, line };
  }
  return undefined;
};

/** The ISR the leader of `term` last wrote (its 'cluster: in-sync replicas' log). */
const lastIsr = (leader: LeveretNode, term: number): string[] =>
  (leader
    .logs('cluster: in-sync replicas')
    .filter((l) => l.term === term)
    .pop()?.isr as string[] | undefined) ?? [];

const dumpAll = (nodes: LeveretNode[]) => nodes.map((n) => `== ${n.name}\n${n.tail(40)}`).join('\n');

function report(label: string, v: Verdict, pubs: Publisher[]): void {
  const nacked = pubs.reduce((s, p) => s + p.nacked.size, 0);
  console.log(
    `${label}: sent ${v.sent}, confirmed ${v.confirmed}, nacked ${nacked}, received ${v.received}; ` +
      `lost ${v.lost.length}, duplicated ${v.duplicated}, unconfirmed-but-received ${v.unconfirmedReceived}, unknown ${v.unknown.length}`,
  );
}

function expectNothingLost(v: Verdict): void {
  expect(v.lost.length, `confirmed but never consumed: ${v.lost.slice(0, 20).join(', ')}`).toBe(0);
  expect(v.unknown, 'received but never sent').toEqual([]);
  expect(v.confirmed).toBeGreaterThan(0);
}

/** Data files (directories aside) whose sha256 differs between two copies. */
function diffDigests(x: Record<string, string>, y: Record<string, string>): string[] {
  const d: string[] = [];
  for (const [f, s] of Object.entries(x))
    if (s !== 'dir' && y[f] !== s) d.push(`${f}: ${s.slice(0, 12)} vs ${y[f]?.slice(0, 12) ?? 'missing'}`);
  for (const f of Object.keys(y)) if (!(f in x)) d.push(`${f}: missing vs present`);
  return d;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('failover with messages on a three-node cluster', () => {
  it(
    `kill -9 of the leader under confirmed persistent load, ${CYCLES} cycles: no confirmed message lost`,
    { timeout: 60_000 + CYCLES * 25_000 },
    async () => {
      let nodes = await h.startCluster();
      let { leader, term } = await settled(nodes);
      const queues = ['fo-kill-a', 'fo-kill-b'];
      const pubs = startLoad(() => nodes, queues);
      try {
        await confirmsGrow(pubs, 500, 15_000, dumpAll(nodes));
        const failovers: number[] = [];
        let truncatedCycles = 0;
        for (let cycle = 1; cycle <= CYCLES; cycle++) {
          // every node back in the ISR and the leader confirming
          await until('all three in the ISR', () => lastIsr(leader, term).length === 3, 20_000, dumpAll(nodes));
          await confirmsGrow(pubs, 300, 15_000, dumpAll(nodes));
          const watch = probe(nodes, 50);
          const killedAt = Date.now();
          leader.signal('SIGKILL');
          await leader.exited;
          const next = await until('a new leader', () => leaderLine(nodes, term), 20_000, dumpAll(nodes));
          const lastOld = Math.max(
            ...confirmsOf(pubs)
              .filter((c) => c.node === leader.name && c.at <= killedAt)
              .map((c) => c.at),
          );
          const newTerm = next.line.term as number;
          const elected = next.node.logs('cluster: leader').find((l) => l.term === newTerm)!;
          // restart the killed node on its directory: it must follow (its unconfirmed tail cut by the catch-up)
          const restarted = h.restart(leader);
          nodes = nodes.map((n) => (n === leader ? restarted : n));
          await until(
            'a connection served by the new leader',
            () => watch.accepted().some((a) => a.node === next.node.name && a.at > killedAt),
            10_000,
          );
          const accepted = await watch.stop();
          const first = Math.min(...accepted.filter((a) => a.node === next.node.name && a.at > killedAt).map((a) => a.at));
          const failover = first - lastOld;
          failovers.push(failover);
          await restarted.waitLog(IN_STEP, (l) => l.term === newTerm, 30_000);
          const caught = restarted.logs('replication: copied from the live leader')[0];
          if (caught && (caught.filesTruncated as number) > 0) truncatedCycles++;
          console.log(
            `cycle ${cycle}: killed ${leader.name} (term ${term}); ${next.node.name} leads term ${newTerm}; ` +
              `last confirm from ${leader.name} → first connection on ${next.node.name}: ${failover} ms ` +
              `(kill at +${killedAt - lastOld}, elected +${elected.time - lastOld}, serving +${next.line.time - lastOld} after taking office in ${next.line.ms as number} ms); ` +
              `confirmed so far ${confirmedCount(pubs)}; ` +
              `${leader.name} restarted and caught up (files kept ${caught?.filesKept}, truncated ${caught?.filesTruncated}, fetched ${caught?.filesFetched}, ${caught?.bytesFetched} bytes, ${caught?.ms} ms)`,
          );
          expect(restarted.logs(LEADING)).toEqual([]);
          leader = next.node;
          term = newTerm;
        }
        await until('all three in the ISR', () => lastIsr(leader, term).length === 3, 20_000, dumpAll(nodes));
        await Promise.all(pubs.map((p) => p.stop()));
        const got = await drain(ep(nodes[CYCLES % 3]), queues);
        const v = check(pubs, got);
        report(`kill -9 x${CYCLES}`, v, pubs);
        console.log(
          `kill -9 failover (last confirm from the old leader → first connection on the new one), TTL ${TTL} s: ` +
            `min ${Math.min(...failovers)} ms, median ${median(failovers)} ms, max ${Math.max(...failovers)} ms; all: ${failovers.join(', ')}; the restarted node's catch-up truncated a file in ${truncatedCycles} of ${CYCLES} cycles`,
        );
        expectNothingLost(v);
        // The target is TTL + 2 s; one slow cycle on a loaded machine (store recovery of a large
        // backlog on a shared core) may exceed it, twice over it is a failure.
        expect(median(failovers)).toBeLessThanOrEqual((TTL + 2) * 1000);
        for (const f of failovers) expect(f).toBeLessThanOrEqual(2 * (TTL + 2) * 1000);
      } finally {
        for (const p of pubs) p.kill();
      }
    },
  );

  it(
    'SIGSTOP of the leader past the TTL while publishers run, then SIGCONT: nothing confirmed by it after its lease ran out, nothing lost',
    { timeout: 90_000 },
    async () => {
      const nodes = await h.startCluster();
      const { leader, followers, term } = await settled(nodes);
      const queues = ['fo-stop-a', 'fo-stop-b'];
      const pubs = startLoad(() => nodes, queues);
      // one publisher that only ever talks to the leader's own port
      const direct = new Publisher('direct', () => [ep(leader)], queues[0], 64, 50);
      const all = [...pubs, direct];
      try {
        await until('the ISR has all three', () => lastIsr(leader, term).length === 3, 20_000, dumpAll(nodes));
        await until('the direct publisher confirmed', () => direct.confirmed > 100, 15_000, dumpAll(nodes));
        await confirmsGrow(all, 500, 15_000, dumpAll(nodes));
        const stoppedAt = Date.now();
        leader.signal('SIGSTOP');
        const next = await until('a new leader', () => leaderLine(followers, term), 20_000, dumpAll(nodes));
        const newTerm = next.line.term as number;
        const elected = next.node.logs('cluster: leader').find((l) => l.term === newTerm)!;
        // confirms go on through the new leader while the old one is paused
        await confirmsGrow(pubs, 300, 15_000, dumpAll(nodes));
        await sleep(Math.max(0, TTL * 1000 + 1000 - (Date.now() - stoppedAt)));
        const contAt = Date.now();
        leader.signal('SIGCONT');
        const demoted = await leader.waitLog('cluster: demoted', (l) => l.term === term, 10_000);
        await leader.waitLog(IN_STEP, (l) => l.term === newTerm, 20_000);
        await until('the direct publisher saw its connection closed', () => direct.closes.some((c) => c.at >= contAt), 10_000);
        await confirmsGrow(pubs, 300, 15_000, dumpAll(nodes));
        await Promise.all(all.map((p) => p.stop()));

        const fromOld = confirmsOf(all).filter((c) => c.node === leader.name);
        const late = fromOld.filter((c) => c.at >= elected.time);
        const lastOld = Math.max(...fromOld.map((c) => c.at));
        const closeOnResume = direct.closes.find((c) => c.at >= contAt)!;
        console.log(
          `SIGSTOP: paused ${contAt - stoppedAt} ms; ${next.node.name} elected ${elected.time - stoppedAt} ms after the stop; ` +
            `last confirm from ${leader.name} ${lastOld - stoppedAt} ms after the stop; it logged its demotion ${demoted.time - contAt} ms after SIGCONT; ` +
            `the direct publisher's connection closed with ${closeOnResume.code} (${closeOnResume.text})`,
        );
        expect(late, 'confirms from the paused leader after the new election').toEqual([]);
        expect(fromOld.every((c) => c.at < contAt)).toBe(true);
        expect(closeOnResume.code).toBe(320);
        expect(closeOnResume.text).toContain(`leadership of term ${term} lost`);
        // never two nodes serving: the old one's demotion names the lease
        expect(String(demoted.reason)).toContain('lease');

        const got = await drain(ep(nodes[1]), queues);
        const v = check(all, got);
        report('SIGSTOP of the leader', v, all);
        expectNothingLost(v);
      } finally {
        for (const p of all) p.kill();
      }
    },
  );

  it(
    'a follower paused under load: dropped from the ISR, confirms go on, resumed: back in the ISR with data identical to the leader',
    { timeout: 120_000 },
    async () => {
      const nodes = await h.startCluster();
      const { leader, followers, term } = await settled(nodes);
      const queues = ['fo-follower-a', 'fo-follower-b'];
      const pubs = startLoad(() => nodes, queues);
      const paused = followers[0];
      try {
        await until('the ISR has all three', () => lastIsr(leader, term).length === 3, 20_000, dumpAll(nodes));
        await confirmsGrow(pubs, 500, 15_000, dumpAll(nodes));
        const stoppedAt = Date.now();
        paused.signal('SIGSTOP');
        const dropped = await leader.waitLog(
          'replication: ISR changed',
          (l) => l.time >= stoppedAt && (l.removed as Array<{ node: string }>).some((r) => r.node === paused.name),
          30_000,
        );
        expect(dropped.isr).not.toContain(paused.name);
        const droppedAt = Date.now();
        // while the silent follower is still in the ISR, confirms wait for it (the gate waits for every ISR member)
        const whilePaused = confirmsOf(pubs).filter((c) => c.at > stoppedAt + 1000 && c.at < dropped.time).length;
        await confirmsGrow(pubs, 1000, 10_000, dumpAll(nodes));
        const grewMs = Date.now() - droppedAt;
        const contAt = Date.now();
        paused.signal('SIGCONT');
        const back = await leader.waitLog(
          'replication: ISR changed',
          (l) => l.time >= contAt && (l.added as string[]).includes(paused.name),
          30_000,
        );
        await confirmsGrow(pubs, 300, 10_000, dumpAll(nodes));
        await Promise.all(pubs.map((p) => p.stop()));
        console.log(
          `follower paused: ${paused.name} dropped from the ISR ${dropped.time - stoppedAt} ms after SIGSTOP (${JSON.stringify(dropped.removed)}); ` +
            `${whilePaused} confirms from 1 s after SIGSTOP until then; 1000 more confirms within ${grewMs} ms after that; back in the ISR ${back.time - contAt} ms after SIGCONT`,
        );
        // Quiet now: the follower's data files become identical to the leader's.
        let diff: string[] = [];
        const end = Date.now() + 15_000;
        do {
          await sleep(250);
          diff = diffDigests(digest(leader.dataDir), digest(paused.dataDir));
        } while (diff.length > 0 && Date.now() < end);
        const files = Object.values(digest(leader.dataDir)).filter((h) => h !== 'dir');
        console.log(`follower paused: ${files.length} data files compared by sha256, ${diff.length} differ`);
        expect(diff, 'files differing between the leader and the resumed follower').toEqual([]);
        expect(files.length).toBeGreaterThan(0);

        const got = await drain(ep(paused), queues);
        const v = check(pubs, got);
        report('follower paused', v, pubs);
        expectNothingLost(v);
      } finally {
        for (const p of pubs) p.kill();
      }
    },
  );

  for (const minIsr of [1, 0]) {
    it(
      `a partition between the leader and the followers (etcd reachable), --min-isr ${minIsr}: confirms ${minIsr === 1 ? 'stop' : 'go on'}; after healing and a failover nothing confirmed is lost`,
      { timeout: 120_000 },
      async () => {
        // Each node listens on its own loopback address and advertises 127.0.0.1, where the test
        // relays its ports: cutting a node's replication relay partitions it from the others
        // while its etcd session stays up.
        const cluster = h.newClusterName();
        const relays: Relay[] = [];
        const nodes: LeveretNode[] = [];
        try {
          for (const [i, name] of ['n1', 'n2', 'n3'].entries()) {
            const host = `127.0.0.${i + 2}`;
            const node = await h.startNode(cluster, name, { host, advertiseHost: '127.0.0.1', extra: ['--min-isr', String(minIsr)] });
            nodes.push(node);
          }
          // the replication port of each node (from its 'cluster: joining' log)
          const replPort = new Map<string, number>();
          for (const n of nodes) {
            const j = await n.waitLog('cluster: joining');
            replPort.set(n.name, j.replicationPort as number);
            for (const port of [n.port, n.httpPort, j.replicationPort as number]) relays.push(await Relay.open('127.0.0.1', n.host, port));
          }
          const { leader, followers, term } = await settled(nodes);
          const queues = ['fo-part-a', 'fo-part-b'];
          const pubs = startLoad(() => [leader], queues);
          try {
            await until('the ISR has all three', () => lastIsr(leader, term).length === 3, 20_000, dumpAll(nodes));
            await confirmsGrow(pubs, 500, 15_000, dumpAll(nodes));
            // the followers reach the leader at its advertised address: through the relay
            for (const f of followers) {
              const streaming = f.logs('replication: streaming from the leader').pop();
              expect(streaming?.leader, f.tail()).toBe(`127.0.0.1:${replPort.get(leader.name)}`);
            }
            const repl = relays.find((r) => r.targetHost === leader.host && r.port === replPort.get(leader.name))!;
            const cutAt = Date.now();
            repl.cut();
            const alone = await leader.waitLog(
              'replication: ISR changed',
              (l) => l.time >= cutAt && (l.isr as string[]).length === 1,
              30_000,
            );
            const aloneAt = Date.now();
            if (minIsr === 1) {
              await sleep(3000);
              const during = confirmsOf(pubs).filter((c) => c.at > alone.time);
              console.log(
                `partition, --min-isr 1: leader alone in the ISR ${alone.time - cutAt} ms after the cut; ` +
                  `${confirmsOf(pubs).filter((c) => c.at > cutAt).length} confirms after the cut, ${during.length} after the ISR shrank`,
              );
              expect(during, 'confirms while no follower is in the ISR').toEqual([]);
              // nor before that: the followers in the ISR could not ack anything after the cut
              expect(confirmsOf(pubs).filter((c) => c.at > cutAt + 1000)).toEqual([]);
            } else {
              await confirmsGrow(pubs, 500, 10_000, dumpAll(nodes));
              const stalled = confirmsOf(pubs).filter((c) => c.at > cutAt + 1000 && c.at < alone.time).length;
              console.log(
                `partition, --min-isr 0: leader alone in the ISR ${alone.time - cutAt} ms after the cut (${stalled} confirms in between, ` +
                  `while the cut followers were still in the ISR); ` +
                  `${confirmsOf(pubs).filter((c) => c.at > alone.time).length} confirms while alone (${Date.now() - aloneAt} ms)`,
              );
            }
            const healAt = Date.now();
            repl.heal();
            await until('the ISR has all three again', () => lastIsr(leader, term).length === 3, 30_000, dumpAll(nodes));
            console.log(`partition healed: all three in the ISR ${Date.now() - healAt} ms later`);
            await confirmsGrow(pubs, 300, 15_000, dumpAll(nodes));
            await Promise.all(pubs.map((p) => p.stop()));
            // and a failover: the new leader has everything confirmed
            leader.signal('SIGKILL');
            const next = await until('a new leader', () => leaderLine(followers, term), 20_000, dumpAll(nodes));
            const got = await drain(ep(next.node), queues);
            const v = check(pubs, got);
            report(`partition --min-isr ${minIsr}, then kill -9 of the leader`, v, pubs);
            expectNothingLost(v);
          } finally {
            for (const p of pubs) p.kill();
          }
        } finally {
          for (const r of relays) await r.close();
        }
      },
    );
  }
});
