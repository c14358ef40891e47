// Users live in the definitions log (records `user` / `user.delete`): they survive kill -9
// and restarts, compaction keeps them, and the default user is made only on a store that
// never held users, so deleting guest (or everyone) is not undone by a restart (RabbitMQ
// seeds default_user on a node's first boot only).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api, putUser } from './helpers/http';

const T = 60_000;
const dirs: string[] = [];
let running: DurableBroker[] = [];

afterEach(async () => {
  for (const b of running) await b.crash();
  running = [];
});

afterAll(async () => {
  for (const d of dirs) await removeDataDir(d);
});

async function dataDir(): Promise<string> {
  const d = await tempDataDir('leveret-users-');
  dirs.push(d);
  return d;
}

async function start(dir: string, args: string[] = []): Promise<DurableBroker> {
  const b = await startOn(dir, args);
  running.push(b);
  return b;
}

async function canLogin(b: DurableBroker, username: string, password: string): Promise<boolean> {
  try {
    const c = await amqp.connect({ protocol: 'amqp', hostname: '127.0.0.1', port: b.port, username, password });
    await c.close();
    return true;
  } catch {
    return false;
  }
}

const users = async (b: DurableBroker, auth: [string, string] = ['guest', 'guest']) =>
  (await api(b.httpPort, 'GET', '/api/users', { auth })).json as Array<Record<string, unknown>>;

const alice = (
  JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'rabbitmq-definitions.json'), 'utf8')) as {
    users: Array<{ name: string; password_hash: string; hashing_algorithm: string }>;
  }
).users.find((u) => u.name === 'alice')!;

describe('users on disk', () => {
  it(
    'survive kill -9 with their hashes, algorithms and tags; deleted ones stay deleted',
    async () => {
      const dir = await dataDir();
      const b1 = await start(dir);
      expect(
        (
          await putUser(b1.httpPort, 'alice', {
            password_hash: alice.password_hash,
            hashing_algorithm: alice.hashing_algorithm,
            tags: 'management',
          })
        ).status,
      ).toBe(201);
      expect((await putUser(b1.httpPort, 'team/a b%', { password: 'one', tags: ['monitoring'] })).status).toBe(201);
      expect((await putUser(b1.httpPort, 'team/a b%', { password: 'two', tags: ['monitoring', 'policymaker'] })).status).toBe(204);
      expect((await putUser(b1.httpPort, 'doomed', { password: 'x', tags: '' })).status).toBe(201);
      expect((await api(b1.httpPort, 'DELETE', '/api/users/doomed')).status).toBe(204);
      const before = await users(b1);
      await b1.crash();

      const b2 = await start(dir);
      expect(await users(b2)).toEqual(before);
      expect(before.map((u) => u.name)).toEqual(['alice', 'guest', 'team/a b%']);
      expect(await canLogin(b2, 'alice', 's3cret')).toBe(true);
      expect(await canLogin(b2, 'team/a b%', 'two')).toBe(true);
      expect(await canLogin(b2, 'team/a b%', 'one')).toBe(false);
      expect(await canLogin(b2, 'doomed', 'x')).toBe(false);
      // Once more after the start-up compaction rewrote the log.
      await b2.crash();
      const b3 = await start(dir);
      expect(await users(b3)).toEqual(before);
    },
    T,
  );

  it(
    'do not get guest back after it was deleted, across a clean stop and a crash',
    async () => {
      const dir = await dataDir();
      const b1 = await start(dir);
      await putUser(b1.httpPort, 'admin', { password: 'adminpw', tags: 'administrator' });
      expect((await api(b1.httpPort, 'DELETE', '/api/users/guest', { auth: ['admin', 'adminpw'] })).status).toBe(204);
      expect(await b1.stop()).toBe(0);

      const b2 = await start(dir);
      expect((await users(b2, ['admin', 'adminpw'])).map((u) => u.name)).toEqual(['admin']);
      expect(await canLogin(b2, 'guest', 'guest')).toBe(false);
      await b2.crash();

      const b3 = await start(dir);
      expect((await users(b3, ['admin', 'adminpw'])).map((u) => u.name)).toEqual(['admin']);
      expect(b3.output()).not.toMatch(/created the default user/);
    },
    T,
  );

  it(
    'stay gone when every user was deleted (no default user comes back)',
    async () => {
      const dir = await dataDir();
      const b1 = await start(dir);
      expect((await api(b1.httpPort, 'DELETE', '/api/users/guest')).status).toBe(204);
      await b1.crash();
      for (let i = 0; i < 2; i++) {
        const b = await start(dir);
        expect(await canLogin(b, 'guest', 'guest')).toBe(false);
        expect((await api(b.httpPort, 'GET', '/api/whoami')).status).toBe(401);
        await b.crash();
      }
    },
    T,
  );

  it(
    'make the configured default user an administrator on a fresh store only',
    async () => {
      const dir = await dataDir();
      const b1 = await start(dir, ['--default-user', 'root', '--default-pass', 'r00t']);
      expect(await canLogin(b1, 'guest', 'guest')).toBe(false);
      const me = await api(b1.httpPort, 'GET', '/api/whoami', { auth: ['root', 'r00t'] });
      expect(me.json).toEqual({ name: 'root', tags: ['administrator'] });
      await b1.crash();

      // Another default on a store that has users changes nothing.
      const b2 = await start(dir, ['--default-user', 'other', '--default-pass', 'pw']);
      expect((await users(b2, ['root', 'r00t'])).map((u) => u.name)).toEqual(['root']);
      expect(await canLogin(b2, 'other', 'pw')).toBe(false);
    },
    T,
  );
});
