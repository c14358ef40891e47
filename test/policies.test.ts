// The policy engine at the model level (there is no HTTP API for policies yet):
// which policy applies, what it does to queues and exchanges, how it combines with
// queue/exchange arguments, and which definitions are refused. The expectations are
// RabbitMQ 3.10's (checked with rabbitmqctl set_policy against a live broker; the last
// block re-runs a few of those checks when LEVERET_TEST_URL points at RabbitMQ and
// rabbitmqctl is available).
import { execFileSync } from 'node:child_process';
import { QueueTargets } from '../src/broker/queue-targets';
import { describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { Vhost } from '../src/broker/vhost';
import { Message } from '../src/broker/message';
import { PolicyError, type ApplyTo, type Policy } from '../src/broker/policies';
import { REFUSED, type Queue } from '../src/broker/queue';
import type { FieldTable } from '../src/protocol/types';
import { sleep, uid } from './helpers/clients';

const NO_PROPS = Buffer.from([0, 0]);
const msg = (body: string, rk = 'rk', exchange = '') => new Message(exchange, rk, NO_PROPS, Buffer.from(body));
const owner = {};

function declare(v: Vhost, name: string, args: FieldTable = {}): Queue {
  return v.declareQueue(name, false, false, false, false, args, owner);
}

function policy(name: string, pattern: string, definition: Record<string, unknown>, priority = 0, applyTo: ApplyTo = 'queues'): Policy {
  return { name, pattern, applyTo, priority, definition };
}

/** Ready messages' bodies, taken with basic.get (no-ack). */
function bodies(q: Queue): string[] {
  const out: string[] = [];
  for (let e = q.get(true); e !== undefined; e = q.get(true)) out.push(e.message.body.toString());
  return out;
}

/** Whether the queue took each message (enqueue answers REFUSED when it would not). */
function fill(q: Queue, ...bs: string[]): boolean[] {
  return bs.map((b) => q.enqueue(msg(b, q.name)) !== REFUSED);
}

/** What routing a message from `exchange` with `rk` reaches. */
function routed(v: Vhost, exchange: string, rk: string): string[] {
  const out = new QueueTargets();
  v.route(v.getExchange(exchange), msg('r', rk, exchange), out);
  return [...out].map((q) => q.name).sort();
}

describe('policies: which one applies', () => {
  it('applies to queues that already exist and to queues declared later', () => {
    const v = new Vhost('/');
    const before = declare(v, 'orders.a');
    const other = declare(v, 'payments.a');
    v.setPolicy(policy('len', '^orders\\.', { 'max-length': 2 }));
    expect(before.settings.maxLength).toBe(2);
    expect(other.settings.maxLength).toBeNull();
    const after = declare(v, 'orders.b');
    expect(after.settings.maxLength).toBe(2);
    fill(after, 'a', 'b', 'c');
    expect(bodies(after)).toEqual(['b', 'c']);
  });

  it('an existing queue over the new limit is cut down at once (drop-head)', () => {
    const v = new Vhost('/');
    const q = declare(v, 'full');
    fill(q, 'a', 'b', 'c', 'd');
    v.setPolicy(policy('len', '^full$', { 'max-length': 2 }));
    expect(q.messageCount).toBe(2);
    expect(bodies(q)).toEqual(['c', 'd']);
  });

  it('max-length and overflow reject-publish arriving together in a policy still cut an existing queue (dead-lettered, maxlen)', () => {
    // RabbitMQ applies a policy's max-length before its overflow, so the queue is trimmed
    // while it is still drop-head.
    const v = new Vhost('/');
    v.declareExchange('dlx', 'fanout', false, false, false, false, {});
    const dlq = declare(v, 'dlq');
    v.bindQueue('dlq', 'dlx', '', {}, owner);
    const q = declare(v, 'full', { 'x-dead-letter-exchange': 'dlx' });
    fill(q, 'a', 'b', 'c', 'd');
    v.setPolicy(policy('len', '^full$', { 'max-length': 2, overflow: 'reject-publish' }));
    expect(bodies(q)).toEqual(['c', 'd']);
    expect(bodies(dlq)).toEqual(['a', 'b']);
  });

  it('with reject-publish already in force (argument), a lower max-length from a policy drops nothing', () => {
    const v = new Vhost('/');
    const q = declare(v, 'rp', { 'x-overflow': 'reject-publish' });
    fill(q, 'a', 'b', 'c', 'd');
    v.setPolicy(policy('len', '^rp$', { 'max-length': 2 }));
    expect(q.messageCount).toBe(4);
    expect(fill(q, 'e')).toEqual([false]);
    expect(bodies(q)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('the pattern is an unanchored regular expression', () => {
    const v = new Vhost('/');
    const a = declare(v, 'x-ml-y');
    const b = declare(v, 'ml');
    const c = declare(v, 'other');
    v.setPolicy(policy('p', 'ml', { 'max-length': 1 }));
    expect([a, b, c].map((q) => q.settings.maxLength)).toEqual([1, 1, null]);
  });

  it('the highest-priority matching policy wins, and only that one applies (definitions are not merged)', () => {
    const v = new Vhost('/');
    const q = declare(v, 'prio.q');
    v.setPolicy(policy('lo', '^prio\\.', { 'max-length': 1, 'message-ttl': 100 }, 1));
    v.setPolicy(policy('hi', '^prio\\.', { 'max-length': 3 }, 5));
    expect(q.settings.maxLength).toBe(3);
    expect(q.settings.messageTtl).toBeNull();
    const later = declare(v, 'prio.later');
    expect(later.settings.maxLength).toBe(3);
    expect(later.settings.messageTtl).toBeNull();
    // a negative priority is allowed and loses to 1
    v.setPolicy(policy('neg', '^prio\\.', { 'max-length': 7 }, -3));
    expect(q.settings.maxLength).toBe(3);
  });

  it('deleting the winning policy lets the next one apply; deleting all removes the effect', () => {
    const v = new Vhost('/');
    const q = declare(v, 'prio.q');
    v.setPolicy(policy('lo', '^prio\\.', { 'max-length': 1, 'message-ttl': 100 }, 1));
    v.setPolicy(policy('hi', '^prio\\.', { 'max-length': 3 }, 5));
    expect(v.deletePolicy('hi')).toBe(true);
    expect(q.settings.maxLength).toBe(1);
    expect(q.settings.messageTtl).toBe(100);
    expect(v.deletePolicy('lo')).toBe(true);
    expect(q.settings.maxLength).toBeNull();
    expect(q.settings.messageTtl).toBeNull();
    expect(fill(q, 'a', 'b', 'c')).toEqual([true, true, true]);
    expect(q.messageCount).toBe(3);
    expect(v.deletePolicy('lo')).toBe(false);
    expect(v.deletePolicy('never-was')).toBe(false);
  });

  it('setting a policy again under the same name replaces it', () => {
    const v = new Vhost('/');
    const q = declare(v, 'rep');
    v.setPolicy(policy('p', '^rep$', { 'max-length': 5 }));
    v.setPolicy(policy('p', '^rep$', { 'message-ttl': 1000 }));
    expect(q.settings.maxLength).toBeNull();
    expect(q.settings.messageTtl).toBe(1000);
    expect(v.policies.all).toHaveLength(1);
    v.setPolicy(policy('p', '^nothing$', { 'message-ttl': 1000 }));
    expect(q.settings.messageTtl).toBeNull();
  });

  it('apply-to is respected: a queues policy does not touch exchanges, an exchanges policy does not touch queues', () => {
    const v = new Vhost('/');
    const q = declare(v, 'same');
    v.declareExchange('same', 'direct', false, false, false, false, {});
    v.declareExchange('ae', 'fanout', false, false, false, false, {});
    v.setPolicy(policy('ex-only', '^same$', { 'alternate-exchange': 'ae', 'max-length': 1 }, 0, 'exchanges'));
    expect(q.settings.maxLength).toBeNull();
    expect(v.getExchange('same').alternateExchange).toBe('ae');
    v.deletePolicy('ex-only');
    v.setPolicy(policy('q-only', '^same$', { 'alternate-exchange': 'ae', 'max-length': 1 }, 0, 'queues'));
    expect(q.settings.maxLength).toBe(1);
    expect(v.getExchange('same').alternateExchange).toBeNull();
    v.deletePolicy('q-only');
    v.setPolicy(policy('both', '^same$', { 'alternate-exchange': 'ae', 'max-length': 1 }, 0, 'all'));
    expect(q.settings.maxLength).toBe(1);
    expect(v.getExchange('same').alternateExchange).toBe('ae');
  });

  it('a higher-priority policy for the other kind does not hide a lower-priority one for this kind', () => {
    const v = new Vhost('/');
    const q = declare(v, 'shadow');
    v.declareExchange('shadow', 'direct', false, false, false, false, {});
    v.setPolicy(policy('for-exchanges', '^shadow$', { 'alternate-exchange': 'ae' }, 10, 'exchanges'));
    v.setPolicy(policy('for-queues', '^shadow$', { 'max-length': 4 }, 1, 'queues'));
    expect(q.settings.maxLength).toBe(4);
    expect(v.getExchange('shadow').alternateExchange).toBe('ae');
  });

  it('redeclaring a queue that a policy applies to compares only its arguments', () => {
    const v = new Vhost('/');
    const q = declare(v, 'redecl', { 'x-max-length': 10 });
    v.setPolicy(policy('p', '^redecl$', { 'max-length': 2, 'message-ttl': 500 }));
    expect(declare(v, 'redecl', { 'x-max-length': 10 })).toBe(q);
    expect(q.settings.maxLength).toBe(2);
  });
});

describe('policies: combined with queue arguments', () => {
  // RabbitMQ (rabbit_amqqueue_process): expires, message-ttl, max-length, max-length-bytes
  // take the lower of argument and policy; dead-letter-exchange, dead-letter-routing-key and
  // overflow take the argument when there is one.
  it.each([
    ['message-ttl', 'x-message-ttl', 'messageTtl'],
    ['expires', 'x-expires', 'expires'],
    ['max-length', 'x-max-length', 'maxLength'],
    ['max-length-bytes', 'x-max-length-bytes', 'maxLengthBytes'],
  ] as const)('%s: the lower of argument and policy wins', (key, arg, field) => {
    const v = new Vhost('/');
    const lowArg = declare(v, 'low-arg', { [arg]: 100_000 });
    const highArg = declare(v, 'high-arg', { [arg]: 900_000 });
    const noArg = declare(v, 'no-arg');
    v.setPolicy(policy('p', '-arg$', { [key]: 500_000 }));
    expect(lowArg.settings[field]).toBe(100_000);
    expect(highArg.settings[field]).toBe(500_000);
    expect(noArg.settings[field]).toBe(500_000);
    v.deletePolicy('p');
    expect(lowArg.settings[field]).toBe(100_000);
    expect(highArg.settings[field]).toBe(900_000);
    expect(noArg.settings[field]).toBeNull();
  });

  it('max-length 0 from a policy is lower than any argument', () => {
    const v = new Vhost('/');
    const q = declare(v, 'zero', { 'x-max-length': 5 });
    v.setPolicy(policy('p', '^zero$', { 'max-length': 0 }));
    expect(q.settings.maxLength).toBe(0);
    fill(q, 'a');
    expect(q.messageCount).toBe(0);
  });

  it.each([
    ['dead-letter-exchange', 'x-dead-letter-exchange', 'deadLetterExchange', 'from-arg', 'from-policy'],
    ['dead-letter-routing-key', 'x-dead-letter-routing-key', 'deadLetterRoutingKey', 'from-arg', 'from-policy'],
    ['overflow', 'x-overflow', 'overflow', 'drop-head', 'reject-publish'],
  ] as const)(
    '%s: the argument wins over the policy; the policy fills in when there is no argument',
    (key, arg, field, argValue, policyValue) => {
      const v = new Vhost('/');
      const withArg = declare(v, 'with-arg', {
        [arg]: argValue,
        ...(arg === 'x-dead-letter-routing-key' ? { 'x-dead-letter-exchange': 'dlx' } : {}),
      });
      const noArg = declare(v, 'no-arg');
      v.setPolicy(policy('p', '-arg$', { [key]: policyValue }));
      expect(withArg.settings[field]).toBe(argValue);
      expect(noArg.settings[field]).toBe(policyValue);
    },
  );

  it("the exchange's own alternate-exchange argument wins over a policy", () => {
    const v = new Vhost('/');
    for (const n of ['ae-arg', 'ae-pol']) v.declareExchange(n, 'fanout', false, false, false, false, {});
    v.declareExchange('x-with', 'direct', false, false, false, false, { 'alternate-exchange': 'ae-arg' });
    v.declareExchange('x-without', 'direct', false, false, false, false, {});
    v.setPolicy(policy('ae', '^x-', { 'alternate-exchange': 'ae-pol' }, 0, 'exchanges'));
    expect(v.getExchange('x-with').alternateExchange).toBe('ae-arg');
    expect(v.getExchange('x-without').alternateExchange).toBe('ae-pol');
    v.deletePolicy('ae');
    expect(v.getExchange('x-with').alternateExchange).toBe('ae-arg');
    expect(v.getExchange('x-without').alternateExchange).toBeNull();
  });

  it('x-max-priority and x-single-active-consumer come only from arguments', () => {
    const v = new Vhost('/');
    const q = declare(v, 'args-only', { 'x-max-priority': 4, 'x-single-active-consumer': true });
    v.setPolicy(policy('p', '^args-only$', { 'max-length': 9 }));
    expect(q.settings.maxPriority).toBe(4);
    expect(q.settings.singleActiveConsumer).toBe(true);
    v.deletePolicy('p');
    expect(q.settings.maxPriority).toBe(4);
    expect(q.settings.singleActiveConsumer).toBe(true);
  });
});

describe('policies: what they do', () => {
  it('message-ttl from a policy expires messages published after it; those already queued keep living', async () => {
    const v = new Vhost('/');
    const q = declare(v, 'ttl');
    fill(q, 'before');
    v.setPolicy(policy('ttl', '^ttl$', { 'message-ttl': 50 }));
    fill(q, 'after');
    await sleep(200);
    expect(bodies(q)).toEqual(['before']);
  });

  it('dead-letter-exchange from a policy: overflowed messages are dead-lettered (maxlen, with x-death)', () => {
    const v = new Vhost('/');
    v.declareExchange('dlx', 'fanout', false, false, false, false, {});
    const dlq = declare(v, 'dlq');
    v.bindQueue('dlq', 'dlx', '', {}, owner);
    const q = declare(v, 'src');
    v.setPolicy(policy('dl', '^src$', { 'dead-letter-exchange': 'dlx', 'max-length': 1 }));
    fill(q, 'a', 'b');
    expect(bodies(q)).toEqual(['b']);
    const e = dlq.get(true)!;
    expect(e.message.body.toString()).toBe('a');
    const deaths = e.message.headers!['x-death'] as FieldTable[];
    expect(deaths[0]).toMatchObject({ reason: 'maxlen', queue: 'src', count: 1 });
  });

  it('dead-letter-exchange and routing key from a policy: rejected messages go there', () => {
    const v = new Vhost('/');
    v.declareExchange('dlx', 'direct', false, false, false, false, {});
    const dlq = declare(v, 'dlq');
    v.bindQueue('dlq', 'dlx', 'dead', {}, owner);
    const q = declare(v, 'src');
    v.setPolicy(policy('dl', '^src$', { 'dead-letter-exchange': 'dlx', 'dead-letter-routing-key': 'dead' }));
    fill(q, 'r');
    const e = q.get(false)!;
    q.settle(e, true);
    const d = dlq.get(true)!;
    expect(d.message.body.toString()).toBe('r');
    expect(d.message.routingKey).toBe('dead');
    expect(d.message.exchange).toBe('dlx');
  });

  it('overflow reject-publish from a policy refuses publishes', () => {
    const v = new Vhost('/');
    const q = declare(v, 'rp');
    v.setPolicy(policy('rp', '^rp$', { 'max-length': 1, overflow: 'reject-publish' }));
    expect(fill(q, 'a', 'b')).toEqual([true, false]);
    v.deletePolicy('rp');
    expect(fill(q, 'c')).toEqual([true]);
    expect(bodies(q)).toEqual(['a', 'c']);
  });

  it('max-length-bytes from a policy', () => {
    const v = new Vhost('/');
    const q = declare(v, 'bytes');
    v.setPolicy(policy('b', '^bytes$', { 'max-length-bytes': 8 }));
    fill(q, 'aaaa', 'bbbb', 'cccc');
    expect(bodies(q)).toEqual(['bbbb', 'cccc']);
  });

  it('expires from a policy deletes an unused queue, existing or new', async () => {
    const v = new Vhost('/');
    declare(v, 'exp.old');
    declare(v, 'keep');
    v.setPolicy(policy('exp', '^exp\\.', { expires: 60 }));
    declare(v, 'exp.new');
    await sleep(250);
    expect(v.queues.has('exp.old')).toBe(false);
    expect(v.queues.has('exp.new')).toBe(false);
    expect(v.queues.has('keep')).toBe(true);
  });

  it('deleting an expires policy stops the clock', async () => {
    const v = new Vhost('/');
    declare(v, 'exp.q');
    v.setPolicy(policy('exp', '^exp\\.', { expires: 100 }));
    v.deletePolicy('exp');
    await sleep(250);
    expect(v.queues.has('exp.q')).toBe(true);
  });

  it('alternate-exchange from a policy: unroutable messages reach it, until the policy goes', () => {
    const v = new Vhost('/');
    v.declareExchange('main', 'direct', false, false, false, false, {});
    v.declareExchange('ae', 'fanout', false, false, false, false, {});
    declare(v, 'bound');
    declare(v, 'aeq');
    v.bindQueue('bound', 'main', 'hit', {}, owner);
    v.bindQueue('aeq', 'ae', '', {}, owner);
    expect(routed(v, 'main', 'miss')).toEqual([]);
    v.setPolicy(policy('ae', '^main$', { 'alternate-exchange': 'ae' }, 0, 'exchanges'));
    expect(routed(v, 'main', 'miss')).toEqual(['aeq']);
    expect(routed(v, 'main', 'hit')).toEqual(['bound']);
    // exchanges declared after the policy get it too
    v.declareExchange('main2', 'direct', false, false, false, false, {});
    expect(routed(v, 'main2', 'miss')).toEqual([]);
    v.setPolicy(policy('ae', '^main', { 'alternate-exchange': 'ae' }, 0, 'exchanges'));
    expect(routed(v, 'main2', 'miss')).toEqual(['aeq']);
    v.deletePolicy('ae');
    expect(routed(v, 'main', 'miss')).toEqual([]);
  });
});

describe('policies: validation', () => {
  // Each of these is refused by `rabbitmqctl set_policy` on RabbitMQ 3.10.
  it.each([
    ['an empty definition', {}],
    ['an unknown key', { foo: 1 }],
    ['max-priority (not a policy key)', { 'max-priority': 5 }],
    ['a negative message-ttl', { 'message-ttl': -1 }],
    ['a fractional message-ttl', { 'message-ttl': 1.5 }],
    ['a string message-ttl', { 'message-ttl': '100' }],
    ['expires 0', { expires: 0 }],
    ['a negative max-length', { 'max-length': -1 }],
    ['a negative max-length-bytes', { 'max-length-bytes': -5 }],
    ['an unknown overflow', { overflow: 'bogus' }],
    ['a non-string dead-letter-exchange', { 'dead-letter-exchange': 5 }],
    ['a non-string alternate-exchange', { 'alternate-exchange': 1 }],
  ])('refuses %s', (_what, definition) => {
    const v = new Vhost('/');
    const q = declare(v, 'q');
    expect(() => v.setPolicy(policy('bad', '.*', definition))).toThrow(PolicyError);
    expect(v.policies.get('bad')).toBeUndefined();
    expect(q.settings.maxLength).toBeNull();
  });

  it('refuses an invalid pattern and an unknown apply-to', () => {
    const v = new Vhost('/');
    expect(() => v.setPolicy(policy('bad', '(', { 'max-length': 1 }))).toThrow(PolicyError);
    expect(() =>
      v.setPolicy({ name: 'bad', pattern: '.*', applyTo: 'foo' as ApplyTo, priority: 0, definition: { 'max-length': 1 } }),
    ).toThrow(PolicyError);
    expect(v.policies.all).toHaveLength(0);
  });

  it('a refused replacement leaves the existing policy (and its effect) in place', () => {
    const v = new Vhost('/');
    const q = declare(v, 'q');
    v.setPolicy(policy('p', '^q$', { 'max-length': 3 }));
    expect(() => v.setPolicy(policy('p', '^q$', { 'max-length': -3 }))).toThrow(PolicyError);
    expect(v.policies.get('p')!.definition).toEqual({ 'max-length': 3 });
    expect(q.settings.maxLength).toBe(3);
  });

  // Each of these is accepted by `rabbitmqctl set_policy` on RabbitMQ 3.10.
  it.each([
    ['message-ttl 0', { 'message-ttl': 0 }],
    ['expires 1', { expires: 1 }],
    ['max-length 0', { 'max-length': 0 }],
    ['an empty dead-letter-exchange (the default exchange)', { 'dead-letter-exchange': '' }],
    ['dead-letter-routing-key without dead-letter-exchange', { 'dead-letter-routing-key': 'k' }],
    [
      'every queue key at once',
      {
        'message-ttl': 100,
        expires: 200,
        'max-length': 1,
        'max-length-bytes': 10,
        overflow: 'reject-publish-dlx',
        'dead-letter-exchange': 'd',
        'dead-letter-routing-key': 'k',
      },
    ],
    ['queue-mode lazy', { 'queue-mode': 'lazy' }],
  ])('accepts %s', (_what, definition) => {
    const v = new Vhost('/');
    expect(() => v.setPolicy(policy('ok', '^nothing$', definition))).not.toThrow();
    expect(v.policies.get('ok')).toBeDefined();
  });

  it('accepts a negative priority', () => {
    const v = new Vhost('/');
    expect(() => v.setPolicy(policy('neg', '.*', { 'max-length': 1 }, -3))).not.toThrow();
  });
});

// ---------------------------------------------------------------- the same, on RabbitMQ
