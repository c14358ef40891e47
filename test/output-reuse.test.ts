/**
 * A connection's output blocks are filled again once the socket has written them (and only
 * then). Every delivered byte must still be the byte published: bodies of many sizes cross
 * block boundaries, and a consumer that stops reading for a while and then reads in short
 * bursts makes the socket hold blocks back, often only a few bytes' worth, which must then
 * not be written over.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { sleep, uid, waitFor } from './helpers/clients';
import { api } from './helpers/http';

let broker: StartedBroker;
beforeAll(async () => {
  broker = await startBroker();
});
afterAll(async () => {
  await broker.stop();
});

/** Message i: a deterministic size in [0, 9000) and content derived from i. */
function body(i: number): Buffer {
  const size = (i * 7919) % 9000;
  const out = Buffer.allocUnsafe(size);
  let x = (i * 2654435761) >>> 0;
  for (let k = 0; k < size; k++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[k] = x >>> 24;
  }
  return out;
}

const digest = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** A TCP proxy to the broker whose broker-side reading can be stopped and started again. */
async function stallableProxy(port: number) {
  let pair: { client: net.Socket; up: net.Socket } | null = null;
  const server = net.createServer((client) => {
    const up = net.connect(port, '127.0.0.1');
    pair = { client, up };
    client.pipe(up);
    up.pipe(client);
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall() {
      pair!.up.unpipe(pair!.client);
      pair!.up.pause();
    },
    unstall() {
      pair!.up.pipe(pair!.client);
    },
    /** Reads in short bursts: the broker's socket drains a little at a time, again and again. */
    async trickle(ms: number) {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        pair!.up.pipe(pair!.client);
        await sleep(2);
        pair!.up.unpipe(pair!.client);
        pair!.up.pause();
        await sleep(8);
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('output block reuse', () => {
  it('delivers every body intact while the consumer reads, stalls and reads again', async () => {
    const N = 12000;
    const q = uid('reuse');
    const proxy = await stallableProxy(broker.port);
    const pubConn = await amqp.connect(broker.url);
    const subConn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${proxy.port}`);
    try {
      const pub = await pubConn.createConfirmChannel();
      await pub.assertQueue(q, { autoDelete: true });
      const sub = await subConn.createChannel();
      const got: string[] = [];
      let bad = -1;
      await sub.consume(q, (m) => {
        if (m === null) return;
        const i = got.length;
        const d = digest(m.content);
        if (bad < 0 && d !== digest(body(i))) bad = i;
        got.push(d);
        sub.ack(m);
      });
      let backedUp = false;
      for (let i = 0; i < N; i++) {
        if (i === N / 4) proxy.stall();
        pub.sendToQueue(q, body(i));
        if (i % 500 === 499) await pub.waitForConfirms();
        if (i === (3 * N) / 4) {
          // The broker's writes to the stalled consumer backed up (else this tested nothing).
          await waitFor(
            async () => {
              const res = await api(broker.httpPort, 'GET', '/api/connections');
              backedUp = (res.json as { send_pend?: number }[]).some((c) => (c.send_pend ?? 0) > 0);
              return backedUp;
            },
            10_000,
            'output held back by the socket',
          );
          await proxy.trickle(1500);
          proxy.unstall();
        }
      }
      await pub.waitForConfirms();
      await waitFor(() => got.length === N, 30_000, `${N} deliveries`);
      expect(backedUp).toBe(true);
      expect(bad).toBe(-1);
    } finally {
      await pubConn.close();
      await subConn.close();
      await proxy.close();
    }
  }, 60_000);
});
