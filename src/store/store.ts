import { createHash, randomUUID } from 'node:crypto';
import { storeTap } from './store-tap';
import { fsOps } from './fs-ops';
import { join } from 'node:path';
import type { Logger } from '../logger';
import type { FieldTable } from '../protocol/types';
import type { Exchange, Binding } from '../broker/exchanges/exchange';
import type { Policy } from '../broker/policies';
import type { PermissionChange } from '../auth/permissions';
import type { BrokerStorage, QueueStorage, QueueStore, StoredDefinition, StoredEntry } from '../broker/storage';
import type { User } from '../auth/users';
import type { HashingAlgorithm } from '../auth/password-hash';
import { claimDataDir, setStoreVersion, SHARED_STORE_VERSION, storeVersion } from './data-dir';
import { decodeArgs, DefinitionsLog, encodeArgs, type Definition } from './definitions-log';
import { SyncScheduler } from './sync-scheduler';
import { DefinitionsReplicated } from './definitions-replicated';
import { QueueLog } from './queue-log';
import { SharedBodyLog } from './shared-log';
import { PagedQueueStore } from './paged-queue-store';
import { MemoryBudget } from './memory-budget';

export interface StoreOptions {
  segmentSize: number;
  /** body bytes a durable queue keeps in memory before leaving the rest on disk */
  queueMemoryBudget: number;
  /** what all queues together keep in memory (default: no node-wide limit) */
  memoryBudget?: MemoryBudget;
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
    const where = 'vhost' in definition ? ` in vhost '${definition.vhost}'` : '';
    super(`cannot store ${definition.op}${where}: ${(cause as NodeJS.ErrnoException)?.code ?? String(cause)}`);
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
export class Store implements BrokerStorage {
  readonly scheduler: SyncScheduler;
  readonly memoryBudget: MemoryBudget;
  /** Cluster mode: the management API's answers wait here for the followers (definitions-replicated.ts). */
  readonly definitionsReplicated: DefinitionsReplicated;
  private readonly definitions: DefinitionsLog;
  private release: (() => void) | null = null;
  /** Whether the last stop before this start was clean (its mark was found), set by open() */
  previousStopClean = false;
  /** While replaying definitions at start-up nothing is logged again. */
  private replaying = false;
  /** The last definitions write (or the start-up rewrite) failed; cleared by a retry that works. */
  private definitionsFailure: Error | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** What onFailure was last told: the disk alarm is raised while this is not null. */
  private reportedFailure: Error | null = null;
  /** Bodies of messages routed to several durable queues, stored once (opened by open()). */
  private shared: SharedBodyLog | null = null;

  constructor(
    readonly dataDir: string,
    private readonly options: StoreOptions,
    private readonly log: Logger,
    /** the disk alarm: an error while message or definition writes fail, null once they work */
    private readonly onFailure: (err: Error | null) => void,
  ) {
    this.scheduler = new SyncScheduler(() => this.reportFailure());
    this.definitionsReplicated = new DefinitionsReplicated(this.scheduler);
    this.memoryBudget = options.memoryBudget ?? new MemoryBudget(Infinity);
    this.definitions = new DefinitionsLog(dataDir, log);
  }

  /**
   * Claims the directory and returns the durable definitions to rebuild. A disk too full
   * to rewrite the definitions does not stop us: the old log is read as it is and the
   * disk alarm is raised until a write succeeds.
   */
  open(): StoredDefinition[] {
    this.release = claimDataDir(this.dataDir);
    this.previousStopClean = this.takeCleanMark();
    // Paged-out transient messages do not outlive the broker.
    fsOps.rmSync(join(this.dataDir, 'paging'), { recursive: true, force: true });
    this.replaying = true;
    const all = this.definitions.open();
    if (this.definitions.compactionError !== null) this.definitionsFailed(this.definitions.compactionError);
    this.removeOrphanedQueueFolders(all);
    // Opened before any queue recovers: each counts its references to it as it does.
    this.shared = new SharedBodyLog(join(this.dataDir, SHARED_DIR), this.scheduler, this.options.segmentSize, this.log);
    this.shared.recover();
    if (storeVersion(this.dataDir) !== SHARED_STORE_VERSION)
      this.shared.beforeFirstStore = (): void => setStoreVersion(this.dataDir, SHARED_STORE_VERSION);
    this.scheduler.lead = this.shared;
    return all.flatMap(toStoredDefinition);
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
      if (storeTap !== null) storeTap.removed(join(this.dataDir, dir));
    } catch (err) {
      this.log.warn({ err, dir: join(this.dataDir, dir) }, 'queue folder could not be removed');
    }
  }

  /**
   * A clean stop leaves a mark once everything is on disk; the next start takes it away
   * before writing anything, so that a crash later is never mistaken for a clean stop.
   */
  private markClean(): void {
    const mark = join(this.dataDir, CLEAN_MARK);
    try {
      const fd = fsOps.openSync(mark, 'w');
      try {
        fsOps.fsyncSync(fd);
      } finally {
        fsOps.closeSync(fd);
      }
      syncDir(this.dataDir);
      this.log.info('store closed cleanly: every write is on disk, the next start has nothing to recover');
    } catch (err) {
      this.log.warn({ err }, 'the clean-stop mark could not be written: the next start recovers as after a crash');
    }
  }

  private takeCleanMark(): boolean {
    const mark = join(this.dataDir, CLEAN_MARK);
    if (!fsOps.existsSync(mark)) return false;
    fsOps.rmSync(mark, { force: true });
    syncDir(this.dataDir);
    return true;
  }

  replayDone(): void {
    this.replaying = false;
    // Every stored queue has recovered and counted its references: what none names goes.
    // Not when the definitions log is damaged: queue folders without a definition are kept
    // then, and so are the shared bodies they may name (nothing shared is deleted this run).
    if (this.shared === null) return;
    if (this.definitions.damaged)
      this.log.warn({ dir: this.shared.dir }, 'definitions log is damaged: shared bodies are kept until a start that reads it whole');
    else this.shared.seal();
  }

  close(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const flushed = this.release !== null && this.scheduler.flushSync() && this.definitionsFailure === null;
    if (flushed) this.markClean();
    else if (this.release !== null)
      this.log.warn('store closed with writes that could not be made durable: the next start recovers as after a crash');
    this.scheduler.stop();
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
    this.scheduler.definitionsWritten();
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
    this.append({
      op: 'exchange',
      vhost,
      name: ex.name,
      type: ex.type,
      autoDelete: ex.autoDelete,
      internal: ex.internal,
      args: encodeArgs(ex.args),
    });
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
    if (set)
      this.append({
        op: 'policy',
        vhost,
        name: p.name,
        pattern: p.pattern,
        applyTo: p.applyTo,
        priority: p.priority,
        definition: p.definition,
      });
    else this.append({ op: 'policy.delete', vhost, name: p.name });
  }

  userChanged(u: User): void {
    this.append({ op: 'user', name: u.name, passwordHash: u.passwordHash, hashingAlgorithm: u.hashingAlgorithm, tags: [...u.tags] });
  }

  userDeleted(name: string): void {
    this.append({ op: 'user.delete', name });
  }

  permissionChanged(c: PermissionChange): void {
    if (c.kind === 'permission') {
      const v = c.value;
      if (v === null) this.append({ op: 'permission.delete', vhost: c.vhost, user: c.user });
      else this.append({ op: 'permission', vhost: v.vhost, user: v.user, configure: v.configure, write: v.write, read: v.read });
    } else {
      const v = c.value;
      if (v === null) this.append({ op: 'topic-permission.delete', vhost: c.vhost, user: c.user, exchange: c.exchange });
      else this.append({ op: 'topic-permission', vhost: v.vhost, user: v.user, exchange: v.exchange, write: v.write, read: v.read });
    }
  }

  vhostChanged(v: { name: string; description: string; tags: string[]; defaultQueueType: string | null }): void {
    this.append({ op: 'vhost', name: v.name, description: v.description, tags: [...v.tags], defaultQueueType: v.defaultQueueType });
  }

  vhostDeleted(name: string): void {
    this.append({ op: 'vhost.delete', name });
  }

  vhostLimitsChanged(vhost: string, limits: Readonly<Record<string, number>>): void {
    this.append({ op: 'vhost-limits', vhost, limits: { ...limits } });
  }

  userLimitsChanged(user: string, limits: Readonly<Record<string, number>>): void {
    this.append({ op: 'user-limits', user, limits: { ...limits } });
  }

  queueDestroyed(vhost: string, name: string): void {
    this.removeFolder(queueDir(vhost, name));
  }

  queueStorage(vhost: string, name: string, durable: boolean): QueueStorage {
    const dir = join(this.dataDir, queueDir(vhost, name));
    // One log per priority level, each in its own folder under the queue's.
    const levelDir = (level: number | null): string => (level === null ? dir : join(dir, `p${level}`));
    return {
      open: <E extends StoredEntry>(level: number | null): QueueStore<E> =>
        new PagedQueueStore<E>(
          durable ? this.openLog(levelDir(level)) : null,
          this.openPagingLog,
          this.options.queueMemoryBudget,
          this.log,
          this.memoryBudget,
        ),
      storedLevels: (): number[] =>
        fsOps.existsSync(dir)
          ? fsOps
              .readdirSync(dir)
              .filter((f) => /^p\d+$/.test(f))
              .map((f) => Number(f.slice(1)))
          : [],
    };
  }

  /** Paged-out transient messages are never shared: each log holds its own. */
  private readonly openPagingLog = (): QueueLog =>
    new QueueLog(join(this.dataDir, 'paging', randomUUID()), this.scheduler, this.options.segmentSize, this.log);

  private openLog(dir: string): QueueLog {
    return new QueueLog(dir, this.scheduler, this.options.segmentSize, this.log, this.shared);
  }
}

/** A live definition as the model takes it: arguments decoded. */
function toStoredDefinition(d: Definition): StoredDefinition[] {
  switch (d.op) {
    case 'exchange':
    case 'queue':
      return [{ ...d, args: decodeArgs(d.args) }];
    case 'bind':
      return [{ ...d, op: 'bind', args: decodeArgs(d.args) }];
    case 'policy':
    case 'users.seeded':
    case 'permission':
    case 'topic-permission':
    case 'vhost':
    case 'vhosts.seeded':
    case 'vhost-limits':
    case 'user-limits':
      return [d];
    case 'user':
      // The model checks the algorithm when it restores the user.
      return [{ ...d, hashingAlgorithm: d.hashingAlgorithm as HashingAlgorithm }];
    default:
      return []; // deletes and unbinds are folded away when the log is read
  }
}

/** The shared body log's folder, under the data directory. */
const SHARED_DIR = 'shared';

/** Present only between a clean stop and the next start. */
const CLEAN_MARK = 'clean-stop';

/** Makes a directory's entries (a file created or removed) durable. */
function syncDir(dir: string): void {
  const fd = fsOps.openSync(dir, 'r');
  try {
    fsOps.fsyncSync(fd);
  } finally {
    fsOps.closeSync(fd);
  }
}
