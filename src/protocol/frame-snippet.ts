import { erlBinary } from './erlang-terms';

/**
 * How RabbitMQ quotes a frame it refuses: its type and payload, the payload whole when it
 * is short and cut to its first 16 octets otherwise.
 */
export function frameSnippet(type: number, payload: Buffer): string {
  if (payload.length <= 16) return `type ${type}, all octets = ${erlBinary(payload)}`;
  return `type ${type}, first 16 octets = ${erlBinary(payload.subarray(0, 16))}`;
}
