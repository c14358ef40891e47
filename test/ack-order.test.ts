/**
 * A channel keeps its unacked deliveries in tag order and settles acks from the oldest end;
 * acks out of order leave holes it must step over. Whatever order a client acks, nacks and
 * rejects in, every delivery is settled exactly once, a tag is unknown once settled (406),
 * and a closed channel gives back exactly what it had not settled, in order.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { closeReason, uid, waitFor } from './helpers/clients';

let broker: StartedBroker;
beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  await broker?.stop();
});

/** A seeded shuffle, so a failure can be replayed. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = items.slice();
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function deliveries(ch: amqp.Channel, queue: string, n: number): Promise<amqp.ConsumeMessage[]> {
  const got: amqp.ConsumeMessage[] = [];
  for (let i = 0; i < n; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
  await ch.consume(queue, (m) => m && got.push(m), { noAck: false });
  await waitFor(() => got.length === n, 10_000, `${n} deliveries`);
  return got;
}

describe('acks in any order', () => {
  it('settles every delivery once, whatever the order, and forgets settled tags', async () => {
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createChannel();
    const q = uid('acks-');
    await ch.assertQueue(q, { exclusive: true });
    const got = await deliveries(ch, q, 600);
    // Single acks in a shuffled order for the first half (holes everywhere, the ring grows past them) ...
    for (const m of shuffled(got.slice(0, 300), 7)) ch.ack(m);
    // ... then rejects without requeue and multiple acks over a range with holes in it.
    for (let i = 300; i < 400; i += 3) ch.reject(got[i], false);
    ch.ack(got[450], true); // everything up to 450 not yet settled
    for (const m of shuffled(got.slice(451, 599), 11)) ch.ack(m);
    ch.nack(got[599], false, false);
    await ch.checkQueue(q); // a round trip: the acks before it were read
    // Nothing left outstanding: a second ack of a settled tag is unknown.
    const closed = new Promise<unknown>((resolve) => ch.once('error', resolve));
    ch.ack(got[123]);
    const reason = closeReason(await closed);
    expect(reason.code).toBe(406);
    expect(reason.text).toContain('unknown delivery tag 124');
    // The channel closed with nothing unsettled: nothing came back to the queue.
    const ch2 = await conn.createChannel();
    expect((await ch2.checkQueue(q)).messageCount).toBe(0);
    await conn.close();
  });

  it('a closed channel requeues exactly the deliveries it had not settled, in order', async () => {
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createChannel();
    const q = uid('acks-');
    await ch.assertQueue(q);
    const got = await deliveries(ch, q, 200);
    const keep = new Set<number>();
    for (const [i, m] of got.entries()) {
      if (i % 5 === 2 || (i > 100 && i % 7 === 0)) keep.add(i);
      else ch.ack(m);
    }
    await ch.close();
    const ch2 = await conn.createChannel();
    const again: string[] = [];
    await ch2.consume(q, (m) => m && again.push(m.content.toString()), { noAck: true });
    await waitFor(() => again.length === keep.size, 10_000, 'requeued deliveries');
    expect(again).toEqual([...keep].sort((a, b) => a - b).map(String));
    await ch2.deleteQueue(q);
    await conn.close();
  });

  it('multiple ack with tag 0 settles everything outstanding', async () => {
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createChannel();
    const q = uid('acks-');
    await ch.assertQueue(q, { exclusive: true });
    const got = await deliveries(ch, q, 50);
    ch.ack(got[10]);
    ch.ack(got[30]);
    ch.ackAll();
    const ok = await ch.checkQueue(q);
    expect(ok.messageCount).toBe(0);
    await ch.close();
    const ch2 = await conn.createChannel();
    expect(await ch2.get(q)).toBe(false);
    await conn.close();
  });
});
