/**
 * Checks a message's `expiration` property the way RabbitMQ does at publish: a string of
 * an optionally signed integer, not negative. Returns the error RabbitMQ names (Erlang
 * terms, as in its 406 text), or null when valid.
 */
export function expirationError(exp: string): string | null {
  const m = /^[+-]?\d+/.exec(exp);
  if (m === null) return 'no_integer';
  const rest = exp.slice(m[0].length);
  if (rest !== '') return `{leftover_string,"${rest}"}`;
  const n = Number(m[0]);
  return n < 0 ? `{value_negative,${n}}` : null;
}
