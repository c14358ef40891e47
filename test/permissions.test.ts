// Permissions over real sockets, scenario by scenario, with the exact replies RabbitMQ
// 3.10.8 gives (recorded in conformance/README.md, "Permissions"). In `npm test` the
// broker is a Leveret started in this process, and users, vhosts and permissions are made
// through `server.broker`. With PERMISSIONS_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672
// the same scenarios run against that RabbitMQ, set up with rabbitmqctl (users and vhosts
// get unique names and are deleted afterwards).
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { Server } from '../src/app';
import * as raw from './helpers/raw';

const RABBITMQ_URL = process.env.PERMISSIONS_RABBITMQ_URL;

/** Where the scenarios run, and how users, vhosts and permissions are made there. */
interface Target {
  host: string;
  port: number;
  /** The administrator's URL (guest/guest in both brokers). */
  adminUrl: string;
  addUser(name: string): Promise<void>;
  addVhost(name: string): Promise<void>;
  setPermissions(vhost: string, user: string, configure: string, write: string, read: string): Promise<void>;
  setTopicPermissions(vhost: string, user: string, exchange: string, write: string, read: string): Promise<void>;
  close(): Promise<void>;
}

const PASSWORD = 'pw';

function rabbitmqctl(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('rabbitmqctl', args, (err, out, errOut) =>
      err ? reject(new Error(`rabbitmqctl ${args.join(' ')}: ${errOut}`)) : resolve(out),
    ),
  );
}

function rabbitTarget(url: string): Target {
  const u = new URL(url);
  const users: string[] = [];
  const vhosts: string[] = [];
  return {
    host: u.hostname,
    port: Number(u.port || 5672),
    adminUrl: url,
    async addUser(name) {
      await rabbitmqctl('add_user', name, PASSWORD);
      users.push(name);
    },
    async addVhost(name) {
      await rabbitmqctl('add_vhost', name);
      vhosts.push(name);
    },
    setPermissions: (vhost, user, c, w, r) => rabbitmqctl('set_permissions', '-p', vhost, user, c, w, r).then(() => {}),
    setTopicPermissions: (vhost, user, x, w, r) => rabbitmqctl('set_topic_permissions', '-p', vhost, user, x, w, r).then(() => {}),
    async close() {
      await Promise.all([...users.map((n) => rabbitmqctl('delete_user', n)), ...vhosts.map((v) => rabbitmqctl('delete_vhost', v))]);
    },
  };
}

async function leveretTarget(): Promise<Target> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-perms-'));
  const config = { ...defaultConfig(), port: 0, httpPort: 0, host: '127.0.0.1', dataDir, logLevel: 'silent' as const };
  const server = new Server(config, createLogger('silent'));
  await server.start();
  const broker = server.broker;
  return {
    host: '127.0.0.1',
    port: server.port,
    adminUrl: `amqp://guest:guest@127.0.0.1:${server.port}`,
    addUser: async (name) => broker.users.add(name, PASSWORD, []),
    addVhost: async (name) => void broker.vhost(name),
    setPermissions: async (vhost, user, configure, write, read) => void broker.permissions.set(vhost, user, { configure, write, read }),
    setTopicPermissions: async (vhost, user, exchange, write, read) =>
      void broker.permissions.setTopic(vhost, user, exchange, { write, read }),
    async close() {
      await server.stop('test done');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ---- what a client sees ------------------------------------------------------------------

interface Refusal {
  code: number;
  classId: number;
  methodId: number;
  text: string;
}

type Outcome = 'ok' | Refusal;

function refusalOf(err: unknown): Refusal {
  const e = err as { code?: number; classId?: number; methodId?: number; message: string };
  const text = /with message "(.*)"$/s.exec(e.message)?.[1] ?? e.message;
  return { code: e.code ?? 0, classId: e.classId ?? 0, methodId: e.methodId ?? 0, text };
}

const refused = (code: number, classId: number, methodId: number, text: string): Refusal => ({ code, classId, methodId, text });
const ACCESS_REFUSED = (classId: number, methodId: number, text: string): Refusal =>
  refused(403, classId, methodId, `ACCESS_REFUSED - ${text}`);

/**
 * Runs `op` on a fresh channel and reports whether the broker refused it. A publish gets
 * no reply, so a passive declare (which checks no permission) follows as a round trip.
 */
async function outcome(conn: amqp.ChannelModel, op: (ch: amqp.Channel) => Promise<unknown> | void): Promise<Outcome> {
  const ch = await conn.createChannel();
  let closedWith: unknown = null;
  ch.on('error', (err) => (closedWith = err));
  try {
    await op(ch);
    await ch.checkExchange('amq.direct');
  } catch (err) {
    closedWith ??= err;
  }
  if (closedWith !== null) return refusalOf(closedWith);
  await ch.close();
  return 'ok';
}

/** connection.open as a raw client, to see the reply's class and method too. */
async function openVhost(t: Target, user: string, vhost: string): Promise<Outcome> {
  const c = await raw.RawClient.connect(t.port, t.host);
  try {
    await c.start();
    c.send(raw.startOk('PLAIN', raw.plainResponse(user, PASSWORD)));
    const tune = raw.decodeTune((await c.expectMethod(10, 30)).args!);
    c.send(raw.tuneOk(tune.channelMax, tune.frameMax, 0));
    c.send(raw.connectionOpen(vhost));
    for (;;) {
      const f = await c.nextFrame();
      if (f === null) throw new Error('socket closed without connection.close');
      if (raw.isMethod(f, 10, 41)) return 'ok';
      if (raw.isClose(f)) {
        const close = raw.decodeClose(f);
        c.send(raw.connectionCloseOk());
        return refused(close.code, close.classId, close.methodId, close.text);
      }
    }
  } finally {
    c.destroy();
  }
}

// ---- the scenarios -----------------------------------------------------------------------

const id = Math.random().toString(36).slice(2, 8);
const user = (shape: string): string => `perm_${shape}_${id}`;
const Q = `q-${id}`; // a queue and an exchange every user finds there
const X = `x-${id}`;
const RXQ = `rx-q-${id}`; // names the regex-limited user may use
const RXX = `rx-x-${id}`;

let t: Target;
let admin: amqp.ChannelModel;
const conns: amqp.ChannelModel[] = [];

async function connect(name: string, vhost = '/'): Promise<amqp.ChannelModel> {
  const c = await amqp.connect({ hostname: t.host, port: t.port, username: name, password: PASSWORD, vhost });
  c.on('error', () => {});
  conns.push(c);
  return c;
}

beforeAll(async () => {
  t = RABBITMQ_URL !== undefined ? rabbitTarget(RABBITMQ_URL) : await leveretTarget();
  const shapes: Array<[string, string, string, string]> = [
    ['ro', '', '', '.*'],
    ['wo', '', '.*', ''],
    ['co', '.*', '', ''],
    ['rx', '^rx-', '^rx-', '^rx-'],
    ['tp', '.*', '.*', '.*'],
    ['cache', '.*', '.*', '.*'],
    ['evict', '.*', '.*', '.*'],
  ];
  await Promise.all([...shapes.map(([s]) => user(s)), user('none'), user('vh')].map((n) => t.addUser(n)));
  await Promise.all([t.addVhost(`pv1-${id}`), t.addVhost(`pv2-${id}`)]);
  await Promise.all([
    ...shapes.map(([s, c, w, r]) => t.setPermissions('/', user(s), c, w, r)),
    t.setPermissions(`pv1-${id}`, user('vh'), '.*', '.*', '.*'),
    t.setPermissions(`pv2-${id}`, user('vh'), '.*', '.*', '.*'),
    t.setTopicPermissions('/', user('tp'), 'amq.topic', '^{username}\\.', '^{username}\\.|^{vhost}$'),
  ]);
  admin = await amqp.connect(t.adminUrl);
  const ch = await admin.createChannel();
  for (const q of [Q, RXQ]) await ch.assertQueue(q, { durable: false });
  for (const x of [X, RXX]) await ch.assertExchange(x, 'fanout', { durable: false });
  await ch.close();
}, 120_000);

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => {});
  if (admin !== undefined) {
    const ch = await admin.createChannel();
    for (const q of [Q, RXQ]) await ch.deleteQueue(q);
    for (const x of [X, RXX]) await ch.deleteExchange(x);
    await admin.close();
  }
  await t?.close();
}, 120_000);

const body = Buffer.from('m');

describe('permissions, enforced as RabbitMQ does', () => {
  it('read-only user (configure "", write "", read ".*")', async () => {
    const u = user('ro');
    const c = await connect(u);
    const queueRefused = (cls: number, m: number): Refusal =>
      ACCESS_REFUSED(cls, m, `access to queue '${Q}' in vhost '/' refused for user '${u}'`);
    expect(await outcome(c, (ch) => ch.assertQueue(Q, { durable: false }))).toEqual(queueRefused(50, 10));
    expect(await outcome(c, (ch) => ch.checkQueue(Q))).toBe('ok');
    expect(await outcome(c, (ch) => ch.get(Q))).toBe('ok');
    expect(await outcome(c, (ch) => ch.consume(Q, () => {}))).toBe('ok');
    expect(await outcome(c, (ch) => ch.purgeQueue(Q))).toBe('ok');
    expect(await outcome(c, (ch) => ch.deleteQueue(Q))).toEqual(queueRefused(50, 40));
    expect(await outcome(c, (ch) => ch.bindQueue(Q, X, ''))).toEqual(queueRefused(50, 20));
    expect(await outcome(c, (ch) => ch.unbindQueue(Q, X, ''))).toEqual(queueRefused(50, 50));
    expect(await outcome(c, (ch) => ch.assertExchange(X, 'fanout', { durable: false }))).toEqual(
      ACCESS_REFUSED(40, 10, `access to exchange '${X}' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.checkExchange(X))).toBe('ok');
    // The default exchange is amq.default for permission purposes.
    expect(await outcome(c, (ch) => void ch.sendToQueue(Q, body))).toEqual(
      ACCESS_REFUSED(60, 40, `access to exchange 'amq.default' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.assertQueue('', { exclusive: true }))).toMatchObject({
      code: 403,
      classId: 50,
      methodId: 10,
      text: expect.stringMatching(
        new RegExp(`^ACCESS_REFUSED - access to queue 'amq\\.gen-[\\w-]{22}' in vhost '/' refused for user '${u}'$`),
      ),
    });
  });

  it('write-only user (configure "", write ".*", read "")', async () => {
    const u = user('wo');
    const c = await connect(u);
    const queueRefused = (cls: number, m: number): Refusal =>
      ACCESS_REFUSED(cls, m, `access to queue '${Q}' in vhost '/' refused for user '${u}'`);
    expect(await outcome(c, (ch) => void ch.publish(X, '', body))).toBe('ok');
    expect(await outcome(c, (ch) => void ch.sendToQueue(Q, body))).toBe('ok');
    expect(await outcome(c, (ch) => ch.get(Q))).toEqual(queueRefused(60, 70));
    expect(await outcome(c, (ch) => ch.consume(Q, () => {}))).toEqual(queueRefused(60, 20));
    expect(await outcome(c, (ch) => ch.purgeQueue(Q))).toEqual(queueRefused(50, 30));
    // write on the queue passes, read on the exchange does not
    expect(await outcome(c, (ch) => ch.bindQueue(Q, X, ''))).toEqual(
      ACCESS_REFUSED(50, 20, `access to exchange '${X}' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.assertQueue(Q, { durable: false }))).toEqual(queueRefused(50, 10));
  });

  it('configure-only user (configure ".*", write "", read "")', async () => {
    const u = user('co');
    const c = await connect(u);
    const own = `co-${id}`;
    expect(await outcome(c, (ch) => ch.assertQueue(own, { durable: false }))).toBe('ok');
    expect(await outcome(c, (ch) => ch.assertExchange(own, 'direct', { durable: false }))).toBe('ok');
    expect(await outcome(c, (ch) => ch.assertQueue('', { exclusive: true }))).toBe('ok');
    expect(await outcome(c, (ch) => void ch.publish(own, '', body))).toEqual(
      ACCESS_REFUSED(60, 40, `access to exchange '${own}' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.get(own))).toEqual(
      ACCESS_REFUSED(60, 70, `access to queue '${own}' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.bindQueue(own, own, 'k'))).toEqual(
      ACCESS_REFUSED(50, 20, `access to queue '${own}' in vhost '/' refused for user '${u}'`),
    );
    // A new queue that dead-letters needs read on itself and write on the exchange.
    expect(await outcome(c, (ch) => ch.assertQueue(`co-dl-${id}`, { durable: false, deadLetterExchange: own }))).toEqual(
      ACCESS_REFUSED(50, 10, `access to queue 'co-dl-${id}' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.deleteQueue(own))).toBe('ok');
    expect(await outcome(c, (ch) => ch.deleteExchange(own))).toBe('ok');
  });

  it('regex-limited user (^rx- for all three)', async () => {
    const u = user('rx');
    const c = await connect(u);
    const exRefused = (name: string, cls: number, m: number): Refusal =>
      ACCESS_REFUSED(cls, m, `access to exchange '${name}' in vhost '/' refused for user '${u}'`);
    expect(await outcome(c, (ch) => ch.assertQueue(RXQ, { durable: false }))).toBe('ok');
    expect(await outcome(c, (ch) => ch.assertQueue(Q, { durable: false }))).toEqual(
      ACCESS_REFUSED(50, 10, `access to queue '${Q}' in vhost '/' refused for user '${u}'`),
    );
    // Unanchored at the end: `^rx-` allows any name that starts so.
    expect(await outcome(c, (ch) => ch.bindQueue(RXQ, RXX, ''))).toBe('ok');
    expect(await outcome(c, (ch) => void ch.publish(RXX, '', body))).toBe('ok');
    expect(await outcome(c, (ch) => ch.get(RXQ))).toBe('ok');
    expect(await outcome(c, (ch) => void ch.sendToQueue(RXQ, body))).toEqual(exRefused('amq.default', 60, 40));
    expect(await outcome(c, (ch) => ch.bindQueue(RXQ, 'amq.direct', 'k'))).toEqual(exRefused('amq.direct', 50, 20));
    expect(await outcome(c, (ch) => ch.bindExchange(RXX, 'amq.fanout', ''))).toEqual(exRefused('amq.fanout', 40, 30));
    expect(await outcome(c, (ch) => ch.bindExchange('amq.direct', RXX, ''))).toEqual(exRefused('amq.direct', 40, 30));
    expect(await outcome(c, (ch) => ch.unbindExchange(RXX, 'amq.fanout', ''))).toEqual(exRefused('amq.fanout', 40, 40));
    expect(
      await outcome(c, (ch) => ch.assertExchange(`rx-ae-${id}`, 'fanout', { durable: false, alternateExchange: 'amq.fanout' })),
    ).toEqual(exRefused('amq.fanout', 40, 10));
    expect(await outcome(c, (ch) => ch.assertQueue(`rx-dlq-${id}`, { durable: false, deadLetterExchange: 'amq.fanout' }))).toEqual(
      exRefused('amq.fanout', 50, 10),
    );
    expect(await outcome(c, (ch) => ch.deleteQueue(Q))).toEqual(
      ACCESS_REFUSED(50, 40, `access to queue '${Q}' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.purgeQueue(Q))).toEqual(
      ACCESS_REFUSED(50, 30, `access to queue '${Q}' in vhost '/' refused for user '${u}'`),
    );
    expect(await outcome(c, (ch) => ch.deleteExchange(X))).toEqual(exRefused(X, 40, 20));
    // Checks RabbitMQ makes before permissions keep their own replies.
    expect(await outcome(c, (ch) => ch.deleteExchange('amq.direct'))).toEqual(
      ACCESS_REFUSED(40, 20, `deletion of system exchange 'amq.direct' in vhost '/' not allowed`),
    );
    expect(await outcome(c, (ch) => ch.assertQueue('amq.mine', { durable: false }))).toEqual(
      ACCESS_REFUSED(50, 10, `queue name 'amq.mine' contains reserved prefix 'amq.*'`),
    );
    // The direct reply-to pseudo queue needs no permission.
    expect(await outcome(c, (ch) => ch.consume('amq.rabbitmq.reply-to', () => {}, { noAck: true }))).toBe('ok');
    expect(await outcome(c, (ch) => ch.deleteQueue(RXQ))).toBe('ok');
    const ch = await admin.createChannel();
    await ch.assertQueue(RXQ, { durable: false });
    await ch.close();
  });

  it('a user without permissions on the vhost is refused at connection.open (530)', async () => {
    const u = user('none');
    expect(await openVhost(t, u, '/')).toEqual(refused(530, 10, 40, `NOT_ALLOWED - access to vhost '/' refused for user '${u}'`));
    // vh has rights on pv1/pv2 only
    expect(await openVhost(t, user('vh'), '/')).toEqual(
      refused(530, 10, 40, `NOT_ALLOWED - access to vhost '/' refused for user '${user('vh')}'`),
    );
    expect(await openVhost(t, user('vh'), `pv1-${id}`)).toBe('ok');
  });

  it('topic permissions, with {username} and {vhost} expanded', async () => {
    const u = user('tp');
    const c = await connect(u);
    const topicRefused = (cls: number, m: number, key: string): Refusal =>
      ACCESS_REFUSED(cls, m, `access to topic '${key}' in exchange 'amq.topic' in vhost '/' refused for user '${u}'`);
    expect(await outcome(c, (ch) => void ch.publish('amq.topic', `${u}.a`, body))).toBe('ok');
    expect(await outcome(c, (ch) => void ch.publish('amq.topic', 'other.a', body))).toEqual(topicRefused(60, 40, 'other.a'));
    // Only topic exchanges are concerned, and only the one the permission names.
    expect(await outcome(c, (ch) => void ch.publish('amq.direct', 'other.a', body))).toBe('ok');
    const q = `tp-${id}`;
    expect(await outcome(c, (ch) => ch.assertQueue(q, { durable: false }))).toBe('ok');
    expect(await outcome(c, (ch) => ch.bindQueue(q, 'amq.topic', `${u}.#`))).toBe('ok');
    expect(await outcome(c, (ch) => ch.bindQueue(q, 'amq.topic', '/'))).toBe('ok');
    expect(await outcome(c, (ch) => ch.bindQueue(q, 'amq.topic', '#'))).toEqual(topicRefused(50, 20, '#'));
    expect(await outcome(c, (ch) => ch.unbindQueue(q, 'amq.topic', '#'))).toEqual(topicRefused(50, 50, '#'));
    expect(await outcome(c, (ch) => ch.deleteQueue(q))).toBe('ok');
  });

  it('two vhosts with same-named queues never see each other’s messages', async () => {
    const name = 'same';
    const got: string[] = [];
    for (const v of [`pv1-${id}`, `pv2-${id}`]) {
      const c = await connect(user('vh'), v);
      const ch = await c.createConfirmChannel();
      await ch.assertQueue(name, { durable: false });
      ch.sendToQueue(name, Buffer.from(`in ${v}`));
      await ch.waitForConfirms();
    }
    for (const v of [`pv1-${id}`, `pv2-${id}`]) {
      const c = await connect(user('vh'), v);
      const ch = await c.createChannel();
      for (let m = await ch.get(name, { noAck: true }); m !== false; m = await ch.get(name, { noAck: true }))
        got.push(`${v}: ${m.content.toString()}`);
      await ch.deleteQueue(name);
    }
    expect(got).toEqual([`pv1-${id}: in pv1-${id}`, `pv2-${id}: in pv2-${id}`]);
  });
});

describe('permission changes and open channels (RabbitMQ caches per channel)', () => {
  /** Publishes every 10 ms on a confirm channel until stopped; resolves with the first refusal, if any. */
  function keepPublishing(ch: amqp.ConfirmChannel, exchange: string): { stop(): Promise<Refusal | null> } {
    let running = true;
    let refusal: Refusal | null = null;
    ch.on('error', (err) => (refusal ??= refusalOf(err)));
    const loop = (async () => {
      while (running && refusal === null) {
        ch.publish(exchange, '', body);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return refusal;
      },
    };
  }

  it('a busy channel keeps the rights it checked; a new channel, or the same one after ~1 s idle, sees the change', async () => {
    const u = user('cache');
    const c = await connect(u);
    const ch = await c.createConfirmChannel();
    const publisher = keepPublishing(ch, X);
    await new Promise((r) => setTimeout(r, 100));
    await t.setPermissions('/', u, '.*', '', '.*');
    await new Promise((r) => setTimeout(r, 300));
    expect(await publisher.stop()).toBeNull();
    await ch.waitForConfirms();
    const want = ACCESS_REFUSED(60, 40, `access to exchange '${X}' in vhost '/' refused for user '${u}'`);
    expect(await outcome(c, (fresh) => void fresh.publish(X, '', body))).toEqual(want);
    // Idle for longer than RabbitMQ's hibernation timeout: the channel forgot its cache.
    await new Promise((r) => setTimeout(r, 2500));
    let err: unknown = null;
    ch.on('error', (e) => (err = e));
    ch.publish(X, '', body);
    await ch.waitForConfirms().catch(() => {});
    expect(err === null ? 'ok' : refusalOf(err)).toEqual(want);
  }, 30_000);

  it('the cache holds the last 12 checks: 12 newer ones push an old one out', async () => {
    const u = user('evict');
    const c = await connect(u);
    const ch = await c.createChannel();
    let err: unknown = null;
    ch.on('error', (e) => (err = e));
    ch.publish('amq.fanout', '', body);
    await ch.checkExchange('amq.fanout'); // the publish was handled: write on amq.fanout is cached
    // Keep the channel busy while the permission changes, so that it does not go idle.
    let busy = true;
    const ticking = (async () => {
      while (busy) {
        await ch.checkExchange('amq.fanout');
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await t.setPermissions('/', u, '.*', `^ev-${id}-|^amq\\.direct$`, '.*');
    busy = false;
    await ticking;
    // 5 new exchanges: configure + write each, 10 entries; amq.fanout is still cached.
    for (let i = 0; i < 5; i++) {
      await ch.assertExchange(`ev-${id}-${i}`, 'fanout', { durable: false, autoDelete: true });
      ch.publish(`ev-${id}-${i}`, '', body);
    }
    ch.publish('amq.fanout', '', body);
    await ch.checkExchange('amq.fanout');
    expect(err).toBeNull();
    // One more exchange: 12 newer entries, amq.fanout's has gone.
    await ch.assertExchange(`ev-${id}-5`, 'fanout', { durable: false, autoDelete: true });
    ch.publish(`ev-${id}-5`, '', body);
    ch.publish('amq.fanout', '', body);
    await ch.checkExchange('amq.fanout').catch(() => {});
    expect(err === null ? 'ok' : refusalOf(err)).toEqual(
      ACCESS_REFUSED(60, 40, `access to exchange 'amq.fanout' in vhost '/' refused for user '${u}'`),
    );
    const admin2 = await admin.createChannel();
    for (let i = 0; i < 6; i++) await admin2.deleteExchange(`ev-${id}-${i}`);
    await admin2.close();
  }, 30_000);
});
