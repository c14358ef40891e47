// Exchanges, queues, bindings and routing, through both amqplib and
// @cloudamqp/amqp-client. Expectations (codes and reply texts) are RabbitMQ 3.10's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import {
  CLIENTS,
  connectWith,
  drain,
  expectChannelError,
  getWithin,
  sleep,
  uid,
  waitFor,
  type TestChannel,
  type TestConnection,
} from './helpers/clients';

const T = 15_000;
const HOOK_TIMEOUT = 20_000; // startBroker waits up to 10 s, stop() up to 5 s

describe.each(CLIENTS)('exchanges and queues (%s)', (client) => {
  let broker: StartedBroker;
  let conn: TestConnection;
  let ch: TestChannel; // a long-lived channel for setup and cleanup
  const exchanges: string[] = [];
  const queues: string[] = [];

  /** A fresh channel (channel errors close the channel, so error tests use their own). */
  const fresh = () => conn.channel();
  const ex = (p = 'ex') => {
    const n = uid(`lt-${p}`);
    exchanges.push(n);
    return n;
  };
  const qn = (p = 'q') => {
    const n = uid(`lt-${p}`);
    queues.push(n);
    return n;
  };
  /** Checks whether an exchange exists, on a throwaway channel. */
  const exchangeExists = async (name: string) => {
    const c = await fresh();
    try {
      await c.checkExchange(name);
      await c.close();
      return true;
    } catch {
      return false;
    }
  };
  const queueExists = async (name: string) => {
    const c = await fresh();
    try {
      await c.checkQueue(name);
      await c.close();
      return true;
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    broker = await startBroker();
    conn = await connectWith(client, broker.url);
    ch = await conn.channel();
  }, HOOK_TIMEOUT);

  afterAll(async () => {
    if (conn) {
      const c = await conn.channel().catch(() => undefined);
      if (c) {
        for (const q of queues) await c.deleteQueue(q).catch(() => {});
        for (const e of exchanges) await c.deleteExchange(e).catch(() => {});
      }
      await conn.close();
    }
    await broker?.stop();
  }, HOOK_TIMEOUT);

  // -------------------------------------------------------------- exchanges

  describe('exchange', () => {
    it(
      'declares exchanges of every built-in type and finds them with a passive declare',
      async () => {
        for (const type of ['direct', 'fanout', 'topic', 'headers']) {
          const name = ex(type);
          await ch.declareExchange(name, type);
          await ch.checkExchange(name);
          // redeclaring with the same attributes is fine
          await ch.declareExchange(name, type);
        }
      },
      T,
    );

    it(
      'passive declare of a missing exchange closes the channel with 404',
      async () => {
        const c = await fresh();
        const name = uid('lt-missing');
        const r = await expectChannelError(c, () => c.checkExchange(name));
        expect(r.code).toBe(404);
        expect(r.text).toBe(`NOT_FOUND - no exchange '${name}' in vhost '/'`);
      },
      T,
    );

    it(
      'the predeclared exchanges exist',
      async () => {
        for (const name of ['amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'amq.match']) {
          await ch.checkExchange(name);
        }
      },
      T,
    );

    it(
      'redeclaring with a different type or durability is 406 PRECONDITION_FAILED',
      async () => {
        const name = ex();
        await ch.declareExchange(name, 'direct', { durable: false });
        let c = await fresh();
        let r = await expectChannelError(c, () => c.declareExchange(name, 'fanout', { durable: false }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(
          `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${name}' in vhost '/': received 'fanout' but current is 'direct'`,
        );
        c = await fresh();
        r = await expectChannelError(c, () => c.declareExchange(name, 'direct', { durable: true }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(
          `PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '${name}' in vhost '/': received 'true' but current is 'false'`,
        );
      },
      T,
    );

    it(
      'a durable exchange can be declared, redeclared and deleted',
      async () => {
        const name = ex('durable');
        await ch.declareExchange(name, 'topic', { durable: true });
        await ch.declareExchange(name, 'topic', { durable: true });
        await ch.deleteExchange(name);
        expect(await exchangeExists(name)).toBe(false);
      },
      T,
    );

    it(
      'an auto-delete exchange is removed when its last binding is removed',
      async () => {
        const name = ex('autodel');
        const q = qn();
        await ch.declareExchange(name, 'direct', { autoDelete: true });
        await ch.declareQueue(q);
        await ch.bindQueue(q, name, 'a');
        await ch.bindQueue(q, name, 'b');
        await ch.unbindQueue(q, name, 'a');
        expect(await exchangeExists(name)).toBe(true);
        await ch.unbindQueue(q, name, 'b');
        await waitFor(async () => !(await exchangeExists(name)), 3000, 'auto-delete exchange to go');
      },
      T,
    );

    it(
      'publishing to an internal exchange is 403, but it routes messages from an exchange-to-exchange binding',
      async () => {
        const internal = ex('internal');
        const front = ex('front');
        const q = qn();
        await ch.declareExchange(internal, 'fanout', { internal: true });
        await ch.declareExchange(front, 'fanout');
        await ch.declareQueue(q);
        await ch.bindQueue(q, internal, '');
        await ch.bindExchange(internal, front, '');
        await ch.publish(front, 'k', 'via-front');
        expect((await getWithin(ch, q)).body.toString()).toBe('via-front');

        const c = await fresh();
        const r = await expectChannelError(c, () => c.publish(internal, '', 'direct'));
        expect(r.code).toBe(403);
        expect(r.text).toBe(`ACCESS_REFUSED - cannot publish to internal exchange '${internal}' in vhost '/'`);
      },
      T,
    );

    it(
      'delete if-unused fails with 406 while the exchange has bindings, then succeeds',
      async () => {
        const name = ex();
        const q = qn();
        await ch.declareExchange(name, 'direct');
        await ch.declareQueue(q);
        await ch.bindQueue(q, name, 'k');
        const c = await fresh();
        const r = await expectChannelError(c, () => c.deleteExchange(name, { ifUnused: true }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(`PRECONDITION_FAILED - exchange '${name}' in vhost '/' in use`);
        expect(await exchangeExists(name)).toBe(true);
        await ch.unbindQueue(q, name, 'k');
        await ch.deleteExchange(name, { ifUnused: true });
        expect(await exchangeExists(name)).toBe(false);
      },
      T,
    );

    it(
      'deleting an exchange that does not exist succeeds',
      async () => {
        await ch.deleteExchange(uid('lt-never'));
      },
      T,
    );

    it(
      'deleting an exchange removes its bindings',
      async () => {
        const name = ex();
        const q = qn();
        await ch.declareExchange(name, 'fanout');
        await ch.declareQueue(q);
        await ch.bindQueue(q, name, '');
        await ch.deleteExchange(name);
        await ch.declareExchange(name, 'fanout');
        await ch.publish(name, '', 'x');
        await sleep(100);
        expect(await ch.get(q)).toBeNull();
      },
      T,
    );

    it(
      'exchange-to-exchange bindings route, and stop routing once unbound',
      async () => {
        const src = ex('src');
        const dst = ex('dst');
        const q = qn();
        await ch.declareExchange(src, 'topic');
        await ch.declareExchange(dst, 'direct');
        await ch.declareQueue(q);
        await ch.bindQueue(q, dst, 'a.b');
        await ch.bindExchange(dst, src, 'a.*');
        await ch.publish(src, 'a.b', 'one');
        await ch.publish(src, 'a.c', 'not-bound-in-dst');
        await ch.publish(src, 'x.b', 'not-matching-src');
        expect((await getWithin(ch, q)).body.toString()).toBe('one');
        await ch.unbindExchange(dst, src, 'a.*');
        await ch.publish(src, 'a.b', 'two');
        await ch.publish(dst, 'a.b', 'three');
        expect((await getWithin(ch, q)).body.toString()).toBe('three');
        expect(await ch.get(q)).toBeNull();
      },
      T,
    );

    it(
      'exchange-to-exchange binding cycles do not loop and deliver once',
      async () => {
        const a = ex('cyc-a');
        const b = ex('cyc-b');
        const q = qn();
        await ch.declareExchange(a, 'fanout');
        await ch.declareExchange(b, 'fanout');
        await ch.declareQueue(q);
        await ch.bindExchange(b, a, '');
        await ch.bindExchange(a, b, '');
        await ch.bindQueue(q, a, '');
        await ch.bindQueue(q, b, '');
        await ch.publish(a, '', 'once');
        await getWithin(ch, q);
        await sleep(100);
        expect(await ch.get(q)).toBeNull();
      },
      T,
    );

    it(
      "the 'amq.' prefix is reserved for exchanges and queues (403)",
      async () => {
        const name = `amq.${uid('lt')}`;
        let c = await fresh();
        let r = await expectChannelError(c, () => c.declareExchange(name, 'direct'));
        expect(r.code).toBe(403);
        expect(r.text).toBe(`ACCESS_REFUSED - exchange name '${name}' contains reserved prefix 'amq.*'`);
        c = await fresh();
        r = await expectChannelError(c, () => c.declareQueue(name));
        expect(r.code).toBe(403);
        expect(r.text).toBe(`ACCESS_REFUSED - queue name '${name}' contains reserved prefix 'amq.*'`);
      },
      T,
    );

    it(
      'the default exchange cannot be bound to, unbound from or deleted (403)',
      async () => {
        const q = qn();
        await ch.declareQueue(q);
        for (const op of [
          (c: TestChannel) => c.bindQueue(q, '', 'other-key'),
          (c: TestChannel) => c.unbindQueue(q, '', q),
          (c: TestChannel) => c.deleteExchange(''),
        ]) {
          const c = await fresh();
          const r = await expectChannelError(c, () => op(c));
          expect(r.code).toBe(403);
          expect(r.text).toBe('ACCESS_REFUSED - operation not permitted on the default exchange');
        }
      },
      T,
    );

    it(
      'predeclared amq.* exchanges cannot be deleted (403)',
      async () => {
        const c = await fresh();
        const r = await expectChannelError(c, () => c.deleteExchange('amq.direct'));
        expect(r.code).toBe(403);
        expect(r.text).toBe("ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed");
      },
      T,
    );
  });

  // -------------------------------------------------------------- queues

  describe('queue', () => {
    it(
      'a server-named queue gets an amq.gen- name and zero counts',
      async () => {
        const r = await ch.declareQueue('', { exclusive: true });
        queues.push(r.queue);
        expect(r.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
        expect(r.messageCount).toBe(0);
        expect(r.consumerCount).toBe(0);
      },
      T,
    );

    it(
      'passive declare returns the message and consumer counts; a missing queue is 404',
      async () => {
        const q = qn();
        await ch.declareQueue(q);
        await ch.publish('', q, 'a');
        await ch.publish('', q, 'b');
        const c2 = await fresh();
        await c2.consume(q, () => {}, { noAck: false });
        await waitFor(async () => (await ch.checkQueue(q)).consumerCount === 1, 3000, 'consumer count');
        await c2.close();
        await waitFor(async () => (await ch.checkQueue(q)).messageCount === 2, 3000, 'messages requeued');
        const r = await ch.checkQueue(q);
        expect(r).toEqual({ queue: q, messageCount: 2, consumerCount: 0 });

        const missing = uid('lt-missing');
        const c = await fresh();
        const e = await expectChannelError(c, () => c.checkQueue(missing));
        expect(e.code).toBe(404);
        expect(e.text).toBe(`NOT_FOUND - no queue '${missing}' in vhost '/'`);
      },
      T,
    );

    it(
      'an exclusive queue is locked (405) for other connections and removed when its connection closes',
      async () => {
        const owner = await connectWith(client, broker.url);
        const oc = await owner.channel();
        const q = qn('excl');
        await oc.declareQueue(q, { exclusive: true });

        for (const op of [
          (c: TestChannel) => c.checkQueue(q),
          (c: TestChannel) => c.consume(q, () => {}),
          (c: TestChannel) => c.deleteQueue(q),
          (c: TestChannel) => c.declareQueue(q),
        ]) {
          const c = await fresh();
          const r = await expectChannelError(c, () => op(c));
          expect(r.code).toBe(405);
          expect(r.text).toBe(
            `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
          );
        }
        // the owner can use it
        await oc.publish('', q, 'mine');
        expect((await getWithin(oc, q)).body.toString()).toBe('mine');

        await owner.close();
        await waitFor(async () => !(await queueExists(q)), 5000, 'exclusive queue removal');
      },
      T,
    );

    it(
      'an auto-delete queue is removed when its last consumer is cancelled',
      async () => {
        const q = qn('autodel');
        await ch.declareQueue(q, { autoDelete: true });
        const c = await fresh();
        const t1 = await c.consume(q, () => {});
        const t2 = await c.consume(q, () => {});
        await c.cancel(t1);
        expect(await queueExists(q)).toBe(true);
        await c.cancel(t2);
        await waitFor(async () => !(await queueExists(q)), 3000, 'auto-delete queue removal');
      },
      T,
    );

    it(
      'an auto-delete queue that never had a consumer stays',
      async () => {
        const q = qn('autodel-idle');
        await ch.declareQueue(q, { autoDelete: true });
        await sleep(200);
        expect(await queueExists(q)).toBe(true);
      },
      T,
    );

    it(
      'redeclaring with different attributes is 406 with an inequivalent-arg text',
      async () => {
        const q = qn();
        await ch.declareQueue(q, { durable: false });
        let c = await fresh();
        let r = await expectChannelError(c, () => c.declareQueue(q, { durable: true }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(
          `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
        );
        c = await fresh();
        r = await expectChannelError(c, () => c.declareQueue(q, { autoDelete: true }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(
          `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
        );
        c = await fresh();
        r = await expectChannelError(c, () => c.declareQueue(q, { arguments: { 'x-max-length': 10 } }));
        expect(r.code).toBe(406);
        // the rest of the text names the AMQP type the client chose for 10
        expect(
          r.text.startsWith(
            `PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '${q}' in vhost '/': received the value '10' of type `,
          ),
        ).toBe(true);
        // redeclaring an existing non-exclusive queue as exclusive is 405, not 406
        c = await fresh();
        r = await expectChannelError(c, () => c.declareQueue(q, { exclusive: true }));
        expect(r.code).toBe(405);
        expect(r.text.startsWith(`RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'`)).toBe(true);
      },
      T,
    );

    it(
      'bind and unbind a queue',
      async () => {
        const e = ex();
        const q = qn();
        await ch.declareExchange(e, 'direct');
        await ch.declareQueue(q);
        await ch.bindQueue(q, e, 'k1');
        await ch.bindQueue(q, e, 'k1'); // idempotent
        await ch.publish(e, 'k1', 'm1');
        expect((await getWithin(ch, q)).body.toString()).toBe('m1');
        await ch.unbindQueue(q, e, 'k1');
        await ch.unbindQueue(q, e, 'k1'); // unbinding a missing binding is fine
        await ch.publish(e, 'k1', 'm2');
        await sleep(100);
        expect(await ch.get(q)).toBeNull();
      },
      T,
    );

    it(
      'binding to a missing exchange or queue is 404',
      async () => {
        const q = qn();
        await ch.declareQueue(q);
        const missingEx = uid('lt-noex');
        let c = await fresh();
        let r = await expectChannelError(c, () => c.bindQueue(q, missingEx, 'k'));
        expect(r.code).toBe(404);
        expect(r.text).toBe(`NOT_FOUND - no exchange '${missingEx}' in vhost '/'`);
        const missingQ = uid('lt-noq');
        c = await fresh();
        r = await expectChannelError(c, () => c.bindQueue(missingQ, 'amq.direct', 'k'));
        expect(r.code).toBe(404);
        expect(r.text).toBe(`NOT_FOUND - no queue '${missingQ}' in vhost '/'`);
      },
      T,
    );

    it(
      'purge returns the number of messages removed',
      async () => {
        const q = qn();
        await ch.declareQueue(q);
        for (let i = 0; i < 5; i++) await ch.publish('', q, `m${i}`);
        await waitFor(async () => (await ch.checkQueue(q)).messageCount === 5, 3000, '5 messages');
        expect(await ch.purgeQueue(q)).toBe(5);
        expect((await ch.checkQueue(q)).messageCount).toBe(0);
        expect(await ch.purgeQueue(q)).toBe(0);
      },
      T,
    );

    it(
      'delete returns the message count; if-empty and if-unused refuse with 406',
      async () => {
        const q = qn();
        await ch.declareQueue(q);
        for (let i = 0; i < 3; i++) await ch.publish('', q, `m${i}`);
        await waitFor(async () => (await ch.checkQueue(q)).messageCount === 3, 3000, '3 messages');

        let c = await fresh();
        let r = await expectChannelError(c, () => c.deleteQueue(q, { ifEmpty: true }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(`PRECONDITION_FAILED - queue '${q}' in vhost '/' not empty`);

        const consumerCh = await fresh();
        await consumerCh.consume(q, () => {}, { noAck: false });
        c = await fresh();
        r = await expectChannelError(c, () => c.deleteQueue(q, { ifUnused: true }));
        expect(r.code).toBe(406);
        expect(r.text).toBe(`PRECONDITION_FAILED - queue '${q}' in vhost '/' in use`);
        await consumerCh.close();

        await waitFor(async () => (await ch.checkQueue(q)).messageCount === 3, 3000, 'requeue');
        expect(await ch.deleteQueue(q)).toBe(3);
        expect(await queueExists(q)).toBe(false);
        // deleting a queue that does not exist succeeds with count 0
        expect(await ch.deleteQueue(q)).toBe(0);
      },
      T,
    );
  });

  // -------------------------------------------------------------- routing

  describe('routing', () => {
    /** Declares one queue per binding key on exchange e, publishes each key (body = key), returns what each queue got. */
    async function routeTable(type: string, bindings: string[], keys: string[]): Promise<Record<string, string[]>> {
      const e = ex(type);
      await ch.declareExchange(e, type);
      const qs: Record<string, string> = {};
      for (const b of bindings) {
        const q = qn();
        await ch.declareQueue(q);
        await ch.bindQueue(q, e, b);
        qs[b] = q;
      }
      for (const k of keys) await ch.publish(e, k, k);
      // a round trip on the same channel orders after the publishes
      await ch.checkExchange(e);
      await sleep(50);
      const out: Record<string, string[]> = {};
      for (const b of bindings) out[b] = (await drain(ch, qs[b])).sort();
      return out;
    }

    it(
      'direct exchange routes on exact routing key',
      async () => {
        const got = await routeTable('direct', ['a', 'b', 'a.b', ''], ['a', 'b', 'a.b', 'c', '', 'A']);
        expect(got).toEqual({ a: ['a'], b: ['b'], 'a.b': ['a.b'], '': [''] });
      },
      T,
    );

    it(
      'the default exchange routes to the queue named by the routing key',
      async () => {
        const q = qn();
        await ch.declareQueue(q);
        await ch.publish('', q, 'hello');
        const m = await getWithin(ch, q);
        expect(m.body.toString()).toBe('hello');
        expect(m.exchange).toBe('');
        expect(m.routingKey).toBe(q);
      },
      T,
    );

    it(
      'fanout exchange ignores the routing key',
      async () => {
        const got = await routeTable('fanout', ['x', 'y'], ['k1', 'k2']);
        expect(got).toEqual({ x: ['k1', 'k2'], y: ['k1', 'k2'] });
      },
      T,
    );

    it(
      'topic exchange: * matches one word, # matches zero or more words',
      async () => {
        const bindings = ['*.orange.*', '*.*.rabbit', 'lazy.#', '#.b', 'a.#.c', 'a.*', '#', 'exact.key'];
        const keys = [
          'quick.orange.rabbit',
          'lazy.orange.elephant',
          'quick.orange.fox',
          'lazy.brown.fox',
          'lazy',
          'lazyx',
          'orange',
          'quick.orange.male.rabbit',
          'b',
          'x.y.b',
          'a.c',
          'a.b.c',
          'a.b.d.c',
          'a',
          'a.x',
          'exact.key',
          'exact.keys',
        ];
        const got = await routeTable('topic', bindings, keys);
        expect(got['*.orange.*']).toEqual(['lazy.orange.elephant', 'quick.orange.fox', 'quick.orange.rabbit']);
        expect(got['*.*.rabbit']).toEqual(['quick.orange.rabbit']);
        expect(got['lazy.#']).toEqual(['lazy', 'lazy.brown.fox', 'lazy.orange.elephant']);
        expect(got['#.b']).toEqual(['b', 'x.y.b']);
        expect(got['a.#.c']).toEqual(['a.b.c', 'a.b.d.c', 'a.c']);
        expect(got['a.*']).toEqual(['a.c', 'a.x']);
        expect(got['#']).toEqual([...keys].sort());
        expect(got['exact.key']).toEqual(['exact.key']);
      },
      T,
    );

    it(
      'topic exchange: # matches the empty routing key',
      async () => {
        const got = await routeTable('topic', ['#', '*', 'a.#'], ['', 'a']);
        expect(got['#']).toEqual(['', 'a']);
        expect(got['*']).toEqual(['a']);
        expect(got['a.#']).toEqual(['a']);
      },
      T,
    );

    it(
      'headers exchange: x-match all and any',
      async () => {
        const e = ex('headers');
        await ch.declareExchange(e, 'headers');
        const qAll = qn('all');
        const qAny = qn('any');
        const qDefault = qn('default');
        for (const q of [qAll, qAny, qDefault]) await ch.declareQueue(q);
        await ch.bindQueue(qAll, e, '', { 'x-match': 'all', format: 'pdf', type: 'report' });
        await ch.bindQueue(qAny, e, '', { 'x-match': 'any', format: 'pdf', type: 'report' });
        await ch.bindQueue(qDefault, e, '', { format: 'pdf', type: 'report' }); // x-match defaults to all
        const msgs: Array<[string, Record<string, unknown>]> = [
          ['both', { format: 'pdf', type: 'report' }],
          ['both-plus-extra', { format: 'pdf', type: 'report', extra: 'x' }],
          ['format-only', { format: 'pdf' }],
          ['type-only', { type: 'report' }],
          ['wrong-value', { format: 'zip', type: 'log' }],
          ['none', {}],
        ];
        for (const [body, headers] of msgs) await ch.publish(e, 'ignored', body, { headers });
        await ch.checkExchange(e);
        await sleep(50);
        expect((await drain(ch, qAll)).sort()).toEqual(['both', 'both-plus-extra']);
        expect((await drain(ch, qAny)).sort()).toEqual(['both', 'both-plus-extra', 'format-only', 'type-only']);
        expect((await drain(ch, qDefault)).sort()).toEqual(['both', 'both-plus-extra']);
      },
      T,
    );

    it(
      'a message routed to several queues arrives in each exactly once',
      async () => {
        const e = ex();
        await ch.declareExchange(e, 'direct');
        const qs = [qn(), qn(), qn()];
        for (const q of qs) {
          await ch.declareQueue(q);
          await ch.bindQueue(q, e, 'k');
        }
        // two bindings from the same queue still deliver once
        await ch.bindQueue(qs[0], e, 'k2');
        await ch.bindExchange('amq.fanout', e, 'k'); // a detour that leads nowhere is harmless
        await ch.publish(e, 'k', 'multi');
        for (const q of qs) expect((await getWithin(ch, q)).body.toString()).toBe('multi');
        await sleep(50);
        for (const q of qs) expect(await ch.get(q)).toBeNull();
        await ch.unbindExchange('amq.fanout', e, 'k');
      },
      T,
    );

    it(
      'mandatory publish of an unroutable message comes back as basic.return 312 NO_ROUTE',
      async () => {
        const c = await fresh();
        const returned: Array<{ replyCode: number; replyText: string; exchange: string; routingKey: string; body: string }> = [];
        c.onReturn((r) => returned.push({ ...r, body: r.body.toString() }));
        const e = ex();
        await c.declareExchange(e, 'direct');
        await c.publish(e, 'nowhere', 'bounce', { mandatory: true });
        await c.publish(e, 'nowhere', 'dropped', { mandatory: false });
        await waitFor(() => returned.length >= 1, 3000, 'basic.return');
        await sleep(100);
        expect(returned).toEqual([{ replyCode: 312, replyText: 'NO_ROUTE', exchange: e, routingKey: 'nowhere', body: 'bounce' }]);
        // the default exchange with no such queue is unroutable too
        await c.publish('', uid('lt-noq'), 'bounce2', { mandatory: true });
        await waitFor(() => returned.length >= 2, 3000, 'second basic.return');
        expect(returned[1].replyCode).toBe(312);
        expect(returned[1].body).toBe('bounce2');
        await c.close();
      },
      T,
    );
  });
});
