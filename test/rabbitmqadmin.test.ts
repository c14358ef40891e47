// RabbitMQ's own command-line tool, rabbitmqadmin (Debian's rabbitmq-server package ships it
// as /usr/bin/rabbitmqadmin), run unchanged against Leveret's management API: list, declare,
// delete, publish, get, purge, export, import and close, as an operator's runbook would.
// The same file runs against RabbitMQ with LEVERET_TEST_URL=amqp://guest:guest@127.0.0.1:5672.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';

const RABBITMQADMIN = '/usr/bin/rabbitmqadmin';
const T = 60_000;

let broker: StartedBroker;
let tmp = '';

beforeAll(async () => {
  broker = await startBroker({ args: ['--stats-interval', '200'] });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-radm-'));
}, T);

afterAll(async () => {
  await broker?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs rabbitmqadmin against the broker under test as guest. */
function admin(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      '/usr/bin/python3',
      [RABBITMQADMIN, '-H', '127.0.0.1', '-P', String(broker.httpPort), '-u', 'guest', '-p', 'guest', ...args],
      { timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

/** rabbitmqadmin with `-f raw_json`: the API's JSON as it printed it. */
async function adminJson(...args: string[]): Promise<Array<Record<string, unknown>>> {
  const r = await admin('-f', 'raw_json', ...args);
  expect(r, `rabbitmqadmin ${args.join(' ')}`).toMatchObject({ code: 0 });
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

const names = (items: Array<Record<string, unknown>>): unknown[] => items.map((i) => i.name);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` passes (RabbitMQ's own lists lag behind by a stats interval). */
async function eventually(check: () => Promise<void>, ms = 12_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}

describe('rabbitmqadmin against the management API', () => {
  it(
    'declares, lists, publishes, gets, purges and deletes',
    async () => {
      expect(await admin('declare', 'exchange', 'name=radm-x', 'type=topic')).toMatchObject({ code: 0, stdout: 'exchange declared\n' });
      expect(await admin('declare', 'queue', 'name=radm-q', 'durable=true', 'arguments={"x-max-length": 100}')).toMatchObject({
        code: 0,
        stdout: 'queue declared\n',
      });
      expect(await admin('declare', 'binding', 'source=radm-x', 'destination=radm-q', 'routing_key=a.#')).toMatchObject({
        code: 0,
        stdout: 'binding declared\n',
      });
      expect(
        await admin('declare', 'policy', 'name=radm-p', 'pattern=^radm-', 'definition={"message-ttl": 600000}', 'apply-to=queues'),
      ).toMatchObject({ code: 0, stdout: 'policy declared\n' });

      expect(await admin('publish', 'exchange=radm-x', 'routing_key=a.b', 'payload=hello')).toMatchObject({
        code: 0,
        stdout: 'Message published\n',
      });
      expect(await admin('publish', 'exchange=radm-x', 'routing_key=zzz', 'payload=lost')).toMatchObject({
        code: 0,
        stdout: 'Message published but NOT routed\n',
      });

      const got = await adminJson('get', 'queue=radm-q', 'ackmode=ack_requeue_true');
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({
        payload: 'hello',
        routing_key: 'a.b',
        exchange: 'radm-x',
        redelivered: false,
        payload_encoding: 'string',
      });
      // ack_requeue_true put it back, now marked redelivered.
      expect((await adminJson('get', 'queue=radm-q', 'ackmode=ack_requeue_true'))[0]).toMatchObject({
        payload: 'hello',
        redelivered: true,
      });

      await eventually(async () => {
        const q = (await adminJson('list', 'queues', 'name', 'messages', 'arguments', 'policy')).find((x) => x.name === 'radm-q');
        expect(q).toMatchObject({ messages: 1, arguments: { 'x-max-length': 100 }, policy: 'radm-p' });
      });
      // The default table output parses what the API sends too.
      const table = await admin('list', 'queues');
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/\| *radm-q *\| *1 *\|/);

      expect(names(await adminJson('list', 'exchanges'))).toEqual(expect.arrayContaining(['', 'amq.direct', 'amq.topic', 'radm-x']));
      expect(await adminJson('list', 'bindings')).toContainEqual(
        expect.objectContaining({ source: 'radm-x', destination: 'radm-q', destination_type: 'queue', routing_key: 'a.#' }),
      );
      expect(await adminJson('list', 'policies')).toContainEqual(
        expect.objectContaining({ name: 'radm-p', pattern: '^radm-', 'apply-to': 'queues', definition: { 'message-ttl': 600000 } }),
      );
      expect(names(await adminJson('list', 'users'))).toContain('guest');
      expect(names(await adminJson('list', 'vhosts'))).toContain('/');

      expect(await admin('purge', 'queue', 'name=radm-q')).toMatchObject({ code: 0, stdout: 'queue purged\n' });
      expect(await adminJson('get', 'queue=radm-q')).toEqual([]);

      expect(
        await admin('delete', 'binding', 'source=radm-x', 'destination_type=queue', 'destination=radm-q', 'properties_key=a.%23'),
      ).toMatchObject({ code: 0, stdout: 'binding deleted\n' });
      expect((await adminJson('list', 'bindings')).filter((b) => b.source === 'radm-x')).toEqual([]);
      expect(await admin('delete', 'policy', 'name=radm-p')).toMatchObject({ code: 0 });
      expect(await admin('delete', 'queue', 'name=radm-q')).toMatchObject({ code: 0, stdout: 'queue deleted\n' });
      expect(await admin('delete', 'exchange', 'name=radm-x')).toMatchObject({ code: 0, stdout: 'exchange deleted\n' });
      expect(names(await adminJson('list', 'queues')).filter((n) => n === 'radm-q')).toEqual([]);
      // A refusal is reported with RabbitMQ's reason and a non-zero exit.
      const missing = await admin('delete', 'queue', 'name=radm-no-such-queue');
      expect(missing.code).not.toBe(0);
      expect(missing.stdout + missing.stderr).toMatch(/Not found/i);
    },
    T,
  );

  it(
    'lists connections, channels and consumers, and closes a connection',
    async () => {
      const conn = await amqp.connect(broker.url, { clientProperties: { connection_name: 'radm-test' } });
      // amqplib reports 320 CONNECTION_FORCED as a close with an error, not as an 'error' event.
      const closed = new Promise<Error | undefined>((resolve) => conn.on('close', resolve));
      const ch = await conn.createChannel();
      await ch.prefetch(7);
      const q = await ch.assertQueue('', { exclusive: true });
      await ch.consume(q.queue, () => {}, { consumerTag: 'radm-consumer' });
      try {
        let name = '';
        await eventually(async () => {
          const conns = await adminJson('list', 'connections');
          const mine = conns.find((c) => (c.client_properties as Record<string, unknown> | undefined)?.connection_name === 'radm-test');
          expect(mine).toMatchObject({ user: 'guest', vhost: '/', channels: 1 });
          name = mine!.name as string;
        });
        await eventually(async () => {
          expect(await adminJson('list', 'channels')).toContainEqual(
            expect.objectContaining({ name: `${name} (1)`, prefetch_count: 7, consumer_count: 1 }),
          );
          expect(await adminJson('list', 'consumers')).toContainEqual(
            expect.objectContaining({ consumer_tag: 'radm-consumer', queue: expect.objectContaining({ name: q.queue }) }),
          );
        });
        expect(await admin('close', 'connection', `name=${name}`)).toMatchObject({ code: 0, stdout: 'connection closed\n' });
        const err = await closed;
        expect(err?.message).toMatch(/CONNECTION_FORCED - Closed via management plugin/);
      } finally {
        await conn.close().catch(() => {});
      }
    },
    T,
  );

  it(
    'exports definitions and imports them back',
    async () => {
      expect((await admin('declare', 'exchange', 'name=radm-ex2', 'type=fanout')).code).toBe(0);
      expect((await admin('declare', 'queue', 'name=radm-q2', 'arguments={"x-message-ttl": 5000}')).code).toBe(0);
      expect((await admin('declare', 'binding', 'source=radm-ex2', 'destination=radm-q2')).code).toBe(0);
      const file = path.join(tmp, 'defs.json');
      expect(await admin('export', file)).toMatchObject({ code: 0 });
      const defs = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Array<Record<string, unknown>>>;
      expect(defs.queues).toContainEqual(
        expect.objectContaining({ name: 'radm-q2', vhost: '/', durable: true, arguments: { 'x-message-ttl': 5000 } }),
      );
      expect(defs.exchanges).toContainEqual(expect.objectContaining({ name: 'radm-ex2', type: 'fanout' }));
      expect(defs.bindings).toContainEqual(
        expect.objectContaining({ source: 'radm-ex2', destination: 'radm-q2', destination_type: 'queue' }),
      );

      expect((await admin('delete', 'queue', 'name=radm-q2')).code).toBe(0);
      expect((await admin('delete', 'exchange', 'name=radm-ex2')).code).toBe(0);
      expect(await admin('import', file)).toMatchObject({ code: 0 });
      expect(names(await adminJson('list', 'queues'))).toContain('radm-q2');
      expect(await adminJson('list', 'bindings')).toContainEqual(expect.objectContaining({ source: 'radm-ex2', destination: 'radm-q2' }));
      // What was imported works over AMQP.
      const conn = await amqp.connect(broker.url);
      const ch = await conn.createChannel();
      ch.publish('radm-ex2', '', Buffer.from('via import'));
      await eventually(async () => {
        const m = await ch.get('radm-q2', { noAck: true });
        expect(m && m.content.toString()).toBe('via import');
      });
      await conn.close();
      expect((await admin('delete', 'queue', 'name=radm-q2')).code).toBe(0);
      expect((await admin('delete', 'exchange', 'name=radm-ex2')).code).toBe(0);
    },
    T,
  );
});
