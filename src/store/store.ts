import { createHash, randomUUID } from 'node:crypto';
import { fsOps } from './fs-ops';
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

/**
 * What the model tells the store about durable definitions (see Vhost). Each change is
 * written and made durable before the method returns; if it cannot be, the method throws
 * and the model must not apply the change.
 */
export interface DefinitionsSink {
  exchangeDeclared(vhost: string, ex: Exchange): void;
  exchangeDeleted(vhost: string, name: string): void;
  queueDeclared(vhost: string, name: string, autoDelete: boolean, args: FieldTable): void;
  queueDeleted(vhost: string, name: string): void;
  bindingChanged(vhost: string, binding: Binding, added: boolean): void;
  policyChanged(vhost: string, policy: Policy, set: boolean): void;
  /** A deleted durable queue's store is destroyed: whatever is left of its folder goes too. */
  queueDestroyed(vhost: string, name: string): void;
  /** The store a new queue keeps its messages in (durable: in the queue's log). */
  queueStore(vhost: string, name: string, durable: boolean, maxPriority: number | null): QueueStore;
}

/** How long a failing disk is left alone before definitions are written again to test it. */
const RETRY_MS = 1000;

/** A definition could not be made durable; the model must stay as it was. */
export class DefinitionWriteError extends Error {
  override name = 'DefinitionWriteError';
  constructor(
    readonly definition: Definition,
    override readonly cause: unknown,
  ) {
    super(`cannot store ${definition.op} in vhost '${definition.vhost}': ${(cause as NodeJS.ErrnoException)?.code ?? String(cause)}`);
  }
}

/** The folder of a durable queue's messages, relative to the data directory. */
function queueDir(vhost: string, name: string): string {
  return join('queues', createHash('sha1').update(`${vhost}\0${name}`).digest('hex'));
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
  /** The last definitions write (or the start-up rewrite) failed; cleared by a retry that works. */
  private definitionsFailure: Error | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** What onFailure was last told: the disk alarm is raised while this is not null. */
  private reportedFailure: Error | null = null;

  constructor(
    readonly dataDir: string,
    private readonly options: StoreOptions,
    private readonly log: Logger,
    /** the disk alarm: an error while message or definition writes fail, null once they work */
    private readonly onFailure: (err: Error | null) => void,
  ) {
    this.scheduler = new SyncScheduler(() => this.reportFailure());
    this.definitions = new DefinitionsLog(dataDir, log);
  }

  /**
   * Claims the directory and returns the durable definitions to rebuild. A disk too full
   * to rewrite the definitions does not stop us: the old log is read as it is and the
   * disk alarm is raised until a write succeeds.
   */
  open(): Definition[] {
    this.release = claimDataDir(this.dataDir);
    // Paged-out transient messages do not outlive the broker.
    fsOps.rmSync(join(this.dataDir, 'paging'), { recursive: true, force: true });
    this.replaying = true;
    const all = this.definitions.open();
    if (this.definitions.compactionError !== null) this.definitionsFailed(this.definitions.compactionError);
    this.removeOrphanedQueueFolders(all);
    return all;
  }

  /**
   * A queue folder whose queue is not defined (deleted just before a crash, or left by an
   * older run) would hand its old messages to a new queue of the same name: it goes.
   */
  private removeOrphanedQueueFolders(all: Definition[]): void {
    if (this.definitions.damaged) {
      this.log.warn({ file: this.definitions.path }, 'definitions log is damaged: queue folders without a definition are kept');
      return;
    }
    const root = join(this.dataDir, 'queues');
    if (!fsOps.existsSync(root)) return;
    const defined = new Set(all.filter((d) => d.op === 'queue').map((d) => queueDir(d.vhost, d.name)));
    for (const entry of fsOps.readdirSync(root)) {
      const dir = join('queues', entry);
      if (defined.has(dir)) continue;
      this.log.info({ dir: join(this.dataDir, dir) }, 'removing the folder of a queue that no longer exists');
      this.removeFolder(dir);
    }
  }

  private removeFolder(dir: string): void {
    try {
      fsOps.rmSync(join(this.dataDir, dir), { recursive: true, force: true });
    } catch (err) {
      this.log.warn({ err, dir: join(this.dataDir, dir) }, 'queue folder could not be removed');
    }
  }

  replayDone(): void {
    this.replaying = false;
  }

  close(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.definitions.close();
    this.release?.();
    this.release = null;
  }

  private append(d: Definition): void {
    if (this.replaying) return;
    try {
      this.definitions.append(d);
    } catch (err) {
      this.definitionsFailed(err as Error);
      throw new DefinitionWriteError(d, err);
    }
  }

  /** Raises the disk alarm and tests the disk again shortly. */
  private definitionsFailed(err: Error): void {
    this.definitionsFailure = err;
    this.reportFailure();
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(this.retryDefinitions, RETRY_MS);
    this.retryTimer.unref();
  }

  /**
   * Rewriting the definitions log both tests that writes work again and drops a record a
   * failed append may have left torn (or finishes the rewrite start-up could not do).
   */
  private readonly retryDefinitions = (): void => {
    this.retryTimer = null;
    try {
      this.definitions.compact();
    } catch (err) {
      this.definitionsFailed(err as Error);
      return;
    }
    this.definitionsFailure = null;
    this.reportFailure();
  };

  /** The alarm is up while either messages or definitions cannot be written. */
  private reportFailure(): void {
    const failure = this.scheduler.failure ?? this.definitionsFailure;
    if ((failure === null) === (this.reportedFailure === null)) return;
    this.reportedFailure = failure;
    this.onFailure(failure);
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

  queueDestroyed(vhost: string, name: string): void {
    this.removeFolder(queueDir(vhost, name));
  }

  queueStore(vhost: string, name: string, durable: boolean, maxPriority: number | null): QueueStore {
    const dir = queueDir(vhost, name);
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
      const dir = join(this.dataDir, queueDir(vhost, queue.name));
      let n = 0;
      const levels = fsOps.existsSync(dir) ? fsOps.readdirSync(dir).filter((f) => /^p\d+$/.test(f)) : [];
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
