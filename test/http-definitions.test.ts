// GET/POST /api/definitions for users, vhosts, permissions and topic permissions, in
// RabbitMQ 3.10.8's format: an export taken from RabbitMQ imports, its users log in with
// their original passwords, and what was imported survives kill -9.
import fs from 'node:fs';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api } from './helpers/http';

const T = 60_000;
const running: DurableBroker[] = [];
let dir = '';

afterAll(async () => {
  for (const b of running) await b.crash();
  if (dir) await removeDataDir(dir);
});

const FIXTURE = fs.readFileSync(path.join(__dirname, 'fixtures', 'rabbitmq-definitions.json'), 'utf8');

describe('/api/definitions (users, vhosts, permissions, topic permissions)', () => {
  it(
    'imports a RabbitMQ export; alice logs in with her original password; kept over kill -9',
    async () => {
      dir = await tempDataDir('leveret-defs-');
      let b = await startOn(dir);
      running.push(b);

      expect(await api(b.httpPort, 'POST', '/api/definitions', { body: 'xx' })).toMatchObject({
        status: 400,
        json: { error: 'bad_request', reason: 'failed_to_parse_json' },
      });
      expect((await api(b.httpPort, 'POST', '/api/definitions', { body: FIXTURE })).status).toBe(204);
      const alice = (await api(b.httpPort, 'GET', '/api/users/alice')).json;
      expect(alice).toEqual({
        name: 'alice',
        password_hash: 'oaKsly8vrQ2xfUIMW+4gDLMebQMFNW08dtHHnKkdKflvGXw8',
        hashing_algorithm: 'rabbit_password_hashing_sha256',
        tags: [],
        limits: {},
      });

      // More keys: a vhost with metadata, permissions and topic permissions on it.
      const more = {
        vhosts: [{ name: 'team/a', metadata: { description: 'team A', tags: ['prod'] } }],
        permissions: [{ user: 'alice', vhost: 'team/a', configure: '.*', write: '.*', read: '.*' }],
        topic_permissions: [{ user: 'alice', vhost: 'team/a', exchange: 'amq.topic', write: '^a\\.', read: '.*' }],
      };
      expect((await api(b.httpPort, 'POST', '/api/definitions', { body: more })).status).toBe(204);
      expect((await api(b.httpPort, 'GET', '/api/vhosts/team%2Fa')).json).toMatchObject({
        name: 'team/a',
        description: 'team A',
        tags: ['prod'],
      });
      expect(
        await api(b.httpPort, 'POST', '/api/definitions', {
          body: { permissions: [{ user: 'nobody', vhost: '/', configure: '', write: '', read: '' }] },
        }),
      ).toMatchObject({ status: 400, json: { error: 'bad_request', reason: ['no_such_user', 'nobody'] } });
      expect(
        await api(b.httpPort, 'POST', '/api/definitions', {
          body: { permissions: [{ user: 'alice', vhost: 'novh', configure: '', write: '', read: '' }] },
        }),
      ).toMatchObject({ status: 400, json: { error: 'bad_request', reason: ['no_such_vhost', 'novh'] } });
      expect(await api(b.httpPort, 'POST', '/api/definitions', { body: { users: [{ name: 'u2' }] } })).toMatchObject({
        status: 400,
        json: { error: 'bad_request', reason: 'tags_not_present' },
      });

      const check = async (broker: DurableBroker): Promise<void> => {
        const defs = (await api(broker.httpPort, 'GET', '/api/definitions')).json as Record<string, unknown>;
        expect(defs).toMatchObject({ rabbit_version: '3.10.8', parameters: [], policies: [], exchanges: [], bindings: [] });
        // Only the queue alice declares below (once she has, the export lists it).
        expect((defs.queues as Array<{ name: string }>).filter((q) => q.name !== 'alice-q')).toEqual([]);
        expect((defs.users as Array<{ name: string }>).map((u) => u.name).sort()).toEqual(['alice', 'guest']);
        expect((defs.vhosts as Array<{ name: string }>).map((v) => v.name).sort()).toEqual(['/', 'team/a']);
        expect(defs.permissions).toContainEqual({ user: 'alice', vhost: 'team/a', configure: '.*', write: '.*', read: '.*' });
        expect(defs.topic_permissions).toEqual([{ user: 'alice', vhost: 'team/a', exchange: 'amq.topic', write: '^a\\.', read: '.*' }]);
        // RabbitMQ's hash of "s3cret", made by RabbitMQ, logs alice in over AMQP.
        const c = await amqp.connect({
          protocol: 'amqp',
          hostname: '127.0.0.1',
          port: broker.port,
          username: 'alice',
          password: 's3cret',
          vhost: 'team/a',
        });
        const ch = await c.createChannel();
        await ch.assertQueue('alice-q');
        await c.close();
        await expect(
          amqp.connect({
            protocol: 'amqp',
            hostname: '127.0.0.1',
            port: broker.port,
            username: 'alice',
            password: 'wrong',
            vhost: 'team/a',
          }),
        ).rejects.toThrow();
      };
      await check(b);
      expect(((await api(b.httpPort, 'GET', '/api/definitions')).json as { queues: unknown[] }).queues).toEqual([
        { name: 'alice-q', vhost: 'team/a', durable: true, auto_delete: false, arguments: {} },
      ]);
      await b.crash();
      b = await startOn(dir);
      running.push(b);
      await check(b);
    },
    T,
  );
});
