import { timingSafeEqual, createHash } from 'node:crypto';

export interface User {
  readonly name: string;
  readonly passwordHash: Buffer;
  readonly tags: string[];
}

const hash = (password: string): Buffer => createHash('sha256').update(password, 'utf8').digest();

/** The broker's users. Passwords are kept hashed so they never sit in memory as given. */
export class UserStore {
  private readonly users = new Map<string, User>();

  constructor(private readonly loopbackOnly: ReadonlySet<string>) {}

  add(name: string, password: string, tags: string[] = []): void {
    this.users.set(name, { name, passwordHash: hash(password), tags });
  }

  /** The user if the credentials are right, else null. */
  authenticate(name: string, password: string): User | null {
    const u = this.users.get(name);
    if (u === undefined) return null;
    return timingSafeEqual(u.passwordHash, hash(password)) ? u : null;
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
