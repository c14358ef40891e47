// Inputs that once crashed, hung or misled the broker, each with the smallest frame bytes
// that showed it. Every one is sent over a real socket; after it the broker must still
// serve a well-behaved client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { uid, sleep } from './helpers/clients';
import * as raw from './helpers/raw';
import { RawClient } from './helpers/raw';
import amqp from 'amqplib';

const T = 20_000;

/** A content header frame with `props` (flags and property list) as given, bytes verbatim. */
const headerWithRawProps = (ch: number, bodySize: number, props: Buffer): Buffer =>
  raw.frame(raw.FRAME_HEADER, ch, Buffer.concat([raw.u16(60), raw.u16(0), raw.u64(bodySize), props]));

/** A field table `levels` deep ({a: {a: ... {}}}), built without recursion. */
function nestedTable(levels: number): Buffer {
  let t = raw.u32(0);
  for (let i = 0; i < levels; i++) {
    const entry = Buffer.concat([raw.shortstr('a'), Buffer.from('F'), t]);
    t = Buffer.concat([raw.u32(entry.length), entry]);
  }
  return t;
}

/** A field array `levels` deep ([[[...]]]), with its 'A' tag. */
function nestedArray(levels: number): Buffer {
  let a = Buffer.concat([Buffer.from('A'), raw.u32(0)]);
  for (let i = 1; i < levels; i++) a = Buffer.concat([Buffer.from('A'), raw.u32(a.length), a]);
  return a;
}

describe('fuzz regressions', () => {
  let b: StartedBroker;
  const clients: RawClient[] = [];
  const handshaken = async (): Promise<RawClient> => {
    const c = await RawClient.connect(b.port);
    clients.push(c);
    await c.handshake();
    await c.openChannel(1);
    return c;
  };

  beforeAll(async () => {
    b = await startBroker();
  }, T);
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await b?.stop();
  }, T);

  /** A separate, well-behaved client publishes and consumes one message. */
  async function healthyRoundTrip(): Promise<void> {
    const conn = await amqp.connect(b.url);
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    ch.sendToQueue(queue, Buffer.from('still here'));
    const got = await new Promise<string>((resolve) => {
      void ch.consume(queue, (m) => resolve(m!.content.toString()), { noAck: true });
    });
    expect(got).toBe('still here');
    await conn.close();
  }

  it(
    'properties cut short (priority flag, no priority byte) dead-lettered by a TTL timer',
    async () => {
      const c = await handshaken();
      const q = uid('fz-ttl');
      c.send(raw.queueDeclare(1, q, {}, { 'x-message-ttl': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': uid('fz-dlq') }));
      await c.expectMethod(50, 11);
      // flags 0x0800 (priority) and nothing after them.
      c.send(Buffer.concat([raw.basicPublish(1, '', q), headerWithRawProps(1, 1, raw.u16(0x0800)), raw.contentBody(1, Buffer.from('x'))]));
      // This once reached the TTL timer, whose dead-lettering decoded the properties and threw
      // outside any connection: the broker process died.
      const close = await c.expectClose();
      expect(close).toMatchObject({ channel: 0, code: 501, classId: 60, methodId: 40 });
      await sleep(100);
      await healthyRoundTrip();
    },
    T,
  );

  it(
    "properties cut short (cluster-id flag, no cluster-id) are refused at publish, not left to break another connection's reject or the API",
    async () => {
      const c = await handshaken();
      const q = uid('fz-dlx');
      const dlq = uid('fz-dlq');
      c.send(raw.queueDeclare(1, dlq));
      await c.expectMethod(50, 11);
      c.send(raw.queueDeclare(1, q, {}, { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq }));
      await c.expectMethod(50, 11);
      c.send(Buffer.concat([raw.basicPublish(1, '', q), headerWithRawProps(1, 1, raw.u16(0x0004)), raw.contentBody(1, Buffer.from('x'))]));
      const close = await c.expectClose(1000).catch(() => null);
      // Whatever the publisher got, a consumer rejecting the message must not pay for it.
      const conn = await amqp.connect(b.url);
      let lost = false;
      conn.on('error', () => (lost = true));
      conn.on('close', () => (lost = true));
      const ch = await conn.createChannel();
      const m = await ch.get(q, { noAck: false });
      if (m !== false) ch.nack(m, false, false);
      await sleep(200);
      expect(lost).toBe(false);
      const view = await fetch(`http://127.0.0.1:${b.httpPort}/api/queues/%2F/${q}/get`, {
        method: 'POST',
        headers: { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64'), 'content-type': 'application/json' },
        body: JSON.stringify({ count: 5, ackmode: 'ack_requeue_true', encoding: 'auto' }),
      });
      expect(view.status).toBe(200);
      expect(close).toMatchObject({ channel: 0, code: 501, classId: 60, methodId: 40 });
      await conn.close();
      await healthyRoundTrip();
    },
    T,
  );

  it(
    'a table nested past the depth limit is a 501 frame error, not a 541 with a stack',
    async () => {
      const c = await handshaken();
      const args = Buffer.concat([raw.shortstr('x-deep'), Buffer.from('F'), nestedTable(5000)]);
      c.send(raw.method(1, 50, 10, Buffer.concat([raw.u16(0), raw.shortstr(uid('fz-deep')), raw.u8(0), raw.u32(args.length), args])));
      const close = await c.expectClose();
      expect(close).toMatchObject({ channel: 0, code: 501, classId: 50, methodId: 10 });
      expect(close!.text).toMatch(/^FRAME_ERROR - cannot decode <</);
      expect(b.output()).not.toContain('internal error');
      await healthyRoundTrip();
    },
    T,
  );

  it(
    'arrays nested past the depth limit are refused the same way',
    async () => {
      const c = await handshaken();
      const args = Buffer.concat([raw.shortstr('x-deep'), nestedArray(3000)]);
      c.send(raw.method(1, 50, 10, Buffer.concat([raw.u16(0), raw.shortstr(uid('fz-deep')), raw.u8(0), raw.u32(args.length), args])));
      expect(await c.expectClose()).toMatchObject({ channel: 0, code: 501, classId: 50, methodId: 10 });
      await healthyRoundTrip();
    },
    T,
  );

  it(
    'message headers nested past the depth limit are a 501 at publish',
    async () => {
      const c = await handshaken();
      const q = uid('fz-hdr');
      c.send(raw.queueDeclare(1, q));
      await c.expectMethod(50, 11);
      const props = Buffer.concat([raw.u16(0x2000), nestedTable(2000)]);
      c.send(Buffer.concat([raw.basicPublish(1, '', q), headerWithRawProps(1, 1, props), raw.contentBody(1, Buffer.from('x'))]));
      const close = await c.expectClose();
      expect(close).toMatchObject({ channel: 0, code: 501, classId: 60, methodId: 40 });
      expect(close!.text).toContain('nested deeper than 1500 levels');
      await healthyRoundTrip();
    },
    T,
  );

  it(
    'a table is bounded by its frame: one claiming more bytes than the frame holds is a 501',
    async () => {
      const c = await handshaken();
      // queue.declare whose arguments table says 2^31 bytes; the frame holds 4.
      const args = Buffer.concat([raw.u32(0x7fffffff), Buffer.from('abcd')]);
      c.send(raw.method(1, 50, 10, Buffer.concat([raw.u16(0), raw.shortstr(uid('fz-big')), raw.u8(0), args])));
      expect(await c.expectClose()).toMatchObject({ channel: 0, code: 501, classId: 50, methodId: 10 });
      await healthyRoundTrip();
    },
    T,
  );
});
