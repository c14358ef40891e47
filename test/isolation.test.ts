// Isolation: an unexpected exception while the broker handles one connection (injected
// here, as a bug would throw it, through the test-only LEVERET_TEST_FAULTS hook) is
// logged with its stack and closes that connection with 541 INTERNAL_ERROR; the process
// and every other connection carry on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import amqp from 'amqplib';
import { startBroker, type StartedBroker } from './helpers/broker';
import { sleep, uid } from './helpers/clients';
import * as raw from './helpers/raw';
import { RawClient } from './helpers/raw';

const T = 30_000;

describe('isolation', () => {
  let b: StartedBroker;
  let bystander: amqp.ChannelModel;
  let bystanderLost: string | null = null;
  let ch: amqp.Channel;
  let queue: string;

  beforeAll(async () => {
    b = await startBroker({ env: { LEVERET_TEST_FAULTS: '1' } });
    bystander = await amqp.connect(b.url);
    bystander.on('close', () => (bystanderLost ??= 'closed'));
    bystander.on('error', (e: Error) => (bystanderLost ??= e.message));
    ch = await bystander.createChannel();
    queue = (await ch.assertQueue('', { exclusive: true })).queue;
  }, T);

  afterAll(async () => {
    await bystander?.close().catch(() => {});
    await b?.stop();
  }, T);

  /** The connection opened before the fault still publishes and consumes. */
  async function bystanderStillWorks(): Promise<void> {
    expect(bystanderLost).toBeNull();
    const body = uid('still');
    ch.sendToQueue(queue, Buffer.from(body));
    let got: amqp.GetMessage | false = false;
    for (let i = 0; i < 50 && got === false; i++) {
      got = await ch.get(queue, { noAck: true });
      if (got === false) await sleep(20);
    }
    expect(got && got.content.toString()).toBe(body);
  }

  /** The broker's log reaches us through a pipe, possibly after the frames it wrote. */
  async function logged(text: string): Promise<string> {
    for (let i = 0; i < 100 && !b.output().includes(text); i++) await sleep(20);
    return b.output();
  }

  /** The connection.close the broker sends next, skipping other frames; null if none comes. */
  async function closeOf(c: RawClient): Promise<raw.CloseInfo | null> {
    for (;;) {
      const f = await c.nextFrame(5000);
      if (f === null) return null;
      if (raw.isClose(f)) return raw.decodeClose(f);
    }
  }

  /** A raw connection whose client properties ask for a fault at `place`. */
  async function faulty(place: string, heartbeat = 0): Promise<RawClient> {
    const c = await RawClient.connect(b.port);
    await c.start();
    c.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'guest'), { 'x-leveret-test-fault': place }));
    await c.expectMethod(10, 30);
    c.send(raw.tuneOk(2047, 131072, heartbeat));
    c.send(raw.connectionOpen('/'));
    await c.expectMethod(10, 41);
    return c;
  }

  it(
    'an exception while handling a method closes that connection with 541, logged with its stack',
    async () => {
      const c = await faulty('method');
      c.send(raw.channelOpen(1));
      const close = await c.expectClose();
      expect(close).toMatchObject({ channel: 0, code: 541, text: 'INTERNAL_ERROR - internal error' });
      c.destroy();
      expect(await logged('injected fault (method)')).toContain('injected fault (method)');
      // pino prints the error's stack with it.
      expect(b.output()).toMatch(/injected fault \(method\)\\n\s+at /);
      await bystanderStillWorks();
    },
    T,
  );

  it(
    'an exception in a heartbeat timer closes only that connection with 541',
    async () => {
      const c = await faulty('heartbeat', 1);
      const close = await c.expectClose(5000);
      expect(close).toMatchObject({ channel: 0, code: 541 });
      c.destroy();
      expect(await logged('injected fault (heartbeat)')).toContain('injected fault (heartbeat)');
      await bystanderStillWorks();
    },
    T,
  );

  it(
    'an exception while releasing a closed connection is logged; the broker carries on',
    async () => {
      const c = await faulty('socket-close');
      await c.openChannel(1);
      c.send(raw.queueDeclare(1, uid('iso-excl'), { exclusive: true }));
      await c.expectMethod(50, 11);
      c.destroy();
      expect(await logged('injected fault (socket-close)')).toContain('internal error releasing a closed connection');
      await bystanderStillWorks();
    },
    T,
  );

  it(
    'an exception when a backed-up socket drains closes only that connection with 541',
    async () => {
      const q = uid('iso-drain');
      await ch.assertQueue(q, { autoDelete: false });
      const body = Buffer.alloc(64 * 1024, 0x61);
      for (let i = 0; i < 200; i++) ch.sendToQueue(q, body);
      await ch.checkQueue(q);
      const c = await faulty('drain');
      await c.openChannel(1);
      // Stop reading, let the deliveries fill the socket, then read again: 'drain' follows.
      c.socket.pause();
      c.send(raw.basicConsume(1, q, { noAck: true }));
      await sleep(500);
      c.socket.resume();
      const close = await closeOf(c);
      expect(close).toMatchObject({ channel: 0, code: 541 });
      c.destroy();
      expect(await logged('injected fault (drain)')).toContain('injected fault (drain)');
      await ch.deleteQueue(q);
      await bystanderStillWorks();
    },
    T,
  );

  it(
    'an exception in the turn-end flush (outside any handler of the connection) closes only that connection with 541',
    async () => {
      const c = await faulty('flush');
      // channel.open-ok is written at the end of the turn: that flush meets the fault.
      c.send(raw.channelOpen(1));
      const close = await closeOf(c);
      expect(close).toMatchObject({ channel: 0, code: 541 });
      c.destroy();
      expect(await logged('injected fault (flush)')).toContain('injected fault (flush)');
      await bystanderStillWorks();
    },
    T,
  );
});
