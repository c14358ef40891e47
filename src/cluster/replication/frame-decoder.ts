import { crc32 } from 'node:zlib';
import { ReplicationError } from './errors';
import { FRAME_HEADER, FRAME_TRAILER, frameTypeName, MAX_PAYLOAD, type Frame } from './frame';

/**
 * Cuts a byte stream into frames, whatever the split of the chunks TCP hands over. Chunks are
 * kept as they come and joined once per frame, so a 1 MiB frame arriving in 64 KiB pieces is
 * copied once, not once per piece. A bad length or crc throws: the stream cannot be trusted
 * past it, so the caller closes the connection.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = FRAME_HEADER;
  private payloadLength = -1;

  constructor(private readonly maxPayload = MAX_PAYLOAD) {}

  push(data: Buffer): Frame[] {
    this.chunks.push(data);
    this.buffered += data.length;
    const out: Frame[] = [];
    while (this.buffered >= this.need) {
      if (this.payloadLength < 0) {
        const head = this.peek(FRAME_HEADER);
        const length = head.readUInt32BE(0);
        if (length > this.maxPayload)
          throw new ReplicationError(
            'frame',
            `frame announces ${length} payload bytes, more than the limit of ${this.maxPayload}: stream corrupted or not a Leveret replication peer`,
          );
        this.payloadLength = length;
        this.need = FRAME_HEADER + length + FRAME_TRAILER;
        continue;
      }
      const buf = this.take(this.need);
      const end = buf.length - FRAME_TRAILER;
      const type = buf.readUInt8(4);
      if (crc32(buf.subarray(4, end)) !== buf.readUInt32BE(end))
        throw new ReplicationError(
          'frame',
          `frame crc32 mismatch (${frameTypeName(type)}, ${this.payloadLength} payload bytes): corrupted in transit`,
        );
      out.push({ type, term: buf.readUInt32BE(5) * 2 ** 32 + buf.readUInt32BE(9), payload: buf.subarray(FRAME_HEADER, end) });
      this.payloadLength = -1;
      this.need = FRAME_HEADER;
    }
    return out;
  }

  /** The first n buffered bytes, without consuming them (joins the first chunks if needed). */
  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let buf: Buffer;
    if (first.length >= n) {
      buf = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      buf = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return buf;
  }
}
