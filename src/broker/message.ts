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

  constructor(
    readonly exchange: string,
    readonly routingKey: string,
    /** property flags + property list, exactly as in the content header frame */
    readonly rawProperties: Buffer,
    readonly body: Buffer,
    /** exchange and routing key as wire shortstrs, when the publisher's stream repeats them (deliveries copy them) */
    readonly route: Buffer | null = null,
  ) {}

  /** A message made from decoded properties (the management API's publish), encoded as a client sends them. */
  static fromProperties(exchange: string, routingKey: string, props: BasicProperties, body: Buffer): Message {
    return new Message(exchange, routingKey, encodeProperties(props), body);
  }

  get bodySize(): number {
    return this.body.length;
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
