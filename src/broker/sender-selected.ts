import { encodeProperties } from '../protocol/properties';
import { copyTable, type FieldValue } from '../protocol/types';
import { Message } from './message';

/**
 * Sender-selected distribution: routing keys in a message's CC and BCC headers route it
 * too, and BCC is taken off before anyone sees it. Returns null when neither is present.
 */
export function senderSelected(msg: Message): { keys: string[]; message: Message } | null {
  const headers = msg.headers;
  if (headers === undefined || (headers.CC === undefined && headers.BCC === undefined)) return null;
  const keys = [...strings(headers.CC), ...strings(headers.BCC)];
  if (headers.BCC === undefined) return { keys, message: msg };
  // copyTable, not a spread: the other headers keep the wire types they were published with.
  const props = { ...msg.properties, headers: copyTable(headers) };
  delete props.headers.BCC;
  const message = new Message(msg.exchange, msg.routingKey, encodeProperties(props), msg.body);
  message.bccKeys = strings(headers.BCC);
  return { keys, message };
}

function strings(v: FieldValue | undefined): string[] {
  return Array.isArray(v) ? v.filter((k): k is string => typeof k === 'string') : [];
}
