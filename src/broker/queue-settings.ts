import type { FieldTable } from '../protocol/types';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

/**
 * What a queue's arguments and its policy make of it. Arguments fixed at declaration
 * (priority levels, single active consumer) come only from arguments; the rest may also
 * come from a policy, and may change while the queue lives.
 */
export interface QueueSettings {
  /** ms a message may wait in the queue (x-message-ttl / message-ttl) */
  messageTtl: number | null;
  /** ms the queue may go unused before it is deleted (x-expires / expires) */
  expires: number | null;
  maxLength: number | null;
  maxLengthBytes: number | null;
  overflow: Overflow;
  deadLetterExchange: string | null;
  deadLetterRoutingKey: string | null;
  maxPriority: number | null;
  singleActiveConsumer: boolean;
}

/** A policy definition as RabbitMQ names its keys. */
export type PolicyDefinition = Record<string, unknown>;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'bigint' ? Number(v) : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : null);

/** Smaller of two limits, either of which may be absent. */
function lower(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/**
 * Merges (already validated) queue arguments with the definition of the policy that
 * applies, as RabbitMQ does: for TTLs, expiry and length limits the lower value wins;
 * otherwise the queue's own argument wins over the policy.
 */
export function queueSettings(args: FieldTable, policy: PolicyDefinition | null): QueueSettings {
  const p = policy ?? {};
  const overflow = str(args['x-overflow']) ?? str(p['overflow']) ?? 'drop-head';
  return {
    messageTtl: lower(num(args['x-message-ttl']), num(p['message-ttl'])),
    expires: lower(num(args['x-expires']), num(p['expires'])),
    maxLength: lower(num(args['x-max-length']), num(p['max-length'])),
    maxLengthBytes: lower(num(args['x-max-length-bytes']), num(p['max-length-bytes'])),
    overflow: overflow === 'reject-publish' || overflow === 'reject-publish-dlx' ? overflow : 'drop-head',
    deadLetterExchange: str(args['x-dead-letter-exchange']) ?? str(p['dead-letter-exchange']),
    deadLetterRoutingKey: str(args['x-dead-letter-routing-key']) ?? str(p['dead-letter-routing-key']),
    maxPriority: num(args['x-max-priority']),
    singleActiveConsumer: args['x-single-active-consumer'] === true,
  };
}
