// Limits, with RabbitMQ's codes and texts (observed on RabbitMQ 3.10.8 side by side): the
// negotiated channel_max, --max-message-size, --max-connections, vhost limits (max-connections,
// max-queues) and user limits (max-connections, max-channels) set over /api/vhost-limits and
// /api/user-limits and kept across a crash, limits in /api/users and in definitions, and
// --consumer-timeout. (frame_max's 501 and the handshake timeout are in connection.test.ts.)
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { removeDataDir, startOn, tempDataDir } from './helpers/durable-broker';
import { amqpClientChannel, amqpClientConnect, amqplibChannelClosed, amqplibConnect, sleep, uid } from './helpers/clients';
import { api, grantAll, putUser } from './helpers/http';
import * as raw from './helpers/raw';
import { RawClient } from './helpers/raw';

const T = 20_000;
const HOOK = 20_000;

const enc = encodeURIComponent;

/** A raw connection through the whole handshake, or the close that refused it. */
async function rawLogin(port: number, opts: raw.HandshakeOptions = {}): Promise<{ c: RawClient; refused: raw.CloseInfo | null }> {
  const c = await RawClient.connect(port);
  try {
    await c.handshake(opts);
    return { c, refused: null };
  } catch {
    const close = c.frames.find((f) => raw.isClose(f));
    c.destroy();
    if (close === undefined) throw new Error('handshake failed without a connection.close');
    return { c, refused: raw.decodeClose(close) };
  }
}

async function newVhost(port: number, name: string): Promise<void> {
  expect((await api(port, 'PUT', `/api/vhosts/${enc(name)}`, { body: {} })).status).toBe(201);
}

async function newUser(port: number, name: string, vhost: string): Promise<void> {
  expect((await putUser(port, name, { password: 'pw', tags: '' }, { access: false })).status).toBe(201);
  await grantAll(port, name, vhost);
}

describe('limits', () => {
  let broker: StartedBroker;
  const open: RawClient[] = [];
  const keep = (c: RawClient): RawClient => (open.push(c), c);

  beforeAll(async () => {
    broker = await startBroker({ args: ['--max-message-size', '4096'] });
  }, HOOK);

  afterAll(async () => {
    for (const c of open) c.destroy();
    await broker?.stop();
  }, HOOK);

  describe('channel_max', () => {
    it(
      'opening more channels than the negotiated channel_max closes the connection with 530',
      async () => {
        const { c } = await rawLogin(broker.port, { channelMax: 2 });
        keep(c);
        await c.openChannel(1);
        await c.openChannel(5); // the limit counts channels, not their numbers
        c.send(raw.channelOpen(3));
        expect(await c.expectClose()).toEqual({
          channel: 0,
          code: 530,
          text: 'NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)',
          classId: 0,
          methodId: 0,
        });
      },
      T,
    );
  });

  describe('--max-message-size', () => {
    it(
      'a content header declaring more is refused at once with 406, before any body is sent',
      async () => {
        const { c } = await rawLogin(broker.port);
        keep(c);
        await c.openChannel(1);
        c.send(Buffer.concat([raw.basicPublish(1, '', 'k'), raw.contentHeader(1, 4097)]));
        expect(await c.expectClose()).toEqual({
          channel: 1,
          code: 406,
          text: 'PRECONDITION_FAILED - message size 4097 is larger than configured max size 4096',
          classId: 60,
          methodId: 40,
        });
        // Only the channel goes: the connection still opens others.
        c.send(raw.channelCloseOk(1));
        await c.openChannel(2);
      },
      T,
    );

    it(
      'a message of exactly the limit goes through; one byte more closes the channel (amqplib)',
      async () => {
        const conn = await amqplibConnect(broker.url);
        try {
          const ch = await conn.createChannel();
          const q = (await ch.assertQueue('', { exclusive: true })).queue;
          ch.sendToQueue(q, Buffer.alloc(4096, 1));
          const got = await ch.get(q, { noAck: true });
          expect(got && got.content.length).toBe(4096);
          const closed = amqplibChannelClosed(ch);
          ch.sendToQueue(q, Buffer.alloc(4097, 1));
          expect(await closed).toEqual({
            code: 406,
            text: 'PRECONDITION_FAILED - message size 4097 is larger than configured max size 4096',
          });
        } finally {
          await conn.close().catch(() => {});
        }
      },
      T,
    );
  });

  describe('vhost limits', () => {
    it(
      'max-connections refuses connection.open with 530 (before permissions are checked); -1 and DELETE lift it',
      async () => {
        const vhost = uid('lim-v');
        await newVhost(broker.httpPort, vhost);
        expect((await api(broker.httpPort, 'PUT', `/api/vhost-limits/${enc(vhost)}/max-connections`, { body: { value: 1 } })).status).toBe(
          204,
        );
        const first = await rawLogin(broker.port, { vhost });
        expect(first.refused).toBeNull();
        keep(first.c);
        const second = await rawLogin(broker.port, { vhost });
        expect(second.refused).toEqual({
          channel: 0,
          code: 530,
          text: `NOT_ALLOWED - access to vhost '${vhost}' refused for user 'guest': connection limit (1) is reached`,
          classId: 10,
          methodId: 40,
        });
        // A user without permissions on the vhost hears about the limit first, as from RabbitMQ.
        const stranger = uid('lim-u');
        expect((await putUser(broker.httpPort, stranger, { password: 'pw', tags: '' }, { access: false })).status).toBe(201);
        expect((await rawLogin(broker.port, { vhost, user: stranger, pass: 'pw' })).refused?.text).toBe(
          `NOT_ALLOWED - access to vhost '${vhost}' refused for user '${stranger}': connection limit (1) is reached`,
        );
        // The first connection's close frees its place.
        first.c.send(raw.connectionClose());
        await first.c.expectMethod(10, 51);
        const third = await rawLogin(broker.port, { vhost });
        expect(third.refused).toBeNull();
        keep(third.c);
        expect((await api(broker.httpPort, 'PUT', `/api/vhost-limits/${enc(vhost)}/max-connections`, { body: { value: -1 } })).status).toBe(
          204,
        );
        const fourth = await rawLogin(broker.port, { vhost });
        expect(fourth.refused).toBeNull();
        keep(fourth.c);
        expect((await api(broker.httpPort, 'PUT', `/api/vhost-limits/${enc(vhost)}/max-connections`, { body: { value: 0 } })).status).toBe(
          204,
        );
        expect((await rawLogin(broker.port, { vhost })).refused?.text).toContain('connection limit (0) is reached');
        expect((await api(broker.httpPort, 'DELETE', `/api/vhost-limits/${enc(vhost)}/max-connections`)).status).toBe(204);
        const fifth = await rawLogin(broker.port, { vhost });
        expect(fifth.refused).toBeNull();
        keep(fifth.c);
      },
      T,
    );

    it(
      'max-queues refuses a new queue with 406 (server-named too); existing ones may be redeclared',
      async () => {
        const vhost = uid('lim-v');
        await newVhost(broker.httpPort, vhost);
        expect((await api(broker.httpPort, 'PUT', `/api/vhost-limits/${enc(vhost)}/max-queues`, { body: { value: 1 } })).status).toBe(204);
        const { c } = await rawLogin(broker.port, { vhost });
        keep(c);
        await c.openChannel(1);
        c.send(raw.queueDeclare(1, 'q1'));
        await c.expectMethod(50, 11);
        c.send(raw.queueDeclare(1, 'q1'));
        await c.expectMethod(50, 11);
        c.send(raw.queueDeclare(1, 'q1', { passive: true }));
        await c.expectMethod(50, 11);
        c.send(raw.queueDeclare(1, 'q2'));
        expect(await c.expectClose()).toEqual({
          channel: 1,
          code: 406,
          text: `PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost '${vhost}' (1) is reached`,
          classId: 50,
          methodId: 10,
        });
        c.send(raw.channelCloseOk(1));
        await c.openChannel(2);
        c.send(raw.queueDeclare(2, '', { exclusive: true }));
        const close = await c.expectClose();
        expect(close?.text).toMatch(
          new RegExp(
            `^PRECONDITION_FAILED - cannot declare queue 'amq\\.gen-[\\w-]+': queue limit in vhost '${vhost}' \\(1\\) is reached$`,
          ),
        );
        c.send(raw.channelCloseOk(2));
        // The management API's declare and a definitions import are held to it too, as by RabbitMQ.
        const put = await api(broker.httpPort, 'PUT', `/api/queues/${enc(vhost)}/q3`, { body: { durable: true } });
        expect([put.status, put.json]).toEqual([
          400,
          { error: 'bad_request', reason: `cannot declare queue 'q3': queue limit in vhost '${vhost}' (1) is reached` },
        ]);
        const doc = {
          queues: [
            { name: 'q1', vhost, durable: false, auto_delete: false, arguments: {} },
            { name: 'q4', vhost, durable: true, auto_delete: false, arguments: {} },
          ],
        };
        const imported = await api(broker.httpPort, 'POST', '/api/definitions', { body: doc });
        const text = `Adding 1 queue(s) to virtual host "${vhost}" would exceed the limit of 1 queue(s).\n\nThis virtual host currently has 1 queue(s) defined.\n\nImport aborted!`;
        expect([imported.status, imported.json]).toEqual([
          400,
          { error: 'bad_request', reason: ['vhost_limit_exceeded', [...text].map((ch) => ch.codePointAt(0))] },
        ]);
        expect(
          ((await api(broker.httpPort, 'GET', `/api/queues/${enc(vhost)}`)).json as Array<{ name: string }>).map((q) => q.name),
        ).toEqual(['q1']);
        // Lifted: declares work again.
        expect((await api(broker.httpPort, 'DELETE', `/api/vhost-limits/${enc(vhost)}/max-queues`)).status).toBe(204);
        await c.openChannel(3);
        c.send(raw.queueDeclare(3, 'q2'));
        await c.expectMethod(50, 11);
      },
      T,
    );
  });

  describe('user limits', () => {
    it(
      'max-connections counts the user over every vhost and refuses with 530',
      async () => {
        const vhost = uid('lim-v');
        const user = uid('lim-u');
        await newVhost(broker.httpPort, vhost);
        await newUser(broker.httpPort, user, vhost);
        expect((await api(broker.httpPort, 'PUT', `/api/user-limits/${enc(user)}/max-connections`, { body: { value: 1 } })).status).toBe(
          204,
        );
        const first = await rawLogin(broker.port, { vhost, user, pass: 'pw' });
        expect(first.refused).toBeNull();
        keep(first.c);
        expect((await rawLogin(broker.port, { vhost, user, pass: 'pw' })).refused).toEqual({
          channel: 0,
          code: 530,
          text: `NOT_ALLOWED - connection refused for user '${user}': user connection limit (1) is reached`,
          classId: 10,
          methodId: 40,
        });
        // Other users are not affected.
        const guest = await rawLogin(broker.port, { vhost });
        expect(guest.refused).toBeNull();
        keep(guest.c);
      },
      T,
    );

    it(
      "max-channels counts the user's channels over all its connections (530 on the connection)",
      async () => {
        const vhost = uid('lim-v');
        const user = uid('lim-u');
        await newVhost(broker.httpPort, vhost);
        await newUser(broker.httpPort, user, vhost);
        expect((await api(broker.httpPort, 'PUT', `/api/user-limits/${enc(user)}/max-channels`, { body: { value: 2 } })).status).toBe(204);
        const a = keep((await rawLogin(broker.port, { vhost, user, pass: 'pw' })).c);
        const b = keep((await rawLogin(broker.port, { vhost, user, pass: 'pw' })).c);
        await a.openChannel(1);
        await b.openChannel(1);
        b.send(raw.channelOpen(2));
        expect(await b.expectClose()).toEqual({
          channel: 0,
          code: 530,
          text: `NOT_ALLOWED - number of channels opened for user '${user}' has reached the maximum allowed user limit of (2)`,
          classId: 0,
          methodId: 0,
        });
        // b's channel went with its connection: a may open one more, then no more.
        b.send(raw.connectionCloseOk());
        expect(await b.waitClosed()).toBe(true);
        await a.openChannel(2);
        a.send(raw.channelOpen(3));
        expect((await a.expectClose())?.code).toBe(530);
      },
      T,
    );

    it(
      'through amqp-client: the refused channel is a connection error',
      async () => {
        const vhost = uid('lim-v');
        const user = uid('lim-u');
        await newVhost(broker.httpPort, vhost);
        await newUser(broker.httpPort, user, vhost);
        expect((await api(broker.httpPort, 'PUT', `/api/user-limits/${enc(user)}/max-channels`, { body: { value: 1 } })).status).toBe(204);
        const c = await amqpClientConnect(`amqp://${user}:pw@127.0.0.1:${broker.port}/${enc(vhost)}`);
        try {
          await amqpClientChannel(c);
          await expect(c.channel()).rejects.toThrow(/maximum allowed user limit of \(1\)/);
        } finally {
          await c.close().catch(() => {});
        }
      },
      T,
    );
  });

  describe('over the management API, as RabbitMQ 3.10 answers', () => {
    it(
      '/api/vhost-limits lists {vhost, value} with the latest limit set first; errors as RabbitMQ',
      async () => {
        const vhost = uid('lim-v');
        const p = broker.httpPort;
        await newVhost(broker.httpPort, vhost);
        const path = `/api/vhost-limits/${enc(vhost)}`;
        expect((await api(p, 'GET', path)).json).toEqual([]);
        await api(p, 'PUT', `${path}/max-queues`, { body: { value: 2 } });
        await api(p, 'PUT', `${path}/max-connections`, { body: { value: 1 } });
        const one = (await api(p, 'GET', path)).json;
        expect(one).toEqual([{ vhost, value: { 'max-connections': 1, 'max-queues': 2 } }]);
        expect(JSON.stringify(one)).toBe(JSON.stringify([{ vhost, value: { 'max-connections': 1, 'max-queues': 2 } }]));
        await api(p, 'PUT', `${path}/max-queues`, { body: { value: -1 } });
        expect(JSON.stringify((await api(p, 'GET', path)).json)).toBe(
          JSON.stringify([{ vhost, value: { 'max-queues': -1, 'max-connections': 1 } }]),
        );
        expect((await api(p, 'GET', '/api/vhost-limits')).json).toContainEqual({
          vhost,
          value: { 'max-queues': -1, 'max-connections': 1 },
        });

        const bad = async (body: unknown, name = 'max-queues') => (await api(p, 'PUT', `${path}/${name}`, { body })).json;
        expect(await bad({ value: 'x' })).toEqual({
          error: 'bad_request',
          reason: 'Validation failed\n\nmax-queues should be a number, actually was <<"x">>\n',
        });
        expect(await bad({ value: 1.5 })).toEqual({
          error: 'bad_request',
          reason: 'Validation failed\n\nmax-queues should be a number, actually was 1.5\n',
        });
        expect(await bad({})).toEqual({ error: 'bad_request', reason: '[{key_missing,value}]' });
        expect(await bad({ value: 1 }, 'max-bogus')).toEqual({
          error: 'bad_request',
          reason: 'Validation failed\n\nUnrecognised terms [{<<"max-bogus">>,1}] in limits\n',
        });
        const missing = await api(p, 'PUT', `/api/vhost-limits/${uid('nope')}/max-queues`, { body: { value: 1 } });
        expect([missing.status, missing.json]).toEqual([404, { error: 'not_found', reason: 'vhost_not_found' }]);
        expect((await api(p, 'GET', `/api/vhost-limits/${uid('nope')}`)).status).toBe(404);
        expect((await api(p, 'GET', `${path}/max-queues`)).status).toBe(405);
        expect((await api(p, 'OPTIONS', `${path}/max-queues`)).headers.get('allow')).toBe('PUT, DELETE, OPTIONS');
        // Nothing changed by the refusals; a DELETE of a limit not set is still 204.
        expect((await api(p, 'GET', path)).json).toEqual([{ vhost, value: { 'max-queues': -1, 'max-connections': 1 } }]);
        expect((await api(p, 'DELETE', `${path}/max-queues`)).status).toBe(204);
        expect((await api(p, 'DELETE', `${path}/max-queues`)).status).toBe(204);
        expect((await api(p, 'DELETE', `${path}/max-connections`)).status).toBe(204);
        expect((await api(p, 'GET', path)).json).toEqual([]);
      },
      T,
    );

    it(
      'vhost limits: management users see those of their vhosts; only administrators change them',
      async () => {
        const mine = uid('lim-v');
        const other = uid('lim-v');
        const user = uid('lim-m');
        const p = broker.httpPort;
        await newVhost(broker.httpPort, mine);
        await newVhost(broker.httpPort, other);
        expect((await putUser(broker.httpPort, user, { password: 'pw', tags: 'management' }, { access: false })).status).toBe(201);
        await grantAll(broker.httpPort, user, mine);
        await api(p, 'PUT', `/api/vhost-limits/${enc(mine)}/max-queues`, { body: { value: 3 } });
        await api(p, 'PUT', `/api/vhost-limits/${enc(other)}/max-queues`, { body: { value: 4 } });
        const auth: [string, string] = [user, 'pw'];
        const seen = (await api(p, 'GET', '/api/vhost-limits', { auth })).json as Array<{ vhost: string }>;
        expect(seen.map((l) => l.vhost)).toContain(mine);
        expect(seen.map((l) => l.vhost)).not.toContain(other);
        expect((await api(p, 'GET', `/api/vhost-limits/${enc(other)}`, { auth })).json).toEqual({
          error: 'not_authorised',
          reason: 'User not authorised to access virtual host',
        });
        expect((await api(p, 'PUT', `/api/vhost-limits/${enc(mine)}/max-queues`, { auth, body: { value: 9 } })).json).toEqual({
          error: 'not_authorised',
          reason: 'Not administrator user',
        });
      },
      T,
    );

    it(
      "/api/user-limits and the users' `limits` (sorted by name); PUT /api/users merges `limits`",
      async () => {
        const user = uid('lim-u');
        const p = broker.httpPort;
        expect((await putUser(broker.httpPort, user, { password: 'pw', tags: '' }, { access: false })).status).toBe(201);
        const path = `/api/user-limits/${enc(user)}`;
        expect((await api(p, 'GET', path)).json).toEqual([]);
        expect(((await api(p, 'GET', `/api/users/${enc(user)}`)).json as { limits: unknown }).limits).toEqual({});
        await api(p, 'PUT', `${path}/max-connections`, { body: { value: 3 } });
        await api(p, 'PUT', `${path}/max-channels`, { body: { value: 2 } });
        const expected = { 'max-channels': 2, 'max-connections': 3 };
        expect(JSON.stringify((await api(p, 'GET', path)).json)).toBe(JSON.stringify([{ user, value: expected }]));
        expect((await api(p, 'GET', '/api/user-limits')).json).toContainEqual({ user, value: expected });
        expect(((await api(p, 'GET', `/api/users/${enc(user)}`)).json as { limits: unknown }).limits).toEqual(expected);
        const listed = ((await api(p, 'GET', '/api/users')).json as Array<{ name: string; limits: unknown }>).find((u) => u.name === user);
        expect(listed?.limits).toEqual(expected);

        // As RabbitMQ: a user's PUT with `limits` sets those named, keeps the others.
        expect(
          (await api(p, 'PUT', `/api/users/${enc(user)}`, { body: { password: 'pw', tags: '', limits: { 'max-channels': 7 } } })).status,
        ).toBe(204);
        expect((await api(p, 'GET', path)).json).toEqual([{ user, value: { 'max-channels': 7, 'max-connections': 3 } }]);
        expect((await api(p, 'PUT', `/api/users/${enc(user)}`, { body: { password: 'pw', tags: '' } })).status).toBe(204);
        expect((await api(p, 'GET', path)).json).toEqual([{ user, value: { 'max-channels': 7, 'max-connections': 3 } }]);

        const bad = async (body: unknown, name = 'max-channels') => (await api(p, 'PUT', `${path}/${name}`, { body })).json;
        expect(await bad({ value: 'x' })).toEqual({
          error: 'bad_request',
          reason: 'max-channels should be a number, actually was <<"x">>',
        });
        expect(await bad({ value: 1 }, 'max-queues')).toEqual({
          error: 'bad_request',
          reason: 'Unrecognised terms [{<<"max-queues">>,1}] in user-limits',
        });
        expect(await bad({})).toEqual({ error: 'bad_request', reason: '[{key_missing,value}]' });
        const nobody = uid('nobody');
        expect((await api(p, 'PUT', `/api/user-limits/${nobody}/max-channels`, { body: { value: 1 } })).json).toEqual({
          error: 'bad_request',
          reason: ['no_such_user', nobody],
        });
        expect((await api(p, 'GET', `/api/user-limits/${nobody}`)).status).toBe(404);

        expect((await api(p, 'DELETE', `${path}/max-channels`)).status).toBe(204);
        expect((await api(p, 'GET', path)).json).toEqual([{ user, value: { 'max-connections': 3 } }]);
        // A deleted user's limits go with it.
        expect((await api(p, 'DELETE', `/api/users/${enc(user)}`)).status).toBe(204);
        expect((await api(p, 'GET', '/api/user-limits')).json).not.toContainEqual(expect.objectContaining({ user }));
      },
      T,
    );

    it(
      'definitions: vhost limits export as "vhost-limits" parameters and users carry their limits; both import',
      async () => {
        const vhost = uid('lim-v');
        const user = uid('lim-u');
        const p = broker.httpPort;
        await newVhost(broker.httpPort, vhost);
        expect((await putUser(broker.httpPort, user, { password: 'pw', tags: '' }, { access: false })).status).toBe(201);
        await api(p, 'PUT', `/api/vhost-limits/${enc(vhost)}/max-queues`, { body: { value: 5 } });
        await api(p, 'PUT', `/api/user-limits/${enc(user)}/max-channels`, { body: { value: 6 } });
        const all = (await api(p, 'GET', '/api/definitions')).json as {
          parameters: unknown[];
          users: Array<{ name: string; limits: unknown }>;
        };
        const param = { value: { 'max-queues': 5 }, vhost, component: 'vhost-limits', name: 'limits' };
        expect(all.parameters).toContainEqual(param);
        expect(JSON.stringify(all.parameters.find((x) => (x as { vhost: string }).vhost === vhost))).toBe(JSON.stringify(param));
        expect(all.users.find((u) => u.name === user)?.limits).toEqual({ 'max-channels': 6 });
        expect(((await api(p, 'GET', `/api/definitions/${enc(vhost)}`)).json as { parameters: unknown[] }).parameters).toEqual([param]);

        // Import: a vhost-limits parameter replaces the vhost's limits; a user's `limits` adds to its own.
        const other = uid('lim-v');
        const doc = {
          users: [{ name: user, password_hash: '', tags: [], limits: { 'max-connections': 4 } }],
          vhosts: [{ name: other }],
          parameters: [
            { value: { 'max-connections': 8 }, vhost, component: 'vhost-limits', name: 'limits' },
            { value: { 'max-queues': 9 }, vhost: other, component: 'vhost-limits', name: 'limits' },
            { value: { uri: 'amqp://' }, vhost, component: 'federation-upstream', name: 'ignored' },
          ],
        };
        expect((await api(p, 'POST', '/api/definitions', { body: doc })).status).toBe(204);
        expect((await api(p, 'GET', `/api/vhost-limits/${enc(vhost)}`)).json).toEqual([{ vhost, value: { 'max-connections': 8 } }]);
        expect((await api(p, 'GET', `/api/vhost-limits/${enc(other)}`)).json).toEqual([{ vhost: other, value: { 'max-queues': 9 } }]);
        expect((await api(p, 'GET', `/api/user-limits/${enc(user)}`)).json).toEqual([
          { user, value: { 'max-channels': 6, 'max-connections': 4 } },
        ]);
        // The per-vhost form puts a parameter in its own vhost, whatever the item says.
        expect(
          (
            await api(p, 'POST', `/api/definitions/${enc(other)}`, {
              body: { parameters: [{ value: { 'max-queues': 1 }, vhost, component: 'vhost-limits', name: 'limits' }] },
            })
          ).status,
        ).toBe(204);
        expect((await api(p, 'GET', `/api/vhost-limits/${enc(other)}`)).json).toEqual([{ vhost: other, value: { 'max-queues': 1 } }]);
        // A bad limit refuses the whole document.
        const refused = await api(p, 'POST', '/api/definitions', {
          body: {
            vhosts: [{ name: uid('lim-v') }],
            parameters: [{ value: { 'max-bogus': 1 }, vhost, component: 'vhost-limits', name: 'limits' }],
          },
        });
        expect(refused.status).toBe(400);
        expect((await api(p, 'GET', `/api/vhost-limits/${enc(vhost)}`)).json).toEqual([{ vhost, value: { 'max-connections': 8 } }]);
      },
      T,
    );
  });
});

describe('--max-connections', () => {
  let broker: StartedBroker;
  beforeAll(async () => {
    broker = await startBroker({ args: ['--max-connections', '2'] });
  }, HOOK);
  afterAll(async () => {
    await broker?.stop();
  }, HOOK);

  it(
    'the node refuses connection.open past the limit with 530; a closed connection frees its place',
    async () => {
      const a = await amqplibConnect(broker.url);
      const b = await amqplibConnect(broker.url);
      try {
        // amqplib says only that a connection.close came instead of open-ok.
        await expect(amqp.connect(broker.url)).rejects.toThrow(/ConnectionClose/);
        const refused = await rawLogin(broker.port);
        expect(refused.refused).toEqual({
          channel: 0,
          code: 530,
          text: 'NOT_ALLOWED - connection refused: node connection limit (2) is reached',
          classId: 10,
          methodId: 40,
        });
        await a.close();
        const c = await amqplibConnect(broker.url);
        await c.close();
      } finally {
        await b.close().catch(() => {});
      }
    },
    T,
  );
});

describe('--consumer-timeout', () => {
  let broker: StartedBroker;
  const TIMEOUT = 1000;
  const text = (channel: number) =>
    `PRECONDITION_FAILED - delivery acknowledgement on channel ${channel} timed out. Timeout value used: ${TIMEOUT} ms. This timeout value can be configured, see consumers doc guide to learn more`;

  beforeAll(async () => {
    broker = await startBroker({ args: ['--consumer-timeout', String(TIMEOUT)] });
  }, HOOK);
  afterAll(async () => {
    await broker?.stop();
  }, HOOK);

  it(
    'a delivery left unacked too long closes its channel with 406, and the message is requeued',
    async () => {
      const conn = await amqplibConnect(broker.url);
      try {
        const q = uid('ct');
        const setup = await conn.createChannel();
        await setup.assertQueue(q);
        setup.sendToQueue(q, Buffer.from('hold me'));
        const ch = await conn.createChannel();
        const closed = amqplibChannelClosed(ch);
        let delivered = 0;
        await ch.consume(q, () => delivered++, { noAck: false });
        const t0 = Date.now();
        expect(await closed).toEqual({ code: 406, text: text(2) });
        const elapsed = Date.now() - t0;
        expect(delivered).toBe(1);
        expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT - 200); // the coarse clock may stamp up to ~100 ms early
        // Back in the queue, marked redelivered.
        const again = await setup.get(q, { noAck: true });
        expect(again && again.content.toString()).toBe('hold me');
        expect(again && again.fields.redelivered).toBe(true);
        await setup.deleteQueue(q);
      } finally {
        await conn.close().catch(() => {});
      }
    },
    T,
  );

  it(
    'deliveries acked in time keep the channel open well past the timeout; no-ack consumers are not timed',
    async () => {
      const conn = await amqplibConnect(broker.url);
      try {
        const q = uid('ct');
        const pub = await conn.createChannel();
        await pub.assertQueue(q);
        const ch = await conn.createChannel();
        let closedWith: unknown = null;
        void amqplibChannelClosed(ch).then((r) => (closedWith = r));
        let acked = 0;
        await ch.consume(q, (m) => {
          if (m === null) return;
          // Each is held for half the timeout, then acked.
          setTimeout(() => (ch.ack(m), acked++), TIMEOUT / 2);
        });
        const noAck = await conn.createChannel();
        const q2 = uid('ct');
        await noAck.assertQueue(q2);
        let noAckGot = 0;
        await noAck.consume(q2, () => noAckGot++, { noAck: true });
        for (let i = 0; i < 6; i++) {
          pub.sendToQueue(q, Buffer.from(String(i)));
          pub.sendToQueue(q2, Buffer.from(String(i)));
          await sleep(400);
        }
        await sleep(TIMEOUT);
        expect(closedWith).toBeNull();
        expect(acked).toBe(6);
        expect(noAckGot).toBe(6);
        await pub.deleteQueue(q);
        await pub.deleteQueue(q2);
      } finally {
        await conn.close().catch(() => {});
      }
    },
    T,
  );

  it(
    'an ack rolled back with its transaction is timed again from its delivery (amqp-client)',
    async () => {
      const c = await amqpClientConnect(broker.url);
      try {
        const { ch, closedByServer } = await amqpClientChannel(c);
        let closedWith: unknown = null;
        void closedByServer.then((r) => (closedWith = r));
        const q = (await ch.queueDeclare('')).name;
        await ch.basicPublish('', q, 'tx');
        await ch.txSelect();
        let m = await ch.basicGet(q, { noAck: false });
        for (let i = 0; m === null && i < 50; i++) m = await ch.basicGet(q, { noAck: false });
        expect(m?.bodyString()).toBe('tx');
        await ch.basicAck(m!.deliveryTag);
        // Acked inside the transaction: no timeout while it is pending.
        await sleep(TIMEOUT + 500);
        expect(closedWith).toBeNull();
        await ch.txRollback();
        // Rolled back: outstanding again, and older than the timeout.
        expect(await closedByServer).toEqual({ code: 406, text: text(ch.id) });
        const { ch: ch2 } = await amqpClientChannel(c);
        await ch2.queueDelete(q);
      } finally {
        await c.close().catch(() => {});
      }
    },
    T,
  );

  it(
    'a basic.get left unacked is timed the same way (amqp-client)',
    async () => {
      const c = await amqpClientConnect(broker.url);
      try {
        const { ch, closedByServer } = await amqpClientChannel(c);
        const q = (await ch.queueDeclare('')).name;
        await ch.basicPublish('', q, 'got');
        let m = await ch.basicGet(q, { noAck: false });
        for (let i = 0; m === null && i < 50; i++) m = await ch.basicGet(q, { noAck: false });
        expect(m?.bodyString()).toBe('got');
        expect(await closedByServer).toEqual({ code: 406, text: text(ch.id) });
        const { ch: ch2 } = await amqpClientChannel(c);
        const back = await ch2.basicGet(q, { noAck: true });
        expect(back?.redelivered).toBe(true);
        await ch2.queueDelete(q);
      } finally {
        await c.close().catch(() => {});
      }
    },
    T,
  );
});

describe('limits on disk', () => {
  it('vhost and user limits survive kill -9; a deleted user or vhost takes its limits along', async () => {
    const dir = await tempDataDir('leveret-limits-');
    try {
      let b = await startOn(dir);
      const p = () => b.httpPort;
      await api(p(), 'PUT', '/api/vhosts/kept', { body: {} });
      await api(p(), 'PUT', '/api/vhosts/gone', { body: {} });
      await api(p(), 'PUT', '/api/users/ann', { body: { password: 'pw', tags: '' } });
      await api(p(), 'PUT', '/api/users/bob', { body: { password: 'pw', tags: '' } });
      await api(p(), 'PUT', '/api/permissions/kept/ann', { body: { configure: '.*', write: '.*', read: '.*' } });
      await api(p(), 'PUT', '/api/vhost-limits/kept/max-queues', { body: { value: 1 } });
      await api(p(), 'PUT', '/api/vhost-limits/kept/max-connections', { body: { value: 5 } });
      await api(p(), 'PUT', '/api/vhost-limits/gone/max-queues', { body: { value: 2 } });
      await api(p(), 'PUT', '/api/user-limits/ann/max-channels', { body: { value: 1 } });
      await api(p(), 'PUT', '/api/user-limits/bob/max-connections', { body: { value: 1 } });
      await b.crash();

      b = await startOn(dir);
      expect((await api(p(), 'GET', '/api/vhost-limits')).json).toEqual([
        { vhost: 'gone', value: { 'max-queues': 2 } },
        { vhost: 'kept', value: { 'max-connections': 5, 'max-queues': 1 } },
      ]);
      expect((await api(p(), 'GET', '/api/user-limits')).json).toEqual([
        { user: 'ann', value: { 'max-channels': 1 } },
        { user: 'bob', value: { 'max-connections': 1 } },
      ]);
      // Still enforced after the restart.
      const { c } = await rawLogin(b.port, { vhost: 'kept', user: 'ann', pass: 'pw' });
      try {
        await c.openChannel(1);
        c.send(raw.queueDeclare(1, 'one'));
        await c.expectMethod(50, 11);
        c.send(raw.queueDeclare(1, 'two'));
        expect((await c.expectClose())?.text).toBe(
          "PRECONDITION_FAILED - cannot declare queue 'two': queue limit in vhost 'kept' (1) is reached",
        );
        c.send(raw.channelCloseOk(1));
        await c.openChannel(2);
        c.send(raw.channelOpen(3));
        expect((await c.expectClose())?.text).toBe(
          "NOT_ALLOWED - number of channels opened for user 'ann' has reached the maximum allowed user limit of (1)",
        );
      } finally {
        c.destroy();
      }
      expect((await api(p(), 'DELETE', '/api/users/bob')).status).toBe(204);
      expect((await api(p(), 'DELETE', '/api/vhosts/gone')).status).toBe(204);
      await api(p(), 'DELETE', '/api/vhost-limits/kept/max-connections');
      await b.crash();

      b = await startOn(dir);
      // A user or vhost of the same name starts without the old limits.
      await api(p(), 'PUT', '/api/users/bob', { body: { password: 'pw', tags: '' } });
      await api(p(), 'PUT', '/api/vhosts/gone', { body: {} });
      expect((await api(p(), 'GET', '/api/vhost-limits')).json).toEqual([{ vhost: 'kept', value: { 'max-queues': 1 } }]);
      expect((await api(p(), 'GET', '/api/user-limits')).json).toEqual([{ user: 'ann', value: { 'max-channels': 1 } }]);
      await b.stop();
    } finally {
      await removeDataDir(dir);
    }
  }, 60_000);
});
