// Thin adapters over the two real client libraries (amqplib and
// @cloudamqp/amqp-client), so a suite can run the same scenario through both,
// plus a few small utilities shared by the suites.
import amqp from 'amqplib';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A unique resource name (tests share one broker with other users). */
export function uid(prefix = 'lt'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Polls cond every 20 ms until it is true; throws after timeoutMs. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export interface CloseReason {
  code: number;
  text: string;
}

/** Extracts code and reply text from an amqplib or amqp-client close error. */
export function closeReason(err: unknown): CloseReason {
  const e = err as { code?: unknown; message?: string };
  const msg = String(e?.message ?? err);
  // amqplib: 'Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - ..."'
  const m1 = /: (\d{3}) \([A-Z-]+\) with message "(.*)"$/s.exec(msg);
  if (m1) return { code: Number(m1[1]), text: m1[2] };
  // amqp-client: 'channel 1 closed: NOT_FOUND - ... (404)' / 'connection closed: ... (403)'
  const m2 = /closed: (.*) \((\d{3})\)$/s.exec(msg);
  if (m2) return { code: Number(m2[2]), text: m2[1] };
  return { code: typeof e?.code === 'number' ? e.code : -1, text: msg };
}

// ------------------------------------------------------------------ adapters

export interface Msg {
  body: Buffer;
  exchange: string;
  routingKey: string;
  redelivered: boolean;
  deliveryTag: number;
  messageCount?: number;
  consumerTag?: string;
  headers?: Record<string, unknown>;
}

export interface Returned {
  replyCode: number;
  replyText: string;
  exchange: string;
  routingKey: string;
  body: Buffer;
}

export interface ExchangeOpts {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  arguments?: Record<string, unknown>;
}

export interface QueueOpts {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  arguments?: Record<string, unknown>;
}

export interface PublishOpts {
  mandatory?: boolean;
  headers?: Record<string, unknown>;
}

export interface TestChannel {
  declareExchange(name: string, type: string, opts?: ExchangeOpts): Promise<void>;
  checkExchange(name: string): Promise<void>;
  deleteExchange(name: string, opts?: { ifUnused?: boolean }): Promise<void>;
  bindExchange(destination: string, source: string, routingKey: string, args?: Record<string, unknown>): Promise<void>;
  unbindExchange(destination: string, source: string, routingKey: string, args?: Record<string, unknown>): Promise<void>;
  declareQueue(name: string, opts?: QueueOpts): Promise<{ queue: string; messageCount: number; consumerCount: number }>;
  checkQueue(name: string): Promise<{ queue: string; messageCount: number; consumerCount: number }>;
  deleteQueue(name: string, opts?: { ifUnused?: boolean; ifEmpty?: boolean }): Promise<number>;
  purgeQueue(name: string): Promise<number>;
  bindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void>;
  unbindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void>;
  publish(exchange: string, routingKey: string, body: string | Buffer, opts?: PublishOpts): Promise<void>;
  /** basic.get with no-ack. */
  get(queue: string): Promise<Msg | null>;
  consume(queue: string, onMessage: (m: Msg) => void, opts?: { noAck?: boolean; exclusive?: boolean; tag?: string }): Promise<string>;
  cancel(tag: string): Promise<void>;
  ack(deliveryTag: number, multiple?: boolean): void;
  onReturn(cb: (r: Returned) => void): void;
  /** Resolves when the server closes the channel. */
  readonly closedByServer: Promise<CloseReason>;
  close(): Promise<void>;
}

export interface TestConnection {
  readonly client: 'amqplib' | 'amqp-client';
  channel(): Promise<TestChannel>;
  close(): Promise<void>;
}

export type ClientName = 'amqplib' | 'amqp-client';
export const CLIENTS: ClientName[] = ['amqplib', 'amqp-client'];

export function connectWith(client: ClientName, url: string): Promise<TestConnection> {
  return client === 'amqplib' ? amqplibConnection(url) : amqpClientConnection(url);
}

/** An amqplib connection with an error listener attached (so server closes do not crash the run). */
export async function amqplibConnect(url: string): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(url);
  c.on('error', () => {});
  return c;
}

/** Resolves with the reason when an amqplib channel is closed by the server ({code: 0} for a clean close). */
export function amqplibChannelClosed(ch: amqp.Channel): Promise<CloseReason> {
  return new Promise((resolve) => {
    let reason: CloseReason | undefined;
    ch.on('error', (e: Error) => {
      reason = closeReason(e);
    });
    ch.on('close', () => resolve(reason ?? { code: 0, text: 'closed' }));
  });
}

async function amqplibConnection(url: string): Promise<TestConnection> {
  const conn = await amqplibConnect(url);
  return {
    client: 'amqplib',
    async channel() {
      const ch = await conn.createChannel();
      const closedByServer = amqplibChannelClosed(ch);
      const toMsg = (m: amqp.Message): Msg => ({
        body: m.content,
        exchange: m.fields.exchange,
        routingKey: m.fields.routingKey,
        redelivered: m.fields.redelivered,
        deliveryTag: m.fields.deliveryTag,
        messageCount: m.fields.messageCount,
        consumerTag: m.fields.consumerTag,
        headers: m.properties.headers,
      });
      const tc: TestChannel = {
        async declareExchange(name, type, o = {}) {
          await ch.assertExchange(name, type, {
            durable: o.durable ?? false,
            autoDelete: o.autoDelete ?? false,
            internal: o.internal ?? false,
            arguments: o.arguments,
          });
        },
        async checkExchange(name) {
          await ch.checkExchange(name);
        },
        async deleteExchange(name, o = {}) {
          await ch.deleteExchange(name, { ifUnused: o.ifUnused ?? false });
        },
        async bindExchange(d, s, rk, args) {
          await ch.bindExchange(d, s, rk, args);
        },
        async unbindExchange(d, s, rk, args) {
          await ch.unbindExchange(d, s, rk, args);
        },
        async declareQueue(name, o = {}) {
          const r = await ch.assertQueue(name, {
            durable: o.durable ?? false,
            exclusive: o.exclusive ?? false,
            autoDelete: o.autoDelete ?? false,
            arguments: o.arguments,
          });
          return { queue: r.queue, messageCount: r.messageCount, consumerCount: r.consumerCount };
        },
        async checkQueue(name) {
          const r = await ch.checkQueue(name);
          return { queue: r.queue, messageCount: r.messageCount, consumerCount: r.consumerCount };
        },
        async deleteQueue(name, o = {}) {
          return (await ch.deleteQueue(name, { ifUnused: o.ifUnused ?? false, ifEmpty: o.ifEmpty ?? false })).messageCount;
        },
        async purgeQueue(name) {
          return (await ch.purgeQueue(name)).messageCount;
        },
        async bindQueue(q, e, rk, args) {
          await ch.bindQueue(q, e, rk, args);
        },
        async unbindQueue(q, e, rk, args) {
          await ch.unbindQueue(q, e, rk, args);
        },
        async publish(e, rk, body, o = {}) {
          ch.publish(e, rk, Buffer.from(body), { mandatory: o.mandatory ?? false, headers: o.headers });
        },
        async get(q) {
          const m = await ch.get(q, { noAck: true });
          return m ? toMsg(m) : null;
        },
        async consume(q, onMessage, o = {}) {
          const r = await ch.consume(q, (m) => m && onMessage(toMsg(m)), {
            noAck: o.noAck ?? true,
            exclusive: o.exclusive ?? false,
            consumerTag: o.tag,
          });
          return r.consumerTag;
        },
        async cancel(tag) {
          await ch.cancel(tag);
        },
        ack(tag, multiple = false) {
          ch.ack({ fields: { deliveryTag: tag } } as amqp.Message, multiple);
        },
        onReturn(cb) {
          ch.on('return', (m: amqp.Message) => {
            const f = m.fields as amqp.MessageFields & { replyCode: number; replyText: string };
            cb({ replyCode: f.replyCode, replyText: f.replyText, exchange: f.exchange, routingKey: f.routingKey, body: m.content });
          });
        },
        closedByServer,
        async close() {
          await ch.close().catch(() => {});
        },
      };
      return tc;
    },
    async close() {
      await conn.close().catch(() => {});
    },
  };
}

/** Connects an amqp-client AMQPClient (no logger). */
export async function amqpClientConnect(url: string): Promise<AMQPClient> {
  const c = new AMQPClient(url, undefined, null);
  c.onerror = () => {};
  await c.connect();
  return c;
}

/** Opens an amqp-client channel and wires its server-close reason into a promise. */
export async function amqpClientChannel(c: AMQPClient): Promise<{ ch: AMQPChannel; closedByServer: Promise<CloseReason> }> {
  const ch = await c.channel();
  const closedByServer = new Promise<CloseReason>((resolve) => {
    ch.onerror = (reason: string) => resolve(closeReason(new Error(reason)));
  });
  return { ch, closedByServer };
}

function fromAmqpClient(m: AMQPMessage): Msg {
  return {
    body: Buffer.from(m.body ?? new Uint8Array(0)),
    exchange: m.exchange,
    routingKey: m.routingKey,
    redelivered: m.redelivered,
    deliveryTag: m.deliveryTag,
    messageCount: m.messageCount,
    consumerTag: m.consumerTag || undefined,
    headers: m.properties.headers as Record<string, unknown> | undefined,
  };
}

async function amqpClientConnection(url: string): Promise<TestConnection> {
  const conn = await amqpClientConnect(url);
  return {
    client: 'amqp-client',
    async channel() {
      const { ch, closedByServer } = await amqpClientChannel(conn);
      const tc: TestChannel = {
        async declareExchange(name, type, o = {}) {
          await ch.exchangeDeclare(
            name,
            type,
            { durable: o.durable ?? false, autoDelete: o.autoDelete ?? false, internal: o.internal ?? false },
            o.arguments ?? {},
          );
        },
        async checkExchange(name) {
          await ch.exchangeDeclare(name, 'direct', { passive: true });
        },
        async deleteExchange(name, o = {}) {
          await ch.exchangeDelete(name, { ifUnused: o.ifUnused ?? false });
        },
        async bindExchange(d, s, rk, args) {
          await ch.exchangeBind(d, s, rk, args ?? {});
        },
        async unbindExchange(d, s, rk, args) {
          await ch.exchangeUnbind(d, s, rk, args ?? {});
        },
        async declareQueue(name, o = {}) {
          const r = await ch.queueDeclare(
            name,
            { durable: o.durable ?? false, exclusive: o.exclusive ?? false, autoDelete: o.autoDelete ?? false },
            o.arguments ?? {},
          );
          return { queue: r.name, messageCount: r.messageCount, consumerCount: r.consumerCount };
        },
        async checkQueue(name) {
          const r = await ch.queueDeclare(name, { passive: true });
          return { queue: r.name, messageCount: r.messageCount, consumerCount: r.consumerCount };
        },
        async deleteQueue(name, o = {}) {
          return (await ch.queueDelete(name, { ifUnused: o.ifUnused ?? false, ifEmpty: o.ifEmpty ?? false })).messageCount;
        },
        async purgeQueue(name) {
          return (await ch.queuePurge(name)).messageCount;
        },
        async bindQueue(q, e, rk, args) {
          await ch.queueBind(q, e, rk, args ?? {});
        },
        async unbindQueue(q, e, rk, args) {
          await ch.queueUnbind(q, e, rk, args ?? {});
        },
        async publish(e, rk, body, o = {}) {
          await ch.basicPublish(
            e,
            rk,
            Buffer.from(body),
            o.headers ? { headers: o.headers as Record<string, string> } : {},
            o.mandatory ?? false,
          );
        },
        async get(q) {
          const m = await ch.basicGet(q, { noAck: true });
          return m ? fromAmqpClient(m) : null;
        },
        async consume(q, onMessage, o = {}) {
          const c = await ch.basicConsume(q, { noAck: o.noAck ?? true, exclusive: o.exclusive ?? false, tag: o.tag ?? '' }, (m) =>
            onMessage(fromAmqpClient(m)),
          );
          return c.tag;
        },
        async cancel(tag) {
          await ch.basicCancel(tag);
        },
        ack(tag, multiple = false) {
          ch.basicAck(tag, multiple).catch(() => {});
        },
        onReturn(cb) {
          ch.onReturn = (m: AMQPMessage) =>
            cb({
              replyCode: m.replyCode ?? -1,
              replyText: m.replyText ?? '',
              exchange: m.exchange,
              routingKey: m.routingKey,
              body: Buffer.from(m.body ?? new Uint8Array(0)),
            });
        },
        closedByServer,
        async close() {
          if (!ch.closed) await ch.close().catch(() => {});
        },
      };
      return tc;
    },
    async close() {
      if (!conn.closed) await conn.close().catch(() => {});
    },
  };
}

/**
 * Runs op on the channel and waits for the server to close the channel.
 * The op's own rejection (if any) is swallowed; the close reason is returned.
 */
export async function expectChannelError(ch: TestChannel, op: () => Promise<unknown> | unknown, timeoutMs = 5000): Promise<CloseReason> {
  try {
    await op();
  } catch {
    /* the close reason is what we assert on */
  }
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<CloseReason>((_, reject) => {
    t = setTimeout(() => reject(new Error(`channel was not closed by the server within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([ch.closedByServer, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** Polls basic.get until a message arrives (messages may be routed asynchronously). */
export async function getWithin(ch: TestChannel, queue: string, timeoutMs = 3000): Promise<Msg> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await ch.get(queue);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`no message on ${queue} within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Drains a queue with basic.get, returning the bodies as strings. */
export async function drain(ch: TestChannel, queue: string): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const m = await ch.get(queue);
    if (!m) return out;
    out.push(m.body.toString());
  }
}
