/** What the two ends exchange, and the version of it; a mismatch is refused at HELLO. */
// 2: store ops REPLACE_PART and REPLACE_END (a REPLACE above one data chunk). A follower of
// version 1 would fail on the first one; it is refused at HELLO instead.
// 3: store op ROUND (the leader's sync round starts: a follower syncs alongside it).
export const PROTOCOL_VERSION = 3;

export interface Hello {
  cluster: string;
  node: string;
  protocol: number;
  /** the highest leader term this follower has seen */
  term: number;
  nonce: string;
}

export interface Challenge {
  nonce: string;
  proof: string;
}

export interface Proof {
  proof: string;
}

export interface Welcome {
  term: number;
  /** a live leader's op stream id (random per leader process): positions are LSNs within it */
  stream?: string;
}

/** One file or directory under the data directory, as the leader has it. */
export interface ManifestEntry {
  /** relative path, '/'-separated */
  path: string;
  dir?: true;
  size: number;
  /** crc32 of the first `size` bytes */
  crc: number;
}

export interface CheckRequest {
  path: string;
  /** ascending prefix lengths; the answer gives the crc32 of each prefix, computed in one pass */
  lengths: number[];
}

export interface CheckAnswer {
  path: string;
  crcs: number[];
}

export interface FetchRequest {
  path: string;
  offset: number;
  length: number;
}

export interface FetchEnd {
  path: string;
  /** bytes sent: less than asked when the file shrank or went under the copy */
  sent: number;
}
