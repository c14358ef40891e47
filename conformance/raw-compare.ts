// Raw-frame comparison of connection-level error paths: RabbitMQ vs Leveret.
//
// Runs every scenario below over a raw socket (test/helpers/raw.ts) against two brokers and
// prints, for each, what the server sent after our first "offending" frame (with the step that
// provoked it), and how the server ended the TCP connection: FIN or RST, and how long after the
// offending frame. A table then compares the two brokers (MATCH/DIFF).
//
//   npm run raw-compare -- [--rabbit URL] [--leveret URL] [--only SUBSTR]... [--name NAME]... [--markdown] [--json FILE] [-j N]
//
// --rabbit defaults to amqp://guest:guest@127.0.0.1:5672 (RabbitMQ 3.10). Without --leveret a
// Leveret is started from dist/cli.js on free ports (npm run build first). See conformance/README.md.
import fs from 'node:fs';
import * as raw from '../test/helpers/raw';
import { RawClient, type Frame } from '../test/helpers/raw';
import { startBroker, type StartedBroker } from '../test/helpers/broker';

// ---------------------------------------------------------------- describing frames

const METHOD_NAMES: Record<string, string> = {
  '10.10': 'connection.start',
  '10.11': 'connection.start-ok',
  '10.20': 'connection.secure',
  '10.21': 'connection.secure-ok',
  '10.30': 'connection.tune',
  '10.31': 'connection.tune-ok',
  '10.40': 'connection.open',
  '10.41': 'connection.open-ok',
  '10.50': 'connection.close',
  '10.51': 'connection.close-ok',
  '10.60': 'connection.blocked',
  '10.61': 'connection.unblocked',
  '10.70': 'connection.update-secret',
  '10.71': 'connection.update-secret-ok',
  '20.10': 'channel.open',
  '20.11': 'channel.open-ok',
  '20.20': 'channel.flow',
  '20.21': 'channel.flow-ok',
  '20.40': 'channel.close',
  '20.41': 'channel.close-ok',
  '40.11': 'exchange.declare-ok',
  '50.11': 'queue.declare-ok',
  '60.11': 'basic.qos-ok',
  '60.50': 'basic.return',
  '60.80': 'basic.ack',
  '60.120': 'basic.nack',
  '85.11': 'confirm.select-ok',
  '90.11': 'tx.select-ok',
};

function describeFrame(f: Frame): string {
  if (f.type === -1) return `protocol-header ${[...f.payload.subarray(4)].join('-')}`;
  if (f.type === raw.FRAME_HEARTBEAT) return `heartbeat(ch ${f.channel})`;
  if (f.type === raw.FRAME_HEADER) return `content-header(ch ${f.channel})`;
  if (f.type === raw.FRAME_BODY) return `content-body(ch ${f.channel}, ${f.size} B)`;
  if (f.type !== raw.FRAME_METHOD) return `frame type ${f.type} (ch ${f.channel})`;
  const name = METHOD_NAMES[`${f.classId}.${f.methodId}`] ?? `method ${f.classId}.${f.methodId}`;
  const ch = f.channel === 0 ? '' : `[ch ${f.channel}] `;
  if (raw.isClose(f)) {
    const c = raw.decodeClose(f);
    return `${ch}${name}(${c.code}, ${JSON.stringify(c.text)}, ${c.classId}, ${c.methodId})`;
  }
  return `${ch}${name}`;
}

// ---------------------------------------------------------------- one probe connection

interface Target {
  name: string;
  host: string;
  port: number;
}

interface Observation {
  /** "[step] description", in arrival order, without times (compared between brokers). */
  replies: string[];
  /** The same with the time since the offending frame. */
  timeline: string[];
  closeKind: 'FIN' | 'RST' | 'open' | 'closed';
  closeMs: number | null;
  note?: string;
}

class Probe {
  client!: RawClient;
  private t0 = 0;
  private step = 'setup';
  private readonly replies: string[] = [];
  private readonly timeline: string[] = [];
  private note = '';

  constructor(
    private readonly target: Target,
    /** Answer a server connection.close with close-ok, as a client would. */
    public autoCloseOk = true,
  ) {}

  async connect(): Promise<void> {
    this.client = await RawClient.connect(this.target.port, this.target.host);
  }

  /** Connected, handshake done (heartbeat 0 unless given), ready for the scenario. */
  async ready(opts: raw.HandshakeOptions = {}): Promise<void> {
    await this.connect();
    await this.client.handshake({ heartbeat: 0, ...opts });
  }

  async readyChannel(opts: raw.HandshakeOptions = {}): Promise<void> {
    await this.ready(opts);
    await this.client.openChannel(1);
  }

  /** The timer starts with the first frame sent through send() (or with mark()). */
  mark(label: string): void {
    if (!this.t0) this.t0 = performance.now();
    this.step = label;
  }

  send(label: string, ...data: Array<Buffer | string>): void {
    this.mark(label);
    this.client.send(Buffer.concat(data.map((d) => (typeof d === 'string' ? Buffer.from(d, 'latin1') : d))));
  }

  private ms(at: number | undefined): number {
    return Math.round((at ?? performance.now()) - this.t0);
  }

  private record(f: Frame): void {
    const d = describeFrame(f);
    this.replies.push(`[${this.step}] ${d}`);
    this.timeline.push(`+${this.ms(f.at)}ms [${this.step}] ${d}`);
    if (this.autoCloseOk && raw.isMethod(f, 10, 50)) {
      this.client.send(raw.connectionCloseOk());
      this.timeline.push(`+${this.ms(undefined)}ms (we sent connection.close-ok)`);
    }
  }

  /** Records what arrives for `ms` milliseconds, or until the socket closes. */
  async collect(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      let f: Frame | null;
      try {
        f = await this.client.nextFrame(left);
      } catch (e) {
        if (/timed out/.test((e as Error).message)) return;
        this.note = `client error: ${(e as Error).message}`;
        return;
      }
      if (!f) return;
      this.record(f);
    }
  }

  /** Records until a frame matching `pred` arrives (true) or `ms` pass / the socket closes (false). */
  async until(pred: (f: Frame) => boolean, ms = 3000): Promise<boolean> {
    const deadline = performance.now() + ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const f = await this.client.nextFrame(left).catch(() => null);
      if (!f) return false;
      this.record(f);
      if (pred(f)) return true;
    }
  }

  fail(note: string): void {
    this.note = note;
  }

  observation(): Observation {
    const c = this.client;
    let closeKind: Observation['closeKind'] = 'open';
    let closeAt: number | undefined;
    if (c?.endAt !== undefined && (c.errorAt === undefined || c.endAt <= c.errorAt)) {
      closeKind = 'FIN';
      closeAt = c.endAt;
    } else if (c?.errorAt !== undefined) {
      closeKind = c.errorCode === 'ECONNRESET' ? 'RST' : 'closed';
      closeAt = c.errorAt;
    } else if (c?.closed) {
      closeKind = 'closed';
      closeAt = c.closedAt;
    }
    if (closeKind !== 'open') this.timeline.push(`+${this.ms(closeAt)}ms ${closeKind}${c.errorCode ? ` (${c.errorCode})` : ''}`);
    return {
      replies: this.replies,
      timeline: this.timeline,
      closeKind,
      closeMs: closeAt === undefined ? null : this.ms(closeAt),
      note: this.note || undefined,
    };
  }
}

// ---------------------------------------------------------------- scenarios

interface Scenario {
  name: string;
  what: string;
  run(p: Probe): Promise<void>;
  /** How long to keep watching after run() (default 12 s: covers RabbitMQ's 3 s and 10 s timers). */
  windowMs?: number;
  /** Do not answer the server's connection.close with close-ok. */
  noCloseOk?: boolean;
}

const LONG = 36_000; // RabbitMQ's 30 s closing timeout
const GAP = 400; // between steps of multi-step scenarios
const MISSING_EXCHANGE = 'leveret-raw-compare-missing';
const NO_CAPS = { capabilities: {} };

async function toStart(p: Probe): Promise<void> {
  await p.connect();
  p.client.send(raw.PROTOCOL_HEADER);
  await p.client.expectMethod(10, 10);
}

async function toTune(p: Probe): Promise<void> {
  await toStart(p);
  p.client.send(raw.startOk('PLAIN', raw.plainResponse('guest', 'guest')));
  await p.client.expectMethod(10, 30);
}

async function toOpen(p: Probe): Promise<void> {
  await toTune(p);
  p.client.send(raw.tuneOk(2047, 131072, 0));
}

function header(bytes: number[] | string): Scenario['run'] {
  return async (p) => {
    await p.connect();
    p.send('header', typeof bytes === 'string' ? bytes : Buffer.from(bytes));
  };
}

function afterStart(label: string, data: () => Buffer): Scenario['run'] {
  return async (p) => {
    await toStart(p);
    p.send(label, data());
  };
}

function badLogin(mechanism: string, response: Buffer, props: Record<string, raw.TableValue> = {}): Scenario['run'] {
  return afterStart('start-ok', () => raw.startOk(mechanism, response, props));
}

function tuneOkWith(channelMax: number, frameMax: number, heartbeat: number): Scenario['run'] {
  return async (p) => {
    await toTune(p);
    p.send('tune-ok', raw.tuneOk(channelMax, frameMax, heartbeat), raw.connectionOpen('/'));
  };
}

/** After the handshake (and channel 1 open when `channel`), sends the frames. */
function onOpen(label: string, data: () => Buffer[], channel = true, opts: raw.HandshakeOptions = {}): Scenario['run'] {
  return async (p) => {
    await (channel ? p.readyChannel(opts) : p.ready(opts));
    p.send(label, ...data());
  };
}

function publish(ch: number, exchange = '', key = 'k'): Buffer {
  return raw.basicPublish(ch, exchange, key);
}

/** Publishes to a missing exchange on channel 1 and waits for the 404 channel.close. */
async function provoke404(p: Probe): Promise<boolean> {
  await p.readyChannel();
  p.send('publish-404', publish(1, MISSING_EXCHANGE), raw.contentHeader(1, 3), raw.contentBody(1, Buffer.from('abc')));
  return p.until((f) => raw.isMethod(f, 20, 40));
}

/** Provokes a connection error (heartbeat frame on channel 1) and waits for connection.close. */
async function provokeHardError(p: Probe, opts: raw.HandshakeOptions = {}): Promise<boolean> {
  await p.readyChannel(opts);
  p.send('hb-on-ch1', raw.frame(raw.FRAME_HEARTBEAT, 1, Buffer.alloc(0)));
  return p.until((f) => raw.isMethod(f, 10, 50));
}

type Step = [label: string, data: () => Buffer[]];

async function steps(p: Probe, list: Step[]): Promise<void> {
  for (const [label, data] of list) {
    if (p.client.closed) return;
    p.send(label, ...data());
    await p.collect(GAP);
  }
}

const closeN = (n: number) => () => Array.from({ length: n }, (_, i) => raw.connectionClose(200, `bye ${i + 1}`));

const SCENARIOS: Scenario[] = [
  // protocol header
  { name: 'header.ok', what: 'AMQP 0-0-9-1, then nothing (handshake timeout)', run: header([...raw.PROTOCOL_HEADER]) },
  { name: 'header.amqp-0-9', what: 'AMQP 1-1-0-9', run: header('AMQP\x01\x01\x00\x09') },
  { name: 'header.amqp-0-8', what: 'AMQP 1-1-8-0', run: header('AMQP\x01\x01\x08\x00') },
  { name: 'header.amqp-0-9-2', what: 'AMQP 0-0-9-2', run: header('AMQP\x00\x00\x09\x02') },
  { name: 'header.amqp-1-0', what: 'AMQP 0-1-0-0 (AMQP 1.0)', run: header('AMQP\x00\x01\x00\x00') },
  { name: 'header.sasl', what: 'AMQP 3-1-0-0 (AMQP 1.0 SASL)', run: header('AMQP\x03\x01\x00\x00') },
  { name: 'header.http', what: 'an HTTP request', run: header('GET / HTTP/1.1\r\nHost: x\r\n\r\n') },
  { name: 'header.short', what: '7 bytes of the header, then nothing', run: header('AMQP\x00\x00\x09') },
  { name: 'header.lowercase', what: 'amqp 0-0-9-1', run: header('amqp\x00\x00\x09\x01') },
  {
    name: 'header.silent',
    what: 'connect, send nothing',
    run: async (p) => {
      await p.connect();
      p.mark('connect');
    },
  },
  {
    name: 'header.frame-first',
    what: 'a start-ok frame instead of the header',
    run: header([...raw.startOk('PLAIN', raw.plainResponse('guest', 'guest'))]),
  },
  { name: 'header.twice', what: 'protocol header sent twice', run: header([...raw.PROTOCOL_HEADER, ...raw.PROTOCOL_HEADER]) },

  // handshake order
  {
    name: 'hs.start-ok-twice',
    what: 'start-ok again after connection.tune',
    run: async (p) => {
      await toTune(p);
      p.send('start-ok#2', raw.startOk('PLAIN', raw.plainResponse('guest', 'guest')));
    },
  },
  {
    name: 'hs.tune-ok-before-start-ok',
    what: 'tune-ok in reply to connection.start',
    run: afterStart('tune-ok', () => raw.tuneOk(2047, 131072, 0)),
  },
  {
    name: 'hs.open-before-start-ok',
    what: 'connection.open in reply to connection.start',
    run: afterStart('open', () => raw.connectionOpen('/')),
  },
  {
    name: 'hs.channel-open-before-start-ok',
    what: 'channel.open(1) in reply to connection.start',
    run: afterStart('channel.open', () => raw.channelOpen(1)),
  },
  {
    name: 'hs.close-before-start-ok',
    what: 'connection.close in reply to connection.start',
    run: afterStart('close', () => raw.connectionClose()),
  },
  {
    name: 'hs.heartbeat-before-start-ok',
    what: 'heartbeat frame in reply to connection.start',
    run: afterStart('heartbeat', () => raw.heartbeat()),
  },
  {
    name: 'hs.header-before-start-ok',
    what: 'content header (ch 0) in reply to connection.start',
    run: afterStart('content-header', () => raw.contentHeader(0, 1)),
  },
  {
    name: 'hs.open-before-tune-ok',
    what: 'connection.open in reply to connection.tune',
    run: async (p) => {
      await toTune(p);
      p.send('open', raw.connectionOpen('/'));
    },
  },
  {
    name: 'hs.close-before-tune-ok',
    what: 'connection.close in reply to connection.tune',
    run: async (p) => {
      await toTune(p);
      p.send('close', raw.connectionClose());
    },
  },
  {
    name: 'hs.channel-open-before-open',
    what: 'tune-ok, then channel.open(1) before connection.open',
    run: async (p) => {
      await toTune(p);
      p.client.send(raw.tuneOk(2047, 131072, 0));
      p.send('channel.open', raw.channelOpen(1));
    },
  },
  {
    name: 'hs.queue-declare-ch0-before-open',
    what: 'tune-ok, then queue.declare on channel 0 before connection.open',
    run: async (p) => {
      await toOpen(p);
      p.send('queue.declare', raw.queueDeclare(0, 'x'));
    },
  },
  { name: 'hs.open-twice', what: 'connection.open again after open-ok', run: onOpen('open#2', () => [raw.connectionOpen('/')], false) },
  {
    name: 'hs.tune-ok-after-open',
    what: 'tune-ok again after open-ok',
    run: onOpen('tune-ok#2', () => [raw.tuneOk(2047, 131072, 0)], false),
  },
  {
    name: 'hs.client-sends-tune',
    what: 'client sends connection.tune (a server method)',
    run: onOpen('tune', () => [raw.method(0, 10, 30, Buffer.concat([raw.u16(0), raw.u32(0), raw.u16(0)]))], false),
  },
  {
    name: 'hs.close-ok-unsolicited',
    what: 'connection.close-ok without a close',
    run: onOpen('close-ok', () => [raw.connectionCloseOk()], false),
  },

  // authentication and vhost
  {
    name: 'auth.plain-bad-pass.cap',
    what: 'PLAIN wrong password, authentication_failure_close=true',
    run: badLogin('PLAIN', raw.plainResponse('guest', 'wrong')),
  },
  {
    name: 'auth.plain-bad-pass.cap.no-close-ok',
    what: 'same, never answering connection.close',
    run: badLogin('PLAIN', raw.plainResponse('guest', 'wrong')),
    noCloseOk: true,
    windowMs: LONG,
  },
  {
    name: 'auth.plain-bad-pass.nocap',
    what: 'PLAIN wrong password, no capabilities',
    run: badLogin('PLAIN', raw.plainResponse('guest', 'wrong'), NO_CAPS),
  },
  {
    name: 'auth.plain-unknown-user.cap',
    what: 'PLAIN unknown user, capability set',
    run: badLogin('PLAIN', raw.plainResponse('nobody', 'x')),
  },
  { name: 'auth.plain-malformed.cap', what: 'PLAIN response without NULs', run: badLogin('PLAIN', Buffer.from('guestguest')) },
  {
    name: 'auth.amqplain-bad-pass.cap',
    what: 'AMQPLAIN wrong password, capability set',
    run: badLogin('AMQPLAIN', raw.amqplainResponse('guest', 'wrong')),
  },
  {
    name: 'auth.amqplain-bad-pass.nocap',
    what: 'AMQPLAIN wrong password, no capabilities',
    run: badLogin('AMQPLAIN', raw.amqplainResponse('guest', 'wrong'), NO_CAPS),
  },
  {
    name: 'auth.amqplain-malformed.cap',
    what: 'AMQPLAIN response that is not a table',
    run: badLogin('AMQPLAIN', Buffer.from([0xff, 0xff])),
  },
  { name: 'auth.unknown-mechanism.cap', what: 'mechanism FOO, capability set', run: badLogin('FOO', raw.plainResponse('guest', 'guest')) },
  {
    name: 'auth.unknown-mechanism.nocap',
    what: 'mechanism FOO, no capabilities',
    run: badLogin('FOO', raw.plainResponse('guest', 'guest'), NO_CAPS),
  },
  {
    name: 'auth.unknown-vhost',
    what: "connection.open('no-such-vhost')",
    run: async (p) => {
      await toOpen(p);
      p.send('open', raw.connectionOpen('no-such-vhost'));
    },
  },
  {
    name: 'auth.unknown-vhost.no-close-ok',
    what: 'same, never answering connection.close',
    noCloseOk: true,
    windowMs: LONG,
    run: async (p) => {
      await toOpen(p);
      p.send('open', raw.connectionOpen('no-such-vhost'));
    },
  },

  // tune-ok values
  { name: 'tune.frame-max-4095', what: 'tune-ok frame_max 4095 (below the 4096 minimum)', run: tuneOkWith(2047, 4095, 0) },
  { name: 'tune.frame-max-above-server', what: 'tune-ok frame_max 131073 (server offered 131072)', run: tuneOkWith(2047, 131073, 0) },
  { name: 'tune.frame-max-0', what: 'tune-ok frame_max 0 (no limit)', run: tuneOkWith(2047, 0, 0) },
  { name: 'tune.channel-max-above-server', what: 'tune-ok channel_max 2048 (server offered 2047)', run: tuneOkWith(2048, 131072, 0) },
  { name: 'tune.channel-max-0', what: 'tune-ok channel_max 0 (no limit)', run: tuneOkWith(0, 131072, 0) },
  { name: 'tune.heartbeat-65535', what: 'tune-ok heartbeat 65535', run: tuneOkWith(2047, 131072, 65535) },

  // frames after the handshake
  {
    name: 'frame.channel-max-exceeded',
    what: 'channel_max 10 negotiated, channel.open(11)',
    run: onOpen('channel.open(11)', () => [raw.channelOpen(11)], false, { channelMax: 10 }),
  },
  {
    name: 'frame.channel-max-default-exceeded',
    what: 'channel_max 2047, channel.open(2048)',
    run: onOpen('channel.open(2048)', () => [raw.channelOpen(2048)], false),
  },
  { name: 'frame.channel-65535', what: 'channel.open(65535)', run: onOpen('channel.open(65535)', () => [raw.channelOpen(65535)], false) },
  {
    name: 'frame.heartbeat-ch1',
    what: 'heartbeat frame on channel 1',
    run: onOpen('heartbeat(ch1)', () => [raw.frame(raw.FRAME_HEARTBEAT, 1, Buffer.alloc(0))]),
  },
  {
    name: 'frame.heartbeat-with-payload',
    what: 'heartbeat frame with a 1-byte payload',
    run: onOpen('heartbeat+payload', () => [raw.frame(raw.FRAME_HEARTBEAT, 0, Buffer.from([0]))], false),
  },
  {
    name: 'frame.bad-end',
    what: 'channel.open(2) with frame-end 0x00',
    run: onOpen('bad frame-end', () => [raw.frame(raw.FRAME_METHOD, 2, raw.channelOpen(2).subarray(7, -1), 0x00)]),
  },
  {
    name: 'frame.unknown-type-9',
    what: 'frame type 9 on channel 0',
    run: onOpen('type 9', () => [raw.frame(9, 0, Buffer.from([1, 2, 3]))]),
  },
  {
    name: 'frame.unknown-type-4-ch1',
    what: 'frame type 4 on channel 1',
    run: onOpen('type 4', () => [raw.frame(4, 1, Buffer.from([1, 2, 3]))]),
  },
  { name: 'frame.type-0', what: 'frame type 0 on channel 0', run: onOpen('type 0', () => [raw.frame(0, 0, Buffer.alloc(0))], false) },
  {
    name: 'frame.oversized',
    what: 'a 200000-byte method frame (frame_max 131072)',
    run: onOpen('oversized', () => [raw.frame(raw.FRAME_METHOD, 1, Buffer.concat([raw.u16(50), raw.u16(10), Buffer.alloc(199996)]))]),
  },
  {
    name: 'frame.oversized-size-only',
    what: 'a frame header announcing 0xFFFFFFF0 bytes, nothing more',
    run: onOpen('huge size', () => [Buffer.from([1, 0, 1, 0xff, 0xff, 0xff, 0xf0])]),
  },
  {
    name: 'frame.frame-max-exact',
    what: 'a body frame of exactly frame_max (131072) bytes in total',
    run: onOpen('frame_max body', () => [publish(1), raw.contentHeader(1, 131064), raw.contentBody(1, Buffer.alloc(131064))]),
  },
  {
    name: 'frame.frame-max-plus-1',
    what: 'a body frame one byte over frame_max (payload 131065)',
    run: onOpen('frame_max+1 body', () => [publish(1), raw.contentHeader(1, 131065), raw.contentBody(1, Buffer.alloc(131065))]),
  },
  {
    name: 'frame.payload-frame-max',
    what: 'a body frame whose payload is frame_max (131072) bytes',
    run: onOpen('payload 131072', () => [publish(1), raw.contentHeader(1, 131072), raw.contentBody(1, Buffer.alloc(131072))]),
  },
  {
    name: 'frame.payload-frame-max-plus-1',
    what: 'a body frame whose payload is 131073 bytes',
    run: onOpen('payload 131073', () => [publish(1), raw.contentHeader(1, 131073), raw.contentBody(1, Buffer.alloc(131073))]),
  },
  {
    name: 'frame.message-over-max-size',
    what: 'a whole 134217729-byte message (max_message_size + 1)',
    run: onOpen('128 MiB + 1 message', () => {
      const size = 134217729;
      const parts = [publish(1), raw.contentHeader(1, size)];
      const chunk = Buffer.alloc(131064);
      for (let left = size; left > 0; left -= chunk.length)
        parts.push(raw.contentBody(1, left >= chunk.length ? chunk : chunk.subarray(0, left)));
      return parts;
    }),
  },
  {
    name: 'frame.channel-count-exceeded',
    what: 'channel_max 2 negotiated, channels 1 and 2 open, channel.open(3)',
    run: async (p) => {
      await p.ready({ channelMax: 2 });
      await p.client.openChannel(1);
      await p.client.openChannel(2);
      p.send('channel.open(3)', raw.channelOpen(3));
    },
  },
  {
    name: 'frame.queue-declare-ch0',
    what: 'queue.declare on channel 0',
    run: onOpen('queue.declare(ch0)', () => [raw.queueDeclare(0, 'x')], false),
  },
  {
    name: 'frame.channel-open-ch0',
    what: 'channel.open on channel 0',
    run: onOpen('channel.open(ch0)', () => [raw.channelOpen(0)], false),
  },
  {
    name: 'frame.publish-ch0',
    what: 'basic.publish + content on channel 0',
    run: onOpen('publish(ch0)', () => [publish(0), raw.contentHeader(0, 1), raw.contentBody(0, Buffer.from('x'))], false),
  },
  { name: 'frame.header-ch0', what: 'content header on channel 0', run: onOpen('header(ch0)', () => [raw.contentHeader(0, 1)], false) },
  {
    name: 'frame.body-ch0',
    what: 'content body on channel 0',
    run: onOpen('body(ch0)', () => [raw.contentBody(0, Buffer.from('x'))], false),
  },
  {
    name: 'frame.connection-method-on-ch1',
    what: 'connection.open on channel 1',
    run: onOpen('connection.open(ch1)', () => [raw.frame(raw.FRAME_METHOD, 1, raw.connectionOpen('/').subarray(7, -1))]),
  },
  { name: 'frame.unknown-method', what: 'method 60.999 on channel 1', run: onOpen('60.999', () => [raw.method(1, 60, 999)]) },
  { name: 'frame.unknown-class', what: 'method 99.10 on channel 1', run: onOpen('99.10', () => [raw.method(1, 99, 10)]) },
  { name: 'frame.unknown-method-ch0', what: 'method 10.99 on channel 0', run: onOpen('10.99', () => [raw.method(0, 10, 99)], false) },
  {
    name: 'frame.truncated-method',
    what: 'queue.declare with only 2 argument bytes',
    run: onOpen('truncated', () => [raw.method(1, 50, 10, raw.u16(0))]),
  },
  {
    name: 'frame.short-method-frame',
    what: 'method frame with a 2-byte payload',
    run: onOpen('2-byte method', () => [raw.frame(raw.FRAME_METHOD, 1, raw.u16(50))]),
  },
  {
    name: 'frame.channel-open-twice',
    what: 'channel.open(1) on an open channel 1',
    run: onOpen('channel.open#2', () => [raw.channelOpen(1)]),
  },
  {
    name: 'frame.method-unopened-channel',
    what: 'queue.declare on never-opened channel 5',
    run: onOpen('queue.declare(ch5)', () => [raw.queueDeclare(5, 'x')]),
  },
  {
    name: 'frame.close-unopened-channel',
    what: 'channel.close on never-opened channel 5',
    run: onOpen('channel.close(ch5)', () => [raw.channelClose(5)]),
  },
  {
    name: 'frame.close-ok-unopened-channel',
    what: 'channel.close-ok on never-opened channel 5',
    run: onOpen('channel.close-ok(ch5)', () => [raw.channelCloseOk(5)]),
  },
  {
    name: 'frame.header-unopened-channel',
    what: 'content header on never-opened channel 5',
    run: onOpen('header(ch5)', () => [raw.contentHeader(5, 3)]),
  },
  {
    name: 'frame.body-unopened-channel',
    what: 'content body on never-opened channel 5',
    run: onOpen('body(ch5)', () => [raw.contentBody(5, Buffer.from('abc'))]),
  },
  {
    name: 'frame.header-without-publish',
    what: 'content header on open channel 1, no publish',
    run: onOpen('header', () => [raw.contentHeader(1, 3)]),
  },
  {
    name: 'frame.body-without-publish',
    what: 'content body on open channel 1, no publish',
    run: onOpen('body', () => [raw.contentBody(1, Buffer.from('abc'))]),
  },
  {
    name: 'frame.body-without-header',
    what: 'basic.publish then a body frame',
    run: onOpen('publish+body', () => [publish(1), raw.contentBody(1, Buffer.from('abc'))]),
  },
  {
    name: 'frame.header-2^62',
    what: 'content header declaring 2^62 body bytes',
    run: onOpen('header 2^62', () => [publish(1), raw.contentHeader(1, 2n ** 62n)]),
  },
  {
    name: 'frame.header-2^62-then-more',
    what: 'header declaring 2^62 bytes, a 3-byte body, then basic.publish',
    run: async (p) => {
      await p.readyChannel();
      await steps(p, [
        ['header 2^62 + body', () => [publish(1), raw.contentHeader(1, 2n ** 62n), raw.contentBody(1, Buffer.from('abc'))]],
        ['publish#2', () => [publish(1)]],
      ]);
    },
  },
  {
    name: 'frame.header-2^64-1',
    what: 'content header declaring 2^64-1 body bytes',
    run: onOpen('header 2^64-1', () => [publish(1), raw.contentHeader(1, 2n ** 64n - 1n)]),
  },
  {
    name: 'frame.header-wrong-class',
    what: 'basic.publish then a header with class 50',
    run: onOpen('header class 50', () => [publish(1), raw.contentHeader(1, 3, 50)]),
  },
  {
    name: 'frame.header-weight-1',
    what: 'content header with weight 1',
    run: onOpen('header weight 1', () => [
      publish(1),
      raw.frame(raw.FRAME_HEADER, 1, Buffer.concat([raw.u16(60), raw.u16(1), raw.u64(0), raw.u16(0)])),
    ]),
  },
  {
    name: 'frame.publish-before-body',
    what: 'publish, header(5 bytes), then a second publish',
    run: onOpen('publish#2', () => [publish(1), raw.contentHeader(1, 5), publish(1)]),
  },
  {
    name: 'frame.header-twice',
    what: 'publish, header(5 bytes), header again',
    run: onOpen('header#2', () => [publish(1), raw.contentHeader(1, 5), raw.contentHeader(1, 5)]),
  },
  {
    name: 'frame.body-too-long',
    what: 'header declares 3 bytes, body frame has 5; then queue.declare',
    run: async (p) => {
      await p.readyChannel();
      await steps(p, [
        ['body 5>3', () => [publish(1), raw.contentHeader(1, 3), raw.contentBody(1, Buffer.from('abcde'))]],
        ['declare', () => [raw.queueDeclare(1, '', { exclusive: true })]],
      ]);
    },
  },
  {
    name: 'frame.empty-body-frame',
    what: 'header declares 3 bytes, an empty body frame, then 3 bytes',
    run: onOpen('empty body', () => [
      publish(1),
      raw.contentHeader(1, 3),
      raw.contentBody(1, Buffer.alloc(0)),
      raw.contentBody(1, Buffer.from('abc')),
    ]),
  },
  {
    name: 'frame.close-ok-unsolicited-ch1',
    what: 'channel.close-ok on open channel 1 (no close)',
    run: onOpen('channel.close-ok', () => [raw.channelCloseOk(1)]),
  },
  {
    name: 'misc.update-secret',
    what: 'connection.update-secret (PLAIN login)',
    run: onOpen('update-secret', () => [raw.updateSecret('guest', 'rotation')], false),
  },
  { name: 'misc.channel-close', what: 'channel.close on open channel 1', run: onOpen('channel.close', () => [raw.channelClose(1)]) },
  {
    name: 'misc.channel-close-twice',
    what: 'channel.close twice on channel 1 in one write',
    run: onOpen('channel.close x2', () => [raw.channelClose(1), raw.channelClose(1)]),
  },
  {
    name: 'misc.channel-close-twice-gap',
    what: 'channel.close, close-ok received, channel.close again',
    run: async (p) => {
      await p.readyChannel();
      await steps(p, [
        ['channel.close#1', () => [raw.channelClose(1)]],
        ['channel.close#2', () => [raw.channelClose(1)]],
      ]);
    },
  },
  {
    name: 'misc.update-secret-before-open',
    what: 'connection.update-secret after tune-ok, before connection.open',
    run: async (p) => {
      await toOpen(p);
      p.send('update-secret', raw.updateSecret('guest', 'rotation'));
    },
  },

  // connection.close from the client, and crossings
  {
    name: 'close.client',
    what: 'client connection.close, then waits',
    run: onOpen('close', () => [raw.connectionClose()], false),
    windowMs: LONG,
  },
  { name: 'close.client-x2', what: 'two connection.close back-to-back', run: onOpen('close x2', closeN(2), false), windowMs: LONG },
  { name: 'close.client-x32', what: '32 connection.close back-to-back', run: onOpen('close x32', closeN(32), false), windowMs: LONG },
  {
    name: 'close.client-then-close-again',
    what: 'connection.close, close-ok received, another connection.close',
    windowMs: LONG,
    run: async (p) => {
      await p.ready();
      await steps(p, [
        ['close#1', () => [raw.connectionClose()]],
        ['close#2', () => [raw.connectionClose()]],
      ]);
    },
  },
  {
    name: 'close.client-then-method',
    what: 'connection.close then channel.open(1) in the same write',
    windowMs: LONG,
    run: onOpen('close+channel.open', () => [raw.connectionClose(), raw.channelOpen(1)], false),
  },
  {
    name: 'close.hard-error.close-ok',
    what: 'heartbeat on ch 1 (501), we answer close-ok',
    run: async (p) => void (await provokeHardError(p)),
  },
  {
    name: 'close.hard-error.no-reply',
    what: 'heartbeat on ch 1 (501), we never answer',
    noCloseOk: true,
    windowMs: LONG,
    run: async (p) => void (await provokeHardError(p)),
  },
  {
    name: 'close.hard-error.no-reply.hb10',
    what: 'same with heartbeat 10 negotiated',
    noCloseOk: true,
    windowMs: LONG,
    run: async (p) => {
      if (await provokeHardError(p, { heartbeat: 10 })) p.mark('(no reply)');
    },
  },
  {
    name: 'close.hard-error.cross-close',
    what: 'heartbeat on ch 1 (501), we answer connection.close instead of close-ok',
    noCloseOk: true,
    windowMs: LONG,
    run: async (p) => {
      if (await provokeHardError(p)) p.send('our close', raw.connectionClose());
    },
  },
  {
    name: 'close.hard-error.then-methods',
    what: 'after the server connection.close: channel.open(2), queue.declare(ch1), then close-ok',
    noCloseOk: true,
    windowMs: LONG,
    run: async (p) => {
      if (!(await provokeHardError(p))) return;
      await steps(p, [
        ['channel.open(2)', () => [raw.channelOpen(2)]],
        ['queue.declare(ch1)', () => [raw.queueDeclare(1, 'x')]],
        ['close-ok', () => [raw.connectionCloseOk()]],
      ]);
    },
  },

  // channel.close crossings
  {
    name: 'chclose.404-close-ok-reopen',
    what: '404 channel.close; close-ok; channel.open(1); queue.declare',
    run: async (p) => {
      if (!(await provoke404(p))) return;
      await steps(p, [
        ['close-ok', () => [raw.channelCloseOk(1)]],
        ['reopen', () => [raw.channelOpen(1)]],
        ['declare', () => [raw.queueDeclare(1, '', { exclusive: true })]],
      ]);
    },
  },
  {
    name: 'chclose.404-cross-close',
    what: '404 channel.close; our channel.close; close-ok; queue.declare; channel.open',
    run: async (p) => {
      if (!(await provoke404(p))) return;
      await steps(p, [
        ['our channel.close', () => [raw.channelClose(1)]],
        ['close-ok', () => [raw.channelCloseOk(1)]],
        ['declare', () => [raw.queueDeclare(1, '', { exclusive: true })]],
        ['reopen', () => [raw.channelOpen(1)]],
      ]);
    },
  },
  {
    name: 'chclose.404-cross-close-then-open',
    what: '404 channel.close; our channel.close; channel.open(1)',
    run: async (p) => {
      if (!(await provoke404(p))) return;
      await steps(p, [
        ['our channel.close', () => [raw.channelClose(1)]],
        ['reopen', () => [raw.channelOpen(1)]],
      ]);
    },
  },
  {
    name: 'chclose.404-methods-before-close-ok',
    what: '404 channel.close; queue.declare and publish+content before close-ok; close-ok; reopen; declare',
    run: async (p) => {
      if (!(await provoke404(p))) return;
      await steps(p, [
        ['declare before close-ok', () => [raw.queueDeclare(1, '', { exclusive: true })]],
        ['publish before close-ok', () => [publish(1), raw.contentHeader(1, 3), raw.contentBody(1, Buffer.from('abc'))]],
        ['channel.open before close-ok', () => [raw.channelOpen(1)]],
        ['close-ok', () => [raw.channelCloseOk(1)]],
        ['reopen', () => [raw.channelOpen(1)]],
        ['declare', () => [raw.queueDeclare(1, '', { exclusive: true })]],
      ]);
    },
  },
  {
    name: 'chclose.404-close-ok-twice',
    what: '404 channel.close; close-ok; close-ok again',
    run: async (p) => {
      if (!(await provoke404(p))) return;
      await steps(p, [
        ['close-ok', () => [raw.channelCloseOk(1)]],
        ['close-ok#2', () => [raw.channelCloseOk(1)]],
      ]);
    },
  },
  {
    name: 'chclose.404-close-ok-then-declare',
    what: '404 channel.close; close-ok; queue.declare without reopening',
    run: async (p) => {
      if (!(await provoke404(p))) return;
      await steps(p, [
        ['close-ok', () => [raw.channelCloseOk(1)]],
        ['declare', () => [raw.queueDeclare(1, '', { exclusive: true })]],
      ]);
    },
  },
];

// ---------------------------------------------------------------- running and comparing

async function runScenario(sc: Scenario, target: Target): Promise<Observation> {
  const p = new Probe(target, !sc.noCloseOk);
  try {
    await sc.run(p);
    await p.collect(sc.windowMs ?? 12_000);
  } catch (e) {
    p.fail(`scenario error: ${(e as Error).message}`);
  }
  const obs = p.observation();
  p.client?.destroy();
  return obs;
}

async function runAll(target: Target, list: Scenario[], concurrency: number): Promise<Map<string, Observation>> {
  const out = new Map<string, Observation>();
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const sc = list[next++];
      out.set(sc.name, await runScenario(sc, target));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

function closeText(o: Observation): string {
  return o.closeKind === 'open' ? 'still open' : `${o.closeKind} +${o.closeMs}ms`;
}

function timesMatch(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a === b;
  if (a < 300 && b < 300) return true;
  return Math.abs(a - b) <= Math.max(600, 0.15 * Math.max(a, b));
}

function compare(a: Observation, b: Observation): string[] {
  const diffs: string[] = [];
  if (a.replies.join('\n') !== b.replies.join('\n')) diffs.push('replies');
  if (a.closeKind !== b.closeKind) diffs.push('close kind');
  else if (!timesMatch(a.closeMs, b.closeMs)) diffs.push('close timing');
  if (a.note || b.note) diffs.push('error');
  return diffs;
}

function summary(o: Observation): string {
  const r = o.replies.length ? o.replies.join('; ') : '(nothing)';
  return `${r}; ${closeText(o)}${o.note ? `; ${o.note}` : ''}`;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function parseArgs(argv: string[]) {
  const opts = {
    rabbit: 'amqp://guest:guest@127.0.0.1:5672',
    leveret: '',
    only: [] as string[],
    names: [] as string[],
    markdown: false,
    json: '',
    concurrency: 24,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rabbit') opts.rabbit = argv[++i];
    else if (a === '--leveret') opts.leveret = argv[++i];
    else if (a === '--only') opts.only.push(argv[++i]);
    else if (a === '--name') opts.names.push(argv[++i]);
    else if (a === '--markdown') opts.markdown = true;
    else if (a === '--json') opts.json = argv[++i];
    else if (a === '-j') opts.concurrency = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

function targetFrom(name: string, url: string): Target {
  const u = new URL(url);
  return { name, host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 5672 };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const selected = (s: Scenario) => opts.names.includes(s.name) || opts.only.some((o) => s.name.includes(o));
  const list = SCENARIOS.filter((s) => (!opts.only.length && !opts.names.length) || selected(s));
  let leveret: StartedBroker | undefined;
  if (!opts.leveret) {
    leveret = await startBroker();
    opts.leveret = leveret.url;
  }
  const rabbitT = targetFrom('RabbitMQ', opts.rabbit);
  const leveretT = targetFrom('Leveret', opts.leveret);
  console.error(`# ${list.length} scenarios; RabbitMQ ${rabbitT.host}:${rabbitT.port}, Leveret ${leveretT.host}:${leveretT.port}`);
  try {
    const [ra, le] = await Promise.all([runAll(rabbitT, list, opts.concurrency), runAll(leveretT, list, opts.concurrency)]);
    const rows = list.map((sc) => ({ sc, r: ra.get(sc.name)!, l: le.get(sc.name)!, diffs: compare(ra.get(sc.name)!, le.get(sc.name)!) }));
    if (opts.markdown) {
      console.log('| scenario | what | RabbitMQ 3.10 | Leveret | |');
      console.log('| --- | --- | --- | --- | --- |');
      for (const { sc, r, l, diffs } of rows) {
        console.log(
          `| \`${sc.name}\` | ${cell(sc.what)} | ${cell(summary(r))} | ${diffs.length ? cell(summary(l)) : 'same'} | ${diffs.length ? `**DIFF** (${diffs.join(', ')})` : 'MATCH'} |`,
        );
      }
    } else {
      for (const { sc, r, l, diffs } of rows) {
        console.log(`\n${diffs.length ? 'DIFF ' : 'MATCH'} ${sc.name}: ${sc.what}${diffs.length ? `  [${diffs.join(', ')}]` : ''}`);
        console.log(
          `  RabbitMQ: ${r.timeline.join(' | ') || '(nothing)'}${r.closeKind === 'open' ? ' | still open' : ''}${r.note ? ` | ${r.note}` : ''}`,
        );
        console.log(
          `  Leveret:  ${l.timeline.join(' | ') || '(nothing)'}${l.closeKind === 'open' ? ' | still open' : ''}${l.note ? ` | ${l.note}` : ''}`,
        );
      }
    }
    const nDiff = rows.filter((r) => r.diffs.length).length;
    console.error(`# ${rows.length - nDiff} MATCH, ${nDiff} DIFF`);
    if (opts.json)
      fs.writeFileSync(
        opts.json,
        JSON.stringify(
          rows.map(({ sc, r, l, diffs }) => ({ name: sc.name, what: sc.what, rabbitmq: r, leveret: l, diffs })),
          null,
          2,
        ),
      );
  } finally {
    await leveret?.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
