// RabbitMQ-only check behind the policy semantics that test/policies.test.ts expects of
// Leveret: run it against a RabbitMQ you can drive with rabbitmqctl, with
//   LEVERET_TEST_URL=amqp://guest:guest@127.0.0.1:5672 npx vitest run -c conformance/vitest.config.mjs
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { Vhost } from '../src/broker/vhost';
import { Message } from '../src/broker/message';
import { PolicyError, type ApplyTo, type Policy } from '../src/broker/policies';
import type { Queue } from '../src/broker/queue';
import type { FieldTable } from '../src/protocol/types';
import { sleep, uid } from '../test/helpers/clients';

function haveRabbitmqctl(): boolean {
  if (!process.env.LEVERET_TEST_URL) return false;
  try {
    execFileSync('rabbitmqctl', ['list_policies', '--quiet'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

describe('policies on RabbitMQ (rabbitmqctl, LEVERET_TEST_URL)', () => {
  const ctl = (...args: string[]) => execFileSync('rabbitmqctl', ['--quiet', ...args], { stdio: 'ignore', timeout: 10_000 });

  it('needs LEVERET_TEST_URL and rabbitmqctl', () => {
    expect(haveRabbitmqctl(), 'set LEVERET_TEST_URL to a RabbitMQ that rabbitmqctl can reach').toBe(true);
  });

  it('max-length from a policy behaves like the argument: existing queues cut at once, the lower wins, the overflow argument wins', async () => {
    const prefix = uid('lt-pol');
    const conn = await amqp.connect(process.env.LEVERET_TEST_URL!);
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    const send = (q: string, b: string) => new Promise<boolean>((r) => ch.sendToQueue(q, Buffer.from(b), {}, (e) => r(!e)));
    const drain = async (q: string) => {
      const out: string[] = [];
      for (let m = await ch.get(q, { noAck: true }); m !== false; m = await ch.get(q, { noAck: true })) out.push(m.content.toString());
      return out;
    };
    const q = (s: string) => `${prefix}-${s}`;
    const names = ['old-plain', 'old-rp', 'old-argrp', 'new-arg5', 'new-arg1', 'new-ovf'].map(q);
    const policies = [`${prefix}-old-plain`, `${prefix}-old-rp`, `${prefix}-new`];
    try {
      // queues holding 4 messages before any policy
      await ch.assertQueue(q('old-plain'), { durable: false });
      await ch.assertQueue(q('old-rp'), { durable: false });
      await ch.assertQueue(q('old-argrp'), { durable: false, arguments: { 'x-overflow': 'reject-publish' } });
      for (const n of ['old-plain', 'old-rp', 'old-argrp']) for (const b of ['a', 'b', 'c', 'd']) await send(q(n), b);
      ctl('set_policy', policies[0]!, `^${q('old-plain')}$`, '{"max-length":2}', '--apply-to', 'queues');
      ctl('set_policy', policies[1]!, `^${q('old-rp')}$`, '{"max-length":2,"overflow":"reject-publish"}', '--apply-to', 'queues');
      ctl('set_policy', `${prefix}-old-argrp`, `^${q('old-argrp')}$`, '{"max-length":2}', '--apply-to', 'queues');
      policies.push(`${prefix}-old-argrp`);
      await sleep(400);
      expect(await drain(q('old-plain'))).toEqual(['c', 'd']);
      // max-length and reject-publish arriving together still cut the queue (max-length is applied first)
      expect(await drain(q('old-rp'))).toEqual(['c', 'd']);
      // with reject-publish already in force, a lower limit drops nothing
      expect(await drain(q('old-argrp'))).toEqual(['a', 'b', 'c', 'd']);

      ctl('set_policy', policies[2]!, `^${prefix}-new-`, '{"max-length":2,"overflow":"reject-publish"}', '--apply-to', 'queues');
      await ch.assertQueue(q('new-arg5'), { durable: false, arguments: { 'x-max-length': 5 } });
      await ch.assertQueue(q('new-arg1'), { durable: false, arguments: { 'x-max-length': 1 } });
      await ch.assertQueue(q('new-ovf'), { durable: false, arguments: { 'x-overflow': 'drop-head' } });
      expect([await send(q('new-arg5'), 'a'), await send(q('new-arg5'), 'b'), await send(q('new-arg5'), 'c')]).toEqual([true, true, false]);
      expect([await send(q('new-arg1'), 'a'), await send(q('new-arg1'), 'b')]).toEqual([true, false]);
      expect([await send(q('new-ovf'), 'a'), await send(q('new-ovf'), 'b'), await send(q('new-ovf'), 'c')]).toEqual([true, true, true]);
      expect(await drain(q('new-ovf'))).toEqual(['b', 'c']);

      // deleting the policy removes the limit
      ctl('clear_policy', policies[0]!);
      await sleep(300);
      for (const b of ['x', 'y', 'z']) expect(await send(q('old-plain'), b)).toBe(true);
      expect(await drain(q('old-plain'))).toEqual(['x', 'y', 'z']);
    } finally {
      for (const p of policies) {
        try {
          ctl('clear_policy', p);
        } catch {
          /* already cleared */
        }
      }
      for (const n of names) await ch.deleteQueue(n).catch(() => {});
      await conn.close().catch(() => {});
    }
  }, 30_000);
});
