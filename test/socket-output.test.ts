/**
 * SocketOutput over a real TCP socket whose peer does not read for a while: the writer's
 * blocks are filled again only once the socket has written everything handed to it, so
 * the bytes that arrive are exactly the frames written, in order, however far the socket
 * backed up in between.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketOutput, type OutputHost } from '../src/server/socket-output';

const sockets: net.Socket[] = [];
const servers: net.Server[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

async function socketPair(): Promise<{ ours: net.Socket; peer: net.Socket }> {
  const server = net.createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const ours = await accepted;
  sockets.push(ours, peer);
  return { ours, peer };
}

const host: OutputHost = {
  outputBackedUp() {},
  internalError(err) {
    throw err;
  },
  flushFault() {},
  mayConfirm: () => true,
};

/** Frame i's payload: a size in [0, 3000) and bytes derived from i. */
function payload(i: number): Buffer {
  const b = Buffer.allocUnsafe((i * 131) % 3000);
  for (let k = 0; k < b.length; k++) b[k] = (i + k * 7) & 0xff;
  return b;
}

describe('SocketOutput', () => {
  it('never writes over bytes the socket still holds', async () => {
    const { ours, peer } = await socketPair();
    peer.pause();
    const received: Buffer[] = [];
    peer.on('data', (d: Buffer) => received.push(d));
    const out = new SocketOutput(ours, host);
    const expected: Buffer[] = [];
    let heldBack = 0;
    // Frames in small flushes: once the kernel's buffers are full every flush leaves bytes
    // with the socket, and the writes that follow must go to other memory.
    for (let i = 0; i < 40000; i++) {
      const p = payload(i);
      const w = out.writer;
      w.beginFrame(3, 1);
      w.ensure(p.length);
      p.copy(w.buf, w.pos);
      w.pos += p.length;
      w.endFrame();
      const frame = Buffer.alloc(8 + p.length);
      frame[0] = 3;
      frame.writeUInt16BE(1, 1);
      frame.writeUInt32BE(p.length, 3);
      p.copy(frame, 7);
      frame[7 + p.length] = 0xce;
      expected.push(frame);
      if (i % 3 === 2) {
        out.flush();
        if (ours.writableLength > 0) heldBack++;
      }
      // Now and then the peer reads a little, so the socket drains in part.
      if (i % 5000 === 4999) {
        peer.resume();
        await new Promise((r) => setImmediate(r));
        peer.pause();
      }
    }
    out.flush();
    peer.resume();
    const total = expected.reduce((n, b) => n + b.length, 0);
    while (received.reduce((n, b) => n + b.length, 0) < total) await new Promise((r) => setTimeout(r, 10));
    expect(heldBack).toBeGreaterThan(100);
    expect(Buffer.concat(received).equals(Buffer.concat(expected))).toBe(true);
  }, 30_000);

  it('confirms due are sent at the flush only while the host may confirm (a cluster leader past its lease never sends them)', async () => {
    const { ours } = await socketPair();
    let leads = true;
    const out = new SocketOutput(ours, { ...host, mayConfirm: () => leads });
    const sent: string[] = [];
    out.confirms({ flush: () => sent.push('a') });
    out.flush();
    expect(sent).toEqual(['a']);
    // released while leading, flushed after the lease ran out (a pause in between): dropped
    out.confirms({ flush: () => sent.push('b') });
    leads = false;
    out.flush();
    out.flush();
    expect(sent).toEqual(['a']);
  });
});
