// Connection-level behaviour: protocol header, handshake, authentication,
// tuning, heartbeats, timeouts, server-side close, update-secret and malformed
// input. Expectations (codes, texts, timings) are RabbitMQ 3.10's.
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { amqpClientConnect, amqplibConnect, closeReason, sleep, uid } from './helpers/clients';
import * as raw from './helpers/raw';
import { RawClient } from './helpers/raw';

const T = 15_000;
const HOOK_TIMEOUT = 20_000; // startBroker waits up to 10 s, stop() up to 5 s

/** Waits for a connection.close, checks it, answers close-ok and expects the server to drop the socket. */
async function expectConnectionClose(c: RawClient, code: number, textPrefix: string): Promise<raw.CloseInfo> {
  const close = await c.expectClose(5000);
  expect(close, 'expected a connection.close from the server').not.toBeNull();
  expect(close!.channel).toBe(0);
  expect(close!.code).toBe(code);
  expect(
    close!.text.startsWith(textPrefix),
    `reply text ${JSON.stringify(close!.text)} should start with ${JSON.stringify(textPrefix)}`,
  ).toBe(true);
  c.send(raw.connectionCloseOk());
  // RabbitMQ drops the socket at once after close-ok, except after a framing
  // error (bad frame end, oversized frame): it then stops reading and closes
  // the socket ~3 s after its connection.close.
  expect(await c.waitClosed(5000)).toBe(true);
  return close!;
}

async function handshaken(port: number, opts: raw.HandshakeOptions = {}): Promise<RawClient> {
  const c = await RawClient.connect(port);
  await c.handshake(opts);
  return c;
}

describe('connection', () => {
  let broker: StartedBroker;
  const rawClients: RawClient[] = [];
  const track = (c: RawClient) => (rawClients.push(c), c);

  beforeAll(async () => {
    broker = await startBroker();
  }, HOOK_TIMEOUT);

  afterAll(async () => {
    for (const c of rawClients) c.destroy();
    await broker?.stop();
  }, HOOK_TIMEOUT);

  describe('protocol header', () => {
    for (const [name, header] of [
      ['AMQP 0-9-0', Buffer.from('AMQP\x00\x00\x09\x00', 'latin1')],
      ['HTTP', Buffer.from('HTTP/1.1\r\nHost: localhost\r\n\r\n', 'latin1')],
      ['AMQP 1.0', Buffer.from('AMQP\x00\x01\x00\x00', 'latin1')],
    ] as const) {
      it(
        `answers a ${name} header with AMQP 0-9-1 and closes the socket`,
        async () => {
          const c = track(await RawClient.connect(broker.port));
          c.send(header);
          expect(await c.waitClosed(3000)).toBe(true);
          expect(c.received).toEqual(raw.PROTOCOL_HEADER);
        },
        T,
      );
    }

    it(
      'answers a correct header with connection.start 0-9',
      async () => {
        const c = track(await RawClient.connect(broker.port));
        const start = await c.start();
        expect(start.versionMajor).toBe(0);
        expect(start.versionMinor).toBe(9);
        expect(start.mechanisms.split(' ')).toEqual(expect.arrayContaining(['PLAIN', 'AMQPLAIN']));
        expect(start.locales.split(' ')).toContain('en_US');
        c.destroy();
      },
      T,
    );
  });

  it(
    'connection.start server-properties name the product, version, platform and capabilities',
    async () => {
      const c = track(await RawClient.connect(broker.port));
      const { serverProperties: sp } = await c.start();
      for (const k of ['product', 'version', 'platform']) {
        expect(typeof sp[k], k).toBe('string');
        expect((sp[k] as string).length, k).toBeGreaterThan(0);
      }
      const caps = sp.capabilities as Record<string, unknown>;
      for (const cap of [
        'publisher_confirms',
        'exchange_exchange_bindings',
        'basic.nack',
        'consumer_cancel_notify',
        'connection.blocked',
        'authentication_failure_close',
        'per_consumer_qos',
        'direct_reply_to',
      ]) {
        expect(caps[cap], cap).toBe(true);
      }
      c.destroy();
    },
    T,
  );

  describe('authentication', () => {
    it(
      'PLAIN login succeeds (raw, amqplib, amqp-client)',
      async () => {
        const c = track(await handshaken(broker.port, { mechanism: 'PLAIN' }));
        await c.openChannel(1);
        c.destroy();

        const a = await amqplibConnect(broker.url);
        expect(typeof a.connection.serverProperties.product).toBe('string');
        const ch = await a.createChannel();
        await ch.checkExchange('amq.direct');
        await a.close();

        const b = await amqpClientConnect(broker.url);
        const bch = await b.channel();
        await bch.exchangeDeclare('amq.direct', 'direct', { passive: true });
        await b.close();
      },
      T,
    );

    it(
      'AMQPLAIN login succeeds (raw)',
      async () => {
        const c = track(await handshaken(broker.port, { mechanism: 'AMQPLAIN' }));
        await c.openChannel(1);
        c.destroy();
      },
      T,
    );

    it(
      'a wrong password is refused with 403 ACCESS_REFUSED (raw)',
      async () => {
        const c = track(await RawClient.connect(broker.port));
        await c.start();
        c.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'not-the-password')));
        const close = await c.expectClose(5000);
        expect(close).not.toBeNull();
        expect(close!.code).toBe(403);
        expect(close!.text.startsWith('ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN')).toBe(true);
        c.destroy();
      },
      T,
    );

    it(
      'a wrong AMQPLAIN password is refused with 403 (raw)',
      async () => {
        const c = track(await RawClient.connect(broker.port));
        await c.start();
        c.send(raw.startOk('AMQPLAIN', raw.amqplainResponse('guest', 'nope')));
        const close = await c.expectClose(5000);
        expect(close!.code).toBe(403);
        expect(close!.text.startsWith('ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN')).toBe(true);
        c.destroy();
      },
      T,
    );

    it(
      'an unknown user is refused with 403 (raw)',
      async () => {
        const c = track(await RawClient.connect(broker.port));
        await c.start();
        c.send(raw.startOk('PLAIN', raw.plainResponse(uid('nobody'), 'x')));
        const close = await c.expectClose(5000);
        expect(close!.code).toBe(403);
        expect(close!.text.startsWith('ACCESS_REFUSED')).toBe(true);
        c.destroy();
      },
      T,
    );

    it(
      'a wrong password is rejected by both clients with 403 ACCESS_REFUSED',
      async () => {
        const u = new URL(broker.url);
        u.password = 'wrong-password';
        const bad = u.toString();
        const e1 = await amqp.connect(bad).then(
          (c) => {
            void c.close();
            return new Error('connected');
          },
          (e: Error) => e,
        );
        expect(e1.message).toMatch(/403 \(ACCESS-REFUSED\)/);
        expect(e1.message).toContain('ACCESS_REFUSED - Login was refused');

        const e2 = await amqpClientConnect(bad).then(
          (c) => {
            void c.close();
            return new Error('connected');
          },
          (e: Error) => e,
        );
        const r = closeReason(e2);
        expect(r.code).toBe(403);
        expect(r.text.startsWith('ACCESS_REFUSED - Login was refused')).toBe(true);
      },
      T,
    );
  });

  describe('tuning', () => {
    it(
      'the server proposes channel_max 2047, frame_max 131072, heartbeat 60',
      async () => {
        const c = track(await RawClient.connect(broker.port));
        await c.start();
        c.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'guest')));
        const tune = raw.decodeTune((await c.expectMethod(10, 30)).args!);
        expect(tune).toEqual({ channelMax: 2047, frameMax: 131072, heartbeat: 60 });
        c.destroy();
      },
      T,
    );

    it(
      "the client's smaller frame_max and heartbeat win (amqplib ?frameMax=8192&heartbeat=5)",
      async () => {
        const conn = await amqplibConnect(`${broker.url}?frameMax=8192&heartbeat=5`);
        const negotiated = conn.connection as unknown as { frameMax: number; heartbeat: number; channelMax: number };
        expect(negotiated.frameMax).toBe(8192);
        expect(negotiated.heartbeat).toBe(5);
        expect(negotiated.channelMax).toBe(2047);
        // a message larger than frame_max is split and still round trips
        const ch = await conn.createChannel();
        const q = (await ch.assertQueue('', { exclusive: true })).queue;
        const body = Buffer.alloc(50_000, 7);
        ch.sendToQueue(q, body);
        let got: amqp.GetMessage | false = false;
        for (let i = 0; i < 100 && !got; i++) {
          got = await ch.get(q, { noAck: true });
          if (!got) await sleep(20);
        }
        expect(got && got.content.equals(body)).toBe(true);
        await conn.close();
      },
      T,
    );

    it(
      'amqp-client negotiates its own frame_max (8192) and a smaller heartbeat',
      async () => {
        const c = await amqpClientConnect(`${broker.url}?heartbeat=7`);
        expect(c.frameMax).toBe(8192);
        expect(c.heartbeat).toBe(7);
        expect(c.channelMax).toBe(2047);
        await c.close();
      },
      T,
    );

    it(
      'an unknown vhost is refused with 530 NOT_ALLOWED',
      async () => {
        const vhost = uid('no-such-vhost');
        const c = track(await RawClient.connect(broker.port));
        await expect(c.handshake({ vhost })).rejects.toThrow(/got close 530 NOT_ALLOWED/);
        const close = raw.decodeClose(c.frames.find((f) => raw.isMethod(f, 10, 50))!);
        expect(close.code).toBe(530);
        expect(close.text).toBe(`NOT_ALLOWED - vhost ${vhost} not found`);
        expect([close.classId, close.methodId]).toEqual([10, 40]);
        c.destroy();

        const e = await amqpClientConnect(`${broker.url}/${vhost}`).then(
          () => new Error('connected'),
          (err: Error) => err,
        );
        expect(closeReason(e)).toEqual({ code: 530, text: `NOT_ALLOWED - vhost ${vhost} not found` });
        // amqplib only reports an unexpected frame here, but it must fail too
        await expect(amqp.connect(`${broker.url}/${vhost}`)).rejects.toThrow();
      },
      T,
    );
  });

  describe('heartbeats', () => {
    it(
      'a client that negotiates heartbeat=1 and then sends nothing is disconnected within a few seconds',
      async () => {
        const c = track(await handshaken(broker.port, { heartbeat: 1 }));
        const t0 = Date.now();
        expect(await c.waitClosed(6000)).toBe(true);
        const elapsed = Date.now() - t0;
        expect(elapsed).toBeGreaterThanOrEqual(1000);
        expect(elapsed).toBeLessThanOrEqual(5000);
        // the server heartbeated while waiting
        expect(c.frames.filter((f) => f.type === raw.FRAME_HEARTBEAT).length).toBeGreaterThanOrEqual(1);
      },
      T,
    );

    it(
      'a client that heartbeats stays connected, and the server sends heartbeat frames',
      async () => {
        const c = track(await handshaken(broker.port, { heartbeat: 1 }));
        const iv = setInterval(() => c.send(raw.heartbeat()), 400);
        try {
          expect(await c.waitClosed(4500)).toBe(false);
        } finally {
          clearInterval(iv);
        }
        const hbs = c.frames.filter((f) => f.type === raw.FRAME_HEARTBEAT);
        expect(hbs.length).toBeGreaterThanOrEqual(2);
        for (const f of hbs) {
          expect(f.channel).toBe(0);
          expect(f.size).toBe(0);
        }
        await c.openChannel(1);
        c.destroy();
      },
      T,
    );

    it(
      'with heartbeat=0 the server sends no heartbeats and keeps an idle connection',
      async () => {
        const c = track(await handshaken(broker.port, { heartbeat: 0 }));
        expect(await c.waitClosed(2500)).toBe(false);
        expect(c.frames.filter((f) => f.type === raw.FRAME_HEARTBEAT)).toHaveLength(0);
        await c.openChannel(1);
        c.destroy();
      },
      T,
    );
  });

  it('a client that sends only the protocol header is closed after the handshake timeout (10 s)', async () => {
    const c = track(await RawClient.connect(broker.port));
    c.send(raw.PROTOCOL_HEADER);
    await c.expectMethod(10, 10);
    const t0 = Date.now();
    expect(await c.waitClosed(16_000)).toBe(true);
    const elapsed = Date.now() - t0;
    // RabbitMQ: exactly its handshake_timeout of 10 s, socket closed without a connection.close
    expect(elapsed).toBeGreaterThanOrEqual(8000);
    expect(elapsed).toBeLessThanOrEqual(14_000);
  }, 20_000);

  it(
    'a client close is answered with close-ok',
    async () => {
      // RabbitMQ leaves closing the socket to the client after close-ok, so
      // only the close-ok is asserted.
      const c = track(await handshaken(broker.port));
      await c.openChannel(1);
      c.send(raw.connectionClose(200, 'goodbye'));
      await c.expectMethod(10, 51);
      c.destroy();
    },
    T,
  );

  it('on SIGTERM the broker closes client connections with 320 CONNECTION_FORCED', async () => {
    // Only meaningful for a broker this test starts itself: against an
    // external broker (LEVERET_TEST_URL, e.g. RabbitMQ) we must not stop it.
    // This is the one test that returns early in that mode.
    if (process.env.LEVERET_TEST_URL) return;
    const own = await startBroker();
    try {
      const conn = await amqp.connect(own.url);
      conn.on('error', () => {});
      // amqplib treats 320 as non-fatal: no 'error' event, but 'close' carries the reason
      const closed = new Promise<Error | undefined>((r) => conn.on('close', (e?: Error) => r(e)));
      const ch = await conn.createChannel();
      await ch.assertQueue('', { exclusive: true });
      await own.stop();
      const err = await closed;
      expect(err, 'amqplib should report a server-initiated connection.close').toBeDefined();
      const r = closeReason(err);
      expect(r.code).toBe(320);
      expect(r.text.startsWith('CONNECTION_FORCED')).toBe(true);
    } finally {
      await own.stop();
    }
  }, 20_000);

  describe('connection.update-secret', () => {
    it(
      'is answered with update-secret-ok (raw)',
      async () => {
        const c = track(await handshaken(broker.port));
        c.send(raw.updateSecret('guest', 'rotation'));
        await c.expectMethod(10, 71);
        await c.openChannel(1); // still usable
        c.destroy();
      },
      T,
    );

    it(
      'is answered with update-secret-ok (amqp-client and amqplib)',
      async () => {
        const b = await amqpClientConnect(broker.url);
        await b.updateSecret('guest', 'rotation');
        const ch = await b.channel();
        await ch.exchangeDeclare('amq.fanout', 'fanout', { passive: true });
        await b.close();

        const a = await amqplibConnect(broker.url);
        await a.updateSecret(Buffer.from('guest'), 'rotation');
        await a.close();
      },
      T,
    );
  });

  describe('malformed input', () => {
    // Connections that stay open while the malformed ones are killed, and
    // must keep working afterwards.
    let witnessA: amqp.ChannelModel;
    let witnessB: Awaited<ReturnType<typeof amqpClientConnect>>;

    beforeAll(async () => {
      witnessA = await amqplibConnect(broker.url);
      witnessB = await amqpClientConnect(broker.url);
    }, HOOK_TIMEOUT);

    afterAll(async () => {
      await witnessA?.close().catch(() => {});
      if (witnessB && !witnessB.closed) await witnessB.close().catch(() => {});
    }, HOOK_TIMEOUT);

    /** Publish/consume round trips on both witness connections. */
    async function witnessesStillWork(): Promise<void> {
      const ch = await witnessA.createChannel();
      const q = (await ch.assertQueue('', { exclusive: true })).queue;
      const got = new Promise<string>((resolve) => {
        void ch.consume(q, (m) => m && resolve(m.content.toString()), { noAck: true });
      });
      const body = uid('ping');
      ch.sendToQueue(q, Buffer.from(body));
      expect(await got).toBe(body);
      await ch.close();

      const bch = await witnessB.channel();
      const bq = await bch.queueDeclare('', { exclusive: true });
      const bgot = new Promise<string>((resolve) => {
        void bch.basicConsume(bq.name, { noAck: true }, (m) => resolve(m.bodyToString() ?? ''));
      });
      const bbody = uid('pong');
      await bch.basicPublish('', bq.name, bbody);
      expect(await bgot).toBe(bbody);
      await bch.close();
    }

    it(
      'a frame with a bad frame-end byte is a 501 FRAME_ERROR',
      async () => {
        const c = track(await handshaken(broker.port));
        const good = raw.channelOpen(1);
        good[good.length - 1] = 0x00;
        c.send(good);
        await expectConnectionClose(c, 501, 'FRAME_ERROR');
        await witnessesStillWork();
      },
      T,
    );

    it(
      'a frame larger than the negotiated frame_max is a 501 FRAME_ERROR',
      async () => {
        const c = track(await handshaken(broker.port, { frameMax: 8192 }));
        await c.openChannel(1);
        c.send(raw.basicPublish(1, '', uid('nowhere')));
        c.send(raw.contentHeader(1, 9000));
        c.send(raw.contentBody(1, Buffer.alloc(9000, 1)));
        await expectConnectionClose(c, 501, 'FRAME_ERROR');
        await witnessesStillWork();
      },
      T,
    );

    it(
      'an oversized method frame is a 501 FRAME_ERROR',
      async () => {
        const c = track(await handshaken(broker.port, { frameMax: 8192 }));
        c.send(raw.frame(raw.FRAME_METHOD, 0, Buffer.alloc(9000)));
        await expectConnectionClose(c, 501, 'FRAME_ERROR');
        await witnessesStillWork();
      },
      T,
    );

    it(
      'a method on a channel that was never opened is a 504 CHANNEL_ERROR',
      async () => {
        const c = track(await handshaken(broker.port));
        c.send(raw.queueDeclare(1, ''));
        const close = await expectConnectionClose(c, 504, 'CHANNEL_ERROR');
        expect(close.text).toBe("CHANNEL_ERROR - expected 'channel.open'");
        expect([close.classId, close.methodId]).toEqual([50, 10]);
        await witnessesStillWork();
      },
      T,
    );

    it(
      'opening an already open channel is a 504 CHANNEL_ERROR',
      async () => {
        const c = track(await handshaken(broker.port));
        await c.openChannel(1);
        c.send(raw.channelOpen(1));
        const close = await expectConnectionClose(c, 504, 'CHANNEL_ERROR');
        expect(close.text).toBe("CHANNEL_ERROR - second 'channel.open' seen");
        await witnessesStillWork();
      },
      T,
    );

    it(
      'an unknown class or method id ends the connection',
      async () => {
        // RabbitMQ 3.10 sends no connection.close here: its reader crashes on
        // {unknown_method_id,{C,M}} and the TCP connection is dropped. A broker
        // that sends a hard-error close (503 COMMAND_INVALID / 540
        // NOT_IMPLEMENTED) first is accepted as well.
        for (const [cls, mth, ch] of [
          [60, 999, 1],
          [99, 1, 1],
          [10, 99, 0],
        ]) {
          const c = track(await handshaken(broker.port));
          if (ch) await c.openChannel(ch);
          c.send(raw.method(ch, cls, mth));
          const close = await c.expectClose(5000);
          if (close) {
            expect(close.channel).toBe(0);
            expect([501, 503, 540]).toContain(close.code);
            c.send(raw.connectionCloseOk());
          }
          expect(await c.waitClosed(3000)).toBe(true);
        }
        await witnessesStillWork();
      },
      T,
    );

    it(
      'a content body with no content header is a 505 UNEXPECTED_FRAME',
      async () => {
        // body straight after basic.publish
        let c = track(await handshaken(broker.port));
        await c.openChannel(1);
        c.send(raw.basicPublish(1, '', uid('nowhere')));
        c.send(raw.contentBody(1, Buffer.from('hello')));
        let close = await expectConnectionClose(c, 505, 'UNEXPECTED_FRAME');
        expect(close.text).toBe('UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead');
        expect([close.classId, close.methodId]).toEqual([60, 40]);

        // body (or header) with no basic.publish at all
        for (const bad of [raw.contentBody(1, Buffer.from('hello')), raw.contentHeader(1, 5)]) {
          c = track(await handshaken(broker.port));
          await c.openChannel(1);
          c.send(bad);
          close = await expectConnectionClose(c, 505, 'UNEXPECTED_FRAME');
          expect(close.text).toBe('UNEXPECTED_FRAME - expected method frame, got non method frame instead');
        }
        await witnessesStillWork();
      },
      T,
    );

    it(
      'an unknown frame type is a 501 FRAME_ERROR',
      async () => {
        const c = track(await handshaken(broker.port));
        c.send(raw.frame(7, 0, Buffer.alloc(3)));
        await expectConnectionClose(c, 501, 'FRAME_ERROR');
        await witnessesStillWork();
      },
      T,
    );

    it(
      'a truncated field table or truncated arguments are a 501 FRAME_ERROR (RabbitMQ: "cannot decode")',
      async () => {
        // queue.declare whose arguments table claims 100 bytes but carries 3
        let c = track(await handshaken(broker.port));
        await c.openChannel(1);
        c.send(
          raw.method(1, 50, 10, Buffer.concat([raw.u16(0), raw.shortstr(uid('q')), raw.u8(0), raw.u32(100), Buffer.from([3, 0x61, 0x62])])),
        );
        let close = await expectConnectionClose(c, 501, 'FRAME_ERROR - cannot decode');
        expect([close.classId, close.methodId]).toEqual([50, 10]);

        // queue.declare cut off after the queue name
        c = track(await handshaken(broker.port));
        await c.openChannel(1);
        c.send(raw.method(1, 50, 10, Buffer.concat([raw.u16(0), raw.shortstr('q')])));
        close = await expectConnectionClose(c, 501, 'FRAME_ERROR - cannot decode');
        expect([close.classId, close.methodId]).toEqual([50, 10]);
        await witnessesStillWork();
      },
      T,
    );

    it(
      'a field table with an unknown field type ends the connection',
      async () => {
        // RabbitMQ 3.10 drops the TCP connection without a connection.close
        // (function_clause in its table decoder); a 501/502 close is accepted too.
        const c = track(await handshaken(broker.port));
        await c.openChannel(1);
        const badTable = Buffer.concat([raw.u32(6), Buffer.from([1, 0x61, 0x5a /* 'Z' */, 1, 2, 3])]);
        c.send(raw.method(1, 50, 10, Buffer.concat([raw.u16(0), raw.shortstr(uid('q')), raw.u8(0), badTable])));
        const close = await c.expectClose(5000);
        if (close) {
          expect([501, 502]).toContain(close.code);
          c.send(raw.connectionCloseOk());
        }
        expect(await c.waitClosed(3000)).toBe(true);
        await witnessesStillWork();
      },
      T,
    );
  });
});
