import type { Socket } from 'node:net';

/**
 * Answers an AMQP client when this node has no leader to forward it to: the opening handshake
 * as far as connection.start / start-ok, then connection.close 320 (CONNECTION_FORCED) with a
 * reply text that says why. A socket closed at once would reach the client as "socket closed
 * abruptly" (amqplib), "connection closed" (amqp-client) or, worse, "incompatible protocol"
 * (pika, which reads an EOF before connection.start as a version mismatch); a connection.close
 * is shown with its code and text by all three, and all of them treat it as a connection error
 * worth retrying. RabbitMQ closes with 320 too when a node stops serving its clients.
 *
 * The bytes are written by hand: two fixed methods do not warrant the broker's codec, and this
 * directory must stay usable on its own.
 */
export function refuseAmqp(socket: Socket, replyText: string, timeoutMs: number): void {
  let received = Buffer.alloc(0);
  let startSent = false;
  let answered = false;
  const done = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  // A client that sends nothing (or never reads our close) must not hold the socket.
  const timer = setTimeout(done, timeoutMs);
  socket.on('error', done);
  socket.on('close', () => clearTimeout(timer));
  socket.on('data', (chunk: Buffer) => {
    if (answered) return; // close-ok or anything else: ignored until the timer or the client's close
    received = Buffer.concat([received, chunk]);
    if (!startSent) {
      if (received.length < 8) return;
      if (received.toString('latin1', 0, 4) !== 'AMQP') return done();
      socket.write(CONNECTION_START);
      startSent = true;
    }
    // start-ok: one method frame after the 8 bytes of protocol header
    if (received.length < 8 + 7) return;
    const size = received.readUInt32BE(8 + 3);
    if (size > MAX_START_OK) return done();
    if (received.length < 8 + 7 + size + 1) return;
    answered = true;
    received = Buffer.alloc(0);
    socket.end(connectionClose(replyText));
  });
  // The forwarder pauses a client while it connects to the leader: flowing again, whatever
  // arrived meanwhile is read here.
  socket.resume();
}

/** A start-ok carries a few client properties and credentials: more is not a client. */
const MAX_START_OK = 64 * 1024;

function methodFrame(payload: Buffer): Buffer {
  const head = Buffer.alloc(7);
  head.writeUInt8(1, 0); // method frame
  head.writeUInt16BE(0, 1); // channel 0
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([0xce])]);
}

function longstr(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length, 0);
  return Buffer.concat([len, b]);
}

function shortstr(s: string): Buffer {
  const b = Buffer.from(s, 'utf8').subarray(0, 255);
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** connection.start 0-9 with a product name, PLAIN and AMQPLAIN, en_US. */
const CONNECTION_START = ((): Buffer => {
  const props = Buffer.concat([shortstr('product'), Buffer.from('S'), longstr('Leveret')]);
  const propsLen = Buffer.alloc(4);
  propsLen.writeUInt32BE(props.length, 0);
  const head = Buffer.alloc(6);
  head.writeUInt16BE(10, 0); // connection
  head.writeUInt16BE(10, 2); // start
  head.writeUInt8(0, 4);
  head.writeUInt8(9, 5);
  return methodFrame(Buffer.concat([head, propsLen, props, longstr('PLAIN AMQPLAIN'), longstr('en_US')]));
})();

/** connection.close 320 with the reason; class and method 0: not caused by a client method. */
function connectionClose(replyText: string): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt16BE(10, 0); // connection
  head.writeUInt16BE(50, 2); // close
  head.writeUInt16BE(320, 4); // CONNECTION_FORCED
  return methodFrame(Buffer.concat([head, shortstr(`CONNECTION_FORCED - ${replyText}`), Buffer.alloc(4)]));
}
