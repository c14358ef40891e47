// The broker model on its own, without sockets: the vhost's rules and a queue's dispatch.
import { describe, it, expect } from 'vitest';
import { QueueTargets } from '../src/broker/queue-targets';
import { Vhost } from '../src/broker/vhost';
import { Message } from '../src/broker/message';
import type { Consumer, ConsumerChannel } from '../src/broker/consumer';
import { Consumer as ConsumerClass } from '../src/broker/consumer';
import type { QueueEntry } from '../src/broker/queue-entry';
import { AmqpError } from '../src/protocol/errors';

const NO_PROPS = Buffer.from([0, 0]);
const msg = (rk: string, body = rk, exchange = '') => new Message(exchange, rk, NO_PROPS, Buffer.from(body));

/** A channel that records what it is given and can be told to stop taking messages. */
class RecordingChannel implements ConsumerChannel {
  open = true;
  readonly got: Array<[string, string, boolean]> = [];
  readonly entries: QueueEntry[] = [];
  cancelled: string[] = [];
  canDeliver(): boolean {
    return this.open;
  }
  deliver(c: Consumer, e: QueueEntry): void {
    this.got.push([c.tag, e.message.body.toString(), e.redelivered]);
    this.entries.push(e);
  }
  consumerCancelled(c: Consumer): void {
    this.cancelled.push(c.tag);
  }
}

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof AmqpError) return e.code;
    throw e;
  }
  return 0;
}

describe('vhost model', () => {
  const owner = {};

  it('predeclares the default and amq.* exchanges and routes the default exchange by queue name', () => {
    const v = new Vhost('/');
    for (const n of ['', 'amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'amq.match']) expect(v.exchanges.has(n)).toBe(true);
    const q = v.declareQueue('q1', false, false, false, false, {}, owner);
    const out = new QueueTargets();
    v.route(v.getExchange(''), msg('q1'), out);
    expect([...out]).toEqual([q]);
  });

  it('follows exchange-to-exchange bindings and survives cycles', () => {
    const v = new Vhost('/');
    v.declareExchange('a', 'fanout', false, false, false, false, {});
    v.declareExchange('b', 'fanout', false, false, false, false, {});
    v.bindExchange('b', 'a', '', {});
    v.bindExchange('a', 'b', '', {});
    const q = v.declareQueue('qa', false, false, false, false, {}, owner);
    v.bindQueue('qa', 'b', '', {}, owner);
    const out = new QueueTargets();
    v.route(v.getExchange('a'), msg('x'), out);
    expect([...out]).toEqual([q]);
  });

  it('refuses what RabbitMQ refuses, with its codes', () => {
    const v = new Vhost('/');
    expect(code(() => v.declareQueue('amq.x', false, false, false, false, {}, owner))).toBe(403);
    expect(code(() => v.declareQueue('missing', true, false, false, false, {}, owner))).toBe(404);
    expect(code(() => v.declareExchange('x', 'nope', false, false, false, false, {}))).toBe(503);
    v.declareQueue('excl', false, false, true, false, {}, owner);
    expect(code(() => v.getQueue('excl', {}))).toBe(405);
    v.declareQueue('d', false, true, false, false, {}, owner);
    expect(code(() => v.declareQueue('d', false, false, false, false, {}, owner))).toBe(406);
    expect(code(() => v.bindQueue('d', '', 'd', {}, owner))).toBe(403);
  });

  it('deletes exclusive queues with their owner and auto-delete queues with their last consumer', () => {
    const v = new Vhost('/');
    const conn = {};
    v.declareQueue('mine', false, false, true, false, {}, conn);
    v.ownerClosed(conn);
    expect(v.queues.has('mine')).toBe(false);
    const q = v.declareQueue('ad', false, false, false, true, {}, owner);
    const ch = new RecordingChannel();
    const c = new ConsumerClass('t', ch, q, false, false, 0, {});
    q.addConsumer(c);
    expect(v.queues.has('ad')).toBe(true);
    q.removeConsumer(c);
    expect(v.queues.has('ad')).toBe(false);
  });
});

describe('queue dispatch', () => {
  it('round-robins within each consumer prefetch and requeues in original order, redelivered', () => {
    const v = new Vhost('/');
    const q = v.declareQueue('rr', false, false, false, false, {}, {});
    const ch = new RecordingChannel();
    const a = new ConsumerClass('a', ch, q, false, false, 2, {});
    const b = new ConsumerClass('b', ch, q, false, false, 2, {});
    q.addConsumer(a);
    q.addConsumer(b);
    for (let i = 1; i <= 6; i++) q.enqueue(msg('rr', `m${i}`));
    expect(ch.got.map(([t, body]) => `${t}:${body}`)).toEqual(['a:m1', 'b:m2', 'a:m3', 'b:m4']);
    expect(q.messageCount).toBe(2);
    // Consumers go away with the first four unacked: they return ahead of m5 and m6.
    ch.open = false;
    q.removeConsumer(a);
    q.removeConsumer(b);
    q.requeue(ch.entries.slice(0, 4).reverse());
    const order: string[] = [];
    for (let e = q.get(true); e !== undefined; e = q.get(true)) order.push(`${e.message.body}:${e.redelivered}`);
    expect(order).toEqual(['m1:true', 'm2:true', 'm3:true', 'm4:true', 'm5:false', 'm6:false']);
  });

  it('a routed message is one shared object in every queue', () => {
    const v = new Vhost('/');
    const qs = [1, 2, 3].map((i) => v.declareQueue(`f${i}`, false, false, false, false, {}, {}));
    for (const q of qs) v.bindQueue(q.name, 'amq.fanout', '', {}, {});
    const m = msg('any');
    const out = new QueueTargets();
    v.route(v.getExchange('amq.fanout'), m, out);
    for (const q of out) q.enqueue(m);
    const got = qs.map((q) => q.get(true)!.message);
    expect(got.every((g) => g === m && g.body === m.body)).toBe(true);
  });
});
