import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../logger';
import type { FieldTable } from '../protocol/types';
import type { Exchange, Binding } from '../broker/exchanges/exchange';
import type { Queue } from '../broker/queue';
import { claimDataDir } from './data-dir';
import { DefinitionsLog, encodeArgs, type Definition } from './definitions-log';
import { SyncScheduler } from './sync-scheduler';
import { QueueLog } from './queue-log';
import { PagedQueueStore } from './paged-queue-store';
import { PriorityQueueStore } from './priority-queue-store';
import type { QueueStore } from './queue-store';
import type { Policy } from '../broker/policies';

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
  policyChanged(vhost: string, policy: Policy, set: boolean): void;
  /** The store a new queue keeps its messages in (durable: in the queue's log). */
  queueStore(vhost: string, name: string, durable: boolean, maxPriority: number | null): QueueStore;
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
    // Paged-out transient messages do not outlive the broker.
    rmSync(join(this.dataDir, 'paging'), { recursive: true, force: true });
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

  policyChanged(vhost: string, p: Policy, set: boolean): void {
    if (set) this.append({ op: 'policy', vhost, name: p.name, pattern: p.pattern, applyTo: p.applyTo, priority: p.priority, definition: p.definition });
    else this.append({ op: 'policy.delete', vhost, name: p.name });
  }

  queueStore(vhost: string, name: string, durable: boolean, maxPriority: number | null): QueueStore {
    const dir = join('queues', createHash('sha1').update(`${vhost}\0${name}`).digest('hex'));
    if (maxPriority === null) return this.pagedStore(durable ? dir : null);
    // One log per priority level, each in its own folder under the queue's.
    return new PriorityQueueStore(maxPriority, (p) => this.pagedStore(durable ? join(dir, `p${p}`) : null));
  }

  private pagedStore(dir: string | null): PagedQueueStore {
    return new PagedQueueStore(dir === null ? null : this.openLog(dir), this.openPagingLog, this.options.queueMemoryBudget, this.log);
  }

  private readonly openPagingLog = (): QueueLog => this.openLog(join('paging', randomUUID()));

  private openLog(dir: string): QueueLog {
    return new QueueLog(join(this.dataDir, dir), this.scheduler, this.options.segmentSize, this.log);
  }

  /** Puts a durable queue's stored messages back into it, in their order. */
  recoverMessages(vhost: string, queue: Queue): number {
    const store = queue.store;
    if (store instanceof PriorityQueueStore) {
      const dir = join(this.dataDir, 'queues', createHash('sha1').update(`${vhost}\0${queue.name}`).digest('hex'));
      let n = 0;
      const levels = existsSync(dir) ? readdirSync(dir).filter((f) => /^p\d+$/.test(f)) : [];
      for (const f of levels) n += this.recoverPaged(store.level(Number(f.slice(1))) as PagedQueueStore);
      return n;
    }
    return this.recoverPaged(store as PagedQueueStore);
  }

  private recoverPaged(store: PagedQueueStore): number {
    const runs = store.log!.recover();
    store.recover(runs);
    return runs.reduce((n, r) => n + r.count, 0);
  }
}
