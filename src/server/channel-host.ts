import type { Broker } from '../broker/broker';
import type { SyncScheduler } from '../store/sync-scheduler';
import type { Queue } from '../broker/queue';
import type { User } from '../auth/users';
import type { Writer } from '../protocol/writer';
import type { FieldTable } from '../protocol/types';
import type { Logger } from '../logger';

/** Where a channel's publisher confirms and tx.commit-oks are written. */
export interface ConfirmSink {
  readonly writer: Writer;
  scheduleFlush(): void;
  /** Registers confirms to coalesce into one basic.ack at the next flush. */
  confirmsDue(confirms: { flush(): void }): void;
}

/**
 * What a channel may ask of its connection. Channels write into the connection's shared
 * output buffer and report connection-level errors upward; they never see the socket,
 * the handshake or the channel map, which the connection alone manages.
 */
export interface ChannelHost extends ConfirmSink {
  readonly broker: Broker;
  /** The store's group commit, which publisher confirms wait on; null without a store. */
  readonly syncScheduler: SyncScheduler | null;
  /** the connection's name, for log lines */
  readonly name: string;
  /** for the lines of channel errors (never per message) */
  readonly log: Logger;
  /** The authenticated user (replaced by connection.update-secret). */
  readonly user: User;
  readonly frameMax: number;
  readonly clientCapabilities: FieldTable;
  /** The limits a channel enforces itself (--max-message-size, --consumer-timeout). */
  readonly config: { readonly maxMessageSize: number; readonly consumerTimeout: number };
  /** Whether deliveries may be written now (the socket is not backed up). */
  canWrite(): boolean;
  /** A basic.publish arrived: stop reading if the broker is blocked. */
  publishing(): void;
  /** A queue we published to is overloaded: pause reading until it catches up. */
  flowPause(queue: Queue): void;
  /** A hard error (or a bug) on a channel closes the whole connection. */
  connectionError(err: unknown): void;
}
