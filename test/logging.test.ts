// Log lines an operator relies on (docs/logging.md): one JSON object per line with stable
// messages and structured fields, for connections, refused logins, channel errors, alarms,
// changes through the management API and the phases of a stop; never a password. The level
// changes at run time over HTTP; --log-file is reopened on SIGUSR1; a terminal gets pretty lines.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startBroker, type StartedBroker } from './helpers/broker';
import { sleep, waitFor } from './helpers/clients';
import { api } from './helpers/http';

type Line = Record<string, unknown>;

const brokers: StartedBroker[] = [];
const tmpDirs: string[] = [];
afterAll(async () => {
  for (const b of brokers) await b.stop();
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
}, 30_000);

async function broker(args: string[] = []): Promise<StartedBroker> {
  const b = await startBroker({ args });
  brokers.push(b);
  return b;
}

/** Every line of the broker's output, each of which must be JSON. */
function lines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        throw new Error(`not a JSON log line: ${l}`);
      }
    });
}

async function line(output: () => string, msg: string, match: (l: Line) => boolean = () => true): Promise<Line> {
  let found: Line | undefined;
  await waitFor(
    () => (found = lines(output()).find((l) => l.msg === msg && match(l))) !== undefined,
    10_000,
    `a "${msg}" log line in:\n${output()}`,
  );
  return found!;
}

/** A TCP connection that sends nothing: with the level at debug, it leaves one debug line. */
function probe(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.end());
    s.on('error', reject);
    s.on('close', () => resolve());
  });
}

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const WRONG_PASSWORD = 'h-logs-Wr0ng-pa55word';
const NEW_USER_PASSWORD = 'h-logs-n3w-user-secret';

describe('log lines', () => {
  let b: StartedBroker;
  const out = () => b.output();

  it('starts with the recovery figures and the listeners', async () => {
    b = await broker();
    expect(await line(out, 'store recovered')).toMatchObject({ level: 30, queues: 0, messages: 0, bytes: 0, ms: expect.any(Number) });
    expect(await line(out, `Leveret listening for AMQP on 0.0.0.0:${b.port}`)).toMatchObject({
      protocol: 'amqp',
      port: b.port,
      tls: false,
    });
    expect(await line(out, `Leveret listening for HTTP on 0.0.0.0:${b.httpPort}`)).toMatchObject({
      protocol: 'http',
      httpPort: b.httpPort,
      tls: false,
    });
  });

  it('a connection: accepted, opened with the client properties, a 404 channel error, closed by the client', async () => {
    const conn = await amqp.connect(b.url, { clientProperties: { connection_name: 'h-logs orders' } });
    const opened = await line(out, 'connection opened', (l) => l.connectionName === 'h-logs orders');
    expect(opened).toMatchObject({
      level: 30,
      user: 'guest',
      vhost: '/',
      mechanism: 'PLAIN',
      product: 'amqplib',
      version: expect.any(String),
      platform: expect.stringMatching(/^Node\.JS/),
      peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
    const conn1 = opened.conn as string;
    expect(await line(out, 'connection accepted', (l) => l.conn === conn1)).toMatchObject({ peer: opened.peer, tls: false });

    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await expect(ch.checkQueue('h-logs-no-such-queue')).rejects.toThrow(/404/);
    expect(await line(out, 'channel closed by the server', (l) => l.conn === conn1)).toMatchObject({
      level: 40,
      channel: 1,
      user: 'guest',
      vhost: '/',
      code: 404,
      reason: "NOT_FOUND - no queue 'h-logs-no-such-queue' in vhost '/'",
      method: 'queue.declare',
    });

    await conn.close();
    const closed = await line(out, 'connection closed', (l) => l.conn === conn1);
    expect(closed).toMatchObject({ level: 30, by: 'client', code: 200, user: 'guest', vhost: '/', peer: opened.peer });
    expect(closed.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('a refused login names the user, the peer and the mechanism, never the password', async () => {
    await expect(amqp.connect(`amqp://guest:${WRONG_PASSWORD}@127.0.0.1:${b.port}`)).rejects.toThrow(/ACCESS_REFUSED|403/);
    expect(await line(out, 'login refused')).toMatchObject({
      level: 40,
      user: 'guest',
      mechanism: 'PLAIN',
      peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      reason: "user 'guest' - invalid credentials",
    });
    expect(out()).not.toContain(WRONG_PASSWORD);
  });

  it('changes through the management API name the user; a connection closed by the API says by whom and with what code', async () => {
    const policy = await api(b.httpPort, 'PUT', '/api/policies/%2F/h-logs-ttl', {
      body: { pattern: '^h-logs', definition: { 'message-ttl': 60000 }, 'apply-to': 'queues' },
    });
    expect(policy.status).toBe(201);
    expect(await line(out, 'management API change', (l) => l.resource === '/api/policies/:vhost/:name')).toMatchObject({
      level: 30,
      user: 'guest',
      method: 'PUT',
      target: { vhost: '/', name: 'h-logs-ttl' },
      status: 201,
    });
    expect(
      (await api(b.httpPort, 'PUT', '/api/users/h-logs-user', { body: { password: NEW_USER_PASSWORD, tags: 'management' } })).status,
    ).toBe(201);
    expect(await line(out, 'management API change', (l) => l.resource === '/api/users/:name')).toMatchObject({
      user: 'guest',
      method: 'PUT',
      target: { name: 'h-logs-user' },
    });
    // Reading is not a change; publishing through the API is messages, not set-up.
    const before = lines(out()).filter((l) => l.msg === 'management API change').length;
    await api(b.httpPort, 'GET', '/api/policies');
    await api(b.httpPort, 'POST', '/api/exchanges/%2F/amq.default/publish', {
      body: { properties: {}, routing_key: 'h-logs-nowhere', payload: 'x', payload_encoding: 'string' },
    });
    await sleep(200);
    expect(lines(out()).filter((l) => l.msg === 'management API change').length).toBe(before);

    const conn = await amqp.connect(b.url, { clientProperties: { connection_name: 'h-logs doomed' } });
    conn.on('error', () => undefined);
    const opened = await line(out, 'connection opened', (l) => l.connectionName === 'h-logs doomed');
    await waitFor(
      async () => (await api(b.httpPort, 'GET', '/api/connections')).text.includes('h-logs doomed'),
      10_000,
      'the connection in /api',
    );
    const name = encodeURIComponent(opened.conn as string);
    expect((await api(b.httpPort, 'DELETE', `/api/connections/${name}`)).status).toBe(204);
    expect(await line(out, 'connection closed', (l) => l.conn === opened.conn)).toMatchObject({
      by: 'server',
      code: 320,
      reason: 'CONNECTION_FORCED - Closed via management plugin',
      user: 'guest',
    });
    expect(await line(out, 'management API change', (l) => l.resource === '/api/connections/:name')).toMatchObject({
      user: 'guest',
      method: 'DELETE',
      target: { name: opened.conn },
    });
  });

  it('the level changes at run time over HTTP: a debug line appears only after PUT debug', async () => {
    expect((await api(b.httpPort, 'GET', '/api/log-level')).json).toEqual({ level: 'info' });
    await probe(b.port);
    await sleep(300);
    expect(lines(out()).some((l) => l.msg === 'connection closed before the protocol header')).toBe(false);

    expect((await api(b.httpPort, 'PUT', '/api/log-level', { body: { level: 'debug' } })).status).toBe(204);
    expect((await api(b.httpPort, 'GET', '/api/log-level')).json).toEqual({ level: 'debug' });
    expect(await line(out, 'log level changed')).toMatchObject({ user: 'guest', from: 'info', to: 'debug', level: 30 });
    await probe(b.port);
    expect(await line(out, 'connection closed before the protocol header')).toMatchObject({ level: 20 });

    const bad = await api(b.httpPort, 'PUT', '/api/log-level', { body: { level: 'loud' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({
      error: 'bad_request',
      reason: 'unknown log level "loud"; one of fatal, error, warn, info, debug, trace, silent',
    });
    // A management user who is not an administrator may not read or change it.
    const notAdmin = await api(b.httpPort, 'PUT', '/api/log-level', { body: { level: 'trace' }, auth: ['h-logs-user', NEW_USER_PASSWORD] });
    expect(notAdmin.status).toBe(401);
    expect((await api(b.httpPort, 'GET', '/api/log-level', { auth: ['h-logs-user', NEW_USER_PASSWORD] })).status).toBe(401);

    // The operator command is a client of the same endpoint.
    const leveret = (...args: string[]) =>
      execFileSync(process.execPath, [CLI, ...args, '--url', `http://127.0.0.1:${b.httpPort}`], { encoding: 'utf8' });
    expect(leveret('status')).toMatch(/\nLog level: +debug\n/);
    expect(leveret('set', 'log_level', 'warn')).toBe('set log level to "warn"\n');
    expect((await api(b.httpPort, 'GET', '/api/log-level')).json).toEqual({ level: 'warn' });
    expect(JSON.parse(leveret('status', '-f', 'json'))).toMatchObject({ log_level: 'warn' });
    expect(() =>
      execFileSync(process.execPath, [CLI, 'set', 'log_level', 'loud', '--url', `http://127.0.0.1:${b.httpPort}`], { stdio: 'pipe' }),
    ).toThrow(/unknown log level "loud"/);

    expect((await api(b.httpPort, 'PUT', '/api/log-level', { body: { level: 'info' } })).status).toBe(204);
    expect(await line(out, 'log level changed', (l) => l.from === 'warn')).toMatchObject({ to: 'info', level: 30 });
    const n = lines(out()).filter((l) => l.msg === 'connection closed before the protocol header').length;
    await probe(b.port);
    await sleep(300);
    expect(lines(out()).filter((l) => l.msg === 'connection closed before the protocol header').length).toBe(n);
  });

  it('SIGTERM logs each phase of the stop, with the connections it closes', async () => {
    const conn = await amqp.connect(b.url, { clientProperties: { connection_name: 'h-logs at stop' } });
    conn.on('error', () => undefined);
    const opened = await line(out, 'connection opened', (l) => l.connectionName === 'h-logs at stop');
    b.kill('SIGTERM');
    await line(out, 'stopped');
    const msgs = lines(out()).map((l) => l.msg);
    const order = [
      'shutting down',
      'stopped accepting connections',
      'closing connections',
      'connections closed',
      'store closed cleanly: every write is on disk, the next start has nothing to recover',
      'Leveret stopped',
      'stopped',
    ].map((m) => msgs.indexOf(m));
    expect(
      order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])),
      msgs.join('\n'),
    ).toBe(true);
    expect(await line(out, 'shutting down')).toMatchObject({ signal: 'SIGTERM', connections: 1 });
    expect(await line(out, 'closing connections')).toMatchObject({ connections: 1 });
    expect(await line(out, 'connection closed', (l) => l.conn === opened.conn)).toMatchObject({
      by: 'server',
      code: 320,
      reason: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
    });
    // No password anywhere, from the refused login or the user made over HTTP.
    expect(out()).not.toContain(WRONG_PASSWORD);
    expect(out()).not.toContain(NEW_USER_PASSWORD);
  });
});

describe('alarms and blocked connections', () => {
  it('a memory alarm is logged, and so is connection.blocked sent to a client', async () => {
    const b = await broker(['--vm-memory-high-watermark', '1MB']);
    const out = () => b.output();
    const isAlarm = (l: Line) => typeof l.msg === 'string' && l.msg.startsWith('memory resource limit alarm set');
    await waitFor(() => lines(out()).some(isAlarm), 10_000, 'the alarm line');
    const set = lines(out()).find(isAlarm)!;
    expect(set).toMatchObject({ level: 40, limit: 1_000_000, rss: expect.any(Number) });
    const conn = await amqp.connect(b.url, { clientProperties: { connection_name: 'h-logs blocked' } });
    const opened = await line(out, 'connection opened', (l) => l.connectionName === 'h-logs blocked');
    // As in RabbitMQ, a connection is told connection.blocked once it publishes during the alarm.
    const ch = await conn.createChannel();
    ch.publish('', 'h-logs-nowhere', Buffer.from('x'));
    expect(await line(out, 'connection blocked', (l) => l.conn === opened.conn)).toMatchObject({
      level: 30,
      user: 'guest',
      reason: 'low on memory',
    });
    await conn.close();
  });
});

describe('--log-file', () => {
  it('writes to the file instead of stdout, and SIGUSR1 reopens it by its path after a rename (logrotate)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h-logs-file-'));
    tmpDirs.push(dir);
    const file = path.join(dir, 'leveret.log');
    const b = await broker(['--log-file', file]);
    const fromFile = (f: string) => () => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
    await line(fromFile(file), `Leveret listening for AMQP on 0.0.0.0:${b.port}`);
    expect(b.output()).toBe('');

    fs.renameSync(file, `${file}.1`);
    b.kill('SIGUSR1');
    expect(await line(fromFile(file), 'log file reopened')).toMatchObject({ file });
    const conn = await amqp.connect(b.url, { clientProperties: { connection_name: 'h-logs after rotation' } });
    await line(fromFile(file), 'connection opened', (l) => l.connectionName === 'h-logs after rotation');
    await conn.close();
    const old = lines(fs.readFileSync(`${file}.1`, 'utf8'));
    expect(old.some((l) => l.msg === `Leveret listening for AMQP on 0.0.0.0:${b.port}`)).toBe(true);
    expect(old.some((l) => l.msg === 'connection opened' || l.msg === 'log file reopened')).toBe(false);
    expect(b.output()).toBe('');
  });
});

describe('pretty output', () => {
  it('--log-format pretty writes lines for a person', async () => {
    const b = await broker(['--log-format', 'pretty']);
    await waitFor(() => b.output().includes(`Leveret listening for AMQP on 0.0.0.0:${b.port}`), 10_000, 'the listening line');
    const listening = b
      .output()
      .split('\n')
      .find((l) => l.includes('Leveret listening for AMQP'))!;
    expect(listening).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: Leveret listening for AMQP/);
    expect(() => JSON.parse(listening)).toThrow();
  });

  it('on a terminal (auto) the lines are pretty and coloured', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'h-logs-tty-'));
    tmpDirs.push(dataDir);
    // script(1) gives the broker a pseudo-terminal as stdout; the shell prints its pid so it can be stopped.
    const cmd = `echo PID:$$; exec ${process.execPath} ${CLI} --port ${port} --http-port ${httpPort} --data-dir ${dataDir}`;
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(() => text.includes(`Leveret listening for AMQP on 0.0.0.0:${port}`), 15_000, `the listening line in:\n${text}`);
    } finally {
      const pid = /PID:(\d+)/.exec(text);
      if (pid !== null) process.kill(Number(pid[1]), 'SIGTERM');
      else child.kill('SIGKILL');
    }
    expect(await exited).toBe(0);
    const listening = text.split('\n').find((l) => l.includes('Leveret listening for AMQP'))!;
    // pino-pretty colours the level on a terminal: ANSI escapes, not JSON.
    expect(listening).toContain('\u001b[32mINFO\u001b[39m');
    expect(listening.trimStart().startsWith('{')).toBe(false);
    expect(text).toContain('stopped');
  });
});
