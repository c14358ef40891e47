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
import { api } from './helpers/http';

/** How long each publisher publishes in all, in ROUNDS rounds. */
const FLOOD_MS = 6000;
const ROUNDS = 4;

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
      const alone = uid('slow-alone');
      await ch.assertQueue(alone, { durable: false });
      const q = uid('slow-stuck');
      await ch.assertQueue(q, { durable: false });
      const consumer = await StallingConsumer.start(broker.port, q, prefetch);
      await waitFor(async () => (await ch.checkQueue(q)).consumerCount === 1, 5000, 'the consumer');
      consumer.stall();
      // Rounds of publishing alternately into a queue nobody consumes from (which just
      // grows, and pages to disk) and into the stuck consumer's, so that both see the same
      // machine (its load drifts: other work shares it).
      const rssBefore = rssOf(broker.pid!);
      const rss = sampleRss(broker.pid!);
      const base = { published: 0, ms: 0, rate: 0 };
      const stuck = { published: 0, ms: 0, rate: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        for (const [queue, into] of [
          [alone, base],
          [q, stuck],
        ] as const) {
          const r = await flood(broker.url, queue, FLOOD_MS / ROUNDS);
          into.published += r.published;
          into.ms += (r.published / r.rate) * 1000;
        }
      }
      base.rate = (base.published / base.ms) * 1000;
      stuck.rate = (stuck.published / stuck.ms) * 1000;
      const maxRss = rss.stop();
      const backlog = (await ch.checkQueue(q)).messageCount;
      await ch.deleteQueue(alone);
      console.log(
        `prefetch ${prefetch}: ${Math.round(base.rate)} msg/s into a queue with no consumer, ${Math.round(stuck.rate)} msg/s into one with a stuck consumer ` +
          `(${stuck.published} published, ${backlog} waiting in its queue); broker RSS ${mb(rssBefore)} before, at most ${mb(maxRss)}`,
      );
      expect(stuck.rate).toBeGreaterThanOrEqual(base.rate / 2);
      // Its deliveries stopped: most of what was published waits in the queue.
      expect(backlog).toBeGreaterThan(stuck.published / 2);
      expect(maxRss).toBeLessThan(WATERMARK);
      expect(broker.output()).not.toMatch(/memory resource limit alarm set/);

      consumer.resume();
      await waitFor(
        () => consumer.delivered === stuck.published,
        60_000,
        `all ${stuck.published} deliveries (${consumer.delivered} so far)`,
      );
      consumer.ackAll();
      await waitFor(async () => (await ch.checkQueue(q)).messageCount === 0, 5000, 'an empty queue');
      consumer.close();
      await ch.deleteQueue(q);
    }, 120_000);
  }
});

/** Connects a raw socket that does nothing by itself (errors are expected: the broker drops it). */
function socketTo(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** A well-behaved client's round trip: 200 messages published and consumed on one connection. */
async function roundTrip(url: string): Promise<void> {
  const c = await amqp.connect(url);
  const rch = await c.createChannel();
  const q = (await rch.assertQueue('', { exclusive: true })).queue;
  let got = 0;
  await rch.consume(q, () => got++, { noAck: true });
  for (let i = 0; i < 200; i++) rch.sendToQueue(q, Buffer.from(`m${i}`));
  await waitFor(() => got === 200, 10_000, 'the round trip');
  await c.close();
}

describe('clients that trickle or never finish the handshake', () => {
  it('a publisher sending a frame one byte a second holds one frame and delays nobody; in the handshake it is dropped at the handshake timeout', async () => {
    await fresh();
    const q = uid('slow-trickle');
    await ch.assertQueue(q, { durable: false });
    await roundTrip(broker.url);
    const baseline = rssOf(broker.pid!);

    // One byte a second of the protocol header: the handshake timeout (3 s here) ends it.
    const early = await raw.RawClient.connect(broker.port);
    let sent = 0;
    const headerTrickle = setInterval(() => {
      if (sent < raw.PROTOCOL_HEADER.length) early.send(raw.PROTOCOL_HEADER.subarray(sent, ++sent));
    }, 1000);

    // 50 publishers each in the middle of a 100 kB body frame, adding a byte a second.
    // Any traffic counts as a heartbeat (as in RabbitMQ): they are kept, each holding
    // no more than the frame it declared (frame_max at most).
    const trickling: raw.RawClient[] = [];
    for (let i = 0; i < 50; i++) {
      const c = await raw.RawClient.connect(broker.port);
      await c.handshake();
      await c.openChannel(1);
      const size = 100_000;
      c.send(Buffer.concat([raw.basicPublish(1, '', q), raw.contentHeader(1, size), Buffer.from([raw.FRAME_BODY, 0, 1]), raw.u32(size)]));
      trickling.push(c);
    }
    const bodyTrickle = setInterval(() => {
      for (const c of trickling) c.send(Buffer.from('x'));
    }, 1000);
    try {
      const rss = sampleRss(broker.pid!);
      for (let round = 0; round < 3; round++) await roundTrip(broker.url);
      expect(await early.waitClosed(8000)).toBe(true);
      expect(sent).toBeLessThan(raw.PROTOCOL_HEADER.length);
      await sleep(2000);
      const max = rss.stop();
      console.log(`trickling: broker RSS ${mb(baseline)} before, at most ${mb(max)} with 50 half-sent frames`);
      expect(max - baseline).toBeLessThan(50e6);
      expect(trickling.every((c) => !c.closed)).toBe(true);
      expect((await ch.checkQueue(q)).messageCount).toBe(0);
    } finally {
      clearInterval(headerTrickle);
      clearInterval(bodyTrickle);
      for (const c of trickling) c.destroy();
      early.destroy();
    }
  }, 60_000);

  it('2,000 sockets that never finish the handshake are closed by the handshake timeout, delay nobody, and give their memory back', async () => {
    await fresh();
    await roundTrip(broker.url);
    await sleep(500);
    const baseline = rssOf(broker.pid!);
    /** Opens 2,000 sockets that never get through the handshake; resolves once the broker closed them all. */
    const round = async (): Promise<number> => {
      const rss = sampleRss(broker.pid!);
      const sockets: net.Socket[] = [];
      let closed = 0;
      for (let i = 0; i < 2000; i++) {
        const s = await socketTo(broker.port);
        s.on('close', () => closed++);
        // A third say nothing, a third send part of the header, a third the whole header
        // (and never answer connection.start).
        if (i % 3 === 1) s.write('AMQ');
        else if (i % 3 === 2) s.write(raw.PROTOCOL_HEADER);
        sockets.push(s);
      }
      // Others are served meanwhile.
      await roundTrip(broker.url);
      await waitFor(() => closed === sockets.length, 20_000, `every socket closed by the broker (${closed} so far)`);
      return rss.stop();
    };
    const peak1 = await round();
    await sleep(1000);
    const after1 = rssOf(broker.pid!);
    const peak2 = await round();
    await sleep(1000);
    const after2 = rssOf(broker.pid!);
    const conns = (await api(broker.httpPort, 'GET', '/api/connections')).json as unknown[];
    console.log(
      `2 x 2,000 unfinished handshakes: broker RSS ${mb(baseline)} before; first round at most ${mb(peak1)}, ${mb(after1)} after; ` +
        `second round at most ${mb(peak2)}, ${mb(after2)} after`,
    );
    expect(conns.length).toBe(1); // the setup connection
    expect(peak1 - baseline).toBeLessThan(150e6);
    // The heap grown by the first round is reused by the second (RSS wanders by a few MB
    // with the garbage collector's timing): 4,000 sockets leave nothing of their own behind.
    expect(after1 - baseline).toBeLessThan(60e6);
    expect(after2 - baseline).toBeLessThan(60e6);
    await roundTrip(broker.url);
  }, 60_000);
});

describe('a client that does not read what it asks for', () => {
  it('is not read from while its output is backed up: returned mandatory messages do not pile up in the broker; it gets them all once it reads', async () => {
    await fresh();
    const c = await raw.RawClient.connect(broker.port);
    await c.handshake({ heartbeat: 0 });
    await c.openChannel(1);
    const socket = c.socket;
    socket.removeAllListeners('data');
    socket.pause();
    // Each 10 kB mandatory message to nowhere comes back as basic.return with its body.
    const body = Buffer.alloc(10_000, 1);
    const one = Buffer.concat([raw.basicPublish(1, '', 'nowhere', true), raw.contentHeader(1, body.length), raw.contentBody(1, body)]);
    const batch = Buffer.concat(Array.from({ length: 100 }, () => one));
    const baseline = rssOf(broker.pid!);
    const rss = sampleRss(broker.pid!);
    let sent = 0;
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      if (socket.writableLength < 4e6) {
        socket.write(batch);
        sent += 100;
      }
      await sleep(1);
    }
    await sleep(500);
    const max = rss.stop();
    console.log(
      `not reading: ${sent} mandatory messages sent (${socket.writableLength} bytes still in the client), broker RSS ${mb(baseline)} before, at most ${mb(max)}`,
    );
    // Without the hold this grows by the returned bodies: about 900 MB in 5 s.
    expect(max - baseline).toBeLessThan(60e6);
    await roundTrip(broker.url);

    let returns = 0;
    let rest = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      const buf = rest.length === 0 ? d : Buffer.concat([rest, d]);
      let off = 0;
      while (buf.length - off >= 8 && buf.length - off >= 8 + buf.readUInt32BE(off + 3)) {
        if (buf[off] === raw.FRAME_METHOD && buf.readUInt16BE(off + 7) === 60 && buf.readUInt16BE(off + 9) === 50) returns++;
        off += 8 + buf.readUInt32BE(off + 3);
      }
      rest = Buffer.from(buf.subarray(off));
    });
    socket.resume();
    await waitFor(() => returns === sent, 30_000, `all ${sent} returns (${returns} so far)`);
    c.destroy();
  }, 60_000);
});
