// Slow and stuck clients cannot slow the others down or grow the broker's memory without
// bound: a consumer that stops reading its socket does not throttle publishers (its
// deliveries wait, its queue pages to disk), a publisher trickling one byte a second holds
// no more than one frame, and thousands of sockets that never finish the handshake are
// closed by the handshake timeout and give their memory back.
import net from 'node:net';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { sleep, uid, waitFor } from './helpers/clients';
import { flood, rssOf, sampleRss, StallingConsumer } from './helpers/flood';
import * as raw from './helpers/raw';

const FLOOD_MS = 5000;

/** The broker's memory watermark in these tests: what "bounded" means here. */
const WATERMARK = 400e6;

let broker: StartedBroker;
let setup: amqp.ChannelModel;
let ch: amqp.Channel;

/** A fresh broker for each test, so that one test's memory does not count against the next. */
async function fresh(): Promise<void> {
  await setup?.close().catch(() => undefined);
  await broker?.stop();
  broker = await startBroker({ args: ['--handshake-timeout', '3000', '--vm-memory-high-watermark', String(WATERMARK)] });
  setup = await amqp.connect(broker.url);
  ch = await setup.createChannel();
}

afterAll(async () => {
  await setup?.close().catch(() => undefined);
  await broker?.stop();
}, 20_000);

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

describe('a consumer that stops reading its socket', () => {
  for (const prefetch of [0, 2000]) {
    it(`(prefetch ${prefetch}) does not throttle publishers; its deliveries wait, and it gets them all once it reads again`, async () => {
      await fresh();
      // The rate with nobody consuming: the queue just grows (and pages to disk).
      const alone = uid('slow-alone');
      await ch.assertQueue(alone, { durable: false });
      const base = await flood(broker.url, alone, FLOOD_MS);
      await ch.deleteQueue(alone);

      const q = uid('slow-stuck');
      await ch.assertQueue(q, { durable: false });
      const consumer = await StallingConsumer.start(broker.port, q, prefetch);
      await waitFor(async () => (await ch.checkQueue(q)).consumerCount === 1, 5000, 'the consumer');
      consumer.stall();
      const rssBefore = rssOf(broker.pid!);
      const rss = sampleRss(broker.pid!);
      const stuck = await flood(broker.url, q, FLOOD_MS);
      const maxRss = rss.stop();
      const backlog = (await ch.checkQueue(q)).messageCount;
      console.log(
        `prefetch ${prefetch}: ${Math.round(base.rate)} msg/s with no consumer, ${Math.round(stuck.rate)} msg/s with a stuck one ` +
          `(${stuck.published} published, ${consumer.delivered} delivered before it stalled, ${backlog} waiting); broker RSS ${mb(rssBefore)} before, at most ${mb(maxRss)}`,
      );
      expect(stuck.rate).toBeGreaterThanOrEqual(base.rate / 2);
      // Its deliveries stopped: most of what was published waits in the queue.
      expect(backlog).toBeGreaterThan(stuck.published / 2);
      expect(maxRss).toBeLessThan(WATERMARK);
      expect(broker.output()).not.toMatch(/memory resource limit alarm set/);

      consumer.resume();
      await waitFor(() => consumer.delivered === stuck.published, 60_000, `all ${stuck.published} deliveries (${consumer.delivered} so far)`);
      consumer.ackAll();
      await waitFor(async () => (await ch.checkQueue(q)).messageCount === 0, 5000, 'an empty queue');
      consumer.close();
      await ch.deleteQueue(q);
    }, 120_000);
  }
});
