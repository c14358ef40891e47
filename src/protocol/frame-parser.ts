import { FRAME_BODY, FRAME_END, FRAME_ERROR, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD } from './constants';
import { frameSnippet } from './frame-snippet';

/** Receives the frames a FrameParser cuts out of the byte stream. */
export interface FrameHandler {
  /** The payload is `buf[start, end)`: no view is made per frame (most are read and dropped at once). */
  onMethodFrame(channel: number, buf: Buffer, start: number, end: number): void;
  onHeaderFrame(channel: number, buf: Buffer, start: number, end: number): void;
  /**
   * A piece of a body frame's payload. Bodies are streamed in pieces straight from the
   * socket's buffers so that the channel can copy them into the message exactly once
   * (or not at all when one piece is the whole body).
   */
  onBodyChunk(channel: number, chunk: Buffer): void;
  onHeartbeatFrame(channel: number): void;
  /** `inStep`: the frame was read whole, so the stream can still be read after it. */
  onFrameError(code: number, text: string, inStep: boolean): void;
}

const S_HEAD = 0;
const S_PAYLOAD = 1;
const S_BODY = 2;
const S_END = 3;
const S_DEAD = 4;

/**
 * Cuts frames out of TCP chunks of any size: a frame spread over many reads, or many
 * frames in one read. Method and header payloads are handed over whole (as a range of the
 * socket's buffer when they arrived in one read); body payloads are streamed.
 */
export class FrameParser {
  frameMax: number;
  private state = S_HEAD;
  private head = Buffer.alloc(7);
  private headLen = 0;
  private type = 0;
  private channel = 0;
  private remaining = 0;
  private payload: Buffer | null = null;
  private payloadStart = 0;
  private payloadLen = 0;

  constructor(
    private readonly handler: FrameHandler,
    frameMax: number,
  ) {
    this.frameMax = frameMax;
  }

  /** Stop parsing: used once the connection is closing. */
  stop(): void {
    this.state = S_DEAD;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case S_HEAD: {
          // Fast path: the whole 7-byte header is in this chunk.
          if (this.headLen === 0 && len - pos >= 7) {
            this.type = chunk[pos];
            this.channel = (chunk[pos + 1] << 8) | chunk[pos + 2];
            this.remaining = chunk.readUInt32BE(pos + 3);
            pos += 7;
          } else {
            const n = Math.min(7 - this.headLen, len - pos);
            chunk.copy(this.head, this.headLen, pos, pos + n);
            this.headLen += n;
            pos += n;
            if (this.headLen < 7) return;
            this.headLen = 0;
            this.type = this.head[0];
            this.channel = this.head.readUInt16BE(1);
            this.remaining = this.head.readUInt32BE(3);
          }
          if (!this.checkHeader()) return;
          if (this.type === FRAME_BODY) {
            this.payloadStart = 0;
            this.payloadLen = 0;
            this.state = this.remaining === 0 ? S_END : S_BODY;
          } else if (this.remaining === 0) {
            this.payload = EMPTY;
            this.payloadStart = 0;
            this.payloadLen = 0;
            this.state = S_END;
          } else if (len - pos >= this.remaining) {
            this.payload = chunk;
            this.payloadStart = pos;
            this.payloadLen = this.remaining;
            pos += this.remaining;
            this.remaining = 0;
            this.state = S_END;
          } else {
            this.payload = Buffer.allocUnsafe(this.remaining);
            this.payloadStart = 0;
            this.payloadLen = 0;
            this.state = S_PAYLOAD;
          }
          break;
        }
        case S_PAYLOAD: {
          const n = Math.min(this.remaining, len - pos);
          chunk.copy(this.payload!, this.payloadLen, pos, pos + n);
          this.payloadLen += n;
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) this.state = S_END;
          break;
        }
        case S_BODY: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const piece = chunk.subarray(pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = S_END;
          this.handler.onBodyChunk(this.channel, piece);
          break;
        }
        case S_END: {
          const payload = this.payload ?? EMPTY;
          const start = this.payloadStart;
          const end = start + this.payloadLen;
          this.payload = null;
          if (chunk[pos] !== FRAME_END) {
            // A body's pieces went out as they came; RabbitMQ would quote them, we cannot.
            this.fail(FRAME_ERROR, `${frameSnippet(this.type, payload.subarray(start, end))}: {invalid_frame_end_marker,${chunk[pos]}}`);
            return;
          }
          pos++;
          this.state = S_HEAD;
          switch (this.type) {
            case FRAME_METHOD:
              this.handler.onMethodFrame(this.channel, payload, start, end);
              break;
            case FRAME_HEADER:
              this.handler.onHeaderFrame(this.channel, payload, start, end);
              break;
            case FRAME_HEARTBEAT:
              if (end > start)
                return this.fail(FRAME_ERROR, `${frameSnippet(this.type, payload.subarray(start, end))}: unknown_frame`, true);
              this.handler.onHeartbeatFrame(this.channel);
              break;
            case FRAME_BODY:
              break; // its pieces went out as they arrived
            default:
              return this.fail(FRAME_ERROR, `${frameSnippet(this.type, payload.subarray(start, end))}: unknown_frame`, true);
          }
          break;
        }
        default:
          return;
      }
    }
  }

  /**
   * A payload may be as large as frame_max (RabbitMQ's check, though the spec counts the
   * frame's 8 bytes of framing too). Unknown frame types are read whole, like RabbitMQ,
   * and refused once their end marker has been checked.
   */
  private checkHeader(): boolean {
    if (this.remaining > this.frameMax) {
      this.fail(FRAME_ERROR, `${frameSnippet(this.type, EMPTY)}: {frame_too_large,${this.remaining},${this.frameMax - 8}}`);
      return false;
    }
    return true;
  }

  private fail(code: number, text: string, inStep = false): void {
    if (!inStep) this.state = S_DEAD;
    this.handler.onFrameError(code, text, inStep);
  }
}

const EMPTY = Buffer.alloc(0);
