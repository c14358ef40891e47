// A follower's proxies (src/cluster/proxy): AMQP and the management API forwarded to a leader,
// here plain Leveret brokers started by the test (no etcd: the test plays the cluster and
// calls setTarget itself). The back-pressure and large-message checks run the proxy in a
// child process so that its memory can be measured apart from the test's clients.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { TLSSocket } from 'node:tls';
import amqp from 'amqplib';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderProxy, type ProxyTarget } from '../src/cluster/proxy/leader-proxy';
import { startBroker, freePort, type StartedBroker } from './helpers/broker';
import { api } from './helpers/http';
import { sleep, uid, waitFor } from './helpers/clients';
import { ensurePythonModules, INSTALL_TIMEOUT_MS, PYTHON } from './helpers/debian-python';

const HOST = '127.0.0.1';
const target = (b: StartedBroker, node: string): ProxyTarget => ({ host: HOST, amqpPort: b.port, httpPort: b.httpPort, node });

interface Logged {
  level: string;
  obj: object;
  msg: string;
}

function captureLog(): {
  lines: Logged[];
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; debug(o: object, m: string): void };
} {
  const lines: Logged[] = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, obj, msg });
  return { lines, log: { info: at('info'), warn: at('warn'), debug: at('debug') } };
}

/** Resolves with the error an amqplib connection reports when the far side goes. */
function amqplibGone(c: amqp.ChannelModel): Promise<string> {
  return new Promise((resolve) => {
    let why = 'closed without error';
    c.on('error', (e: Error) => (why = e.message));
    c.on('close', () => resolve(why));
  });
}

/** declare, publish `n` with confirms, consume and ack them all, through amqplib. */
async function amqplibRoundTrip(url: string, queue: string, n: number): Promise<number> {
  const c = await amqp.connect(url);
  c.on('error', () => {});
  try {
    const ch = await c.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    for (let i = 0; i < n; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms();
    let got = 0;
    await new Promise<void>((resolve) => {
      void ch.consume(queue, (m) => {
        if (m === null) return;
        expect(m.content.toString()).toBe(`m${got}`);
        ch.ack(m);
        if (++got === n) resolve();
      });
    });
    await ch.close();
    return got;
  } finally {
    await c.close().catch(() => {});
  }
}

describe('LeaderProxy: a follower forwarding AMQP and HTTP clients to the leader', { timeout: 30_000 }, () => {
  let a: StartedBroker;
  let b: StartedBroker;
  let proxy: LeaderProxy;
  let captured: ReturnType<typeof captureLog>;
  let url: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startBroker(), startBroker()]);
    captured = captureLog();
    proxy = new LeaderProxy({ node: 'n2', log: captured.log, connectTimeoutMs: 2000 });
    await proxy.start({ host: HOST, amqpPort: 0, httpPort: 0 });
    url = `amqp://guest:guest@${HOST}:${proxy.amqpPort}`;
    proxy.setTarget(target(a, 'n1'));
  }, 30_000);

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('binds free ports when asked for 0 and reports them', () => {
    expect(proxy.amqpPort).toBeGreaterThan(0);
    expect(proxy.httpPort).toBeGreaterThan(0);
    expect(proxy.amqpPort).not.toBe(a.port);
  });

  it('a port already taken: start rejects and leaves nothing bound', async () => {
    const other = new LeaderProxy({ node: 'n4' });
    const amqpPort = await freePort();
    const err = await other.start({ host: HOST, amqpPort, httpPort: proxy.httpPort }).then(
      () => null,
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(err).toBe('EADDRINUSE');
    // the AMQP port it had bound first is free again
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(amqpPort, HOST, resolve);
    });
    await new Promise<void>((r) => probe.close(() => r()));
  });

  it('the same leader given again keeps forwarded connections', async () => {
    const c = await amqp.connect(url);
    let closed = false;
    c.on('close', () => (closed = true));
    c.on('error', () => {});
    proxy.setTarget(target(a, 'n1'));
    proxy.setTarget({ ...target(a, 'n1') });
    const ch = await c.createChannel();
    await ch.assertQueue('', { exclusive: true });
    expect(closed).toBe(false);
    await c.close();
  });

  it('amqplib: declare, publish with confirms, consume and ack through the proxy, landing on the leader', async () => {
    // connections of earlier tests may still be closing
    await waitFor(() => proxy.counters().amqp.current === 0, 10_000, 'earlier forwarded connections to be gone');
    const before = proxy.counters().amqp;
    const q = uid('proxy-amqplib');
    expect(await amqplibRoundTrip(url, q, 200)).toBe(200);
    // the queue is the leader's: its own API lists it
    const direct = await api(a.httpPort, 'GET', `/api/queues/%2F/${q}`);
    expect(direct.status).toBe(200);
    expect((direct.json as { messages: number }).messages).toBe(0);
    expect((await api(b.httpPort, 'GET', `/api/queues/%2F/${q}`)).status).toBe(404);
    await waitFor(() => proxy.counters().amqp.current === 0, 10_000, 'the forwarded connection to be gone');
    const after = proxy.counters().amqp;
    expect(after.total).toBe(before.total + 1);
    expect(after.bytesToLeader - before.bytesToLeader).toBeGreaterThan(200 * 2);
    expect(after.bytesToClients - before.bytesToClients).toBeGreaterThan(200 * 2);
  });

  it('@cloudamqp/amqp-client: declare, publish with confirms, consume and ack through the proxy', async () => {
    const q = uid('proxy-amqpclient');
    const client = new AMQPClient(url);
    const conn = await client.connect();
    const ch = await conn.channel();
    await ch.confirmSelect();
    await ch.queueDeclare(q, { durable: true });
    const confirms: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) confirms.push(ch.basicPublish('', q, `m${i}`, { deliveryMode: 2 }));
    await Promise.all(confirms);
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      ch.basicConsume(q, { noAck: false }, (m) => {
        if (m.bodyToString() !== `m${got}`) reject(new Error(`out of order: ${m.bodyToString()} at ${got}`));
        void m.ack();
        if (++got === 200) resolve();
      }).catch(reject);
    });
    await conn.close();
    expect(got).toBe(200);
    expect((await api(a.httpPort, 'GET', `/api/queues/%2F/${q}`)).status).toBe(200);
  });

  it('pika: declare, publish with confirms, consume and ack through the proxy', { timeout: INSTALL_TIMEOUT_MS }, async () => {
    const missing = ensurePythonModules(['pika'], ['python3-pika'], 'the pika proxy check');
    if (missing !== null) throw new Error(missing);
    const q = uid('proxy-pika');
    const script = `
import sys, pika
conn = pika.BlockingConnection(pika.ConnectionParameters('${HOST}', ${proxy.amqpPort}))
ch = conn.channel()
ch.confirm_delivery()
ch.queue_declare('${q}', durable=True)
for i in range(100):
    ch.basic_publish('', '${q}', b'm%d' % i, pika.BasicProperties(delivery_mode=2))
got = []
for method, props, body in ch.consume('${q}', inactivity_timeout=5):
    if method is None:
        break
    got.append(body.decode())
    ch.basic_ack(method.delivery_tag)
    if len(got) == 100:
        break
ch.cancel()
conn.close()
print('consumed', len(got), 'in order' if got == ['m%d' % i for i in range(100)] else 'OUT OF ORDER')
`;
    const out = await new Promise<string>((resolve) =>
      execFile(PYTHON, ['-c', script], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve(`${stdout}${stderr}${err ? String(err) : ''}`),
      ),
    );
    expect(out.trim()).toBe('consumed 100 in order');
    expect((await api(a.httpPort, 'GET', `/api/queues/%2F/${q}`)).status).toBe(200);
  });

  it('management API through the proxy: overview, PUT a queue, query strings, and a 401 passed on unchanged', async () => {
    const overview = await api(proxy.httpPort, 'GET', '/api/overview');
    expect(overview.status).toBe(200);
    const direct = await api(a.httpPort, 'GET', '/api/overview');
    expect((overview.json as { node: string }).node).toBe((direct.json as { node: string }).node);
    expect(overview.headers.get('via')).toBe('1.1 n2');

    const q = uid('proxy-http');
    const put = await api(proxy.httpPort, 'PUT', `/api/queues/%2F/${q}`, { body: { durable: true, arguments: { 'x-max-length': 7 } } });
    expect(put.status).toBe(201);
    const onLeader = await api(a.httpPort, 'GET', `/api/queues/%2F/${q}`);
    expect(onLeader.status).toBe(200);
    expect((onLeader.json as { arguments: Record<string, unknown> }).arguments).toEqual({ 'x-max-length': 7 });
    const listed = await api(proxy.httpPort, 'GET', `/api/queues/%2F?columns=name&name=${q}&use_regex=false`);
    expect(listed.status).toBe(200);
    expect((listed.json as { name: string }[]).map((x) => x.name)).toContain(q);

    for (const auth of [['guest', 'wrong'] as [string, string], null]) {
      const viaProxy = await api(proxy.httpPort, 'GET', '/api/overview', { auth });
      const straight = await api(a.httpPort, 'GET', '/api/overview', { auth });
      expect(viaProxy.status).toBe(401);
      expect(viaProxy.status).toBe(straight.status);
      expect(viaProxy.text).toBe(straight.text);
      expect(viaProxy.headers.get('www-authenticate')).toBe(straight.headers.get('www-authenticate'));
      expect(viaProxy.headers.get('content-type')).toBe(straight.headers.get('content-type'));
    }
    expect((await api(proxy.httpPort, 'DELETE', `/api/queues/%2F/${q}`)).status).toBe(204);
    expect((await api(a.httpPort, 'GET', `/api/queues/%2F/${q}`)).status).toBe(404);
  });

  it('a new leader: forwarded connections are closed, new ones reach the new leader', async () => {
    const onlyOnB = uid('proxy-only-b');
    const onlyOnA = uid('proxy-only-a');
    expect((await api(b.httpPort, 'PUT', `/api/queues/%2F/${onlyOnB}`, { body: { durable: true } })).status).toBe(201);
    expect((await api(a.httpPort, 'PUT', `/api/queues/%2F/${onlyOnA}`, { body: { durable: true } })).status).toBe(201);

    await waitFor(() => proxy.counters().amqp.current === 0, 10_000, 'earlier forwarded connections to be gone');
    const old1 = await amqp.connect(url);
    const old1Gone = amqplibGone(old1);
    const oldCh = await old1.createChannel();
    oldCh.on('error', () => {});
    await oldCh.checkQueue(onlyOnA);
    const old2 = await new AMQPClient(url).connect();
    const old2Gone = new Promise<string>((resolve) => (old2.onerror = (e) => resolve(e.message)));
    await (await old2.channel()).queueDeclare(onlyOnA, { passive: true });
    expect(proxy.counters().amqp.current).toBe(2);

    const t0 = Date.now();
    proxy.setTarget(target(b, 'n3'));
    const [why1, why2] = await Promise.all([old1Gone, old2Gone]);
    const closedIn = Date.now() - t0;
    expect(closedIn).toBeLessThan(1000);
    console.log(`leader change: forwarded connections closed in ${closedIn} ms; amqplib: "${why1}", amqp-client: "${why2}"`);
    expect(why1).toMatch(/Unexpected close|closed/i);
    expect(why2).toMatch(/closed|ended|reset/i);
    expect(captured.lines.some((l) => l.msg.includes('leader changed, closing forwarded connections'))).toBe(true);

    const c = await amqp.connect(url);
    c.on('error', () => {});
    const ch = await c.createChannel();
    expect((await ch.checkQueue(onlyOnB)).queue).toBe(onlyOnB);
    const ch2 = await c.createChannel();
    ch2.on('error', () => {});
    const refused = await ch2.checkQueue(onlyOnA).then(
      () => 'found',
      (e: Error) => e.message,
    );
    expect(refused).toMatch(/404/);
    await c.close();
    const viaHttp = await api(proxy.httpPort, 'GET', `/api/queues/%2F/${onlyOnB}`);
    expect(viaHttp.status).toBe(200);
    expect((await api(proxy.httpPort, 'GET', `/api/queues/%2F/${onlyOnA}`)).status).toBe(404);
    proxy.setTarget(target(a, 'n1'));
    await api(b.httpPort, 'DELETE', `/api/queues/%2F/${onlyOnB}`);
    await api(a.httpPort, 'DELETE', `/api/queues/%2F/${onlyOnA}`);
  });

  it('a new leader while an HTTP answer is half sent: the client gets a cut answer, never a complete one from the old leader', async () => {
    const q = uid('proxy-http-cut');
    const c = await amqp.connect(a.url);
    const ch = await c.createConfirmChannel();
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.alloc(20_000_000, 'x'));
    await ch.waitForConfirms();
    const request = JSON.stringify({ count: 1, ackmode: 'ack_requeue_true', encoding: 'base64', truncate: 50_000_000 });
    const sent0 = proxy.counters().http.bytesToClients;
    const sock = net.connect(proxy.httpPort, HOST);
    await new Promise((r) => sock.once('connect', r));
    sock.pause(); // reads nothing: the answer stalls in the proxy's pipe
    sock.write(
      `POST /api/queues/%2F/${q}/get HTTP/1.1\r\nhost: x\r\nauthorization: Basic ${Buffer.from('guest:guest').toString('base64')}\r\n` +
        `content-type: application/json\r\ncontent-length: ${request.length}\r\nconnection: close\r\n\r\n${request}`,
    );
    // the leader has begun to answer, and the proxy has passed all the client's socket takes
    await waitFor(() => proxy.counters().http.bytesToClients - sent0 > 1_000_000, 20_000, 'the answer to start');
    await sleep(500);
    proxy.setTarget(target(b, 'n3'));
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => {});
    const closed = new Promise((r) => sock.once('close', r));
    sock.resume();
    await closed;
    const raw = Buffer.concat(chunks);
    const headEnd = raw.indexOf('\r\n\r\n');
    const length = Number(/content-length: (\d+)/i.exec(raw.subarray(0, headEnd).toString())?.[1]);
    expect(length).toBeGreaterThan(20_000_000);
    expect(raw.length - headEnd - 4).toBeLessThan(length);
    proxy.setTarget(target(a, 'n1'));
    await ch.deleteQueue(q);
    await c.close();
  });

  it('a new leader before the old one answered: 502 saying so, no warning', async () => {
    const warnsBefore = captured.lines.filter((l) => l.level === 'warn').length;
    // a leader that takes the request and never answers
    const mute = net.createServer((s) => s.on('data', () => {}));
    await new Promise<void>((r) => mute.listen(0, HOST, r));
    const port = (mute.address() as net.AddressInfo).port;
    proxy.setTarget({ host: HOST, amqpPort: port, httpPort: port, node: 'n6' });
    const pending = api(proxy.httpPort, 'GET', '/api/overview');
    await waitFor(() => proxy.counters().http.current === 1, 5000, 'the request to be forwarded');
    proxy.setTarget(target(a, 'n1'));
    const r = await pending;
    expect(r.status).toBe(502);
    expect(r.json).toEqual({
      error: 'bad_gateway',
      reason: `the leader changed while node n2 forwarded this request to n6 at ${HOST}:${port}; retry`,
    });
    expect(captured.lines.slice(warnsBefore).filter((l) => l.level === 'warn')).toEqual([]);
    await new Promise<void>((r2) => mute.close(() => r2()));
  });

  it('no leader known: AMQP clients are refused at once with 320 and a reason, HTTP answers 503 in the API error shape', async () => {
    const kept = await amqp.connect(url);
    const keptGone = amqplibGone(kept);
    proxy.setTarget(null);
    expect(await keptGone).toMatch(/Unexpected close|closed/i);
    const before = proxy.counters().amqp.refusedNoLeader;

    let t0 = Date.now();
    const e1 = await amqp.connect(url).then(
      () => 'connected',
      (e: Error) => e.message,
    );
    const amqplibMs = Date.now() - t0;
    expect(e1).toMatch(/320 \(CONNECTION-FORCED\).*no leader is known to node n2/);
    expect(amqplibMs).toBeLessThan(1000);
    console.log(`no leader: amqplib refused in ${amqplibMs} ms`);
    t0 = Date.now();
    const e2 = await new AMQPClient(url).connect().then(
      () => 'connected',
      (e: Error) => e.message,
    );
    expect(e2).toMatch(/CONNECTION_FORCED - no leader is known to node n2.*\(320\)/);
    expect(Date.now() - t0).toBeLessThan(1000);
    // a socket that says nothing is closed after the refusal timeout, not kept
    const silent = net.connect(proxy.amqpPort, HOST);
    const silentClosed = new Promise<number>((resolve) => {
      const s0 = Date.now();
      silent.on('close', () => resolve(Date.now() - s0));
      silent.on('error', () => {});
    });
    expect(await silentClosed).toBeLessThan(5000);
    expect(proxy.counters().amqp.refusedNoLeader).toBe(before + 3);

    for (const [method, p] of [
      ['GET', '/api/overview'],
      ['PUT', '/api/queues/%2F/x'],
    ]) {
      const r = await api(proxy.httpPort, method, p, { body: method === 'PUT' ? { durable: true } : undefined });
      expect(r.status).toBe(503);
      expect(r.headers.get('content-type')).toBe('application/json');
      expect(r.headers.get('retry-after')).toBe('1');
      expect(Object.keys(r.json as object).sort()).toEqual(['error', 'reason']);
      expect(r.json).toEqual({ error: 'service_unavailable', reason: 'no leader is known to node n2: the cluster is electing one; retry' });
    }
    expect(proxy.counters().http.unavailable).toBe(2);

    proxy.setTarget(target(a, 'n1'));
    expect(await amqplibRoundTrip(url, uid('proxy-back'), 10)).toBe(10);
    expect((await api(proxy.httpPort, 'GET', '/api/overview')).status).toBe(200);
  });

  it('pika retrying through a leaderless period connects once a leader is set', { timeout: 60_000 }, async () => {
    const missing = ensurePythonModules(['pika'], ['python3-pika'], 'the pika proxy check');
    if (missing !== null) throw new Error(missing);
    proxy.setTarget(null);
    const script = `
import time, pika
t = time.time()
params = pika.ConnectionParameters('${HOST}', ${proxy.amqpPort}, connection_attempts=40, retry_delay=0.25)
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.queue_declare('', exclusive=True)
conn.close()
print('connected after %.1f s' % (time.time() - t))
`;
    const done = new Promise<string>((resolve) =>
      execFile(PYTHON, ['-c', script], { timeout: 30_000 }, (err, stdout, stderr) =>
        resolve(`${stdout}${stderr}${err ? String(err) : ''}`),
      ),
    );
    await waitFor(() => proxy.counters().amqp.refusedNoLeader >= 3, 10_000, 'pika to be refused a few times');
    proxy.setTarget(target(a, 'n1'));
    expect((await done).trim()).toMatch(/^connected after \d+\.\d s$/);
    // pika's own message for a refusal, for the record
    proxy.setTarget(null);
    const once = await new Promise<string>((resolve) =>
      execFile(
        PYTHON,
        [
          '-c',
          `import pika\ntry:\n  pika.BlockingConnection(pika.ConnectionParameters('${HOST}', ${proxy.amqpPort}))\nexcept Exception as e:\n  print(type(e).__name__, e)`,
        ],
        { timeout: 30_000 },
        (err, stdout, stderr) => resolve(`${stdout}${stderr}`),
      ),
    );
    proxy.setTarget(target(a, 'n1'));
    expect(once).toMatch(/ConnectionClosedByBroker: \(320\) 'CONNECTION_FORCED - no leader is known to node n2/);
  });

  it(
    'py-amqp (kombu and celery use it) reads the refusal as ConnectionForced 320 with the reason',
    { timeout: INSTALL_TIMEOUT_MS },
    async () => {
      const missing = ensurePythonModules(['amqp'], ['python3-amqp'], 'the py-amqp proxy check');
      if (missing !== null) throw new Error(missing);
      proxy.setTarget(null);
      const script = `import amqp\ntry:\n  c = amqp.Connection('${HOST}:${proxy.amqpPort}')\n  c.connect()\n  print('connected')\nexcept Exception as e:\n  print(type(e).__module__, type(e).__name__, e)`;
      const out = await new Promise<string>((resolve) =>
        execFile(PYTHON, ['-c', script], { timeout: 30_000 }, (err, stdout, stderr) =>
          resolve(`${stdout}${stderr}${err ? String(err) : ''}`),
        ),
      );
      proxy.setTarget(target(a, 'n1'));
      expect(out.trim()).toBe(
        'amqp.exceptions ConnectionForced (0, 0): (320) CONNECTION_FORCED - no leader is known to node n2: the cluster is electing one; retry',
      );
    },
  );

  it('a leader that refuses connections: clients are refused with the reason, a warning is logged once, HTTP gets 502', async () => {
    const dead = await freePort(); // nothing listens there
    proxy.setTarget({ host: HOST, amqpPort: dead, httpPort: dead, node: 'n9' });
    const warnsBefore = captured.lines.filter((l) => l.level === 'warn').length;
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const e = await amqp.connect(url).then(
        () => 'connected',
        (err: Error) => err.message,
      );
      expect(e).toMatch(
        new RegExp(`320 \\(CONNECTION-FORCED\\).*node n2 cannot reach the leader \\(n9 at ${HOST}:${dead}: ECONNREFUSED\\)`),
      );
      expect(Date.now() - t0).toBeLessThan(1000);
    }
    const amqpWarns = captured.lines.slice(warnsBefore).filter((l) => l.level === 'warn' && l.msg.startsWith('AMQP proxy'));
    expect(amqpWarns).toHaveLength(1);
    expect(proxy.counters().amqp.refusedUnreachable).toBe(3);

    for (let i = 0; i < 2; i++) {
      const r = await api(proxy.httpPort, 'GET', '/api/overview');
      expect(r.status).toBe(502);
      expect(r.json).toEqual({
        error: 'bad_gateway',
        reason: `node n2 could not get an answer from the leader (n9 at ${HOST}:${dead}): ECONNREFUSED`,
      });
    }
    const httpWarns = captured.lines.slice(warnsBefore).filter((l) => l.level === 'warn' && l.msg.startsWith('HTTP proxy'));
    expect(httpWarns).toHaveLength(1);
    proxy.setTarget(target(a, 'n1'));
    expect((await api(proxy.httpPort, 'GET', '/api/overview')).status).toBe(200);
  });

  it('a leader that accepts and drops connections: the client sees its socket closed, HTTP a 502', async () => {
    const dropping = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => dropping.listen(0, HOST, r));
    const port = (dropping.address() as net.AddressInfo).port;
    proxy.setTarget({ host: HOST, amqpPort: port, httpPort: port, node: 'n8' });
    const e = await amqp.connect(url).then(
      () => 'connected',
      (err: Error) => err.message,
    );
    expect(e).toMatch(/Socket closed abruptly during opening handshake/);
    const r = await api(proxy.httpPort, 'GET', '/api/overview');
    expect(r.status).toBe(502);
    expect((r.json as { error: string }).error).toBe('bad_gateway');
    proxy.setTarget(target(a, 'n1'));
    await new Promise<void>((r2) => dropping.close(() => r2()));
  });

  it('a leader that never completes the TCP handshake: refused after the connect timeout (2 s here)', { timeout: 30_000 }, async () => {
    // A listener with a full accept queue that never accepts: the kernel drops further SYNs,
    // as a leader's host that stopped answering would.
    const holder = spawn(
      PYTHON,
      [
        '-c',
        'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)',
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const port = Number(await new Promise<string>((resolve) => holder.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
      const fillers: net.Socket[] = [];
      for (let i = 0; i < 3; i++) {
        const s = net.connect(port, HOST);
        s.on('error', () => {});
        fillers.push(s);
      }
      await sleep(300);
      proxy.setTarget({ host: HOST, amqpPort: port, httpPort: port, node: 'n7' });
      const t0 = Date.now();
      const e = await amqp.connect(url).then(
        () => 'connected',
        (err: Error) => err.message,
      );
      const ms = Date.now() - t0;
      expect(e).toMatch(
        new RegExp(`320 \\(CONNECTION-FORCED\\).*cannot reach the leader \\(n7 at ${HOST}:${port}: no answer within 2000 ms\\)`),
      );
      expect(ms).toBeGreaterThanOrEqual(1900);
      expect(ms).toBeLessThan(5000);
      const h0 = Date.now();
      const r = await api(proxy.httpPort, 'GET', '/api/overview');
      expect(r.status).toBe(502);
      expect((r.json as { reason: string }).reason).toMatch(/no answer within 2000 ms/);
      expect(Date.now() - h0).toBeLessThan(5000);
      for (const s of fillers) s.destroy();
    } finally {
      holder.kill('SIGKILL');
      proxy.setTarget(target(a, 'n1'));
    }
  });
});

/** The proxy alone in a child process (compiled from dist/), driven over stdin, reporting over stdout. */
class ProxyProcess {
  private readonly child: ChildProcess;
  private readonly waiting: ((line: Record<string, unknown>) => void)[] = [];
  stderr = '';

  constructor() {
    const dist = path.resolve(__dirname, '..', 'dist', 'cluster', 'proxy', 'leader-proxy.js');
    const code = `
const { LeaderProxy } = require(${JSON.stringify(dist)});
const rl = require('node:readline').createInterface({ input: process.stdin });
const p = new LeaderProxy({ node: 'n2' });
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
p.start({ host: '127.0.0.1', amqpPort: 0, httpPort: 0 }).then(() => say({ amqpPort: p.amqpPort, httpPort: p.httpPort }));
rl.on('line', (l) => {
  const m = JSON.parse(l);
  if (m.target !== undefined) { p.setTarget(m.target); say({ ok: true }); }
  if (m.stats) say({ rss: process.memoryUsage().rss, counters: p.counters() });
});`;
    this.child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.waiting.shift()?.(JSON.parse(l) as Record<string, unknown>));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async send(msg: object): Promise<Record<string, unknown>> {
    const reply = this.next();
    this.child.stdin!.write(JSON.stringify(msg) + '\n');
    return reply;
  }

  /** The proxy process's resident set in bytes, read by the kernel (no request to the process). */
  rss(): number {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

describe('LeaderProxy in its own process: a 20 MB message and back-pressure', { timeout: 30_000 }, () => {
  let a: StartedBroker;
  let proc: ProxyProcess;
  let url: string;
  let httpPort: number;

  beforeAll(async () => {
    a = await startBroker();
    proc = new ProxyProcess();
    const ports = await proc.next();
    url = `amqp://guest:guest@${HOST}:${ports.amqpPort as number}`;
    httpPort = ports.httpPort as number;
    await proc.send({ target: target(a, 'n1') });
  }, 30_000);

  afterAll(async () => {
    proc?.stop();
    await a?.stop();
  });

  it(
    'a 20 MB message through the proxy, twice: published, fetched over HTTP, consumed, same bytes; a 15 MB HTTP request body; the proxy keeps no copy',
    { timeout: 180_000 },
    async () => {
      const q = uid('proxy-big');
      const body = Buffer.alloc(20_000_000);
      for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
      const sha = createHash('sha256').update(body).digest('hex');
      const rssBefore = proc.rss();
      let peak = rssBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, proc.rss())), 20);
      const peaks: number[] = [];
      const c = await amqp.connect(url);
      try {
        const ch = await c.createConfirmChannel();
        await ch.assertQueue(q, { durable: true });
        for (let round = 0; round < 2; round++) {
          ch.sendToQueue(q, body, { persistent: true });
          await ch.waitForConfirms();
          // the management API's get answers with the body in base64: a ~27 MB response
          const got = await api(httpPort, 'POST', `/api/queues/%2F/${q}/get`, {
            body: { count: 1, ackmode: 'ack_requeue_true', encoding: 'base64', truncate: 50_000_000 },
          });
          expect(got.status).toBe(200);
          const viaHttp = Buffer.from((got.json as { payload: string }[])[0].payload, 'base64');
          expect(createHash('sha256').update(viaHttp).digest('hex')).toBe(sha);
          const m = await ch.get(q, { noAck: false });
          expect(m !== false && m.content.length === body.length).toBe(true);
          if (m === false) return;
          expect(createHash('sha256').update(m.content).digest('hex')).toBe(sha);
          ch.ack(m);
          peaks.push(peak);
        }
        // a large request body: 15 MB published over HTTP through the proxy (the API takes up to 20 MB)
        const text = body.toString('base64').slice(0, 15_000_000);
        const pub = await api(httpPort, 'POST', `/api/exchanges/%2F/amq.default/publish`, {
          body: { properties: {}, routing_key: q, payload: text, payload_encoding: 'string' },
        });
        expect(pub.status).toBe(200);
        expect(pub.json).toEqual({ routed: true });
        const viaAmqp = await ch.get(q, { noAck: true });
        expect(viaAmqp !== false && viaAmqp.content.toString() === text).toBe(true);
        peaks.push(peak);
      } finally {
        clearInterval(sampler);
        await c.close();
      }
      const mib = (x: number): string => (x / 2 ** 20).toFixed(0);
      console.log(
        `20 MB message: proxy RSS ${mib(rssBefore)} MiB, peak after round 1 ${mib(peaks[0])}, round 2 ${mib(peaks[1])}, HTTP upload ${mib(peaks[2])}`,
      );
      // Each round moves 20 MB in over AMQP, 20 MB out over AMQP and 27 MB out over HTTP in
      // socket-sized reads. The first round's growth is read buffers not yet collected; a
      // proxy keeping a copy would grow again by at least 20 MB in the second.
      expect(peaks[0] - rssBefore).toBeLessThan(64 * 1024 * 1024);
      expect(peaks[1] - peaks[0]).toBeLessThan(16 * 1024 * 1024);
    },
  );

  it(
    'a consumer that stops reading a 128 MiB backlog: the proxy holds socket buffers, not the backlog; other connections keep working',
    { timeout: 120_000 },
    async () => {
      const q = uid('proxy-backlog');
      const body = Buffer.alloc(256 * 1024, 7);
      const n = 512; // 128 MiB
      // filled straight on the leader: the proxy sees only the delivery
      const filler = await amqp.connect(a.url);
      const fch = await filler.createConfirmChannel();
      await fch.assertQueue(q, { durable: false });
      for (let i = 0; i < n; i++) {
        if (!fch.sendToQueue(q, body)) await new Promise((r) => fch.once('drain', r));
      }
      await fch.waitForConfirms();
      await filler.close();

      const toClientsOf = (stats: Record<string, unknown>): number =>
        (stats.counters as { amqp: { bytesToClients: number } }).amqp.bytesToClients;
      const toClients0 = toClientsOf(await proc.send({ stats: true }));
      const rssBefore = proc.rss();
      // amqp-client reads its socket in flowing mode: a paused socket reads nothing more
      const slow = await new AMQPClient(url).connect();
      const ch = await slow.channel();
      let received = 0;
      const socket = (slow as unknown as { socket: net.Socket }).socket;
      socket.pause();
      // the client reads nothing from the moment the broker starts delivering
      const consuming = ch.basicConsume(q, { noAck: false }, (m) => {
        received++;
        void m.ack();
      });
      // basic.consume still goes out (writes are not reads); let the broker push into the pipe
      await sleep(3000);
      let peakRss = proc.rss();
      const stats1 = await proc.send({ stats: true });
      const toClients1 = toClientsOf(stats1) - toClients0;

      // meanwhile another client works through the same proxy
      const other = uid('proxy-other');
      const t0 = Date.now();
      expect(await amqplibRoundTrip(url, other, 100)).toBe(100);
      const otherMs = Date.now() - t0;
      await sleep(1000);
      peakRss = Math.max(peakRss, proc.rss());
      const stats2 = await proc.send({ stats: true });
      const toClients2 = toClientsOf(stats2) - toClients0;
      // stalled: what the proxy took from the broker stops growing (only the other client's bytes)
      expect(toClients2 - toClients1).toBeLessThan(1024 * 1024);
      // what the kernel may hold between the proxy and the stalled client: the client's receive
      // buffer and the proxy's send buffer at their largest (net.ipv4.tcp_rmem / tcp_wmem)
      const kernelMax = ['tcp_rmem', 'tcp_wmem']
        .map((f) => Number(readFileSync(`/proc/sys/net/ipv4/${f}`, 'utf8').trim().split(/\s+/)[2]))
        .reduce((x, y) => x + y);
      expect(toClients1).toBeLessThan(kernelMax + 1024 * 1024);
      expect(peakRss - rssBefore).toBeLessThan(48 * 1024 * 1024);

      // reading again, every message arrives
      socket.resume();
      await consuming;
      await waitFor(() => received === n, 60_000, `all ${n} backlog messages`);
      await slow.close();
      console.log(
        `backlog ${(n * body.length) / 2 ** 20} MiB, stalled consumer: proxy had read ${(toClients1 / 2 ** 20).toFixed(1)} MiB from the broker ` +
          `(socket buffers), proxy RSS before ${(rssBefore / 2 ** 20).toFixed(0)} MiB, highest while stalled ${(peakRss / 2 ** 20).toFixed(0)} MiB; ` +
          `another client's 100-message round trip meanwhile: ${otherMs} ms`,
      );
    },
  );

  it(
    'an HTTP client that stops reading a 54 MB answer: the proxy stops reading it from the leader; reading again gets all of it',
    { timeout: 120_000 },
    async () => {
      const q = uid('proxy-http-slow');
      const body = Buffer.alloc(20_000_000, 'abcdefgh');
      const filler = await amqp.connect(a.url);
      const fch = await filler.createConfirmChannel();
      await fch.assertQueue(q, { durable: false });
      fch.sendToQueue(q, body);
      fch.sendToQueue(q, body);
      await fch.waitForConfirms();
      await filler.close();

      const toClientsOf = (stats: Record<string, unknown>): number =>
        (stats.counters as { http: { bytesToClients: number } }).http.bytesToClients;
      const before = toClientsOf(await proc.send({ stats: true }));
      const rssBefore = proc.rss();
      // a raw client that sends its request and then reads nothing
      const request = JSON.stringify({ count: 2, ackmode: 'ack_requeue_true', encoding: 'base64', truncate: 50_000_000 });
      const sock = net.connect(httpPort, HOST);
      await new Promise((r) => sock.once('connect', r));
      sock.pause();
      sock.write(
        `POST /api/queues/%2F/${q}/get HTTP/1.1\r\nhost: x\r\nauthorization: Basic ${Buffer.from('guest:guest').toString('base64')}\r\n` +
          `content-type: application/json\r\ncontent-length: ${request.length}\r\nconnection: close\r\n\r\n${request}`,
      );
      await sleep(4000);
      const stalled1 = toClientsOf(await proc.send({ stats: true })) - before;
      // other requests go on meanwhile
      expect((await api(httpPort, 'GET', '/api/overview')).status).toBe(200);
      await sleep(1000);
      const stalled2 = toClientsOf(await proc.send({ stats: true })) - before;
      const rssStalled = proc.rss();
      const chunks: Buffer[] = [];
      sock.on('data', (d: Buffer) => chunks.push(d));
      const ended = new Promise((r) => sock.once('end', r));
      sock.resume();
      await ended;
      const raw = Buffer.concat(chunks);
      const headEnd = raw.indexOf('\r\n\r\n');
      const head = raw.subarray(0, headEnd).toString();
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
      expect(head).toMatch(/^HTTP\/1.1 200/);
      expect(raw.length - headEnd - 4).toBe(length);
      expect(length).toBeGreaterThan(50_000_000);
      const got = JSON.parse(raw.subarray(headEnd + 4).toString()) as { payload: string }[];
      expect(got.map((m) => Buffer.from(m.payload, 'base64').equals(body))).toEqual([true, true]);
      console.log(
        `HTTP answer of ${(length / 1e6).toFixed(1)} MB to a client not reading: the proxy had passed ${(stalled1 / 2 ** 20).toFixed(1)} MiB after 4 s, ` +
          `${(stalled2 / 2 ** 20).toFixed(1)} MiB after 5 s; proxy RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rssStalled / 2 ** 20).toFixed(0)} MiB`,
      );
      expect(stalled2 - stalled1).toBeLessThan(1024 * 1024);
      expect(stalled2).toBeLessThan(length / 2);
    },
  );
});

describe('LeaderProxy: TLS ports passed through to the leader, encrypted end to end', { timeout: 30_000 }, () => {
  let dir: string;
  let leader: StartedBroker;
  let proxy: LeaderProxy;
  let cert: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'leveret-proxy-tls-'));
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    cert = readFileSync(path.join(dir, 'cert.pem'));
    const [tlsPort, httpsPort] = [await freePort(), await freePort()];
    leader = await startBroker({
      args: [
        '--tls-port',
        String(tlsPort),
        '--https-port',
        String(httpsPort),
        '--tls-cert',
        path.join(dir, 'cert.pem'),
        '--tls-key',
        path.join(dir, 'key.pem'),
      ],
    });
    proxy = new LeaderProxy({ node: 'n2' });
    await proxy.start({ host: HOST, amqpPort: 0, httpPort: 0, amqpsPort: 0, httpsPort: 0 });
    proxy.setTarget({ ...target(leader, 'n1'), amqpsPort: tlsPort, httpsPort });
  }, 30_000);

  afterAll(async () => {
    await proxy?.stop();
    await leader?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('amqps through the proxy: the client checks the leader certificate and round-trips messages; https answers the API', async () => {
    const c = await amqp.connect(`amqps://guest:guest@localhost:${proxy.amqpsPort}`, { ca: [cert] });
    const ch = await c.createConfirmChannel();
    const q = uid('proxy-tls');
    await ch.assertQueue(q, { exclusive: true });
    ch.sendToQueue(q, Buffer.from('over tls'));
    await ch.waitForConfirms();
    const m = await ch.get(q, { noAck: true });
    expect(m !== false && m.content.toString()).toBe('over tls');
    await c.close();

    const res = await new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
      const req = https.get(
        { host: HOST, port: proxy.httpsPort, path: '/api/overview', ca: [cert], servername: 'localhost', auth: 'guest:guest' },
        (r) => {
          const fingerprint = (r.socket as TLSSocket).getPeerCertificate().fingerprint256;
          let body = '';
          r.on('data', (d: Buffer) => (body += d.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body, fingerprint }));
        },
      );
      req.on('error', reject);
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toHaveProperty('node');
    expect(res.fingerprint).toBe(new X509Certificate(cert).fingerprint256);
    const counters = proxy.counters();
    expect(counters.amqps?.total).toBe(1);
    expect(counters.https?.total).toBe(1);
  });

  it('no leader: a TLS client finds its socket closed at once (no reason can be given inside TLS)', async () => {
    proxy.setTarget(null);
    const t0 = Date.now();
    const e = await amqp.connect(`amqps://guest:guest@localhost:${proxy.amqpsPort}`, { ca: [cert] }).then(
      () => 'connected',
      (err: Error) => err.message,
    );
    expect(e).toMatch(/socket disconnected before secure TLS connection|ECONNRESET|closed/i);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
