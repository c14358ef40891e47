import { badRequest } from './errors';

/**
 * The JSON object a PUT or POST carries. RabbitMQ reads the body as JSON whatever its
 * content type (curl -d sends a form type), takes an empty body as {}, and refuses other
 * bodies with 400 "not_json".
 */
export function jsonObject(raw: unknown): Record<string, unknown> {
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : '';
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest('not_json');
  }
  if (typeof value === 'string') {
    throw badRequest('invalid payload: the request body JSON-decoded to a string. Is the input doubly-JSON-encoded?');
  }
  // RabbitMQ fails these with a bare 500; a 400 says what is wrong.
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badRequest('not_json');
  return value as Record<string, unknown>;
}

/** A key of a JSON object, only when the object itself has it (never its prototype's). */
export function field(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/**
 * Tags as RabbitMQ takes them: a comma-separated string or a list of strings, blanks
 * around them dropped; absent means none. Other values are a 400 (RabbitMQ fails with 500).
 */
export function parseTags(raw: unknown): string[] {
  if (raw === undefined) return [];
  let items: unknown[];
  if (typeof raw === 'string') items = raw.split(',');
  else if (Array.isArray(raw)) items = raw;
  else throw badRequest('tags must be a comma-separated string or a list of strings');
  if (!items.every((t) => typeof t === 'string')) throw badRequest('tags must be a comma-separated string or a list of strings');
  return items.map((t) => t.trim()).filter((t) => t !== '');
}
