import { followerProof, leaderProof, newNonce, proofsEqual } from './auth';
import { ReplicationError } from './errors';
import { FrameType } from './frame';
import type { FramedConnection } from './framed-connection';
import { parseJson } from './leader-handshake';
import { PROTOCOL_VERSION, type Challenge, type Welcome } from './protocol';

export interface FollowerIdentity {
  cluster: string;
  node: string;
  secret: string;
  /** the highest leader term this node has seen; an older leader is refused */
  term: number;
}

/**
 * The follower's half: HELLO out, the leader's CHALLENGE in and its proof checked before we
 * say anything that proves ours (so an impostor learns nothing usable), PROOF out, WELCOME in.
 * Returns the leader's term, which then stamps every frame of the connection.
 */
export async function joinLeader(conn: FramedConnection, me: FollowerIdentity, timeoutMs: number): Promise<number> {
  return (await joinLeaderWelcome(conn, me, timeoutMs)).term;
}

/**
 * The same, returning the leader's WELCOME: its term and, from a live leader, the id of its
 * op stream (LSNs are continuous within one; a follower that holds a position in it can
 * resume without a catch-up). `position` is what the follower holds, for the leader's log.
 */
export async function joinLeaderWelcome(
  conn: FramedConnection,
  me: FollowerIdentity,
  timeoutMs: number,
  position?: { stream: string; lsn: number },
): Promise<Welcome> {
  conn.term = me.term;
  const nonceF = newNonce();
  conn.sendJson(FrameType.HELLO, {
    cluster: me.cluster,
    node: me.node,
    protocol: PROTOCOL_VERSION,
    term: me.term,
    nonce: nonceF,
    ...(position === undefined ? {} : { position }),
  });
  const chFrame = await conn.expect(FrameType.CHALLENGE, timeoutMs);
  const term = chFrame.term;
  const refuse = (code: ReplicationError['code'], why: string): never => {
    const err = new ReplicationError(code, why);
    conn.close(err);
    throw err;
  };
  if (term < me.term)
    return refuse('term', `${conn.peer} leads term ${term}, older than the term ${me.term} we know: refusing to follow a deposed leader`);
  const ch = parseJson<Challenge>(chFrame.payload);
  if (ch === null || typeof ch.nonce !== 'string' || ch.nonce.length !== 64) return refuse('protocol', 'malformed CHALLENGE');
  if (!proofsEqual(ch.proof, leaderProof(me.secret, nonceF, ch.nonce, term)))
    return refuse('auth', `${conn.peer} failed to prove the shared secret: refusing to follow it (check --cluster-secret on both nodes)`);
  conn.term = term;
  conn.sendJson(FrameType.PROOF, { proof: followerProof(me.secret, ch.nonce, nonceF, me.node) });
  const welcome = parseJson<Welcome>((await conn.expect(FrameType.WELCOME, timeoutMs)).payload);
  if (welcome?.term !== term) return refuse('protocol', 'WELCOME for another term');
  return welcome;
}
