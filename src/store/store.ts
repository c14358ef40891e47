import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from '../logger';
import type { FieldTable } from '../protocol/types';
import type { Exchange, Binding } from '../broker/exchanges/exchange';
import type { Queue } from '../broker/queue';
import { QueueEntry } from '../broker/queue-entry';
import { claimDataDir } from './data-dir';
import { DefinitionsLog, encodeArgs, type Definition } from './definitions-log';
import { SyncScheduler } from './sync-scheduler';
import { QueueLog } from './queue-log';
import { DurableQueueStore, UNLOADED } from './durable-queue-store';

export interface StoreOptions {
  segmentSize: number;
  /** body bytes a durable queue keeps in memory before leaving the rest on disk */
  queueMemoryBudget: number;
}

/** What the model tells the store about durable definitions (see Vhost). */
export interface DefinitionsSink {
  exchangeDeclared(vhost: string, ex: Exchange): void;
  exchangeDeleted(vhost: string, name: string): void;
  queueDeclared(vhost: string, name: string, autoDelete: boolean, args: FieldTable): void;
  queueDeleted(vhost: string, name: string): void;
  bindingChanged(vhost: string, binding: Binding, added: boolean): void;
  /** The store a new durable queue keeps its messages in. */
  queueStore(vhost: string, name: string): DurableQueueStore;
}

/**
 * Everything on disk under --data-dir: the lock, the definitions log and one message log
 * per durable queue, all sharing one group-commit scheduler.
 */
export class Store implements DefinitionsSink {
  readonly scheduler: SyncScheduler;
  private readonly definitions: DefinitionsLog;
  private release: (() => void) | null = null;
  /** While replaying definitions at start-up nothing is logged again. */
  private replaying = false;

  constructor(
    readonly dataDir: string,
    private readonly options: StoreOptions,
    private readonly log: Logger,
    onFailure: (err: Error | null) => void,
  ) {
    this.scheduler = new SyncScheduler(onFailure);
    this.definitions = new DefinitionsLog(dataDir, log);
  }

  /** Claims the directory and returns the durable definitions to rebuild. */
  open(): Definition[] {
    this.release = claimDataDir(this.dataDir);
    this.replaying = true;
    return this.definitions.open();
  }

  replayDone(): void {
    this.replaying = false;
  }

  close(): void {
    this.definitions.close();
    this.release?.();
    this.release = null;
  }

  private append(d: Definition): void {
    if (!this.replaying) this.definitions.append(d);
  }

  exchangeDeclared(vhost: string, ex: Exchange): void {
    this.append({ op: 'exchange', vhost, name: ex.name, type: ex.type, autoDelete: ex.autoDelete, internal: ex.internal, args: encodeArgs(ex.args) });
  }

  exchangeDeleted(vhost: string, name: string): void {
    this.append({ op: 'exchange.delete', vhost, name });
  }

  queueDeclared(vhost: string, name: string, autoDelete: boolean, args: FieldTable): void {
    this.append({ op: 'queue', vhost, name, autoDelete, args: encodeArgs(args) });
  }

  queueDeleted(vhost: string, name: string): void {
    this.append({ op: 'queue.delete', vhost, name });
  }

  bindingChanged(vhost: string, b: Binding, added: boolean): void {
    this.append({
      op: added ? 'bind' : 'unbind',
      vhost,
      source: b.source,
      kind: b.destination.kind,
      destination: b.destination.name,
      key: b.routingKey,
      args: encodeArgs(b.args),
    });
  }

  queueStore(vhost: string, name: string): DurableQueueStore {
    const id = createHash('sha1').update(`${vhost}\0${name}`).digest('hex');
    const log = new QueueLog(join(this.dataDir, 'queues', id), this.scheduler, this.options.segmentSize, this.log);
    return new DurableQueueStore(log, this.options.queueMemoryBudget, this.log);
  }

  /** Puts a durable queue's stored messages back into it, in their order. */
  recoverMessages(queue: Queue): number {
    const store = queue.store as DurableQueueStore;
    const found = store.log.recover();
    for (const r of found) {
      const e = new QueueEntry(UNLOADED, queue.nextSeq++, queue);
      e.segment = r.segment;
      e.position = r.position;
      e.size = r.size;
      e.redelivered = r.redelivered;
      store.pushRecovered(e);
    }
    return found.length;
  }
}
