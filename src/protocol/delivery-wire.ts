import { BASIC_DELIVER } from './generated';

/**
 * Wire pieces a delivery repeats: the basic.deliver frame's head up to and including the
 * consumer tag (the same for every delivery to one consumer) and the exchange and routing
 * key as two shortstrs (the same for every message of one publisher's stream). Encoding
 * them once lets `Writer.delivery` copy bytes instead of encoding three strings per message.
 */

/** Frame type, channel, a size the writer fills in, class and method, and the consumer tag. */
export function deliverPrefix(channel: number, consumerTag: string): Buffer {
  const tag = Buffer.from(consumerTag, 'utf8');
  if (tag.length > 255) throw new RangeError('shortstr longer than 255 bytes');
  const b = Buffer.alloc(12 + tag.length);
  b[0] = 1;
  b.writeUInt16BE(channel, 1);
  b.writeUInt32BE(BASIC_DELIVER >>> 0, 7);
  b[11] = tag.length;
  tag.copy(b, 12);
  return b;
}

/** shortstr exchange + shortstr routing key, as basic.deliver, basic.get-ok and basic.return carry them. */
export function routeWire(exchange: string, routingKey: string): Buffer {
  const exLen = exchange.length;
  const rkLen = routingKey.length;
  // Names are mostly short ASCII: char codes are copied here without the native encoder.
  if (exLen < 128 && rkLen < 128 && isAscii(exchange) && isAscii(routingKey)) {
    const b = Buffer.allocUnsafe(2 + exLen + rkLen);
    b[0] = exLen;
    for (let i = 0; i < exLen; i++) b[1 + i] = exchange.charCodeAt(i);
    const at = 1 + exLen;
    b[at] = rkLen;
    for (let i = 0; i < rkLen; i++) b[at + 1 + i] = routingKey.charCodeAt(i);
    return b;
  }
  const ex = Buffer.byteLength(exchange);
  const rk = Buffer.byteLength(routingKey);
  if (ex > 255 || rk > 255) throw new RangeError('shortstr longer than 255 bytes');
  const b = Buffer.allocUnsafe(2 + ex + rk);
  b[0] = ex;
  b.write(exchange, 1, 'utf8');
  b[1 + ex] = rk;
  b.write(routingKey, 2 + ex, 'utf8');
  return b;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
