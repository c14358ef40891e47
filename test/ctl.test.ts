// The `leveret` operator command (src/ctl/), run as a child process against a real broker:
// what it lists is what amqplib declared, what it changes amqplib then sees.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startBroker, type StartedBroker } from './helpers/broker';
import { api } from './helpers/http';

const CLI = path.resolve(__dirname, '..', 'dist', 'cli.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'leveret-ctl-'));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `leveret ARGS...` with a clean environment for the LEVERET_MGMT_* variables unless given. */
function leveret(args: string[], env: Record<string, string> = {}, input?: string): Promise<Run> {
  const base = { ...process.env };
  for (const k of ['LEVERET_MGMT_URL', 'LEVERET_MGMT_USER', 'LEVERET_MGMT_PASSWORD']) delete base[k];
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { ...base, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

let broker: StartedBroker;
let url: string;
const ctl = (...args: string[]): Promise<Run> => leveret([...args, '--url', url]);
const closers: (() => Promise<void>)[] = [];

async function connect(user = 'guest', password = 'guest', vhost = '/'): Promise<amqplib.ChannelModel> {
  const c = await amqplib.connect({ protocol: 'amqp', hostname: '127.0.0.1', port: broker.port, username: user, password, vhost });
  c.on('error', () => {});
  closers.push(() => c.close().catch(() => {}));
  return c;
}

beforeAll(async () => {
  broker = await startBroker();
  url = `http://127.0.0.1:${broker.httpPort}`;
});

afterAll(async () => {
  for (const close of closers) await close();
  await broker?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('leveret list', { timeout: 30_000 }, () => {
  it('shows the queues a test declared, with their message counts', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await ch.assertQueue('ctl-orders');
    await ch.assertQueue('ctl-empty', { durable: false });
    for (let i = 0; i < 7; i++) ch.sendToQueue('ctl-orders', Buffer.from(`order ${i}`));
    // A passive declare on the same channel is answered after the publishes before it are routed.
    expect((await ch.checkQueue('ctl-orders')).messageCount).toBe(7);

    const r = await ctl('list', 'queues');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    expect(lines[0]).toEqual(['vhost', 'name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers']);
    expect(lines).toContainEqual(['/', 'ctl-orders', '7', '7', '0', '0']);
    expect(lines).toContainEqual(['/', 'ctl-empty', '0', '0', '0', '0']);
  });

  it('--format json parses, with the columns named, for one vhost', async () => {
    const r = await ctl('list', 'queues', 'name', 'messages', 'durable', '-p', '/', '--format', 'json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { name: string; messages: number; durable: boolean }[];
    expect(rows).toContainEqual({ name: 'ctl-orders', messages: 7, durable: true });
    expect(rows).toContainEqual({ name: 'ctl-empty', messages: 0, durable: false });
    expect(Object.keys(rows[0])).toEqual(['name', 'messages', 'durable']);
  });

  it('lists exchanges, bindings, users, vhosts, connections, channels and consumers', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await ch.assertExchange('ctl-events', 'topic');
    await ch.assertQueue('ctl-audit', { durable: false });
    await ch.bindQueue('ctl-audit', 'ctl-events', 'order.*');
    await ch.consume('ctl-audit', () => {}, { consumerTag: 'ctl-auditor' });

    const json = async (kind: string, ...columns: string[]) => {
      const r = await ctl('list', kind, ...columns, '-f', 'json');
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as Record<string, unknown>[];
    };
    expect(await json('exchanges')).toContainEqual({ vhost: '/', name: 'ctl-events', type: 'topic', durable: true, auto_delete: false });
    expect(await json('bindings', 'source', 'destination', 'routing_key')).toContainEqual({
      source: 'ctl-events',
      destination: 'ctl-audit',
      routing_key: 'order.*',
    });
    expect(await json('users')).toContainEqual({ name: 'guest', tags: ['administrator'] });
    expect((await json('vhosts')).map((v) => v.name)).toContain('/');
    const consumers = await json('consumers');
    expect(consumers).toContainEqual(
      expect.objectContaining({ 'queue.vhost': '/', 'queue.name': 'ctl-audit', consumer_tag: 'ctl-auditor', ack_required: true }),
    );
    const connections = await json('connections', 'name', 'user', 'vhost');
    expect(connections.length).toBeGreaterThanOrEqual(2);
    expect(connections.every((x) => x.user === 'guest' && x.vhost === '/')).toBe(true);
    expect((await json('channels', 'consumer_count')).some((x) => x.consumer_count === 1)).toBe(true);

    // The table puts the consumer's channel under its header.
    const table = await ctl('list', 'consumers', '-p', '/');
    expect(table.stdout.split('\n')[0].split(/\s+/)).toEqual([
      'queue.name',
      'channel_details.name',
      'consumer_tag',
      'ack_required',
      'prefetch_count',
    ]);
    expect(table.stdout).toMatch(/ctl-audit\s+127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(\d+\)\s+ctl-auditor\s+true/);
  });

  it('--format tsv prints one tab-separated line per row, without a header', async () => {
    const r = await ctl('list', 'queues', 'name', 'messages', '-f', 'tsv');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toContain('ctl-orders\t7');
    expect(r.stdout).not.toContain('messages');
  });
});

describe('leveret status', { timeout: 30_000 }, () => {
  it('shows version, node, uptime, listeners, totals and alarms; --format json has the figures', async () => {
    const text = await ctl('status');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Leveret \d+\.\d+\.\d+ \(RabbitMQ management API 3\.\d+\.\d+\)\n/);
    expect(text.stdout).toContain(`amqp 0.0.0.0:${broker.port}`);
    expect(text.stdout).toContain(`http 0.0.0.0:${broker.httpPort}`);
    expect(text.stdout).toMatch(/Uptime: +(\d+[dhm] )*\d+s\n/);
    expect(text.stdout).toMatch(/Alarms: +none\n/);

    const r = await ctl('status', '-f', 'json');
    const s = JSON.parse(r.stdout) as Record<string, any>;
    const overview = (await api(broker.httpPort, 'GET', '/api/overview')).json as Record<string, any>;
    expect(s.product).toBe('Leveret');
    expect(s.version).toBe(overview.product_version);
    expect(s.node).toBe(overview.node);
    expect(s.uptime_ms).toBeGreaterThan(0);
    expect(s.object_totals.queues).toBe(overview.object_totals.queues);
    expect(s.object_totals.queues).toBeGreaterThanOrEqual(3);
    expect(s.queue_totals.messages).toBeGreaterThanOrEqual(7);
    expect(s.alarms).toEqual([]);
    expect(Object.keys(s.message_rates)).toContain('publish');
  });
});

describe('leveret changes objects', { timeout: 30_000 }, () => {
  it('purge queue empties a queue', async () => {
    const c = await connect();
    const ch = await c.createChannel();
    await ch.assertQueue('ctl-purge', { durable: false });
    for (let i = 0; i < 5; i++) ch.sendToQueue('ctl-purge', Buffer.from('x'));
    expect((await ch.checkQueue('ctl-purge')).messageCount).toBe(5);
    const r = await ctl('purge', 'queue', 'ctl-purge');
    expect(r).toMatchObject({ code: 0, stdout: 'purged queue "ctl-purge" in vhost "/"\n' });
    expect((await ch.checkQueue('ctl-purge')).messageCount).toBe(0);
  });

  it('declare and delete queues and exchanges; delete --if-empty is refused with the API reason', async () => {
    expect((await ctl('declare', 'exchange', 'ctl-made', '--type', 'fanout')).code).toBe(0);
    expect((await ctl('declare', 'queue', 'ctl-made-q', '--arguments', '{"x-max-length":3}')).code).toBe(0);
    expect((await ctl('declare', 'binding', 'ctl-made', 'ctl-made-q')).code).toBe(0);
    const c = await connect();
    const ch = await c.createConfirmChannel();
    for (let i = 0; i < 5; i++) ch.publish('ctl-made', '', Buffer.from(`m${i}`));
    await ch.waitForConfirms();
    expect((await ch.checkQueue('ctl-made-q')).messageCount).toBe(3);

    const refused = await ctl('delete', 'queue', 'ctl-made-q', '--if-empty');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^leveret: .+\n$/);
    expect(refused.stdout).toBe('');
    expect((await ctl('delete', 'queue', 'ctl-made-q')).code).toBe(0);
    expect((await ctl('delete', 'exchange', 'ctl-made')).code).toBe(0);
    const names = JSON.parse((await ctl('list', 'queues', 'name', '-f', 'json')).stdout).map((q: { name: string }) => q.name);
    expect(names).not.toContain('ctl-made-q');
    const gone = await ctl('delete', 'queue', 'ctl-made-q');
    expect(gone).toMatchObject({ code: 1, stderr: 'leveret: Object Not Found: Not Found\n' });
  });

  it('export then import definitions round-trips a vhost, user, permissions, policy, queue, exchange and binding', async () => {
    const setup: string[][] = [
      ['add', 'vhost', 'ctl-vh', '--description', 'for the round trip'],
      ['add', 'user', 'ctl-rt', 'rt-secret', '--tags', 'monitoring'],
      ['set', 'permissions', 'ctl-rt', '^ctl-', '.*', '.*', '-p', 'ctl-vh'],
      ['set', 'policy', 'ctl-cap', '^ctl-', '{"max-length":10}', '--apply-to', 'queues', '-p', 'ctl-vh'],
      ['declare', 'queue', 'ctl-kept', '-p', 'ctl-vh'],
      ['declare', 'exchange', 'ctl-kept-x', '--type', 'topic', '-p', 'ctl-vh'],
      ['declare', 'binding', 'ctl-kept-x', 'ctl-kept', '--routing-key', 'a.#', '-p', 'ctl-vh'],
    ];
    for (const args of setup) expect(await ctl(...args)).toMatchObject({ code: 0, stderr: '' });

    const file = path.join(tmp, 'defs.json');
    expect((await ctl('export', 'definitions', file)).code).toBe(0);
    const exported = JSON.parse(readFileSync(file, 'utf8'));
    expect(exported.queues).toContainEqual(expect.objectContaining({ name: 'ctl-kept', vhost: 'ctl-vh', durable: true }));

    for (const args of [
      ['delete', 'vhost', 'ctl-vh'],
      ['delete', 'user', 'ctl-rt'],
    ])
      expect((await ctl(...args)).code).toBe(0);
    expect(JSON.parse((await ctl('list', 'queues', 'name', '-f', 'json', '-p', 'ctl-vh')).stdout || '[]')).toEqual([]);

    expect(await ctl('import', 'definitions', file)).toMatchObject({ code: 0, stderr: '' });
    const list = async (...args: string[]) => JSON.parse((await ctl('list', ...args, '-f', 'json')).stdout);
    // RabbitMQ 3.10's definitions keep a vhost's name only (not its description); so do Leveret's.
    expect(await list('vhosts', 'name')).toContainEqual({ name: 'ctl-vh' });
    expect(await list('users')).toContainEqual({ name: 'ctl-rt', tags: ['monitoring'] });
    expect(await list('permissions', '-p', 'ctl-vh')).toContainEqual({ user: 'ctl-rt', configure: '^ctl-', write: '.*', read: '.*' });
    expect(await list('policies', 'name', 'pattern', 'apply-to', 'definition', '-p', 'ctl-vh')).toEqual([
      { name: 'ctl-cap', pattern: '^ctl-', 'apply-to': 'queues', definition: { 'max-length': 10 } },
    ]);
    expect(await list('queues', 'name', '-p', 'ctl-vh')).toEqual([{ name: 'ctl-kept' }]);
    expect(await list('bindings', 'source', 'destination', 'routing_key', '-p', 'ctl-vh')).toContainEqual({
      source: 'ctl-kept-x',
      destination: 'ctl-kept',
      routing_key: 'a.#',
    });

    // The same again through standard output and input; a second export equals the first.
    const again = await ctl('export', 'definitions', '-');
    expect(JSON.parse(again.stdout)).toEqual(exported);
    expect((await leveret(['import', 'definitions', '-', '--url', url], {}, again.stdout)).code).toBe(0);
    expect((await ctl('delete', 'vhost', 'ctl-vh')).code).toBe(0);
    expect((await ctl('delete', 'user', 'ctl-rt')).code).toBe(0);
  });

  it('add user + set permissions lets that user connect over AMQP; the user and vhost flags come from the environment too', async () => {
    expect((await ctl('add', 'vhost', 'ctl-app')).code).toBe(0);
    expect((await ctl('add', 'user', 'ctl-app-user', 's3cret', '--tags', 'management')).code).toBe(0);
    await expect(connect('ctl-app-user', 's3cret', 'ctl-app')).rejects.toThrow(); // no permissions yet
    expect(await ctl('set', 'permissions', 'ctl-app-user', '.*', '.*', '.*', '-p', 'ctl-app')).toMatchObject({
      code: 0,
      stdout: 'set permissions of user "ctl-app-user" in vhost "ctl-app"\n',
    });
    const c = await connect('ctl-app-user', 's3cret', 'ctl-app');
    const ch = await c.createChannel();
    await ch.assertQueue('ctl-app-q');

    // That user (a management user) sees its vhost's queue, logging in through the environment.
    const env = { LEVERET_MGMT_URL: url, LEVERET_MGMT_USER: 'ctl-app-user', LEVERET_MGMT_PASSWORD: 's3cret' };
    const r = await leveret(['list', 'queues', 'name', '-f', 'json'], env);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual([{ name: 'ctl-app-q' }]);
    // ... and may not add users: refused, exit 1.
    const denied = await leveret(['add', 'user', 'ctl-intruder', 'x'], env);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^leveret: not_authorised: .+\n$/);

    await c.close();
    expect((await ctl('delete', 'vhost', 'ctl-app')).code).toBe(0);
    expect((await ctl('delete', 'user', 'ctl-app-user')).code).toBe(0);
  });

  it('close connection makes the amqplib client see 320 CONNECTION_FORCED with the reason', async () => {
    const c = await amqplib.connect(
      { hostname: '127.0.0.1', port: broker.port, username: 'guest', password: 'guest' },
      { clientProperties: { connection_name: 'ctl-victim' } },
    );
    c.on('error', () => {});
    // amqplib reports a server-forced close on 'close', with the close reason as the error.
    const closed = new Promise<Error>((resolve) => c.on('close', resolve));
    const port = (c.connection as unknown as { stream: net.Socket }).stream.localPort;
    const rows = JSON.parse((await ctl('list', 'connections', 'name', 'peer_port', '-f', 'json')).stdout) as {
      name: string;
      peer_port: number;
    }[];
    const name = rows.find((r) => r.peer_port === port)!.name;
    const r = await ctl('close', 'connection', name, 'maintenance window');
    expect(r).toMatchObject({ code: 0, stdout: `closed connection ${JSON.stringify(name)}\n` });
    const err = (await closed) as Error & { code?: number };
    expect(err.code).toBe(320);
    expect(err.message).toContain('maintenance window');
  });
});

describe('leveret exit codes', { timeout: 30_000 }, () => {
  it('a wrong password exits 1 with the API reason on stderr', async () => {
    const r = await leveret(['list', 'queues', '--url', url, '--password', 'wrong']);
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'leveret: not_authorized: Login failed\n' });
  });

  it('an unreachable API exits 69 (EX_UNAVAILABLE), also when nothing answers in time', async () => {
    const closed = await freePort();
    const r = await leveret(['status', '--url', `http://127.0.0.1:${closed}`]);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain(`cannot reach the management API at http://127.0.0.1:${closed}: connection refused`);

    // A server that accepts and never answers.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const t = await leveret(['list', 'queues', '--url', `http://127.0.0.1:${port}`, '--timeout', '0.5']);
      expect(t.code).toBe(69);
      expect(t.stderr).toContain('no answer within 0.5 s');
    } finally {
      silent.close();
    }
  });

  it('bad usage exits 2 with the usage text', async () => {
    const cases: [string[], RegExp][] = [
      [['list'], /list what\? One of: queues, exchanges, bindings, connections/],
      [['list', 'gizmos'], /cannot list "gizmos"/],
      [['purge', 'queue'], /purge queue needs NAME/],
      [['list', 'queues', '--bogus'], /unknown option '--bogus'/i],
      [['list', 'queues', '--format', 'xml'], /--format must be one of table, tsv, json/],
      [['set', 'permissions', 'u', '.*'], /set permissions needs USER CONFIGURE WRITE READ/],
      [['list', 'users', '-p', '/'], /users belong to no virtual host/],
      [['declare', 'queue', 'q', '--arguments', '[1]'], /--arguments must be a JSON object/],
      [['status', '--url', 'ftp://x'], /--url must be http:\/\/ or https:\/\//],
    ];
    for (const [args, message] of cases) {
      const r = await leveret(args.includes('--url') ? args : [...args, '--url', url]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/Usage:/);
    }
  });

  it('help is printed on stdout with exit 0; the broker --help mentions the commands', async () => {
    const help = await leveret(['help']);
    expect(help.code).toBe(0);
    for (const cmd of ['leveret status', 'leveret list queues', 'leveret export definitions FILE', 'leveret close connection NAME'])
      expect(help.stdout).toContain(cmd);
    const one = await leveret(['list', 'queues', '--help']);
    expect(one).toMatchObject({ code: 0, stderr: '' });
    expect(one.stdout).toContain('Usage: leveret list queues [COLUMN...]');
    const broker = await leveret(['--help']);
    expect(broker.code).toBe(0);
    expect(broker.stdout).toContain('--http-port');
    expect(broker.stdout).toContain('leveret status');
    expect(broker.stdout).toContain('leveret serve');
  });
});

describe('leveret serve', { timeout: 30_000 }, () => {
  it('starts the broker, as bare flags do', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'leveret-ctl-serve-'));
    const child = execFile(process.execPath, [
      CLI,
      'serve',
      '--port',
      String(port),
      '--http-port',
      String(httpPort),
      '--data-dir',
      dataDir,
    ]);
    try {
      let status: Run | undefined;
      for (let i = 0; i < 100; i++) {
        status = await leveret(['status', '-f', 'json', '--url', `http://127.0.0.1:${httpPort}`]);
        if (status.code === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status!.code).toBe(0);
      expect(JSON.parse(status!.stdout).listeners).toContainEqual({ protocol: 'amqp', ip_address: '0.0.0.0', port });
      const c = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${port}`);
      await c.close();
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('leveret over https', { timeout: 30_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leveret-ctl-tls-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr ?? r.error}`);
  };
  let tlsBroker: StartedBroker;
  let httpsPort: number;

  beforeAll(async () => {
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
      '/CN=Leveret ctl test CA',
    ]);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
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
    httpsPort = await freePort();
    tlsBroker = await startBroker({
      args: [
        '--tls-port',
        String(await freePort()),
        '--https-port',
        String(httpsPort),
        '--tls-cert',
        file('server.pem'),
        '--tls-key',
        file('server.key'),
      ],
    });
  });

  afterAll(async () => {
    await tlsBroker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--ca trusts the broker certificate; without it the API is unreachable (69)', async () => {
    const https = `https://127.0.0.1:${httpsPort}`;
    const ok = await leveret(['list', 'vhosts', 'name', '-f', 'json', '--url', https, '--ca', file('ca.pem')]);
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(ok.stdout)).toEqual([{ name: '/' }]);
    const untrusted = await leveret(['list', 'vhosts', '--url', https]);
    expect(untrusted.code).toBe(69);
    expect(untrusted.stderr).toMatch(/^leveret: cannot reach the management API at https:\/\/127\.0\.0\.1:\d+: .*certificate/);
  });
});
