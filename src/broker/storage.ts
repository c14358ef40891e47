import type { FieldTable } from '../protocol/types';
import type { PermissionChange } from '../auth/permissions';
import type { Binding, Exchange } from './exchanges/exchange';
import type { Policy } from './policies';
import type { User } from '../auth/users';

/**
 * What the model needs from storage, defined here so that the dependency runs one way:
 * the store (src/store) implements these interfaces and never sees the model's classes;
 * the model never imports the store. The composition root (src/app.ts) wires them.
 */

/** Where a stored message lives: the segment, its record's offset in it, and the record's size. */
export interface SegmentPosition {
  readonly segment: number;
  readonly offset: number;
  readonly size: number;
}

/** The parts of a message that are stored (a Message is one). */
export interface StorableMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly rawProperties: Buffer;
  readonly body: Buffer;
  /** the body's length, known without joining a body kept in pieces */
  readonly bodySize: number;
  /** Copies the body into `target` at `at` (without joining a body kept in pieces). */
  copyBody(target: Buffer, at: number): void;
  readonly persistent: boolean;
  /** Exchange and routing key as two wire shortstrs, when the publish kept them (null: encode the names). */
  readonly route?: Buffer | null;
  /**
   * How many durable queues the publish that routed the message reached (set by routing;
   * absent or 0 when not counted). When it is 2 or more a durable store may keep one copy
   * of the message for all of them and have each queue name it; with 1 each queue stores
   * the whole message, as a single queue does. Only a hint for the format: a store counts
   * the references it actually makes.
   */
  readonly durableTargets?: number;
}

/** A message's place in a queue, as a queue store sees it (a QueueEntry is one). */
export interface StoredEntry {
  readonly message: StorableMessage;
  /** position in the queue, to put requeued messages back where they were */
  readonly seq: number;
  /** where the message is stored; null when it is not on disk */
  stored: SegmentPosition | null;
  redelivered: boolean;
}

/** A message read back from disk, for the queue to make an entry of. */
export interface LoadedMessage {
  exchange: string;
  routingKey: string;
  rawProperties: Buffer;
  body: Buffer;
  /** when the message was first stored (ms), for TTLs that outlive a restart */
  publishedAt: number;
  stored: SegmentPosition | null;
  redelivered: boolean;
}

/** What a queue store may ask of the queue that owns it. */
export interface QueueStoreOwner<E extends StoredEntry> {
  /** Makes an entry of a message read back from disk (the store makes no model objects). */
  entryLoaded(loaded: LoadedMessage): E;
  /** Stored messages could not be read just now and can be tried again: deliver what is ready. */
  dispatch(): void;
}

/** Nothing to wait for: no durable write was made. */
export const NO_SYNC = 0;
/** The message was not taken: a queue that cannot store it refuses it (a nack). */
export const REFUSED = -1;

/**
 * Where a queue keeps its ready messages. The memory store holds everything in the heap;
 * a durable store also writes persistent messages down and keeps a deep backlog on disk.
 */
export interface QueueStore<E extends StoredEntry> {
  readonly length: number;
  /** Body bytes of the ready messages. */
  readonly bytes: number;
  /** Called once by the queue that owns the store. */
  attach(owner: QueueStoreOwner<E>): void;
  /**
   * Every message the queue takes passes here first. Returns the sync epoch a publisher
   * confirm for it must wait for, NO_SYNC when nothing durable was written, or REFUSED
   * when the message cannot be stored (its log's writes are failing).
   */
  accept(entry: E): number;
  push(entry: E): void;
  shift(): E | undefined;
  peek(): E | undefined;
  /** Puts messages back in queue order (by seq) among the ready ones. */
  requeue(entries: E[]): void;
  /** Removes and settles every ready message; returns how many there were. */
  purge(): number;
  /** First delivery of a message (so that after a crash it comes back redelivered). */
  delivered(entry: E): void;
  /** The message is done with in this queue: acked, dropped, purged. */
  settle(entry: E): void;
  /** Reads back what is stored for the queue at start-up; returns how many messages. */
  recover(): number;
  /** The queue is deleted. */
  destroy(): void;
}

/** Where one queue's messages are kept: its store, or one per priority level. */
export interface QueueStorage {
  /** The store of the whole queue (null) or of one priority level. */
  open<E extends StoredEntry>(level: number | null): QueueStore<E>;
  /** The priority levels that have messages stored, to recover them at start-up. */
  storedLevels(): number[];
}

/**
 * Durable definitions and message storage for a vhost. Every definitions call writes (and
 * syncs) before it returns, and throws when it cannot: the model changes only after.
 */
export interface DefinitionsSink {
  exchangeDeclared(vhost: string, ex: Exchange): void;
  exchangeDeleted(vhost: string, name: string): void;
  queueDeclared(vhost: string, name: string, autoDelete: boolean, args: FieldTable): void;
  queueDeleted(vhost: string, name: string): void;
  /** A deleted durable queue's files may go (after its deletion was logged). */
  queueDestroyed(vhost: string, name: string): void;
  bindingChanged(vhost: string, binding: Binding, added: boolean): void;
  policyChanged(vhost: string, policy: Policy, set: boolean): void;
  /** Where a new queue keeps its messages (durable: in the queue's log). */
  queueStorage(vhost: string, name: string, durable: boolean): QueueStorage;
}

/**
 * Durable users. Like definitions, each call writes (and syncs) before it returns and throws
 * when it cannot, so that the user store changes only after.
 */
export interface UsersSink {
  /** A user created or changed (the whole user is written). */
  userChanged(user: User): void;
  userDeleted(name: string): void;
  /** A permission or topic permission set (value) or cleared (null). */
  permissionChanged(change: PermissionChange): void;
}

/** A virtual host's own settings, as stored and as the API shows them. */
export interface VhostSettings {
  name: string;
  description: string;
  tags: string[];
  /** null: not set */
  defaultQueueType: string | null;
}

/** Durable vhosts: written (and synced) before the model changes, like the rest. */
export interface VhostsSink {
  vhostChanged(v: VhostSettings): void;
  /** The vhost and everything stored in it goes: one record, written first. */
  vhostDeleted(name: string): void;
}

/**
 * Durable vhost and user limits: a vhost's or user's whole set of limits is written
 * (an empty set clears them), before the model changes, like the rest.
 */
export interface LimitsSink {
  vhostLimitsChanged(vhost: string, limits: Readonly<Record<string, number>>): void;
  userLimitsChanged(user: string, limits: Readonly<Record<string, number>>): void;
}

/** A durable definition read back at start-up, to rebuild the model from. */
export type StoredDefinition =
  | ({ op: 'user' } & User)
  /**
   * Users were stored once but none is left: the default user is created on a fresh
   * store only, so deleting it (or every user) is not undone by a restart, as in RabbitMQ.
   */
  | { op: 'users.seeded' }
  | ({ op: 'vhost' } & VhostSettings)
  /** Vhosts were stored once but none is left: `/` is not made again. */
  | { op: 'vhosts.seeded' }
  | { op: 'permission'; vhost: string; user: string; configure: string; write: string; read: string }
  | { op: 'topic-permission'; vhost: string; user: string; exchange: string; write: string; read: string }
  | { op: 'exchange'; vhost: string; name: string; type: string; autoDelete: boolean; internal: boolean; args: FieldTable }
  | { op: 'queue'; vhost: string; name: string; autoDelete: boolean; args: FieldTable }
  | {
      op: 'policy';
      vhost: string;
      name: string;
      pattern: string;
      applyTo: 'queues' | 'exchanges' | 'all';
      priority: number;
      definition: Record<string, unknown>;
    }
  | { op: 'bind'; vhost: string; source: string; kind: 'queue' | 'exchange'; destination: string; key: string; args: FieldTable }
  | { op: 'vhost-limits'; vhost: string; limits: Record<string, number> }
  | { op: 'user-limits'; user: string; limits: Record<string, number> };

/** Everything the broker keeps on disk: definitions, and queues' messages. */
export interface BrokerStorage extends DefinitionsSink, UsersSink, VhostsSink, LimitsSink {
  /** Claims the storage; returns the durable definitions to rebuild, in a valid order. */
  open(): StoredDefinition[];
  /** The definitions have been replayed: changes from now on are written. */
  replayDone(): void;
}
