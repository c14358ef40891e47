/**
 * One fuzzing connection over a real socket: the handshake (itself mutated now and then),
 * a run of valid methods with mutated frames among them, then a channel.open used as a
 * probe: its open-ok says the broker read everything before it and the connection lives.
 */
import net from 'node:net';
import { Rng } from './rng';
import { PROTOCOL_HEADER, channelOpen, clientMethod, encode, handshake } from './corpus';
import { mutate, type MutationContext } from './mutate';
import * as M from '../src/protocol/generated';

export interface SessionOptions {
  host: string;
  port: number;
  seed: number;
  /** frames to send after the handshake */
  frames: number;
  /** share of methods sent mutated */
  mutationRate: number;
  /** how long to wait for the probe's answer */
  timeoutMs: number;
}

export interface SessionResult {
  seed: number;
  framesSent: number;
  /** 'alive', 'close <code>', 'dropped' (TCP closed without connection.close) or 'silent' */
  outcome: string;
  /** reply codes of the channel.close methods the broker sent */
  channelCloses: number[];
  /** mutation kinds sent */
  kinds: string[];
}

const PROBE_CHANNEL = 1999;
const HANDSHAKE_PATIENCE_MS = 10_000;
const FRAME_MAX = 131072;
const CHANNEL_MAX = 2047;

/** Reads the broker's frames, answering closes so that the broker can let go at once. */
class Peer {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: ((id: number, ch: number) => void) | null = null;
  closeCode: number | null = null;
  readonly channelCloses: number[] = [];
  ended = false;
  private onEnd: (() => void) | null = null;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.onEnd?.();
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    while (this.buf.length >= 7) {
      if (this.buf[0] === 0x41) {
        // A protocol header back: the broker refused ours.
        this.buf = Buffer.alloc(0);
        return;
      }
      const size = this.buf.readUInt32BE(3);
      if (this.buf.length < size + 8) return;
      const type = this.buf[0];
      const ch = this.buf.readUInt16BE(1);
      const payload = this.buf.subarray(7, 7 + size);
      this.buf = this.buf.subarray(size + 8);
      if (type === 1 && size >= 4) this.onMethod(ch, payload.readUInt32BE(0), payload);
    }
  }

  private onMethod(ch: number, id: number, payload: Buffer): void {
    if (id === M.CONNECTION_CLOSE) {
      this.closeCode = payload.readUInt16BE(4);
      this.write(encode((w) => M.encodeConnectionCloseOk(w, 0)));
    } else if (id === M.CHANNEL_CLOSE) {
      this.channelCloses.push(payload.readUInt16BE(4));
      this.write(encode((w) => M.encodeChannelCloseOk(w, ch)));
    }
    this.waiting?.(id, ch);
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Waits for method `id` on `ch`; false on a connection.close, the socket's end or the timeout. */
  waitFor(id: number, ch: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.ended || this.closeCode !== null) return resolve(false);
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.waiting = null;
        this.onEnd = null;
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiting = (got, gotCh) => {
        if (got === id && gotCh === ch) done(true);
        else if (got === M.CONNECTION_CLOSE) done(false);
      };
      this.onEnd = () => done(false);
    });
  }
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    s.setNoDelay(true);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `bytes` in a few writes cut at random places, so frames straddle TCP segments. */
function sendCut(peer: Peer, rng: Rng, bytes: Buffer): void {
  let at = 0;
  while (at < bytes.length) {
    const n = rng.chance(0.7) ? bytes.length - at : 1 + rng.int(bytes.length - at);
    peer.write(bytes.subarray(at, at + n));
    at += n;
  }
}

export async function fuzzSession(o: SessionOptions): Promise<SessionResult> {
  const rng = new Rng(o.seed);
  const socket = await connect(o.host, o.port);
  const peer = new Peer(socket);
  const result: SessionResult = { seed: o.seed, framesSent: 0, outcome: 'alive', channelCloses: peer.channelCloses, kinds: [] };
  const hs = handshake(FRAME_MAX, CHANNEL_MAX);
  const ctx: MutationContext = { rng, channels: [1, 2, 3], frameMax: FRAME_MAX, channelMax: CHANNEL_MAX };
  try {
    if (rng.chance(0.08)) {
      // The handshake itself goes wrong: a bad header, or one of its methods mutated or missing.
      const steps: Buffer[][] = [[PROTOCOL_HEADER], [hs.startOk], [hs.tuneOk], [hs.open]];
      const at = rng.int(4);
      const m =
        at === 0
          ? { kind: 'protocol-header', frames: [rng.chance(0.5) ? rng.bytes(8) : Buffer.from('AMQP\x00\x00\x09\x00', 'latin1')] }
          : mutate(steps[at], ctx);
      if (rng.chance(0.2)) m.frames = [];
      steps[at] = m.frames;
      result.kinds.push(`handshake:${m.kind}`);
      const bytes = Buffer.concat(steps.flat());
      result.framesSent += steps.flat().length;
      sendCut(peer, rng, bytes);
      result.outcome = (await peer.waitFor(M.CONNECTION_OPEN_OK, 0, o.timeoutMs)) ? 'alive' : outcomeOf(peer);
      return result;
    }
    // A valid handshake must always succeed: it gets longer than a probe, so that a
    // loaded machine (npm test runs suites side by side) is not taken for a finding.
    const patience = Math.max(o.timeoutMs, HANDSHAKE_PATIENCE_MS);
    peer.write(PROTOCOL_HEADER);
    if (!(await peer.waitFor(M.CONNECTION_START, 0, patience))) throw new Error('no connection.start');
    peer.write(hs.startOk);
    if (!(await peer.waitFor(M.CONNECTION_TUNE, 0, patience))) throw new Error('no connection.tune');
    peer.write(Buffer.concat([hs.tuneOk, hs.open, channelOpen(1), channelOpen(2), channelOpen(3)]));
    result.framesSent += 6;
    if (!(await peer.waitFor(M.CHANNEL_OPEN_OK, 3, patience))) throw new Error('no channel.open-ok');

    const parts: Buffer[] = [];
    let frames = 0;
    while (frames < o.frames) {
      let unit = clientMethod(rng, rng.pick(ctx.channels));
      if (rng.chance(o.mutationRate)) {
        const m = mutate(unit, ctx);
        result.kinds.push(m.kind);
        unit = m.frames;
      }
      parts.push(...unit);
      frames += Math.max(1, unit.length);
    }
    parts.push(channelOpen(PROBE_CHANNEL));
    result.framesSent += frames + 1;
    sendCut(peer, rng, Buffer.concat(parts));
    result.outcome = (await peer.waitFor(M.CHANNEL_OPEN_OK, PROBE_CHANNEL, o.timeoutMs)) ? 'alive' : outcomeOf(peer);
    return result;
  } catch (err) {
    // The broker did not complete a valid handshake: a finding of its own.
    result.outcome = `handshake failed: ${(err as Error).message}`;
    return result;
  } finally {
    socket.destroy();
  }
}

function outcomeOf(peer: Peer): string {
  if (peer.closeCode !== null) return `close ${peer.closeCode}`;
  return peer.ended ? 'dropped' : 'silent';
}
