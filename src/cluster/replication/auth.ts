import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The handshake's proofs of the shared secret. Each side proves it over both nonces, so a
 * proof cannot be replayed on another connection, and over a role label, so a leader's proof
 * is never a valid follower's proof (and the reverse).
 */
export function newNonce(): string {
  return randomBytes(32).toString('hex');
}

export function leaderProof(secret: string, nonceF: string, nonceL: string, term: number): string {
  return createHmac('sha256', secret).update(`leader|${nonceF}|${nonceL}|${term}`).digest('hex');
}

export function followerProof(secret: string, nonceL: string, nonceF: string, node: string): string {
  return createHmac('sha256', secret).update(`follower|${nonceL}|${nonceF}|${node}`).digest('hex');
}

/** Constant-time comparison of two hex proofs (any length, any content). */
export function proofsEqual(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
