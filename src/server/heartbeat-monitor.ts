import * as C from '../protocol/constants';

const HEARTBEAT_FRAME = Buffer.from([C.FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, C.FRAME_END]);

export interface HeartbeatPeer {
  /** Whether anything went out since the last call (and forget it). */
  takeWrote(): boolean;
  /** Writes raw bytes to the client and flushes them. */
  sendHeartbeat(frame: Buffer): void;
  /** The client missed two heartbeats in a row. */
  heartbeatTimeout(): void;
}

/**
 * Heartbeats both ways for one connection: ticks twice per negotiated interval, sends a
 * heartbeat when nothing else went out since the last tick, and gives up on a client that
 * sent nothing for two intervals. Counting is done by flags set on reads and writes, so
 * the hot path pays one store per read and per write.
 */
export class HeartbeatMonitor {
  /** Set by the connection whenever bytes arrive. */
  received = false;
  private silentTicks = 0;
  /**
   * While we do not read from the client (a publisher blocked by an alarm) its heartbeats
   * go unseen: silence then says nothing about the client, so it is not counted.
   */
  suspended = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly peer: HeartbeatPeer) {}

  start(intervalSeconds: number): void {
    this.stop();
    if (intervalSeconds <= 0) return;
    this.timer = setInterval(() => this.tick(), (intervalSeconds * 1000) / 2);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    // Ticks come twice per interval: a peer silent for four ticks missed two heartbeats.
    if (this.suspended) {
      this.silentTicks = 0;
    } else if (!this.received) {
      if (++this.silentTicks >= 4) {
        this.stop();
        this.peer.heartbeatTimeout();
        return;
      }
    } else {
      this.silentTicks = 0;
    }
    this.received = false;
    if (!this.peer.takeWrote()) this.peer.sendHeartbeat(HEARTBEAT_FRAME);
  }
}
