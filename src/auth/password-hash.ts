import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Passwords as RabbitMQ stores them, so that users move between RabbitMQ and Leveret with
 * their hashes (definitions exports): password_hash = base64(salt ++ H(salt ++ utf8(password)))
 * with a 4-byte random salt, H named by the user's hashing_algorithm.
 */
const DIGESTS = {
  rabbit_password_hashing_sha256: 'sha256',
  rabbit_password_hashing_sha512: 'sha512',
  rabbit_password_hashing_md5: 'md5',
} as const;

export type HashingAlgorithm = keyof typeof DIGESTS;

/** RabbitMQ's default (password_hashing_module) since 3.6. */
export const DEFAULT_HASHING_ALGORITHM: HashingAlgorithm = 'rabbit_password_hashing_sha256';

const SALT_BYTES = 4;

export const HASHING_ALGORITHMS = Object.keys(DIGESTS) as HashingAlgorithm[];

export function isHashingAlgorithm(name: unknown): name is HashingAlgorithm {
  return typeof name === 'string' && Object.hasOwn(DIGESTS, name);
}

function digest(algorithm: HashingAlgorithm, salt: Buffer, password: string): Buffer {
  return createHash(DIGESTS[algorithm]).update(salt).update(password, 'utf8').digest();
}

/** A fresh salted hash of the password, base64 as in RabbitMQ's password_hash. */
export function hashPassword(password: string, algorithm: HashingAlgorithm = DEFAULT_HASHING_ALGORITHM): string {
  const salt = randomBytes(SALT_BYTES);
  return Buffer.concat([salt, digest(algorithm, salt, password)]).toString('base64');
}

/**
 * Whether the password matches the stored hash. An empty hash (a user created without a
 * password) and a hash of the wrong length never match.
 */
export function verifyPassword(password: string, passwordHash: string, algorithm: HashingAlgorithm): boolean {
  const stored = Buffer.from(passwordHash, 'base64');
  const salt = stored.subarray(0, SALT_BYTES);
  const expected = stored.subarray(SALT_BYTES);
  // Hash even when the stored value is unusable, so that a refusal takes the same time.
  const given = digest(algorithm, salt.length === SALT_BYTES ? salt : Buffer.alloc(SALT_BYTES), password);
  if (passwordHash === '' || salt.length !== SALT_BYTES || expected.length !== given.length) return false;
  return timingSafeEqual(expected, given);
}

/**
 * Strict base64 as RabbitMQ's decoder takes it (Node's own decoder accepts anything): the
 * management API refuses other password_hash values with ["not_base64", value].
 */
export function isBase64(text: string): boolean {
  return text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);
}
