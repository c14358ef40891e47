import { DEFAULT_HASHING_ALGORITHM, hashPassword, verifyPassword, type HashingAlgorithm } from './password-hash';

/** A user as RabbitMQ's internal database holds one (its password only as a salted hash). */
export interface User {
  readonly name: string;
  /** base64(salt ++ hash), RabbitMQ's password_hash; "" when the user has no password */
  readonly passwordHash: string;
  readonly hashingAlgorithm: HashingAlgorithm;
  readonly tags: string[];
}

/** A user with this password, hashed as RabbitMQ hashes a new one. */
export function userWithPassword(name: string, password: string, tags: string[] = []): User {
  return { name, passwordHash: hashPassword(password), hashingAlgorithm: DEFAULT_HASHING_ALGORITHM, tags };
}

/**
 * The broker's users, in memory. Changes that must be stored go through the Broker, which
 * writes them down first; this map is only what is in force.
 */
export class UserStore {
  private readonly users = new Map<string, User>();

  constructor(private readonly loopbackOnly: ReadonlySet<string>) {}

  get size(): number {
    return this.users.size;
  }

  get(name: string): User | undefined {
    return this.users.get(name);
  }

  /** Every user, by name (as RabbitMQ lists them). */
  list(): User[] {
    return [...this.users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  set(user: User): void {
    this.users.set(user.name, user);
  }

  delete(name: string): boolean {
    return this.users.delete(name);
  }

  /** Adds (or replaces) a user with a password; kept in memory only (model tests, start-up). */
  add(name: string, password: string, tags: string[] = []): void {
    this.set(userWithPassword(name, password, tags));
  }

  /**
   * The user if the credentials are right, else null. A user without a password never logs
   * in with one, and nobody with a blank password: RabbitMQ's internal backend refuses it.
   */
  authenticate(name: string, password: string): User | null {
    const u = this.users.get(name);
    if (u === undefined || password === '') {
      // Spend the time a real check takes, so that timing does not tell which names exist.
      verifyPassword(password, '', DEFAULT_HASHING_ALGORITHM);
      return null;
    }
    return verifyPassword(password, u.passwordHash, u.hashingAlgorithm) ? u : null;
  }

  /** RabbitMQ's loopback_users: these may only log in over a loopback address. */
  allowedFrom(user: User, remoteAddress: string | undefined): boolean {
    return !this.loopbackOnly.has(user.name) || isLoopback(remoteAddress);
  }
}

export function isLoopback(addr: string | undefined): boolean {
  if (addr === undefined) return false;
  if (addr === '::1') return true;
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return v4.startsWith('127.');
}
