import type { QueueEntry } from '../../broker/queue-entry';
import type { BasicProperties } from '../../protocol/generated';
import { tableJson } from './field-json';

type Obj = Record<string, unknown>;

/** The AMQP basic properties under RabbitMQ's JSON names. */
export const PROPERTY_NAMES: ReadonlyArray<[keyof BasicProperties, string]> = [
  ['contentType', 'content_type'],
  ['contentEncoding', 'content_encoding'],
  ['headers', 'headers'],
  ['deliveryMode', 'delivery_mode'],
  ['priority', 'priority'],
  ['correlationId', 'correlation_id'],
  ['replyTo', 'reply_to'],
  ['expiration', 'expiration'],
  ['messageId', 'message_id'],
  ['timestamp', 'timestamp'],
  ['type', 'type'],
  ['userId', 'user_id'],
  ['appId', 'app_id'],
  ['clusterId', 'cluster_id'],
];

/**
 * The properties as RabbitMQ renders them: only those set, headers as JSON; none at all
 * comes out as an empty list (RabbitMQ's rendering of an empty Erlang proplist).
 */
export function propertiesJson(p: BasicProperties): Obj | [] {
  const out: Obj = {};
  for (const [key, name] of PROPERTY_NAMES) {
    const v = p[key];
    if (v === undefined) continue;
    out[name] = key === 'headers' ? tableJson(v as NonNullable<BasicProperties['headers']>) : v;
  }
  return Object.keys(out).length === 0 ? [] : out;
}

/** One message of POST /api/queues/{vhost}/{name}/get. */
export function gotMessageJson(entry: QueueEntry, remaining: number, encoding: 'auto' | 'base64', truncate: number | null): Obj {
  const msg = entry.message;
  const body = truncate === null ? msg.body : msg.body.subarray(0, truncate);
  // auto: text when the bytes are valid UTF-8, else base64.
  const text = encoding === 'auto' ? utf8(body) : null;
  return {
    payload_bytes: msg.body.length,
    redelivered: entry.redelivered,
    exchange: msg.exchange,
    routing_key: msg.routingKey,
    message_count: remaining,
    properties: propertiesJson(msg.properties),
    payload: text ?? body.toString('base64'),
    payload_encoding: text === null ? 'base64' : 'string',
  };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function utf8(b: Buffer): string | null {
  try {
    return decoder.decode(b);
  } catch {
    return null;
  }
}
