// RabbitMQ's password_hash format: base64(4-byte salt ++ H(salt ++ utf8(password))). The
// fixture was exported from RabbitMQ 3.10.8 (`rabbitmqctl add_user alice s3cret`,
// `rabbitmqctl export_definitions`), so these check Leveret against hashes RabbitMQ made.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashPassword, isBase64, verifyPassword, type HashingAlgorithm } from '../src/auth/password-hash';
import { UserStore } from '../src/auth/users';

interface ExportedUser {
  name: string;
  password_hash: string;
  hashing_algorithm: HashingAlgorithm;
  tags: string[];
}

const fixture = JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'rabbitmq-definitions.json'), 'utf8')) as {
  users: ExportedUser[];
};
const exported = (name: string): ExportedUser => fixture.users.find((u) => u.name === name)!;

describe('RabbitMQ password hashes', () => {
  it('accepts the hash RabbitMQ exported for alice with her password and refuses a wrong one', () => {
    const alice = exported('alice');
    expect(alice.hashing_algorithm).toBe('rabbit_password_hashing_sha256');
    expect(verifyPassword('s3cret', alice.password_hash, alice.hashing_algorithm)).toBe(true);
    expect(verifyPassword('s3cret ', alice.password_hash, alice.hashing_algorithm)).toBe(false);
    expect(verifyPassword('S3cret', alice.password_hash, alice.hashing_algorithm)).toBe(false);
    expect(verifyPassword('', alice.password_hash, alice.hashing_algorithm)).toBe(false);
  });

  it("accepts RabbitMQ's hash of guest/guest", () => {
    const guest = exported('guest');
    expect(verifyPassword('guest', guest.password_hash, guest.hashing_algorithm)).toBe(true);
    expect(verifyPassword('guesT', guest.password_hash, guest.hashing_algorithm)).toBe(false);
  });

  // Made by hashPassword and imported into RabbitMQ 3.10.8 over PUT /api/users/{name} with
  // this hashing_algorithm: `rabbitmqctl authenticate_user` accepted each with its password
  // and refused a wrong one (conformance/README.md).
  it.each([
    [
      'rabbit_password_hashing_sha512',
      'EaPsf1A+hDie5dLBp7PQYRJ1rk5yxO0MbluYGmnHZseuaqRGAGm/9RrL6T+39mnkYQLTEL3rnrE1iO9FauwCGT4pmFg=',
      'pw-sha512',
    ],
    ['rabbit_password_hashing_md5', 'lpV1M5LAyurC2K4i3rfjPWoMF/A=', 'pw-md5'],
  ] as const)('verifies %s hashes that RabbitMQ accepted', (algorithm, hash, password) => {
    expect(verifyPassword(password, hash, algorithm)).toBe(true);
    expect(verifyPassword(password + 'x', hash, algorithm)).toBe(false);
    // The algorithm is part of the hash: the same bytes under another one never match.
    expect(verifyPassword(password, hash, 'rabbit_password_hashing_sha256')).toBe(false);
  });

  it.each(['rabbit_password_hashing_sha256', 'rabbit_password_hashing_sha512', 'rabbit_password_hashing_md5'] as const)(
    'hashes with a fresh 4-byte salt under %s',
    (algorithm) => {
      const a = hashPassword('pässwörd 🐇', algorithm);
      const b = hashPassword('pässwörd 🐇', algorithm);
      expect(a).not.toBe(b);
      const digestBytes = { rabbit_password_hashing_sha256: 32, rabbit_password_hashing_sha512: 64, rabbit_password_hashing_md5: 16 }[
        algorithm
      ];
      expect(Buffer.from(a, 'base64').length).toBe(4 + digestBytes);
      expect(verifyPassword('pässwörd 🐇', a, algorithm)).toBe(true);
      expect(verifyPassword('passwörd 🐇', a, algorithm)).toBe(false);
    },
  );

  it('never matches an empty, short or garbled hash', () => {
    for (const h of ['', 'abcd', 'AAAA', '!!!!', hashPassword('x').slice(0, -4)]) {
      expect(verifyPassword('x', h, 'rabbit_password_hashing_sha256')).toBe(false);
      expect(verifyPassword('', h, 'rabbit_password_hashing_sha256')).toBe(false);
    }
  });

  it('tells strict base64 from what Node would decode anyway', () => {
    expect(isBase64(exported('alice').password_hash)).toBe(true);
    expect(isBase64('')).toBe(true);
    for (const bad of ['!!notbase64', 'abc', 'ab=c', 'a b=', 'YWJj\n']) expect(isBase64(bad)).toBe(false);
  });
});

describe('UserStore.authenticate', () => {
  const store = new UserStore(new Set());
  const alice = exported('alice');
  store.set({ name: 'alice', passwordHash: alice.password_hash, hashingAlgorithm: alice.hashing_algorithm, tags: [] });
  store.set({ name: 'nopass', passwordHash: '', hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: [] });
  store.set({ name: 'blank', passwordHash: hashPassword(''), hashingAlgorithm: 'rabbit_password_hashing_sha256', tags: [] });

  it('logs in an imported user with the original password only', () => {
    expect(store.authenticate('alice', 's3cret')?.name).toBe('alice');
    expect(store.authenticate('alice', 'nope')).toBeNull();
    expect(store.authenticate('nobody', 's3cret')).toBeNull();
  });

  it('never logs in a user without a password, nor anyone with a blank one (RabbitMQ refuses blank passwords)', () => {
    expect(store.authenticate('nopass', '')).toBeNull();
    expect(store.authenticate('nopass', 'x')).toBeNull();
    expect(store.authenticate('blank', '')).toBeNull();
  });
});
