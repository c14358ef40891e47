// Wire-level details where Leveret once differed from RabbitMQ 3.10: closes that cross on
// the wire, several closes in a row, refused logins, update-secret, and the reply codes a
// raw-frame comparison found. Each expectation was first checked against RabbitMQ.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { sleep, uid } from './helpers/clients';
import * as raw from './helpers/raw';
import { RawClient } from './helpers/raw';

const T = 15_000;
const HOOK_TIMEOUT = 20_000;

const channelClose = (ch: number, code = 200, text = 'bye'): Buffer =>
  raw.method(ch, 20, 40, Buffer.concat([raw.u16(code), raw.shortstr(text), raw.u16(0), raw.u16(0)]));

/** basic.publish with an empty body to `exchange`. */
const publishEmpty = (ch: number, exchange: string, key = 'k'): Buffer =>
  Buffer.concat([raw.basicPublish(ch, exchange, key), raw.contentHeader(ch, 0)]);

/** Next method frame, skipping heartbeats. */
async function nextMethod(c: RawClient, timeoutMs = 5000): Promise<raw.Frame> {
  for (;;) {
    const f = await c.nextFrame(timeoutMs);
    if (f === null) throw new Error('socket closed while waiting for a method');
    if (f.type === raw.FRAME_METHOD) return f;
  }
}

function expectMethodFrame(f: raw.Frame, channel: number, classId: number, methodId: number): void {
  const got = `${f.channel}:${f.classId}.${f.methodId}`;
  const want = `${channel}:${classId}.${methodId}`;
  // A close that was not wanted shows its reply in the failure message.
  const detail = got !== want && raw.isClose(f) ? ` (${JSON.stringify(raw.decodeClose(f))})` : '';
  expect(got + detail).toBe(want);
}

describe('protocol fidelity', () => {
  let broker: StartedBroker;
  const clients: RawClient[] = [];
  const handshaken = async (opts: raw.HandshakeOptions = {}): Promise<RawClient> => {
    const c = await RawClient.connect(broker.port);
    clients.push(c);
    await c.handshake(opts);
    return c;
  };

  beforeAll(async () => {
    broker = await startBroker();
  }, HOOK_TIMEOUT);

  afterAll(async () => {
    for (const c of clients) c.destroy();
    await broker?.stop();
  }, HOOK_TIMEOUT);

  describe('crossing closes', () => {
    it(
      "a client channel.close crossing the server's gets close-ok; the client's close-ok is taken and the channel can be reopened",
      async () => {
        const c = await handshaken();
        await c.openChannel(1);
        c.send(publishEmpty(1, uid('missing-ex')));
        const serverClose = await nextMethod(c);
        expectMethodFrame(serverClose, 1, 20, 40);
        expect(raw.decodeClose(serverClose).code).toBe(404);
        // The client closes the channel before it has read the server's close.
        c.send(channelClose(1));
        expectMethodFrame(await nextMethod(c), 1, 20, 41);
        c.send(raw.channelCloseOk(1));
        c.send(raw.channelOpen(1));
        expectMethodFrame(await nextMethod(c), 1, 20, 11);
        c.send(raw.queueDeclare(1, '', { exclusive: true }));
        expectMethodFrame(await nextMethod(c), 1, 50, 11);
      },
      T,
    );

    it(
      "methods and content sent between the server's channel.close and the client's close-ok are dropped silently",
      async () => {
        const c = await handshaken();
        await c.openChannel(1);
        await c.openChannel(2);
        c.send(publishEmpty(1, uid('missing-ex')));
        const serverClose = await nextMethod(c);
        expectMethodFrame(serverClose, 1, 20, 40);
        c.send(raw.queueDeclare(1, '', { exclusive: true }));
        c.send(Buffer.concat([raw.basicPublish(1, '', 'k'), raw.contentHeader(1, 3), raw.contentBody(1, Buffer.from('abc'))]));
        c.send(raw.channelCloseOk(1));
        // Channel 2 was never disturbed and answers first; channel 1 opens again.
        c.send(raw.queueDeclare(2, '', { exclusive: true }));
        expectMethodFrame(await nextMethod(c), 2, 50, 11);
        c.send(raw.channelOpen(1));
        expectMethodFrame(await nextMethod(c), 1, 20, 11);
      },
      T,
    );

    it(
      "a client connection.close crossing the server's connection.close gets close-ok",
      async () => {
        const c = await handshaken();
        await c.openChannel(1);
        c.send(raw.channelOpen(1)); // a second channel.open is a connection error (504)
        const serverClose = await nextMethod(c);
        expectMethodFrame(serverClose, 0, 10, 50);
        expect(raw.decodeClose(serverClose).code).toBe(504);
        c.send(raw.connectionClose(200, 'crossing'));
        expectMethodFrame(await nextMethod(c), 0, 10, 51);
        // The server still waits for the close-ok of its own close; then it drops TCP at once.
        expect(await c.waitClosed(300)).toBe(false);
        c.send(raw.connectionCloseOk());
        expect(await c.waitClosed(2000)).toBe(true);
      },
      T,
    );

    it(
      'several connection.close frames in a row each get close-ok, and the client is left to drop TCP',
      async () => {
        const c = await handshaken();
        await c.openChannel(1);
        c.send(Buffer.concat([raw.connectionClose(), raw.connectionClose(), raw.connectionClose()]));
        for (let i = 0; i < 3; i++) expectMethodFrame(await nextMethod(c), 0, 10, 51);
        // RabbitMQ waits for the client to close the TCP connection after close-ok.
        expect(await c.waitClosed(500)).toBe(false);
        c.socket.end();
        expect(await c.waitClosed(5000)).toBe(true);
      },
      T,
    );
  });

  describe('refused login', () => {
    it(
      'connection.close for ACCESS_REFUSED names no method (class 0, method 0)',
      async () => {
        const c = await RawClient.connect(broker.port);
        clients.push(c);
        await c.start();
        c.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'wrong')));
        const close = await c.expectClose(5000);
        expect(close).toMatchObject({ channel: 0, code: 403, classId: 0, methodId: 0 });
        expect(close!.text).toBe(
          'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.',
        );
      },
      T,
    );

    it(
      'without authentication_failure_close the socket is closed silently after about 3 s',
      async () => {
        const c = await RawClient.connect(broker.port);
        clients.push(c);
        await c.start();
        const t0 = Date.now();
        c.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'wrong'), { capabilities: {} }));
        expect(await c.waitClosed(8000)).toBe(true);
        const waited = Date.now() - t0;
        expect(waited).toBeGreaterThanOrEqual(2500);
        // Nothing but the protocol's connection.start was ever sent.
        expect(c.frames.filter((f) => f.type === raw.FRAME_METHOD).map((f) => `${f.classId}.${f.methodId}`)).toEqual(['10.10']);
        // The broker stays responsive meanwhile.
        const other = await handshaken();
        await other.openChannel(1);
      },
      T,
    );
  });

  describe('connection.update-secret', () => {
    it(
      "is accepted when the new secret is the user's password (bare or as a PLAIN response)",
      async () => {
        const c = await handshaken();
        c.send(raw.updateSecret('guest', 'rotation'));
        expectMethodFrame(await nextMethod(c), 0, 10, 71);
        c.send(raw.updateSecret('\0guest\0guest', 'rotation'));
        expectMethodFrame(await nextMethod(c), 0, 10, 71);
        await c.openChannel(1);
      },
      T,
    );

    it(
      'a secret that does not prove the user closes the connection with 530',
      async () => {
        const c = await handshaken();
        c.send(raw.updateSecret('not-the-password', 'rotation'));
        const close = await c.expectClose(5000);
        expect(close).toMatchObject({ channel: 0, code: 530, classId: 10, methodId: 70 });
        expect(close!.text).toBe('NOT_ALLOWED - New secret was refused by one of the backends');
      },
      T,
    );

    it(
      'a secret for another user is refused',
      async () => {
        const c = await handshaken();
        c.send(raw.updateSecret(`\0${uid('someone-else')}\0guest`, 'rotation'));
        const close = await c.expectClose(5000);
        expect(close).toMatchObject({ code: 530, classId: 10, methodId: 70 });
      },
      T,
    );
  });

  describe('reply codes from the raw-frame comparison', () => {
    it(
      'a channel method before connection.open is 505 UNEXPECTED_FRAME',
      async () => {
        const c = await RawClient.connect(broker.port);
        clients.push(c);
        await c.start();
        c.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'guest')));
        await c.expectMethod(10, 30);
        c.send(raw.tuneOk(2047, 131072, 0));
        c.send(raw.channelOpen(1));
        const close = await c.expectClose(5000);
        expect(close).toMatchObject({ channel: 0, code: 505 });
        expect(close!.text.startsWith('UNEXPECTED_FRAME - ')).toBe(true);
      },
      T,
    );

    it(
      'a heartbeat frame on a non-zero channel is 505 UNEXPECTED_FRAME',
      async () => {
        const c = await handshaken();
        await c.openChannel(1);
        c.send(raw.frame(raw.FRAME_HEARTBEAT, 1, Buffer.alloc(0)));
        const close = await c.expectClose(5000);
        expect(close).toMatchObject({ channel: 0, code: 505 });
        expect(close!.text.startsWith('UNEXPECTED_FRAME - ')).toBe(true);
      },
      T,
    );

    it(
      'a content header declaring 2^62 body bytes is refused with the exact size in the text',
      async () => {
        const c = await handshaken();
        await c.openChannel(1);
        c.send(Buffer.concat([raw.basicPublish(1, '', 'k'), raw.contentHeader(1, 2 ** 62)]));
        const close = await c.expectClose(5000);
        expect(close).toMatchObject({ channel: 1, code: 406, classId: 60, methodId: 40 });
        expect(close!.text).toBe('PRECONDITION_FAILED - message size 4611686018427387904 is larger than configured max size 134217728');
      },
      T,
    );
  });

  describe('connection-level errors as RabbitMQ sends them', () => {
    const cases: Array<[string, (c: RawClient) => Promise<void> | void, Partial<raw.CloseInfo>]> = [
      [
        'a non-connection method on channel 0 is 504 for the connection state',
        (c) => c.send(raw.queueDeclare(0, 'q')),
        { code: 504, text: 'CHANNEL_ERROR - unexpected method in connection state running', classId: 50, methodId: 10 },
      ],
      [
        'an unasked-for connection.close-ok is 504 for the connection state',
        (c) => c.send(raw.connectionCloseOk()),
        { code: 504, text: 'CHANNEL_ERROR - unexpected method in connection state running', classId: 10, methodId: 51 },
      ],
      [
        'a connection method on a channel is 503 unimplemented method',
        async (c) => {
          await c.openChannel(1);
          c.send(raw.method(1, 10, 40, Buffer.concat([raw.shortstr('/'), raw.shortstr(''), raw.u8(0)])));
        },
        { code: 503, text: 'COMMAND_INVALID - unimplemented method', classId: 10, methodId: 40 },
      ],
      [
        'an unknown frame type is 501 quoting the frame',
        (c) => c.send(raw.frame(9, 0, Buffer.from([1, 2, 3]))),
        { code: 501, text: 'FRAME_ERROR - type 9, all octets = <<1,2,3>>: unknown_frame', classId: 0, methodId: 0 },
      ],
      [
        'a truncated method is 501 quoting its arguments',
        async (c) => {
          await c.openChannel(1);
          c.send(raw.method(1, 50, 10, Buffer.from([0, 0])));
        },
        { code: 501, text: 'FRAME_ERROR - cannot decode <<0,0>>', classId: 50, methodId: 10 },
      ],
      [
        'a content header of another class after basic.publish is 505',
        async (c) => {
          await c.openChannel(1);
          c.send(Buffer.concat([raw.basicPublish(1, '', 'k'), raw.contentHeader(1, 3, 50)]));
        },
        {
          code: 505,
          text: 'UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead',
          classId: 60,
          methodId: 40,
        },
      ],
      [
        'content on a channel never opened is 505',
        (c) => c.send(raw.contentHeader(5, 3)),
        { code: 505, text: 'UNEXPECTED_FRAME - expected method frame, got non method frame instead', classId: 0, methodId: 0 },
      ],
    ];
    for (const [name, provoke, want] of cases) {
      it(
        name,
        async () => {
          const c = await handshaken();
          await provoke(c);
          const close = await c.expectClose(5000);
          expect(close).toMatchObject({ channel: 0, ...want });
        },
        T,
      );
    }

    it(
      'channel_max limits how many channels are open, not their numbers',
      async () => {
        const c = await handshaken({ channelMax: 2 });
        await c.openChannel(65535);
        await c.openChannel(9);
        c.send(raw.channelOpen(3));
        const close = await c.expectClose(5000);
        expect(close).toMatchObject({
          code: 530,
          text: 'NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)',
          classId: 0,
          methodId: 0,
        });
      },
      T,
    );

    it(
      'a method no spec knows drops the connection without a close',
      async () => {
        const c = await handshaken();
        await c.openChannel(1);
        c.send(raw.method(1, 60, 999));
        expect(await c.waitClosed(3000)).toBe(true);
        expect(c.frames.some((f) => raw.isClose(f))).toBe(false);
      },
      T,
    );

    it.each([
      ['an unknown mechanism', raw.startOk('FOO', Buffer.from('x'))],
      ['a malformed PLAIN response', raw.startOk('PLAIN', Buffer.from('no-nul-bytes'))],
    ])(
      '%s in start-ok gets no close, and the socket is dropped after about 3 s',
      async (_what, startOk) => {
        const c = await RawClient.connect(broker.port);
        clients.push(c);
        await c.start();
        const t0 = Date.now();
        c.send(startOk);
        expect(await c.waitClosed(8000)).toBe(true);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
        expect(c.frames.some((f) => raw.isClose(f))).toBe(false);
      },
      T,
    );

    it('tune-ok with channel_max 0 or frame_max 0 is refused silently, as RabbitMQ refuses it', async () => {
      for (const [channelMax, frameMax] of [
        [0, 131072],
        [2047, 0],
      ]) {
        const c = await RawClient.connect(broker.port);
        clients.push(c);
        await c.start();
        c.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'guest')));
        await c.expectMethod(10, 30);
        c.send(Buffer.concat([raw.tuneOk(channelMax, frameMax, 0), raw.connectionOpen('/')]));
        expect(await c.waitClosed(8000)).toBe(true);
        expect(c.frames.some((f) => raw.isMethod(f, 10, 41) || raw.isClose(f))).toBe(false);
      }
    }, 20_000);
  });

  it(
    'the broker is still fine after all of the above',
    async () => {
      await sleep(50);
      const c = await handshaken();
      await c.openChannel(1);
      c.send(raw.queueDeclare(1, '', { exclusive: true }));
      expectMethodFrame(await nextMethod(c), 1, 50, 11);
    },
    T,
  );
});
