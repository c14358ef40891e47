// Issue 15 groundwork: membership, leader election and fencing on etcd, each elector in its own
// process (test/fixtures/cluster-elector.cjs) so that it can be killed with -9 or paused.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/broker';
import { startEtcd, type StartedEtcd } from './helpers/etcd';

const FIXTURE = path.join(__dirname, 'fixtures', 'cluster-elector.cjs');
const TTL = 2;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ev {
  ev: string;
  t: number;
  [k: string]: unknown;
}

class Elector {
  readonly events: Ev[] = [];
  readonly exited: Promise<number | null>;
  private stderr = '';
  private partial = '';

  constructor(
    readonly name: string,
    readonly proc: ChildProcessWithoutNullStreams,
  ) {
    proc.stdout.on('data', (d: Buffer) => {
      const lines = (this.partial + d.toString()).split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) this.events.push(JSON.parse(l) as Ev);
    });
    proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  }

  of(kind: string): Ev[] {
    return this.events.filter((e) => e.ev === kind);
  }

  /** The role from the last role-changing event. */
  role(): string | undefined {
    const last = this.events.filter((e) => ['leader', 'follower', 'waiting', 'demoted'].includes(e.ev)).pop();
    return last?.ev;
  }

  async waitFor(what: string, pred: (e: Ev) => boolean, timeoutMs: number): Promise<Ev> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > until) {
        const tail = this.events.filter((e) => e.ev !== 'probe' && e.ev !== 'renewed').slice(-15);
        throw new Error(
          `${this.name}: no ${what} within ${timeoutMs} ms; last events:\n` +
            tail.map((e) => JSON.stringify(e)).join('\n') +
            `\nstderr: ${this.stderr}`,
        );
      }
      await sleep(20);
    }
  }

  send(cmd: object): void {
    this.proc.stdin.write(JSON.stringify(cmd) + '\n');
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }
}

let etcd: StartedEtcd;
const running: Elector[] = [];
let clusterSeq = 0;

function spawnElector(cluster: string, name: string, extra: string[] = [], etcdUrl = etcd.endpoint): Elector {
  const proc = spawn(process.execPath, [FIXTURE, '--etcd', etcdUrl, '--cluster', cluster, '--name', name, '--ttl', String(TTL), ...extra], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const e = new Elector(name, proc);
  running.push(e);
  return e;
}

function newCluster(): string {
  return `t${process.pid}-${++clusterSeq}`;
}

interface Interval {
  node: string;
  term: number;
  from: number;
  until: number;
}

/**
 * Each process's belief "I am leader of term T" as [from, until]: from its 'leader' event to the
 * latest deadline it reported for T (renewals and probes), cut short by a demotion for T.
 */
function leadership(electors: Elector[]): Interval[] {
  const out: Interval[] = [];
  for (const el of electors) {
    for (const l of el.of('leader')) {
      const term = l.term as number;
      const sameTerm = el.events.filter((e) => (e.ev === 'renewed' || e.ev === 'probe' || e.ev === 'leader') && e.term === term);
      let until = Math.max(...sameTerm.map((e) => e.until as number));
      const demoted = el.of('demoted').find((d) => d.term === term);
      if (demoted) until = Math.min(until, demoted.at as number);
      out.push({ node: el.name, term, from: l.from as number, until });
    }
  }
  return out;
}

/** No two processes believed themselves leader with a valid deadline at the same moment. */
function expectNoOverlap(electors: Elector[]): Interval[] {
  const iv = leadership(electors);
  for (const a of iv) {
    for (const b of iv) {
      if (a === b || a.node === b.node) continue;
      const disjoint = a.until <= b.from || b.until <= a.from;
      expect(disjoint, `leadership overlaps: ${JSON.stringify(a)} and ${JSON.stringify(b)}`).toBe(true);
    }
  }
  // and every "yes, I lead" a process acted on lies inside its own interval
  for (const el of electors) {
    for (const p of el.of('probe')) {
      const mine = iv.find((i) => i.node === el.name && i.term === p.term);
      expect(mine, `${el.name} probed term ${String(p.term)} without a leader event`).toBeDefined();
      const at = p.at as number;
      expect(at).toBeGreaterThanOrEqual(mine!.from);
      expect(at).toBeLessThan(mine!.until);
      expect(at).toBeLessThan(p.until as number);
    }
  }
  return iv;
}

async function waitForOneLeader(electors: Elector[], timeoutMs: number): Promise<{ leader: Elector; term: number }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const leaders = electors.filter((e) => e.role() === 'leader');
    if (leaders.length === 1) {
      const term = leaders[0].of('leader').pop()!.term as number;
      const others = electors.filter((e) => e !== leaders[0]);
      const agree = others.every((e) => {
        const f = e.of('follower').pop();
        return e.role() === 'follower' && f?.leader === leaders[0].name && f?.term === term;
      });
      if (agree) return { leader: leaders[0], term };
    }
    if (Date.now() > until) {
      throw new Error(`no single agreed leader within ${timeoutMs} ms: ` + electors.map((e) => `${e.name}=${e.role()}`).join(' '));
    }
    await sleep(20);
  }
}

const isrOf = (e: Elector) => ((e.of('isr').pop()?.nodes as string[] | undefined) ?? []).slice().sort();

beforeAll(async () => {
  etcd = await startEtcd();
}, 20_000);

afterEach(async () => {
  for (const e of running.splice(0)) {
    e.signal('SIGCONT');
    e.signal('SIGKILL');
    await e.exited;
  }
});

afterAll(async () => {
  await etcd?.stop();
});

describe('cluster election on etcd', { timeout: 20_000 }, () => {
  it('refuses bad endpoints and an unreachable etcd with a clear message', async () => {
    const bad = spawnElector(newCluster(), 'a', [], 'ftp://127.0.0.1:2379');
    expect(await bad.exited).toBe(2);
    const err = bad.of('error')[0];
    expect(err.code).toBe('bad-endpoint');
    expect(err.message).toContain('expected http://host:port');

    const port = await freePort();
    const started = Date.now();
    const away = spawnElector(newCluster(), 'a', [], `http://127.0.0.1:${port}`);
    expect(await away.exited).toBe(2);
    expect(Date.now() - started).toBeLessThan(5000);
    const err2 = away.of('error')[0];
    expect(err2.code).toBe('etcd-unreachable');
    expect(err2.message).toContain(`cannot reach etcd at http://127.0.0.1:${port}`);
  });

  it('refuses a second live process with the same node name', async () => {
    const cluster = newCluster();
    const first = spawnElector(cluster, 'a');
    await first.waitFor('leadership', (e) => e.ev === 'leader', 5000);
    const twin = spawnElector(cluster, 'a');
    expect(await twin.exited).toBe(2);
    const err = twin.of('error')[0];
    expect(err.code).toBe('name-in-use');
    expect(err.message).toContain(`node name "a" is already registered in cluster "${cluster}"`);
    expect(first.role()).toBe('leader');
  });

  it('elects exactly one leader of three, and a new one with a higher term within TTL + 2 s of kill -9', async () => {
    const cluster = newCluster();
    const electors = ['a', 'b', 'c'].map((n) => spawnElector(cluster, n, ['--auto-isr']));
    const { leader, term } = await waitForOneLeader(electors, 5000);
    for (const e of electors) {
      await e.waitFor('ISR of three', (ev) => ev.ev === 'isr' && (ev.nodes as string[]).length === 3, 5000);
      await e.waitFor('three members', (ev) => ev.ev === 'members' && (ev.names as string[]).length === 3, 5000);
    }
    expect(isrOf(leader)).toEqual(['a', 'b', 'c']);
    // Three nodes raced to bootstrap the ISR: it was created once, in the winner's own claim, as [winner].
    const kv = new Etcd3({ hosts: etcd.endpoint });
    try {
      const isrKey = `/leveret/${cluster}/isr`;
      const nowRes = await kv.get(isrKey).exec();
      expect(Number(nowRes.kvs[0].create_revision)).toBe(term);
      expect(await kv.get(isrKey).revision(term).json()).toEqual([leader.name]);
      const members = await kv.getAll().prefix(`/leveret/${cluster}/members/`).json();
      expect(Object.keys(members).sort()).toEqual(['a', 'b', 'c'].map((n) => `/leveret/${cluster}/members/${n}`));
      expect(members[`/leveret/${cluster}/members/a`]).toMatchObject({ name: 'a', advertiseHost: '127.0.0.1' });
    } finally {
      kv.close();
    }

    const killedAt = now();
    leader.signal('SIGKILL');
    await leader.exited;
    const survivors = electors.filter((e) => e !== leader);
    const next = await waitForOneLeader(survivors, (TTL + 2) * 1000);
    const elected = next.leader.of('leader').pop()!;
    const failoverMs = (elected.from as number) - killedAt;
    console.log(`failover after kill -9: ${failoverMs.toFixed(0)} ms (TTL ${TTL} s); term ${term} -> ${next.term}`);
    expect(failoverMs).toBeLessThanOrEqual((TTL + 2) * 1000);
    expect(next.term).toBeGreaterThan(term);
    for (const e of survivors) {
      await e.waitFor(
        'the dead leader gone from members',
        (ev) => ev.ev === 'members' && !(ev.names as string[]).includes(leader.name) && ev.t > killedAt,
        3000,
      );
    }
    expectNoOverlap(electors);
  });

  it('a leader that stops revokes its lease, and another takes over without waiting for the TTL', async () => {
    const cluster = newCluster();
    const electors = ['a', 'b'].map((n) => spawnElector(cluster, n, ['--auto-isr']));
    const { leader, term } = await waitForOneLeader(electors, 5000);
    await leader.waitFor('ISR of two', (ev) => ev.ev === 'isr' && (ev.nodes as string[]).length === 2, 5000);
    const stopAt = now();
    leader.send({ cmd: 'stop' });
    expect(await leader.exited).toBe(0);
    expect(leader.of('demoted').pop()).toMatchObject({ term, reason: 'stopping' });
    const other = electors.find((e) => e !== leader)!;
    const won = await other.waitFor('leadership', (e) => e.ev === 'leader' && (e.term as number) > term, 1500);
    console.log(`handover after a clean stop: ${((won.from as number) - stopAt).toFixed(0)} ms`);
    expectNoOverlap(electors);
  });

  it('a leader paused past its TTL sees itself demoted on SIGCONT, never leads that term again, and its ISR write fails', async () => {
    const cluster = newCluster();
    const electors = ['a', 'b', 'c'].map((n) => spawnElector(cluster, n, ['--auto-isr']));
    const { leader: old, term } = await waitForOneLeader(electors, 5000);
    await old.waitFor('ISR of three', (ev) => ev.ev === 'isr' && (ev.nodes as string[]).length === 3, 5000);

    const stoppedAt = now();
    old.signal('SIGSTOP');
    const others = electors.filter((e) => e !== old);
    const next = await waitForOneLeader(others, (TTL + 2) * 1000);
    expect(next.term).toBeGreaterThan(term);
    const pausedFor = TTL * 1000 + 1500;
    await sleep(Math.max(0, stoppedAt + pausedFor - now()));
    const resumedAt = now();
    old.signal('SIGCONT');

    const demoted = await old.waitFor('demoted', (e) => e.ev === 'demoted' && e.term === term, 3000);
    // Its deadline had passed while it was stopped: it could not have confirmed after it.
    expect(demoted.until as number).toBeLessThan(resumedAt);
    const afterResume = old.events.filter((e) => e.t >= resumedAt);
    expect(afterResume.filter((e) => (e.ev === 'probe' || e.ev === 'leader') && e.term === term)).toEqual([]);
    const lastOldProbe = old
      .of('probe')
      .filter((e) => e.term === term)
      .pop();
    if (lastOldProbe) expect(lastOldProbe.at as number).toBeLessThan(demoted.until as number);

    // The deposed leader tries to change the ISR: refused locally, and refused by etcd when sent anyway.
    old.send({ cmd: 'set-isr', nodes: [old.name] });
    const local = await old.waitFor('local ISR refusal', (e) => e.ev === 'isr-write' && e.via === 'node' && e.t >= resumedAt, 3000);
    expect(local.ok).toBe(false);
    expect(local.code).toBe('not-leader');
    old.send({ cmd: 'stale-isr-write', nodes: [old.name] });
    const remote = await old.waitFor('etcd ISR refusal', (e) => e.ev === 'isr-write' && e.via === 'etcd', 3000);
    expect(remote.ok).toBe(false);
    expect(remote.code).toBe('not-leader');
    expect(remote.message).toContain(`term ${term} is over`);

    // It comes back as a follower of the new leader, on a new lease.
    await old.waitFor('following the new leader', (e) => e.ev === 'follower' && e.term === next.term && e.t >= resumedAt, (TTL + 2) * 1000);
    expect(isrOf(next.leader)).toContain(next.leader.name);
    const iv = expectNoOverlap(electors);
    const oldIv = iv.find((i) => i.node === old.name && i.term === term)!;
    const newIv = iv.find((i) => i.term === next.term)!;
    console.log(
      `pause: old leader valid until ${(oldIv.until - stoppedAt).toFixed(0)} ms after SIGSTOP, ` +
        `new leader from ${(newIv.from - stoppedAt).toFixed(0)} ms (gap ${(newIv.from - oldIv.until).toFixed(0)} ms); ` +
        `demoted on SIGCONT after ${((demoted.at as number) - resumedAt).toFixed(0)} ms: ${String(demoted.reason)}`,
    );
  });

  it('a node outside the ISR never becomes leader', async () => {
    const cluster = newCluster();
    const a = spawnElector(cluster, 'a');
    await a.waitFor('leadership', (e) => e.ev === 'leader', 5000);
    const b = spawnElector(cluster, 'b');
    await b.waitFor('following a', (e) => e.ev === 'follower' && e.leader === 'a', 5000);
    expect(isrOf(b)).toEqual(['a']);

    const killedAt = now();
    a.signal('SIGKILL');
    await a.exited;
    const waiting = await b.waitFor('waiting outside the ISR', (e) => e.ev === 'waiting' && e.t > killedAt, (TTL + 2) * 1000);
    expect(waiting.reason).toContain('not in the ISR');
    await sleep(1500); // well past the point where a member of the ISR would have won
    expect(b.of('leader')).toEqual([]);
    expect(b.of('probe')).toEqual([]);
    expect(b.role()).toBe('waiting');
  });

  // Last, as it restarts the etcd the other tests share.
  it('etcd killed and restarted: the leader demotes itself while etcd is away, and one leader is elected after', async () => {
    const cluster = newCluster();
    const electors = ['a', 'b', 'c'].map((n) => spawnElector(cluster, n, ['--auto-isr']));
    const { leader: old, term } = await waitForOneLeader(electors, 5000);
    await old.waitFor('ISR of three', (ev) => ev.ev === 'isr' && (ev.nodes as string[]).length === 3, 5000);

    const downAt = now();
    await etcd.kill();
    const demoted = await old.waitFor('demoted', (e) => e.ev === 'demoted' && e.term === term, (TTL + 1) * 1000);
    expect(demoted.at as number).toBeLessThan(downAt + TTL * 1000);
    await sleep(Math.max(0, downAt + TTL * 1000 + 500 - now()));
    await etcd.restart();
    const upAt = now();
    const next = await waitForOneLeader(electors, 10_000);
    expect(next.term).toBeGreaterThan(term);
    const elected = next.leader.of('leader').pop()!;
    expect((elected.from as number) - upAt).toBeLessThanOrEqual((TTL + 2) * 1000);
    console.log(
      `etcd down ${(upAt - downAt).toFixed(0)} ms: leader demoted ${((demoted.at as number) - downAt).toFixed(0)} ms ` +
        `after the kill; new leader ${((elected.from as number) - upAt).toFixed(0)} ms after etcd was healthy again`,
    );
    expectNoOverlap(electors);
  });
});
