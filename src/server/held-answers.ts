import type { Method } from '../protocol/generated';
import { Writer } from '../protocol/writer';
import type { SyncScheduler, SyncWaiter } from '../store/sync-scheduler';

/** What a channel does with its held answers and the input held behind them. */
export interface HoldingChannel {
  answersReleased(held: HeldAnswers): void;
}

/** A frame that arrived while an answer was held, kept to be handled in its turn. */
export type HeldFrame = { kind: 'method'; method: Method } | { kind: 'header'; bytes: Buffer } | { kind: 'body'; chunk: Buffer };

/**
 * Cluster mode: the answer to a definitions change (declare-ok of a durable exchange or queue,
 * bind-ok, unbind-ok, delete-ok) waits until the followers in the ISR hold the change, as a
 * publisher confirm waits for its message. The channel's later frames wait behind it, so that
 * nothing on the channel is answered before it (RabbitMQ answers a channel's methods in order).
 * Made only when a change has to wait: a single node never gets here.
 */
export class HeldAnswers implements SyncWaiter {
  /** the answer, encoded as it would have been into the connection's output */
  readonly writer = new Writer();
  /** the channel's frames that arrived since, in order */
  readonly input: HeldFrame[] = [];

  constructor(
    private readonly channel: HoldingChannel,
    private readonly scheduler: SyncScheduler,
    /** the epoch whose release says the followers hold every change made so far */
    private readonly epoch: number,
  ) {
    scheduler.addWaiter(this);
  }

  method(method: Method): void {
    this.input.push({ kind: 'method', method });
  }

  /** Copied: the parser may reuse the buffer a header frame was read into. */
  header(buf: Buffer, start: number, end: number): void {
    this.input.push({ kind: 'header', bytes: Buffer.from(buf.subarray(start, end)) });
  }

  /** Kept as it is: a body chunk is a slice of a read of its own (as the content assembler keeps them). */
  body(chunk: Buffer): void {
    this.input.push({ kind: 'body', chunk });
  }

  storeSynced(epoch: number): void {
    if (epoch < this.epoch) return;
    this.drop();
    this.channel.answersReleased(this);
  }

  /**
   * Message writes fail: the change is on this disk already (its append synced on its own), and
   * the round that carries it to the followers is tried again, so the answer goes on waiting.
   */
  storeFailed(): void {}

  /** The channel is gone: nothing is answered. */
  drop(): void {
    this.scheduler.removeWaiter(this);
  }
}
