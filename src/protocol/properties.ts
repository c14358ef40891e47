import { Writer } from './writer';
import { encodeBasicProperties, type BasicProperties } from './generated';

/**
 * Content properties encoded on their own (flags + list), as a message keeps them. Headers
 * decoded by the Reader carry their wire types (WIRE_TYPES), which the Writer honours.
 */
export function encodeProperties(props: BasicProperties): Buffer {
  const w = new Writer();
  encodeBasicProperties(w, props);
  return Buffer.concat(w.take());
}
