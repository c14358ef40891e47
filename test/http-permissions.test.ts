// Permissions over RabbitMQ's HTTP API: /api/permissions/{vhost}/{user} and topic
// permissions, checked on AMQP, stored in the definitions log (they survive kill -9) and
// removed with their user.
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';
import { api, putUser } from './helpers/http';
import { closeReason } from './helpers/clients';

const T = 60_000;
const running: DurableBroker[] = [];
let dir = '';

afterAll(async () => {
  for (const b of running) await b.crash();
  if (dir) await removeDataDir(dir);
});

const perm = (user: string, vhost = '/') => `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`;

async function login(b: DurableBroker, username: string): Promise<amqp.ChannelModel> {
  return amqp.connect({ protocol: 'amqp', hostname: '127.0.0.1', port: b.port, username, password: 'pw' });
}

describe('permissions over the HTTP API', () => {
  it(
    'are set, listed, enforced on AMQP, kept over kill -9, and go with their user',
    async () => {
      dir = await tempDataDir('leveret-perms-');
      let b = await startOn(dir);
      running.push(b);
      await putUser(b.httpPort, 'ann', { password: 'pw', tags: '' }, { access: false });

      // No permission on '/': RabbitMQ's 530 at connection.open.
      const refused = await login(b, 'ann').then(
        () => null,
        (e: Error) => e,
      );
      // (amqplib reports the 530 close as an unexpected ConnectionClose; its text is checked in permissions.test.ts)
      expect(refused?.message).toMatch(/ConnectionClose|NOT_ALLOWED/);

      // Bad requests.
      expect((await api(b.httpPort, 'PUT', perm('nobody'), { body: { configure: '.*', write: '.*', read: '.*' } })).json).toEqual({
        error: 'bad_request',
        reason: 'vhost_or_user_not_found',
      });
      expect((await api(b.httpPort, 'PUT', perm('ann'), { body: { configure: '.*', write: '.*' } })).json).toEqual({
        error: 'bad_request',
        reason: '[{key_missing,read}]',
      });
      expect((await api(b.httpPort, 'PUT', perm('ann'), { body: { configure: '(', write: '.*', read: '.*' } })).status).toBe(400);

      // Configure only on queues starting with "ann-".
      expect((await api(b.httpPort, 'PUT', perm('ann'), { body: { configure: '^ann-', write: '.*', read: '.*' } })).status).toBe(201);
      expect((await api(b.httpPort, 'PUT', perm('ann'), { body: { configure: '^ann-', write: '.*', read: '.*' } })).status).toBe(204);
      expect((await api(b.httpPort, 'GET', perm('ann'))).json).toEqual({
        user: 'ann',
        vhost: '/',
        configure: '^ann-',
        write: '.*',
        read: '.*',
      });
      const all = (await api(b.httpPort, 'GET', '/api/permissions')).json as Array<{ user: string }>;
      expect(all.map((p) => p.user).sort()).toEqual(['ann', 'guest']);
      expect(((await api(b.httpPort, 'GET', '/api/users/ann/permissions')).json as unknown[]).length).toBe(1);
      expect(((await api(b.httpPort, 'GET', '/api/vhosts/%2F/permissions')).json as unknown[]).length).toBe(2);

      let c = await login(b, 'ann');
      let ch = await c.createChannel();
      await ch.assertQueue('ann-q', { durable: true });
      const closed = new Promise<unknown>((resolve) => ch.once('close', resolve).once('error', resolve));
      await ch.assertQueue('other-q').catch(() => undefined);
      const err = await closed;
      expect(closeReason(err).code).toBe(403);
      expect(closeReason(err).text).toBe("ACCESS_REFUSED - access to queue 'other-q' in vhost '/' refused for user 'ann'");
      await c.close();

      // Topic permissions.
      expect(
        (await api(b.httpPort, 'PUT', '/api/topic-permissions/%2F/ann', { body: { exchange: 'amq.topic', write: '^ann\\.', read: '.*' } }))
          .status,
      ).toBe(201);
      expect((await api(b.httpPort, 'GET', '/api/topic-permissions/%2F/ann')).json).toEqual([
        { user: 'ann', vhost: '/', exchange: 'amq.topic', write: '^ann\\.', read: '.*' },
      ]);

      // Stored: after kill -9 the permissions hold as they were.
      await b.crash();
      b = await startOn(dir);
      running.push(b);
      expect((await api(b.httpPort, 'GET', perm('ann'))).json).toEqual({
        user: 'ann',
        vhost: '/',
        configure: '^ann-',
        write: '.*',
        read: '.*',
      });
      expect(((await api(b.httpPort, 'GET', '/api/topic-permissions')).json as unknown[]).length).toBe(1);
      c = await login(b, 'ann');
      ch = await c.createChannel();
      await ch.checkQueue('ann-q');
      await c.close();

      // Cleared: the next connection is refused again; deleting the user takes the rest.
      expect((await api(b.httpPort, 'DELETE', perm('ann'))).status).toBe(204);
      expect((await api(b.httpPort, 'DELETE', perm('ann'))).status).toBe(404);
      await expect(login(b, 'ann')).rejects.toThrow(/ConnectionClose|NOT_ALLOWED/);
      expect((await api(b.httpPort, 'DELETE', '/api/users/ann')).status).toBe(204);
      expect((await api(b.httpPort, 'GET', '/api/topic-permissions')).json).toEqual([]);
      await b.crash();
      b = await startOn(dir);
      running.push(b);
      expect((await api(b.httpPort, 'GET', '/api/permissions')).json).toEqual([
        { user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' },
      ]);
    },
    T,
  );
});
