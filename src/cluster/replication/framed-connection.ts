import type { Socket } from 'node:net';
import { ReplicationError } from './errors';
import { FrameType, frameTypeName, jsonFrame, type Frame } from './frame';
import { FrameDecoder } from './frame-decoder';

const PAUSE_AT = 8;
const RESUME_BELOW = 4;
const SEND_BUFFER = 4 * 1024 * 1024;

/**
 * One replication socket seen as a sequence of frames. Incoming frames queue until read with
 * next(); a bad frame, an ERROR frame from the peer, a timeout or the socket closing fails the
 * pending and every later read with the reason, so each side can log why a connection ended.
 */
export class FramedConnection {
  /** The term stamped on frames we send (the leader's, once the handshake has agreed on it). */
  term = 0;
  private readonly decoder = new FrameDecoder();
  private readonly queue: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout } | undefined;
  private failure: ReplicationError | undefined;

  constructor(
    readonly socket: Socket,
    /** who the peer is, for messages: "leader 127.0.0.1:9000", "follower n2 (127.0.0.1:5123)" */
    public peer: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.fail(new ReplicationError('closed', `connection to ${this.peer} failed: ${err.message}`)));
    socket.on('close', () => this.fail(new ReplicationError('closed', `${this.peer} closed the connection`)));
  }

  /** Frames received and not read yet. */
  get queued(): number {
    return this.queue.length;
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** Why the connection ended, once it has. */
  get reason(): ReplicationError | undefined {
    return this.failure;
  }

  /**
   * Sends a frame; false when a few MiB wait in the socket's buffer (await drain() before the
   * next big one). Node's own threshold (16 KiB) would stop a 1 MiB chunk stream after every
   * chunk and leave the link idle while the next one is read from disk.
   */
  send(frame: Buffer): boolean {
    if (this.failure !== undefined) return true;
    this.socket.write(frame);
    return this.socket.writableLength < SEND_BUFFER;
  }

  sendJson(type: number, body: unknown): boolean {
    return this.send(jsonFrame(type, this.term, body));
  }

  drain(): Promise<void> {
    if (this.socket.writableLength < SEND_BUFFER || !this.socket.writableNeedDrain || this.failure !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** The next frame; fails when the connection ends first or nothing comes within timeoutMs. */
  next(timeoutMs: number): Promise<Frame> {
    const ready = this.queue.shift();
    if (ready !== undefined) {
      if (this.queue.length < RESUME_BELOW && this.socket.isPaused()) this.socket.resume();
      return Promise.resolve(ready);
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => this.close(new ReplicationError('closed', `${this.peer} sent nothing for ${timeoutMs} ms`), false), timeoutMs)
          : undefined;
      this.waiter = { resolve, reject, timer };
    });
  }

  /** The next frame, which must be of `type`; an ERROR frame or any other type fails. */
  async expect(type: number, timeoutMs: number): Promise<Frame> {
    const f = await this.next(timeoutMs);
    if (f.type !== type) throw this.unexpected(f, frameTypeName(type));
    return f;
  }

  unexpected(f: Frame, wanted: string): ReplicationError {
    const err = new ReplicationError('protocol', `${this.peer} sent ${frameTypeName(f.type)} where ${wanted} was expected`);
    this.close(err);
    return err;
  }

  /**
   * Ends the connection for `reason`. With tellPeer, an ERROR frame goes first so that the other
   * side can log the same reason instead of a bare disconnect.
   */
  close(reason: ReplicationError, tellPeer = true): void {
    if (this.failure !== undefined) return;
    // Frames already received are dropped: we decided to stop reading. (When the peer closes,
    // the frames before its close are still read: they passed their checks.)
    this.queue.length = 0;
    if (tellPeer && !this.socket.destroyed)
      this.socket.end(jsonFrame(FrameType.ERROR, this.term, { code: reason.code, reason: reason.message }));
    else this.socket.destroy();
    this.fail(reason);
    // end() lets the ERROR frame go out; a peer that does not close its side in time is cut.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onData(d: Buffer): void {
    if (this.failure !== undefined) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(d);
    } catch (err) {
      this.close(err as ReplicationError);
      return;
    }
    for (const f of frames) {
      if (f.type === FrameType.ERROR) {
        this.onPeerError(f);
        return;
      }
      this.deliver(f);
    }
  }

  private onPeerError(f: Frame): void {
    let code: ReplicationError['code'] = 'protocol';
    let reason = '(unreadable reason)';
    try {
      const body = JSON.parse(f.payload.toString()) as { code?: ReplicationError['code']; reason?: string };
      code = body.code ?? code;
      reason = body.reason ?? reason;
    } catch {
      // keep the defaults
    }
    this.socket.destroy();
    this.fail(new ReplicationError(code, `${this.peer} ended the connection: ${reason}`));
  }

  private deliver(f: Frame): void {
    const w = this.waiter;
    if (w === undefined) {
      // A reader slower than the socket (a follower writing chunks to disk) pushes back on TCP.
      if (this.queue.push(f) >= PAUSE_AT) this.socket.pause();
      return;
    }
    this.waiter = undefined;
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.resolve(f);
  }

  private fail(err: ReplicationError): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    const w = this.waiter;
    this.waiter = undefined;
    if (w !== undefined) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.reject(err);
    }
  }
}
