import type { FieldTable, FieldValue } from '../../protocol/types';
import { BindingSet } from './binding-set';
import { Exchange, type Binding, type BindingDestination } from './exchange';
import { fieldValuesEqual } from './field-equality';
import type { RouteTargets } from './route-targets';

const X_MATCH_VALUES = ['all', 'any', 'all-with-x', 'any-with-x'];

/** A binding reduced to what matching needs, prepared once at bind time. */
interface Matcher {
  readonly binding: Binding;
  readonly any: boolean;
  readonly keys: readonly string[];
  /** `null` means "header present, any value" (an AMQP void in the binding). */
  readonly values: readonly FieldValue[];
}

/**
 * Why RabbitMQ would refuse these binding arguments on a headers exchange (406
 * PRECONDITION_FAILED), or undefined if they are fine. The exchange model itself accepts
 * anything and treats an unknown x-match as `all`, as RabbitMQ does for old bindings.
 */
export function headersBindingError(args: FieldTable): string | undefined {
  const xMatch = args['x-match'];
  if (xMatch === undefined) return undefined;
  if (typeof xMatch !== 'string') return `Invalid x-match field type; expected longstr`;
  if (X_MATCH_VALUES.includes(xMatch)) return undefined;
  return `Invalid x-match field value ${JSON.stringify(xMatch)}; expected all, any, all-with-x, or any-with-x`;
}

function compile(binding: Binding): Matcher {
  const args = binding.args;
  const xMatch = args['x-match'];
  const mode = typeof xMatch === 'string' && X_MATCH_VALUES.includes(xMatch) ? xMatch : 'all';
  const withX = mode.endsWith('-with-x');
  const keys: string[] = [];
  const values: FieldValue[] = [];
  for (const key of Object.keys(args)) {
    const value = args[key];
    // x-match never takes part, not even in the *-with-x modes (checked against 3.10).
    if (value === undefined || key === 'x-match') continue;
    if (!withX && key.startsWith('x-')) continue;
    keys.push(key);
    values.push(value);
  }
  return { binding, any: mode.startsWith('any'), keys, values };
}

/** Numbers of every AMQP width, floats and timestamps (in seconds) all compare by value. */
function numeric(v: FieldValue): number | bigint | undefined {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  if (v instanceof Date) return v.getTime() / 1000;
  return undefined;
}

/**
 * RabbitMQ 3.10 compares a top-level header with Erlang's `==` on the raw values, which
 * gives these rules (all checked against 3.10): any two numbers compare by value (byte 1
 * = double 1.0 = timestamp 1), a long string equals a byte array with the same bytes,
 * and everything else must be the same kind and equal, nested values strictly.
 */
function headerValueMatches(expected: FieldValue, actual: FieldValue): boolean {
  if (expected === actual) return true;
  const n = numeric(expected);
  if (n !== undefined) {
    const m = numeric(actual);
    return m !== undefined && n == m;
  }
  if (typeof expected === 'string') {
    return Buffer.isBuffer(actual) && actual.equals(Buffer.from(expected, 'utf8'));
  }
  if (Buffer.isBuffer(expected) && typeof actual === 'string') {
    return expected.equals(Buffer.from(actual, 'utf8'));
  }
  return fieldValuesEqual(expected, actual);
}

function matches(m: Matcher, headers: FieldTable | undefined): boolean {
  const { keys, values } = m;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    // hasOwn: decoded tables are plain objects, and a header called "constructor" or
    // "toString" must not be found on the prototype.
    const actual = headers !== undefined && Object.hasOwn(headers, key) ? headers[key] : undefined;
    const expected = values[i];
    const hit = actual !== undefined && (expected === null || headerValueMatches(expected, actual));
    if (hit === m.any) return hit; // all: decided by the first miss; any: by the first hit
  }
  // all: nothing failed (an empty list matches every message, even one without headers);
  // any: nothing hit (an empty list matches nothing).
  return !m.any;
}

/** Routes on message headers against binding arguments, per the binding's x-match. */
export class HeadersExchange extends Exchange {
  readonly type = 'headers';
  private readonly all = new BindingSet();
  private readonly matchers: Matcher[] = [];

  bind(binding: Binding): boolean {
    const stored = this.all.add(binding);
    if (!stored) return false;
    this.matchers.push(compile(stored));
    return true;
  }

  unbind(binding: Binding): boolean {
    const stored = this.all.remove(binding);
    if (!stored) return false;
    this.drop(stored);
    return true;
  }

  unbindDestination(dest: BindingDestination): void {
    for (const stored of this.all.removeDestination(dest)) this.drop(stored);
  }

  route(_routingKey: string, headers: FieldTable | undefined, out: RouteTargets): void {
    const matchers = this.matchers;
    for (let i = 0; i < matchers.length; i++) {
      const m = matchers[i];
      if (matches(m, headers)) out.add(m.binding.destination);
    }
  }

  bindings(): Iterable<Binding> {
    return this.all;
  }

  get bindingCount(): number {
    return this.all.size;
  }

  /** Bind/unbind are rare next to routing, so a linear scan beats keeping an index. */
  private drop(stored: Binding): void {
    const i = this.matchers.findIndex((m) => m.binding === stored);
    if (i >= 0) this.matchers.splice(i, 1);
  }
}
