// Load and a checker for the failover tests (issue 15), in the spirit of Jepsen's total-queue
// test: publishers send numbered persistent messages on confirm channels through any node and
// reconnect on close; afterwards every queue is drained and each sent message is classed as
// confirmed-and-received, lost (confirmed, never received), duplicated or unexpected.
import net from 'node:net';
import amqp from 'amqplib';

export interface Endpoint {
  host: string;
  port: number;
}

export interface Confirm {
  id: string;
  /** Date.now() when the ack reached the client */
  at: number;
  /** the node that served the connection (connection.start's `node`) */
  node: string;
}

export interface Closed {
  at: number;
  node: string;
  code: number | null;
  text: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function servedNode(c: amqp.ChannelModel): string {
  return (c.connection as unknown as { serverProperties: { node?: string } }).serverProperties.node ?? '?';
}

function closeInfo(err: unknown): { code: number | null; text: string } {
  const e = err as { code?: number; message?: string } | undefined;
  return { code: typeof e?.code === 'number' ? e.code : null, text: e?.message ?? String(err) };
}

/**
 * One publisher: a confirm channel on one connection at a time, at most `window` messages
 * unconfirmed, ids `${name}-${seq}`. A closed connection (or a failed connect) moves it to the
 * next endpoint after `retryMs`; its unconfirmed messages stay sent-but-unconfirmed.
 */
export class Publisher {
  readonly sent = new Set<string>();
  readonly confirms: Confirm[] = [];
  readonly nacked = new Set<string>();
  readonly closes: Closed[] = [];
  readonly connectedTo: Array<{ at: number; node: string }> = [];
  private seq = 0;
  private running = true;
  private conn: amqp.ChannelModel | null = null;
  private done: Promise<void>;

  constructor(
    readonly name: string,
    private readonly endpoints: () => Endpoint[],
    readonly queue: string,
    private readonly window = 64,
    private readonly retryMs = 50,
    private next = 0,
  ) {
    this.done = this.run();
  }

  get confirmed(): number {
    return this.confirms.length;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const eps = this.endpoints();
      const ep = eps[this.next++ % eps.length];
      try {
        await this.session(ep);
      } catch {
        // refused, reset or closed: try the next endpoint
      }
      this.conn = null;
      if (this.running) await sleep(this.retryMs);
    }
  }

  private async session(ep: Endpoint): Promise<void> {
    const conn = await amqp.connect(`amqp://guest:guest@${ep.host}:${ep.port}`, { timeout: 3000 });
    this.conn = conn;
    const node = servedNode(conn);
    let closed = false;
    const ended = new Promise<void>((resolve) => {
      conn.on('error', () => undefined);
      conn.on('close', (err: unknown) => {
        closed = true;
        const c = closeInfo(err);
        this.closes.push({ at: Date.now(), node, ...c });
        resolve();
      });
    });
    if (!this.running) {
      await conn.close().catch(() => undefined);
      return;
    }
    this.connectedTo.push({ at: Date.now(), node });
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => undefined);
    await ch.assertQueue(this.queue, { durable: true });
    let inflight = 0;
    let wake: (() => void) | null = null;
    while (this.running && !closed) {
      if (inflight >= this.window) {
        await Promise.race([new Promise<void>((r) => (wake = r)), ended]);
        continue;
      }
      const id = `${this.name}-${++this.seq}`;
      this.sent.add(id);
      inflight++;
      ch.sendToQueue(this.queue, Buffer.from(id), { persistent: true, messageId: id }, (err: unknown) => {
        inflight--;
        if (err === null || err === undefined) this.confirms.push({ id, at: Date.now(), node });
        else if ((err as Error).message === 'message nacked') this.nacked.add(id);
        const w = wake;
        wake = null;
        w?.();
      });
      // let the socket drain now and then; also yields to the confirms
      if (this.seq % 16 === 0) await sleep(0);
    }
    if (!closed) {
      // stopping: wait for what is in flight (bounded), then close
      const until = Date.now() + 10_000;
      while (inflight > 0 && !closed && Date.now() < until) await sleep(20);
      await conn.close().catch(() => undefined);
    }
    await ended;
  }

  /** Stops sending; in-flight messages get up to 10 s to be confirmed. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  /** Drops the connection at once (afterEach). */
  kill(): void {
    this.running = false;
    const c = this.conn as unknown as { connection?: { stream?: { destroy(): void } } } | null;
    c?.connection?.stream?.destroy();
  }
}

/** Consumes every queue to empty through `ep`; returns how often each body was received. */
export async function drain(ep: Endpoint, queues: string[], quietMs = 1000): Promise<Map<string, number>> {
  const got = new Map<string, number>();
  const conn = await amqp.connect(`amqp://guest:guest@${ep.host}:${ep.port}`);
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createChannel();
    await ch.prefetch(1000);
    let last = Date.now();
    for (const q of queues) {
      await ch.assertQueue(q, { durable: true });
      await ch.consume(q, (m) => {
        if (m === null) return;
        const id = m.content.toString();
        got.set(id, (got.get(id) ?? 0) + 1);
        last = Date.now();
        ch.ack(m);
      });
    }
    for (;;) {
      await sleep(100);
      if (Date.now() - last < quietMs) continue;
      let left = 0;
      for (const q of queues) left += (await ch.checkQueue(q)).messageCount;
      if (left === 0) break;
    }
    await ch.close();
  } finally {
    await conn.close().catch(() => undefined);
  }
  return got;
}

export interface Verdict {
  sent: number;
  confirmed: number;
  received: number;
  /** confirmed, never received */
  lost: string[];
  /** received more than once */
  duplicated: number;
  /** received, sent but never confirmed (allowed) */
  unconfirmedReceived: number;
  /** received, never sent (never allowed) */
  unknown: string[];
}

export function check(pubs: Publisher[], got: Map<string, number>): Verdict {
  const sent = new Set<string>();
  const confirmed = new Set<string>();
  for (const p of pubs) {
    for (const id of p.sent) sent.add(id);
    for (const c of p.confirms) confirmed.add(c.id);
  }
  const lost = [...confirmed].filter((id) => !got.has(id));
  let duplicated = 0;
  let unconfirmedReceived = 0;
  const unknown: string[] = [];
  let received = 0;
  for (const [id, n] of got) {
    received += n;
    if (n > 1) duplicated++;
    if (!sent.has(id)) unknown.push(id);
    else if (!confirmed.has(id)) unconfirmedReceived++;
  }
  return { sent: sent.size, confirmed: confirmed.size, received, lost, duplicated, unconfirmedReceived, unknown };
}

/**
 * A TCP relay the test can cut: listens on `listenHost:port`, forwards to `targetHost:port`.
 * cut() resets every relayed connection and refuses new ones until heal().
 */
export class Relay {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private isCut = false;

  private constructor(
    readonly listenHost: string,
    readonly targetHost: string,
    readonly port: number,
  ) {
    this.server = net.createServer((a) => {
      if (this.isCut) {
        a.destroy();
        return;
      }
      const b = net.connect(this.port, this.targetHost);
      const pair: [net.Socket, net.Socket] = [a, b];
      this.pairs.add(pair);
      const end = () => {
        a.destroy();
        b.destroy();
        this.pairs.delete(pair);
      };
      a.on('error', end).on('close', end);
      b.on('error', end).on('close', end);
      a.pipe(b);
      b.pipe(a);
    });
  }

  static async open(listenHost: string, targetHost: string, port: number): Promise<Relay> {
    const r = new Relay(listenHost, targetHost, port);
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(port, listenHost, () => resolve());
    });
    return r;
  }

  cut(): void {
    this.isCut = true;
    for (const [a, b] of [...this.pairs]) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.pairs.clear();
  }

  heal(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
