import { Reader } from '../protocol/reader';
import {
  decodeBasicProperties,
  FLAG_DELIVERY_MODE,
  FLAG_CONTENT_TYPE,
  FLAG_CONTENT_ENCODING,
  FLAG_HEADERS,
  type BasicProperties,
} from '../protocol/generated';
import type { FieldTable } from '../protocol/types';
import { encodeProperties } from '../protocol/properties';

const reader = new Reader();

/**
 * A published message. One instance is shared by every queue it is routed to; the
 * properties stay in their encoded form (they are sent out again as they came in) and are
 * decoded only when something needs to look inside them.
 */
export class Message {
  private decoded: BasicProperties | null = null;
  /** Routing keys from a BCC header that was taken off (they still route dead-lettered copies). */
  bccKeys: string[] | null = null;
  /** Durable queues the message was routed to when it reached two or more (StorableMessage). */
  durableTargets = 0;
  private whole: Buffer;
  /** A large body kept as the pieces it arrived in (see BodyPieces), until something needs it whole. */
  private pieces: BodyPieces | null;

  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    /** property flags + property list, exactly as in the content header frame */
    readonly rawProperties: Buffer,
    body: Buffer,
    /** exchange and routing key as wire shortstrs, when the publisher's stream repeats them (deliveries copy them) */
    readonly route: Buffer | null = null,
    pieces: BodyPieces | null = null,
  ) {
    this.whole = body;
    this.pieces = pieces;
  }

  /** A message made from decoded properties (the management API's publish), encoded as a client sends them. */
  static fromProperties(exchange: string, routingKey: string, props: BasicProperties, body: Buffer): Message {
    return new Message(exchange, routingKey, encodeProperties(props), body);
  }

  get bodySize(): number {
    return this.pieces === null ? this.whole.length : this.pieces.size;
  }

  /**
   * The body in one Buffer. A body kept in pieces is joined here, once: what only sends or
   * stores it (bodyPieces, copyBody) never needs to.
   */
  get body(): Buffer {
    const pieces = this.pieces;
    if (pieces !== null) {
      this.whole = Buffer.concat(pieces.list, pieces.size);
      this.pieces = null;
    }
    return this.whole;
  }

  /** The body's pieces while it is kept in pieces, else null (then `body` is it, whole). */
  get bodyPieces(): readonly Buffer[] | null {
    return this.pieces === null ? null : this.pieces.list;
  }

  /** Copies the body into `target` at `at`, piece by piece when it is in pieces. */
  copyBody(target: Buffer, at: number): void {
    const pieces = this.pieces;
    if (pieces === null) {
      this.whole.copy(target, at);
      return;
    }
    const list = pieces.list;
    for (let i = 0; i < list.length; i++) at += list[i].copy(target, at);
  }

  get properties(): BasicProperties {
    if (this.decoded === null) this.decoded = decodeBasicProperties(reader.reset(this.rawProperties));
    return this.decoded;
  }

  get headers(): FieldTable | undefined {
    // Most messages carry no headers: answer from the flag word without decoding.
    if ((this.rawProperties.readUInt16BE(0) & FLAG_HEADERS) === 0) return undefined;
    return this.properties.headers;
  }

  /** delivery-mode 2, read straight from the encoded properties when it is cheap to. */
  get persistent(): boolean {
    const flags = this.rawProperties.readUInt16BE(0);
    if ((flags & FLAG_DELIVERY_MODE) === 0) return false;
    if ((flags & (FLAG_CONTENT_TYPE | FLAG_CONTENT_ENCODING | FLAG_HEADERS)) === 0) return this.rawProperties[2] === 2;
    return this.properties.deliveryMode === 2;
  }
}

/**
 * A large body as the slices of the socket's read buffers it arrived in: it is then neither
 * copied nor allocated a second time on its way through the broker. (For large bodies the
 * bytes allocated per message are what set how often V8 runs a full collection.)
 */
export interface BodyPieces {
  readonly list: Buffer[];
  /** the sum of the pieces' lengths */
  readonly size: number;
}
