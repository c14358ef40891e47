import type { PolicyDefinition } from './queue-settings';

export type ApplyTo = 'queues' | 'exchanges' | 'all';

export interface Policy {
  readonly name: string;
  readonly pattern: string;
  readonly applyTo: ApplyTo;
  readonly priority: number;
  readonly definition: PolicyDefinition;
}

export class PolicyError extends Error {
  override name = 'PolicyError';
}

const nonNegativeInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const string = (v: unknown): boolean => typeof v === 'string';

/** The policy keys the engine applies, with what a valid value is. */
const KEYS: Record<string, { valid: (v: unknown) => boolean; expect: string }> = {
  'message-ttl': { valid: nonNegativeInt, expect: 'a non-negative integer' },
  expires: { valid: (v) => nonNegativeInt(v) && (v as number) > 0, expect: 'a positive integer' },
  'max-length': { valid: nonNegativeInt, expect: 'a non-negative integer' },
  'max-length-bytes': { valid: nonNegativeInt, expect: 'a non-negative integer' },
  overflow: {
    valid: (v) => v === 'drop-head' || v === 'reject-publish' || v === 'reject-publish-dlx',
    expect: "'drop-head', 'reject-publish' or 'reject-publish-dlx'",
  },
  'dead-letter-exchange': { valid: string, expect: 'a string' },
  'dead-letter-routing-key': { valid: string, expect: 'a string' },
  'alternate-exchange': { valid: string, expect: 'a string' },
  'queue-mode': { valid: (v) => v === 'default' || v === 'lazy', expect: "'default' or 'lazy'" },
};

/**
 * Whether `value` is a valid value for the policy key `key`; undefined when the engine does
 * not know the key (callers that word their own refusals, like the HTTP API, ask this).
 */
export function policyValueValid(key: string, value: unknown): boolean | undefined {
  return Object.hasOwn(KEYS, key) ? KEYS[key].valid(value) : undefined;
}

/** Checks a policy as RabbitMQ would before accepting it; throws PolicyError saying what is wrong. */
export function validatePolicy(p: Policy): void {
  if (p.name === '') throw new PolicyError('policy name must not be empty');
  try {
    new RegExp(p.pattern);
  } catch {
    throw new PolicyError(`pattern '${p.pattern}' is not a valid regular expression`);
  }
  if (p.applyTo !== 'queues' && p.applyTo !== 'exchanges' && p.applyTo !== 'all') {
    throw new PolicyError(`apply-to '${String(p.applyTo)}' must be 'queues', 'exchanges' or 'all'`);
  }
  if (!Number.isInteger(p.priority)) throw new PolicyError('priority must be an integer');
  const keys = Object.keys(p.definition);
  if (keys.length === 0) throw new PolicyError('definition must not be empty');
  for (const k of keys) {
    const rule = KEYS[k];
    if (rule === undefined) throw new PolicyError(`'${k}' is not a valid policy key`);
    if (!rule.valid(p.definition[k])) throw new PolicyError(`${k} must be ${rule.expect}, got ${JSON.stringify(p.definition[k])}`);
  }
}

/**
 * A vhost's policies. The one that applies to a queue or exchange is the highest
 * priority policy whose pattern matches its name and whose apply-to covers its kind.
 */
export class PolicySet {
  private readonly byName = new Map<string, { policy: Policy; regex: RegExp }>();

  get all(): Policy[] {
    return [...this.byName.values()].map((e) => e.policy);
  }

  set(p: Policy): void {
    validatePolicy(p);
    this.byName.set(p.name, { policy: p, regex: new RegExp(p.pattern) });
  }

  delete(name: string): boolean {
    return this.byName.delete(name);
  }

  get(name: string): Policy | undefined {
    return this.byName.get(name)?.policy;
  }

  match(kind: 'queue' | 'exchange', name: string): Policy | null {
    let best: Policy | null = null;
    for (const { policy, regex } of this.byName.values()) {
      if (policy.applyTo !== 'all' && policy.applyTo !== (kind === 'queue' ? 'queues' : 'exchanges')) continue;
      if (!regex.test(name)) continue;
      if (best === null || policy.priority > best.priority) best = policy;
    }
    return best;
  }
}
