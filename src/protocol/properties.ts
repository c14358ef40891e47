import { Writer } from './writer';
import { encodeBasicProperties, type BasicProperties } from './generated';

/** Content properties encoded on their own (flags + list), as a message keeps them. */
export function encodeProperties(props: BasicProperties): Buffer {
  const w = new Writer();
  encodeBasicProperties(w, props);
  return Buffer.concat(w.take());
}
