// Issue 15, the lifecycle of a cluster node: three Leveret processes (dist/cli.js with the cluster
// flags) and one real etcd. One node leads and serves AMQP and HTTP; the others follow (catch-up
// of their data directory, no listener). kill -9, SIGSTOP/SIGCONT and SIGTERM of the leader hand
// the service to another node; a paused leader's clients are closed with 320 when it resumes.
// Messages across failovers are checked in test/cluster-failover.test.ts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { freePort, startBroker } from './helpers/broker';
import { ClusterNode } from '../src/cluster/cluster-node';
import { closeReason, waitFor } from './helpers/clients';
import {
  CLI,
  ROOT,
  TTL,
  expectOneAtATime,
  probe,
  publishConfirmed,
  servedBy,
  settled,
  tryAmqp,
  useCluster,
  type LeveretNode,
  type LogLine,
} from './helpers/cluster';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const h = useCluster();
const startNode = h.startNode.bind(h);
const startCluster = () => h.startCluster();

describe('a Leveret cluster node', { timeout: 90_000 }, () => {
  it('three nodes: exactly one serves AMQP and HTTP, the others follow and forward clients to it; a duplicate node name exits 2', async () => {
    const nodes = await startCluster();
    const { leader, followers, term } = await settled(nodes);
    const conn = await tryAmqp(leader.port, 5000);
    expect(conn, leader.tail()).not.toBeNull();
    await publishConfirmed(conn!, 'h-wire-q');
    await conn!.close();
    for (const f of followers) {
      // A follower's client ports forward to the leader, which serves the connection.
      const via = await tryAmqp(f.port, 5000);
      expect(via, f.tail()).not.toBeNull();
      expect((via!.connection as unknown as { serverProperties: { node?: string } }).serverProperties.node).toBe(leader.name);
      await via!.close();
      const overview = await fetch(`http://127.0.0.1:${f.httpPort}/api/overview`, {
        headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      });
      expect(((await overview.json()) as { node: string }).node).toBe(leader.name);
      const fl = f.logs('cluster: follower').pop()!;
      expect(fl).toMatchObject({ role: 'follower', term, leader: leader.name });
    }
    const res = await fetch(`http://127.0.0.1:${leader.httpPort}/api/overview`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { node: string }).node).toBe(leader.name);
    // The leader's transition was logged with its term and reason.
    expect(leader.logs('cluster: leader')[0]).toMatchObject({ role: 'leader', term, leader: leader.name, reason: 'won the election' });

    // A second process with a live node's name is refused after waiting one TTL and a bit.
    const t0 = Date.now();
    const dup = await startNode(nodes[0].lines.find((l) => l.msg === 'cluster: joining')!.cluster as string, followers[0].name);
    const exit = await dup.exited;
    expect(exit.code, dup.tail()).toBe(2);
    expect(dup.errText).toContain(`node name "${followers[0].name}" is already registered`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(TTL * 1000);
    expect(fs.readdirSync(dup.dataDir)).toEqual([]); // the store was never opened
  });

  it('kill -9 of the leader: another node serves AMQP within TTL + 2 s', async () => {
    const nodes = await startCluster();
    const { leader, followers, term } = await settled(nodes);
    const conn = await tryAmqp(leader.port, 5000);
    await publishConfirmed(conn!, 'h-wire-q');
    conn!.on('error', () => undefined);
    const t0 = Date.now();
    leader.signal('SIGKILL');
    let served: LeveretNode | undefined;
    while (!served && Date.now() - t0 < 15_000) {
      for (const f of followers) {
        const c = await tryAmqp(f.port, 1000);
        if (c) {
          // a follower's port forwards to whichever node leads: the one named in connection.start
          const node = (c.connection as unknown as { serverProperties: { node?: string } }).serverProperties.node;
          served = followers.find((n) => n.name === node) ?? f;
          await publishConfirmed(c, 'h-wire-q2');
          await c.close();
          break;
        }
      }
      if (!served) await sleep(25);
    }
    const failoverMs = Date.now() - t0;
    console.log(`kill -9 failover: first AMQP connection on ${served?.name} ${failoverMs} ms after the kill (TTL ${TTL} s)`);
    expect(served, followers.map((f) => f.tail()).join('\n')).toBeDefined();
    expect(failoverMs).toBeLessThan((TTL + 2) * 1000);
    const other = followers.find((f) => f !== served)!;
    const newTerm = served!.logs('cluster: leading (serving AMQP, HTTP and replication)').pop()!.term as number;
    expect(newTerm).toBeGreaterThan(term);
    // The remaining follower follows the new leader (and forwards its clients there).
    await other.waitLog('cluster: data directory in step with the leader', (l) => l.term === newTerm);
    expect(await servedBy(other.port)).toBe(served!.name);
  });

  it('SIGSTOP of the leader past the TTL, then SIGCONT: its clients get 320, it follows, never two serve at once', async () => {
    const nodes = await startCluster();
    const { leader, followers, term } = await settled(nodes);
    const held = await tryAmqp(leader.port, 5000);
    await publishConfirmed(held!, 'h-wire-q');
    const closed = new Promise<unknown>((resolve) => {
      held!.on('error', () => undefined);
      held!.on('close', (err: unknown) => resolve(err));
    });
    const watch = probe(nodes);
    await sleep(300);
    const t0 = Date.now();
    leader.signal('SIGSTOP');
    // Another node takes over while the leader is paused.
    let served: LeveretNode | undefined;
    while (!served && Date.now() - t0 < 15_000) {
      for (const f of followers) if (f.logs('cluster: leading (serving AMQP, HTTP and replication)').length > 0) served = f;
      await sleep(20);
    }
    expect(served, followers.map((f) => f.tail()).join('\n')).toBeDefined();
    const c = await tryAmqp(served!.port, 5000);
    expect(c).not.toBeNull();
    await c!.close();
    const takeoverMs = Date.now() - t0;
    const newTerm = served!.logs('cluster: leading (serving AMQP, HTTP and replication)').pop()!.term as number;
    // Paused longer than the TTL in any case, and a little past the takeover.
    await sleep(Math.max(500, TTL * 1000 + 500 - (Date.now() - t0)));
    const pausedMs = Date.now() - t0;
    leader.signal('SIGCONT');
    const resumed = Date.now();
    const err = await Promise.race([closed, sleep(10_000).then(() => 'no close within 10 s')]);
    const closedMs = Date.now() - resumed;
    const reason = closeReason(err);
    expect(reason.code, String(err)).toBe(320);
    expect(reason.text).toContain(`leadership of term ${term} lost`);
    const demoted = await leader.waitLog('cluster: demoted', (l) => l.term === term, 5000);
    expect(String(demoted.reason)).toContain('lease');
    await leader.waitLog('cluster: follower', (l) => l.term === newTerm && l.leader === served!.name, 10_000);
    await leader.waitLog('cluster: data directory in step with the leader', (l) => l.term === newTerm, 10_000);
    await sleep(500);
    const accepted = await watch.stop();
    const order = expectOneAtATime(accepted);
    expect(order).toEqual([leader.name, served!.name]);
    expect(await servedBy(leader.port)).toBe(served!.name);
    console.log(
      `SIGSTOP: ${served!.name} served ${takeoverMs} ms after the stop; paused ${pausedMs} ms; ` +
        `the held client saw 320 ${closedMs} ms after SIGCONT; AMQP accepted by ${order.join(' → ')} (${accepted.length} probe handshakes)`,
    );
  });

  it('a node whose directory carries catch-up-incomplete never leads; once caught up it may', async () => {
    const cluster = h.newClusterName();
    const marked = await startNode(cluster, 'm1');
    // An unfinished copy, as a follower killed during its catch-up leaves it.
    fs.writeFileSync(path.join(marked.dataDir, 'catch-up-incomplete'), '');
    const waiting = await marked.waitLog('cluster: waiting', (l) => String(l.reason).includes('catch-up-incomplete'));
    expect(String(waiting.reason)).toContain('may not lead until a catch-up completes');
    await sleep(TTL * 1000 + 500);
    expect(marked.logs('cluster: leader')).toEqual([]);
    expect(await servedBy(marked.port)).toBeNull();

    // A node with a sound directory leads; the marked one follows, and its catch-up removes the mark.
    const sound = await startNode(cluster, 'm2');
    const { term } = await settled([marked, sound]);
    expect(sound.logs('cluster: leader')).toHaveLength(1);
    expect(fs.existsSync(path.join(marked.dataDir, 'catch-up-incomplete'))).toBe(false);
    const conn = await tryAmqp(sound.port, 5000);
    await publishConfirmed(conn!, 'h-wire-q');
    await conn!.close();

    // Now complete, it takes over when the leader leaves.
    sound.signal('SIGTERM');
    const led = await marked.waitLog('cluster: leading (serving AMQP, HTTP and replication)', (l) => (l.term as number) > term, 10_000);
    expect(led.leader).toBe('m1');
    const c = await tryAmqp(marked.port, 5000);
    expect(c).not.toBeNull();
    await c!.close();
  });

  it('a newcomer with an empty directory never leads a cluster that has data, even if in the ISR', async () => {
    const cluster = h.newClusterName();
    const first = await startNode(cluster, 'f1');
    await first.waitLog('cluster: leading (serving AMQP, HTTP and replication)');
    // The ISR policy adds a node only once it acked the stream: f2 joins for real first.
    const old = await startNode(cluster, 'f2');
    await first.waitLog('cluster: in-sync replicas', (l) => (l.isr as string[]).includes('f2'));
    const conn = await tryAmqp(first.port, 5000);
    await publishConfirmed(conn!, 'h-wire-q');
    await conn!.close();
    // Then it loses its disk: killed, its directory emptied, and back (once its old lease is gone)
    // with a wrong secret: its catch-up is refused before it writes anything, so its directory
    // stays empty, while the leader keeps it in the ISR until it has been silent for the lag bound.
    old.signal('SIGKILL');
    await old.exited;
    fs.rmSync(old.dataDir, { recursive: true, force: true });
    fs.mkdirSync(old.dataDir);
    await sleep(TTL * 1000 + 500);
    const newcomer = await startNode(cluster, 'f2', {
      dataDir: old.dataDir,
      port: old.port,
      httpPort: old.httpPort,
      extra: ['--cluster-secret', 'not-the-cluster-secret'],
    });
    await newcomer.waitLog('replication: following failed', (l) => l.code === 'auth');
    const isr = first.logs('cluster: in-sync replicas').pop();
    expect(isr?.isr).toContain('f2');
    first.signal('SIGTERM');
    expect((await first.exited).code).toBe(0);
    const waiting = await newcomer.waitLog('cluster: waiting', (l) => String(l.reason).includes('is empty'), 5000);
    expect(String(waiting.reason)).toContain('is empty while the ISR names f1: may not lead until a catch-up completes');
    await sleep(TTL * 1000);
    expect(newcomer.logs('cluster: leader')).toEqual([]);
    expect(await servedBy(newcomer.port)).toBeNull();
    expect(fs.readdirSync(newcomer.dataDir)).toEqual([]);
  });

  it('SIGTERM of the leader: it exits 0 and a new leader serves within 1 s of the revocation', async () => {
    const nodes = await startCluster();
    const { leader, followers, term } = await settled(nodes);
    // Only an ISR member may lead: caught up is not enough, the leader must have acked them in.
    await leader.waitLog('cluster: in-sync replicas', (l) => l.term === term && (l.isr as string[]).length === 3);
    const t0 = Date.now();
    leader.signal('SIGTERM');
    const exit = await leader.exited;
    const exitedMs = Date.now() - t0;
    expect(exit.code, leader.tail()).toBe(0);
    const revoked = leader.logs('cluster: left the cluster (lease revoked)')[0];
    expect(revoked, leader.tail()).toBeDefined();
    let served: LeveretNode | undefined;
    let line: LogLine | undefined;
    for (const f of followers) {
      line = await f.waitLog('cluster: leading (serving AMQP, HTTP and replication)', () => true, 5000).catch(() => undefined);
      if (line) {
        served = f;
        break;
      }
    }
    expect(served, followers.map((f) => f.tail()).join('\n')).toBeDefined();
    const elected = served!.logs('cluster: leader')[0];
    const c = await tryAmqp(served!.port, 5000);
    expect(c).not.toBeNull();
    await c!.close();
    const afterRevocation = line!.time - revoked.time;
    console.log(
      `SIGTERM: old leader exited ${exitedMs} ms after the signal (revocation logged at +${revoked.time - t0} ms); ` +
        `${served!.name} elected ${elected.time - revoked.time} ms and serving ${afterRevocation} ms after the revocation`,
    );
    expect(afterRevocation).toBeLessThan(1000);
  });
});

describe('ClusterNode: whyNotLead, resign and reconsider (in-process)', { timeout: 30_000 }, () => {
  it('a resigning leader hands over at once and does not campaign while whyNotLead gives a reason', async () => {
    const cluster = h.newClusterName();
    const unfit: Record<string, string | null> = { a: null, b: null };
    const events: string[] = [];
    const make = (name: string) => {
      const n = new ClusterNode({
        etcd: h.etcd.endpoint,
        clusterName: cluster,
        nodeName: name,
        advertiseHost: '127.0.0.1',
        replicationPort: 1,
        amqpPort: 1,
        httpPort: 1,
        leaseTtlSeconds: TTL,
        whyNotLead: () => unfit[name],
      });
      n.on('leader', (e: { term: number }) => events.push(`${name} leader ${e.term}`));
      n.on('demoted', (e: { term: number; reason: string }) => events.push(`${name} demoted ${e.term} ${e.reason}`));
      n.on('waiting', (e: { reason: string }) => events.push(`${name} waiting ${e.reason}`));
      // the ISR as the runtime's interim policy keeps it: every live member
      n.on('members', () => {
        if (n.isLeader()) void n.setIsr([...new Set([...n.members().map((m) => m.name), n.name])]).catch(() => undefined);
      });
      return n;
    };
    const a = make('a');
    const b = make('b');
    try {
      await a.start();
      await waitFor(() => a.isLeader(), 10_000, 'a leads');
      await b.start();
      await waitFor(() => b.role === 'follower' && a.isr().includes('b'), 10_000, 'b follows and is in the ISR');

      unfit.a = 'test: this directory is unfit';
      const t0 = Date.now();
      a.resign('refused to lead: test');
      expect(a.isLeader()).toBe(false);
      await waitFor(() => b.isLeader(), 5000, 'b leads');
      const handover = Date.now() - t0;
      await waitFor(() => a.role === 'follower', 5000, 'a follows b');
      expect(events).toContain(`a demoted ${events.find((e) => e.startsWith('a leader'))!.split(' ')[2]} refused to lead: test`);

      // b leaves; a may not campaign while its reason holds
      await b.stop();
      await waitFor(() => events.includes('a waiting test: this directory is unfit'), 5000, 'a waiting with the reason');
      await sleep(TTL * 1000);
      expect(a.role).toBe('waiting');
      expect(a.isLeader()).toBe(false);
      unfit.a = null;
      a.reconsider();
      await waitFor(() => a.isLeader(), 5000, 'a leads again after reconsider()');
      console.log(`resign: the other node led ${handover} ms after resign()`);
      expect(handover).toBeLessThan(1000);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('a cluster node when etcd goes away', { timeout: 60_000 }, () => {
  it('longer than the TTL: the leader closes its clients with 320, and leads again in the same process when etcd is back', async () => {
    // alone in its cluster: with the default --min-isr 1 no confirm could ever come
    const node = await startNode(h.newClusterName(), 'e1', ['--min-isr', '0']);
    const first = await node.waitLog('cluster: leading (serving AMQP, HTTP and replication)');
    const conn = await tryAmqp(node.port, 5000);
    await publishConfirmed(conn!, 'h-wire-kept');
    const closed = new Promise<unknown>((resolve) => {
      conn!.on('error', () => undefined);
      conn!.on('close', (err: unknown) => resolve(err));
    });
    const t0 = Date.now();
    await h.etcd.kill();
    const err = await Promise.race([closed, sleep(10_000).then(() => 'no close within 10 s')]);
    const closedMs = Date.now() - t0;
    expect(closeReason(err).code, String(err)).toBe(320);
    expect(closeReason(err).text).toContain(`leadership of term ${first.term as number} lost`);
    await node.waitLog('cluster: stepped down (broker stopped, store closed)');
    expect(await servedBy(node.port)).toBeNull();
    expect(node.exitCode()).toBeNull(); // the process stays
    await sleep(1000);
    const t1 = Date.now();
    await h.etcd.restart();
    const again = await node.waitLog(
      'cluster: leading (serving AMQP, HTTP and replication)',
      (l) => (l.term as number) > (first.term as number),
      20_000,
    );
    console.log(
      `etcd away: clients closed ${closedMs} ms after etcd was killed; leading again ${again.time - t1} ms after its restart began`,
    );
    const c = await tryAmqp(node.port, 5000);
    expect(c).not.toBeNull();
    const ch = await c!.createChannel();
    expect((await ch.checkQueue('h-wire-kept')).messageCount).toBe(1); // its own directory, reopened
    await c!.close();
  });
});

describe('cluster flags', { timeout: 30_000 }, () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [CLI, '--data-dir', path.join(os.tmpdir(), 'leveret-never-created'), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 20_000,
    });

  it('refuse bad values with exit 2 and a clear message', async () => {
    const bad = run(['--cluster-etcd', 'ftp://127.0.0.1:2379', '--node-name', 'n1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(
      'leveret: --cluster-etcd must list etcd endpoints as http://host:port[,http://host:port...]: invalid etcd endpoint "ftp://127.0.0.1:2379": expected http://host:port\n',
    );
    const fromEnv = run([], { LEVERET_CLUSTER_ETCD: 'http://127.0.0.1:2379/v3' });
    expect(fromEnv.status).toBe(2);
    expect(fromEnv.stderr).toContain('environment variable LEVERET_CLUSTER_ETCD must list etcd endpoints');
    expect(fromEnv.stderr).toContain('only http://host:port is accepted');

    const name = run(['--cluster-etcd', h.etcd.endpoint, '--node-name', 'leveret@host']);
    expect(name.status).toBe(2);
    expect(name.stderr).toContain('leveret: --node-name in cluster mode: invalid node name "leveret@host"');

    const isr = run(['--cluster-etcd', h.etcd.endpoint, '--node-name', 'n1', '--min-isr=-1']);
    expect(isr.status).toBe(2);
    expect(isr.stderr).toBe('leveret: --min-isr must be an integer from 0 to 255, got "-1"\n');

    const clusterName = run(['--cluster-etcd', h.etcd.endpoint, '--cluster-name', 'a/b']);
    expect(clusterName.status).toBe(2);
    expect(clusterName.stderr).toContain('--cluster-name must be a valid name (invalid cluster name "a/b"');

    const port = await freePort();
    const t0 = Date.now();
    const away = run(['--cluster-etcd', `http://127.0.0.1:${port}`, '--node-name', 'n1']);
    expect(away.status).toBe(2);
    expect(away.stderr).toContain(`leveret: cannot reach etcd at http://127.0.0.1:${port} within 2000 ms`);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(fs.existsSync(path.join(os.tmpdir(), 'leveret-never-created'))).toBe(false);
  });

  it('come from flags, the environment and the config file like every setting', () => {
    // The built config: it requires src/cluster's checks only when a cluster value is given,
    // which Node's require resolves in dist/ (not from the .ts sources vitest runs in-process).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ConfigError, loadConfig, redactConfig } = require(path.join(ROOT, 'dist', 'config.js')) as typeof import('../src/config');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-cluster-config-')), 'config.json');
    h.dirs.push(path.dirname(file));
    fs.writeFileSync(
      file,
      JSON.stringify({ clusterEtcd: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'], clusterName: 'prod', minIsr: 2 }),
    );
    const config = loadConfig(['--config', file, '--node-name', 'n1', '--cluster-lease-ttl', '3'], { LEVERET_CLUSTER_SECRET: 's3cret' });
    expect(config).toMatchObject({
      clusterEtcd: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
      clusterName: 'prod',
      minIsr: 2,
      clusterLeaseTtl: 3,
      clusterSecret: 's3cret',
      replicationPort: 5679,
    });
    expect(redactConfig(config).clusterSecret).toBe('***');
    expect(loadConfig(['--cluster-etcd', 'http://a:1, http://b:2', '--node-name', 'n1'], {}).clusterEtcd).toEqual([
      'http://a:1',
      'http://b:2',
    ]);
    // an empty value is no cluster, and then the node name need not suit etcd
    expect(loadConfig(['--node-name', 'leveret@x'], { LEVERET_CLUSTER_ETCD: '' }).clusterEtcd).toEqual([]);
    fs.writeFileSync(file, JSON.stringify({ clusterEtcd: 'https://10.0.0.1:2379' }));
    expect(() => loadConfig(['--config', file, '--node-name', 'n1'], {})).toThrow(
      `config file ${file}: key "clusterEtcd" must list etcd endpoints as http://host:port[,http://host:port...]: etcd endpoint "https://10.0.0.1:2379": TLS to etcd is not supported yet`,
    );
    expect(() => loadConfig(['--cluster-etcd', 'http://a:1'], { LEVERET_NODE_NAME: 'a b' })).toThrow(ConfigError);
  });

  it('without --cluster-etcd a node starts as before and loads nothing from src/cluster', async () => {
    const hook = path.join(ROOT, 'test', 'fixtures', 'report-cluster-modules.cjs');
    const broker = await startBroker({ env: { NODE_OPTIONS: `--require ${hook}` } });
    try {
      const conn = await amqp.connect(broker.url);
      await publishConfirmed(conn, 'h-wire-single');
      await conn.close();
      expect(broker.output()).toContain('Leveret listening for AMQP');
      expect(broker.output()).not.toContain('[cluster module loaded]');
      // the hook works: a process that loads a cluster module says so
      const probeLoad = spawnSync(
        process.execPath,
        ['--require', hook, '-e', `require(${JSON.stringify(path.join(ROOT, 'dist', 'cluster', 'keys.js'))})`],
        {
          encoding: 'utf8',
        },
      );
      expect(probeLoad.stderr).toContain('[cluster module loaded]');
    } finally {
      await broker.stop();
    }
  });
});
