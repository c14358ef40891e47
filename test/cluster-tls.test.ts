// Issue 15: the TLS ports through the follower proxies. Three dist/cli.js nodes, one etcd, the
// same CA-signed certificate on every node (made here with Debian's openssl). A follower binds
// its own amqps and HTTPS ports and passes the TLS bytes to the leader's (no termination on the
// follower: the client checks the leader's certificate); the leader advertises its TLS ports in
// its member key. After kill -9 of the leader the node that takes over serves amqps itself.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import amqp from 'amqplib';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMember } from '../src/cluster/member';
import { clusterPort, settled, useCluster, type LeveretNode } from './helpers/cluster';
import { api } from './helpers/http';

const h = useCluster();
const LEADING = 'cluster: leading (serving AMQP, HTTP and replication)';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-cluster-tls-'));
const file = (name: string) => path.join(dir, name);

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
  if (r.error) throw new Error(`openssl: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

let ca: Buffer;
let serverCert: X509Certificate;

beforeAll(() => {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Leveret Cluster Test CA',
  ]);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/O=Leveret/CN=localhost']);
  fs.writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  ]);
  ca = fs.readFileSync(file('ca.pem'));
  serverCert = new X509Certificate(fs.readFileSync(file('server.pem')));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface TlsNode {
  node: LeveretNode;
  amqps: number;
  https: number;
}

/** Three nodes of one cluster, each with the certificate on its own amqps and HTTPS ports. */
async function startTlsCluster(): Promise<{ cluster: string; nodes: TlsNode[] }> {
  const cluster = h.newClusterName();
  const nodes = await Promise.all(
    ['n1', 'n2', 'n3'].map(async (name) => {
      const amqps = await clusterPort();
      const httpsPort = await clusterPort();
      const node = await h.startNode(
        cluster,
        name,
        [
          ['--tls-port', String(amqps)],
          ['--https-port', String(httpsPort)],
          ['--tls-cert', file('server.pem')],
          ['--tls-key', file('server.key')],
        ].flat(),
      );
      return { node, amqps, https: httpsPort };
    }),
  );
  return { cluster, nodes };
}

const served = (c: amqp.ChannelModel): string | undefined =>
  (c.connection as unknown as { serverProperties: { node?: string } }).serverProperties.node;

/** The certificate the client's TLS session ended with (the leader's, if nothing terminated TLS on the way). */
const peerCert = (c: amqp.ChannelModel): string =>
  ((c.connection as unknown as { stream: TLSSocket }).stream.getPeerCertificate() as { fingerprint256: string }).fingerprint256;

function amqps(port: number, name: string): Promise<amqp.ChannelModel> {
  return amqp.connect(`amqps://guest:guest@127.0.0.1:${port}`, { ca: [ca], clientProperties: { connection_name: name } });
}

/** An amqps connection served by `leader` through `port`, retried while the cluster is still pointing there. */
async function amqpsServedBy(port: number, leader: string, name: string, timeoutMs = 20_000): Promise<amqp.ChannelModel> {
  const until = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const c = await amqps(port, name).catch((e: Error) => e);
    if (!(c instanceof Error)) {
      if (served(c) === leader) return c;
      last = `served by ${served(c)}`;
      await c.close().catch(() => undefined);
    } else last = c.message;
    if (Date.now() > until) throw new Error(`amqps on ${port} not served by ${leader} within ${timeoutMs} ms: ${last}`);
    await sleep(200);
  }
}

function httpsGet(port: number, urlPath: string): Promise<{ status: number; json: Record<string, unknown>; cert: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: urlPath, ca: [ca], auth: 'guest:guest', agent: false }, (res) => {
      const cert = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(body) as Record<string, unknown>, cert }));
    });
    req.on('error', reject);
  });
}

async function memberKey(cluster: string, name: string): Promise<Record<string, unknown>> {
  const kv = new Etcd3({ hosts: h.etcd.endpoint });
  try {
    const v = await kv.get(`/leveret/${cluster}/members/${name}`).string();
    return JSON.parse(v ?? '{}') as Record<string, unknown>;
  } finally {
    kv.close();
  }
}

async function publishConfirmed(c: amqp.ChannelModel, queue: string, bodies: string[]): Promise<void> {
  const ch = await c.createConfirmChannel();
  await ch.assertQueue(queue, { durable: true });
  for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b), { persistent: true });
  await ch.waitForConfirms();
  await ch.close();
}

async function consumeAll(c: amqp.ChannelModel, queue: string, count: number, timeoutMs = 10_000): Promise<string[]> {
  const ch = await c.createChannel();
  const got: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${count} messages within ${timeoutMs} ms`)), timeoutMs);
    void ch.consume(queue, (m) => {
      if (m === null) return;
      got.push(m.content.toString());
      ch.ack(m);
      if (got.length === count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await ch.close();
  return got;
}

describe('TLS through the follower proxies', () => {
  it('amqps and HTTPS on a follower reach the leader with end-to-end TLS', async () => {
    const { cluster, nodes } = await startTlsCluster();
    const { leader, followers } = await settled(
      nodes.map((n) => n.node),
      30_000,
    );
    const L = nodes.find((n) => n.node === leader)!;
    const [f1, f2] = followers.map((f) => nodes.find((n) => n.node === f)!);

    // The leader advertises its TLS ports to the followers.
    const key = await memberKey(cluster, leader.name);
    expect(key).toMatchObject({ amqpPort: leader.port, httpPort: leader.httpPort, amqpsPort: L.amqps, httpsPort: L.https });
    // Each follower listens on its own TLS ports too.
    for (const f of [f1, f2]) {
      const listening = await f.node.waitLog('forwarding clients to the leader: proxies listening');
      expect(listening).toMatchObject({ amqpsPort: f.amqps, httpsPort: f.https });
    }

    // A publisher through one follower, a consumer through the other: both served by the leader,
    // both holding the leader's certificate (the follower has none of its own in the path).
    const pub = await amqpsServedBy(f1.amqps, leader.name, 'f15-pub');
    const sub = await amqpsServedBy(f2.amqps, leader.name, 'f15-sub');
    expect(peerCert(pub)).toBe(serverCert.fingerprint256);
    expect(peerCert(sub)).toBe(serverCert.fingerprint256);
    const bodies = Array.from({ length: 50 }, (_, i) => `tls-${i}`);
    await publishConfirmed(pub, 'f15-tls-q', bodies);
    expect(await consumeAll(sub, 'f15-tls-q', bodies.length)).toEqual(bodies);

    // The leader took both connections on its own amqps listener.
    const conns = (await api(leader.httpPort, 'GET', '/api/connections')).json as {
      port: number;
      client_properties: { connection_name?: string };
    }[];
    const ours = conns.filter((c) => ['f15-pub', 'f15-sub'].includes(c.client_properties.connection_name ?? ''));
    expect(ours.map((c) => c.port)).toEqual([L.amqps, L.amqps]);
    await pub.close();
    await sub.close();

    // HTTPS through either follower answers as the leader, with the leader's certificate.
    for (const f of [f1, f2]) {
      const r = await httpsGet(f.https, '/api/overview');
      expect(r.status).toBe(200);
      expect(r.json.node).toBe(leader.name);
      expect(r.cert).toBe(serverCert.fingerprint256);
      const n = await httpsGet(f.https, '/api/nodes');
      expect(n.status).toBe(200);
      const listed = n.json as unknown as { name: string; ports?: Record<string, number> }[];
      expect(listed.map((x) => x.name)).toContain(leader.name);
      // Every member's ports, TLS ones included, as the members advertise them in etcd.
      expect(listed.find((x) => x.name === leader.name)!.ports).toMatchObject({ amqps: L.amqps, https: L.https });
      expect(listed.find((x) => x.name === f.node.name)!.ports).toMatchObject({ amqps: f.amqps, https: f.https });
    }
  }, 90_000);

  it('after kill -9 of the leader, the new leader serves amqps itself and the other follower forwards to it', async () => {
    const { nodes } = await startTlsCluster();
    const { leader, term } = await settled(
      nodes.map((n) => n.node),
      30_000,
    );
    const before = await amqpsServedBy(nodes.find((n) => n.node !== leader)!.amqps, leader.name, 'f15-before');
    const bodies = Array.from({ length: 20 }, (_, i) => `kept-${i}`);
    await publishConfirmed(before, 'f15-tls-failover', bodies);
    before.on('error', () => undefined);

    leader.signal('SIGKILL');
    await leader.exited;
    const until = Date.now() + 30_000;
    let next: TlsNode | undefined;
    while (next === undefined) {
      next = nodes.find((n) => n.node !== leader && n.node.logs(LEADING).some((l) => (l.term as number) > term));
      if (next === undefined && Date.now() > until) throw new Error(`no new leader:\n${nodes.map((n) => n.node.tail()).join('\n')}`);
      await sleep(50);
    }
    const other = nodes.find((n) => n.node !== leader && n !== next)!;

    // The new leader's own amqps listener (not a proxy any more) serves, and has every confirmed message.
    const direct = await amqpsServedBy(next.amqps, next.node.name, 'f15-direct');
    expect(peerCert(direct)).toBe(serverCert.fingerprint256);
    expect(await consumeAll(direct, 'f15-tls-failover', bodies.length)).toEqual(bodies);
    const conns = (await api(next.node.httpPort, 'GET', '/api/connections')).json as {
      port: number;
      client_properties: { connection_name?: string };
    }[];
    expect(conns.find((c) => c.client_properties.connection_name === 'f15-direct')?.port).toBe(next.amqps);
    await direct.close();
    const own = await httpsGet(next.https, '/api/overview');
    expect([own.status, own.json.node]).toEqual([200, next.node.name]);

    // The remaining follower now passes TLS to the new leader.
    const via = await amqpsServedBy(other.amqps, next.node.name, 'f15-via');
    await via.close();
    const overview = await httpsGet(other.https, '/api/overview');
    expect([overview.status, overview.json.node]).toEqual([200, next.node.name]);
  }, 120_000);

  it('a follower with TLS under a leader without TLS closes its TLS clients at once, and still forwards plain AMQP', async () => {
    const cluster = h.newClusterName();
    const plain = await h.startNode(cluster, 'plain');
    await plain.waitLog(LEADING, () => true, 30_000);
    const amqpsPort = await clusterPort();
    const httpsPort = await clusterPort();
    const withTls = await h.startNode(
      cluster,
      'withtls',
      [
        ['--tls-port', String(amqpsPort)],
        ['--https-port', String(httpsPort)],
        ['--tls-cert', file('server.pem')],
        ['--tls-key', file('server.key')],
      ].flat(),
    );
    await withTls.waitLog('cluster: leader address known', (l) => l.leader === 'plain', 30_000);
    expect((await memberKey(cluster, 'withtls')).amqpsPort).toBe(amqpsPort);
    // Bound (the socket is accepted, then closed), not merely absent.
    const listening = await withTls.waitLog('forwarding clients to the leader: proxies listening');
    expect(listening).toMatchObject({ amqpsPort, httpsPort });
    for (const port of [amqpsPort, httpsPort]) {
      const outcome = await new Promise<string>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port, ca: [ca] });
        s.once('secureConnect', () => resolve('handshake'));
        s.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
        s.once('close', () => resolve('closed'));
      });
      expect(outcome, `port ${port}`).toMatch(/^(closed|error ECONNRESET|error .*socket disconnected.*)$/);
    }
    const c = await amqp.connect(withTls.url);
    expect(served(c)).toBe('plain');
    await c.close();
  }, 60_000);

  it('without TLS the member key is written as before, and a key without TLS ports still reads', async () => {
    const cluster = h.newClusterName();
    const node = await h.startNode(cluster, 'solo');
    await node.waitLog(LEADING, () => true, 30_000);
    const key = await memberKey(cluster, 'solo');
    expect(Object.keys(key).sort()).toEqual(['advertiseHost', 'amqpPort', 'httpPort', 'joinedAt', 'name', 'replicationPort']);
    const old =
      '{"name":"n1","advertiseHost":"10.0.0.1","replicationPort":5700,"amqpPort":5672,"httpPort":15672,"joinedAt":"2026-11-01T00:00:00.000Z"}';
    expect(parseMember('n1', old)).toEqual({
      name: 'n1',
      advertiseHost: '10.0.0.1',
      replicationPort: 5700,
      amqpPort: 5672,
      httpPort: 15672,
      amqpsPort: 0,
      httpsPort: 0,
      joinedAt: '2026-11-01T00:00:00.000Z',
    });
  }, 60_000);
});
