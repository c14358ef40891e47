import { followerProof, leaderProof, newNonce, proofsEqual } from './auth';
import { ReplicationError } from './errors';
import { FrameType } from './frame';
import type { FramedConnection } from './framed-connection';
import { PROTOCOL_VERSION, type Hello, type Proof } from './protocol';

export interface LeaderIdentity {
  cluster: string;
  secret: string;
  term: number;
  /** Whether `node` is a registered member (etcd's members/ keys, once wired). */
  isMember(node: string): boolean;
  /** a live leader's op stream id, told in WELCOME */
  stream?: string;
}

/**
 * The leader's half of the handshake: HELLO in, CHALLENGE (our proof) out, the follower's PROOF
 * in, WELCOME out. Returns the follower's node name; throws (having closed the connection with
 * the reason) for a stranger, a wrong secret, another cluster or a newer term.
 */
export async function acceptFollower(conn: FramedConnection, me: LeaderIdentity, timeoutMs: number): Promise<string> {
  conn.term = me.term;
  const helloFrame = await conn.expect(FrameType.HELLO, timeoutMs);
  const hello = parseJson<Hello>(helloFrame.payload);
  const refuse = (code: ReplicationError['code'], why: string): never => {
    const err = new ReplicationError(code, why);
    conn.close(err);
    throw err;
  };
  if (hello === null || typeof hello.node !== 'string' || typeof hello.nonce !== 'string' || hello.nonce.length !== 64)
    return refuse('protocol', 'malformed HELLO');
  if (hello.protocol !== PROTOCOL_VERSION)
    return refuse('protocol', `replication protocol ${hello.protocol} is not ours (${PROTOCOL_VERSION})`);
  if (hello.cluster !== me.cluster) return refuse('protocol', `follower belongs to cluster "${hello.cluster}", this is "${me.cluster}"`);
  if (typeof hello.term !== 'number' || hello.term > me.term)
    return refuse('term', `follower ${hello.node} has seen term ${hello.term}, newer than ours (${me.term}): this leader is deposed`);
  if (!me.isMember(hello.node)) return refuse('auth', `${hello.node} is not a registered member of cluster "${me.cluster}"`);
  conn.peer = `follower ${hello.node} (${conn.socket.remoteAddress}:${conn.socket.remotePort})`;
  const nonceL = newNonce();
  conn.sendJson(FrameType.CHALLENGE, { nonce: nonceL, proof: leaderProof(me.secret, hello.nonce, nonceL, me.term) });
  const proofFrame = await conn.expect(FrameType.PROOF, timeoutMs);
  const proof = parseJson<Proof>(proofFrame.payload);
  if (!proofsEqual(proof?.proof, followerProof(me.secret, nonceL, hello.nonce, hello.node)))
    return refuse('auth', `${conn.peer} failed to prove the shared secret: refused (check --cluster-secret on both nodes)`);
  conn.sendJson(FrameType.WELCOME, me.stream === undefined ? { term: me.term } : { term: me.term, stream: me.stream });
  return hello.node;
}

export function parseJson<T>(payload: Buffer): T | null {
  try {
    const v = JSON.parse(payload.toString()) as unknown;
    return typeof v === 'object' && v !== null ? (v as T) : null;
  } catch {
    return null;
  }
}
