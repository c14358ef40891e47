import { FRAME_HEADER, FrameType, MAX_PAYLOAD, openFrame, sealFrame } from './frame';
import type { OpBacklog } from './op-backlog';

/**
 * An OPS frame carries consecutive ops from the backlog, each as `u32 length | op`, up to
 * MAX_PAYLOAD bytes (one op always fits: a WRITE holds at most one data chunk). Returns the
 * frame and the LSN after its last op; null when there is nothing from `from` on.
 */
export function buildOpsFrame(backlog: OpBacklog, from: number, term: number): { frame: Buffer; next: number } | null {
  let size = 0;
  let lsn = from;
  for (; lsn <= backlog.lastLsn; lsn++) {
    const n = 4 + backlog.sizeOf(lsn);
    if (size + n > MAX_PAYLOAD && size > 0) break;
    size += n;
  }
  if (lsn === from) return null;
  const frame = openFrame(FrameType.OPS, term, size);
  backlog.copyOut(from, lsn, frame, FRAME_HEADER);
  return { frame: sealFrame(frame), next: lsn };
}

/**
 * The OPS frames of one leadership, shared by its followers: those in step ask for the same
 * ops in the same turn, and the second gets the frame the first had built (copied and
 * checksummed once). A frame stays valid as long as its ops are in the backlog; one built
 * before newer ops arrived is just shorter than a new one would be.
 */
export class OpsFrames {
  private readonly recent: { from: number; frame: Buffer; next: number }[] = [];

  constructor(
    private readonly backlog: OpBacklog,
    private readonly term: number,
  ) {}

  from(lsn: number): { frame: Buffer; next: number } | null {
    for (const r of this.recent) if (r.from === lsn) return r;
    const built = buildOpsFrame(this.backlog, lsn, this.term);
    if (built === null) return null;
    if (this.recent.length === 4) this.recent.shift();
    const r = { from: lsn, frame: built.frame, next: built.next };
    this.recent.push(r);
    return r;
  }
}

/** An OPS frame with no op: the leader's keep-alive when it has had nothing to send. */
export function emptyOpsFrame(term: number): Buffer {
  return sealFrame(openFrame(FrameType.OPS, term, 0));
}

/** The ops of an OPS frame's payload, as views into it. */
export function splitOps(payload: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < payload.length) {
    if (at + 4 > payload.length) throw new Error('OPS frame cut inside an op length');
    const n = payload.readUInt32BE(at);
    if (at + 4 + n > payload.length) throw new Error(`OPS frame announces an op of ${n} bytes past its end`);
    out.push(payload.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

export function ackPayload(lsn: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(Math.floor(lsn / 2 ** 32), 0);
  b.writeUInt32BE(lsn >>> 0, 4);
  return b;
}

export function readAck(payload: Buffer): number {
  if (payload.length !== 8) throw new Error(`OPS_ACK of ${payload.length} bytes`);
  return payload.readUInt32BE(0) * 2 ** 32 + payload.readUInt32BE(4);
}
