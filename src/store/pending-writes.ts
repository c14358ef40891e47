/**
 * Bytes appended to one file and not written yet, in one buffer: records are encoded
 * straight into it and written with one call, instead of a buffer per record joined before
 * the write. A write empties it and hands the buffer to a small process-wide stash, so the
 * next turn's appends (to this file or another) reuse it: a busy log allocates nothing per
 * record and, once warm, nothing per turn either.
 */
export class PendingWrites {
  buf: Buffer = EMPTY;
  length = 0;

  /**
   * Makes room for `n` more bytes and counts them as appended; returns where they go in
   * `buf` (read `buf` after this call: growing replaces it). The caller fills them before
   * anything else appends.
   */
  reserve(n: number): number {
    const at = this.length;
    const need = at + n;
    if (need > this.buf.length) this.grow(need);
    this.length = need;
    return at;
  }

  append(data: Buffer): void {
    const at = this.reserve(data.length);
    data.copy(this.buf, at);
  }

  /** The pending bytes (a view: valid until the next append or clear). */
  data(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** Copies pending bytes from `from` on into `target` at `offset`, as many as fit; returns how many. */
  copyOut(from: number, target: Buffer, offset: number): number {
    if (from >= this.length) return 0;
    return this.buf.copy(target, offset, from, this.length);
  }

  /** Everything pending is written: the buffer goes back to the stash for the next appends. */
  clear(): void {
    const buf = this.buf;
    this.buf = EMPTY;
    this.length = 0;
    if (buf !== EMPTY) stashOrDrop(buf);
  }

  private grow(need: number): void {
    let next: Buffer | undefined;
    // A stashed buffer big enough, else a new one with room to spare (doubling).
    for (let i = stash.length - 1; i >= 0; i--) {
      if (stash[i].length >= need) {
        next = stash[i];
        stash[i] = stash[stash.length - 1];
        stash.pop();
        break;
      }
    }
    if (next === undefined) next = Buffer.allocUnsafe(Math.max(MIN_CAPACITY, need, this.buf.length * 2));
    if (this.length > 0) this.buf.copy(next, 0, 0, this.length);
    if (this.buf !== EMPTY) stashOrDrop(this.buf);
    this.buf = next;
  }
}

function stashOrDrop(buf: Buffer): void {
  if (buf.length >= STASH_MIN_BYTES && buf.length <= STASH_MAX_BYTES && stash.length < STASH_SIZE) stash.push(buf);
}

const EMPTY = Buffer.alloc(0);
/** A first buffer this small comes from Node's shared pool slab (cheap), and one turn of acks fits it. */
const MIN_CAPACITY = 512;
/**
 * Buffers kept for reuse: 8 at most, each from 4 KiB (smaller ones are slices of Node's
 * pool, cheap to make and not worth pinning) to 1 MiB, so a few MiB however many queues.
 */
const STASH_SIZE = 8;
const STASH_MIN_BYTES = 4096;
const STASH_MAX_BYTES = 1 << 20;
const stash: Buffer[] = [];
