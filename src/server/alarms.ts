import { readFileSync, statfs } from 'node:fs';
import { totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../logger';
import { parseDiskFreeLimit, parseMemoryWatermark, resolveLimit, type ResourceLimit } from '../resource-limits';

/** How often memory use is looked at. */
const MEMORY_CHECK_MS = 1000;
/** Free disk space is looked at every this many memory checks. */
const DISK_CHECK_EVERY = 2;

/**
 * RabbitMQ's vm_memory_high_watermark_paging_ratio: messages kept in memory may take
 * what is left of this share of the watermark once the broker's other memory is counted;
 * beyond it queues page their new messages to disk.
 */
const PAGING_RATIO = 0.5;

/** Where a cgroup (v2, then v1) caps the memory of the processes in it. */
const CGROUP_LIMITS = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

/** The memory the broker may use: the machine's, or its cgroup's limit when that is lower. */
export function availableMemory(): number {
  let memory = totalmem();
  for (const file of CGROUP_LIMITS) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue; // not in such a cgroup
    }
    // "max" (v2) or a huge page-rounded number (v1) means no limit.
    if (/^\d+$/.test(text) && Number(text) > 0 && Number(text) < memory) memory = Number(text);
  }
  return memory;
}

/** The bytes all queues together keep in memory (store/memory-budget.ts). */
export interface MessageMemory {
  used: number;
  limit: number;
}

export interface AlarmLimits {
  /** RSS in bytes above which the memory alarm is raised */
  memory: number;
  /** free bytes on the data directory's disk below which the disk alarm is raised */
  diskFree: number;
}

/** The limits the settings name, in bytes (the settings were checked when loaded). */
export function alarmLimits(settings: { vmMemoryHighWatermark: string; diskFreeLimit: string }, memory = availableMemory()): AlarmLimits {
  const checked = (r: ResourceLimit | string): ResourceLimit => {
    if (typeof r === 'string') throw new Error(r);
    return r;
  };
  return {
    memory: resolveLimit(checked(parseMemoryWatermark(settings.vmMemoryHighWatermark)), memory),
    diskFree: resolveLimit(checked(parseDiskFreeLimit(settings.diskFreeLimit)), memory),
  };
}

/** What a connection.blocked says, as RabbitMQ words it; null when nothing blocks publishers. */
export function blockedReason(memory: boolean, disk: boolean, storeFailing: boolean): string | null {
  if (memory || disk) return `low on ${memory && disk ? 'memory & disk' : memory ? 'memory' : 'disk'}`;
  return storeFailing ? 'disk write failed' : null;
}

/**
 * A full garbage collection, when the runtime lets us ask for one. Memory over the
 * watermark may be garbage not collected yet (acked messages' buffers): the alarm is
 * raised only for memory still in use after a collection, and an alarm that holds
 * publishers back (so little is allocated and collections are rare) is re-checked
 * after one.
 */
const collectGarbage: (() => void) | null = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
})();

/**
 * RabbitMQ's resource alarms: memory (the process's RSS above the watermark) and disk
 * (free space on the data directory's file system below the limit). One timer looks at
 * both; `onChange` hears when either is raised or cleared.
 */
export class ResourceAlarms {
  memory = false;
  disk = false;
  /** the figures last seen, for the management API */
  rss = 0;
  diskFree = -1;
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;
  private diskPending = false;
  private stopped = false;

  constructor(
    readonly limits: AlarmLimits,
    private readonly dataDir: string,
    private readonly log: Logger,
    private readonly onChange: () => void,
    private readonly messages: MessageMemory | null = null,
  ) {}

  start(): void {
    this.checkMemory();
    this.checkDisk();
    this.timer = setInterval(() => this.tick(), MEMORY_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    this.checkMemory();
    if (++this.ticks % DISK_CHECK_EVERY === 0) this.checkDisk();
  }

  private checkMemory(): void {
    const limit = this.limits.memory;
    let rss = process.memoryUsage.rss();
    // (A watermark of 0 blocks publishing for good: nothing to collect for.)
    if (rss > limit && limit > 0 && collectGarbage !== null) {
      collectGarbage();
      rss = process.memoryUsage.rss();
    }
    this.rss = rss;
    if (this.messages !== null) {
      const others = Math.max(0, rss - this.messages.used);
      this.messages.limit = Math.max(0, Math.floor(limit * PAGING_RATIO) - others);
    }
    const over = rss > limit;
    if (over === this.memory) return;
    this.memory = over;
    if (over)
      this.log.warn(
        { rss, limit },
        `memory resource limit alarm set: memory use ${mb(rss)} is above the watermark ${mb(limit)}; publishers are blocked`,
      );
    else this.log.info({ rss, limit }, `memory resource limit alarm cleared: memory use ${mb(rss)} is below the watermark ${mb(limit)}`);
    this.onChange();
  }

  private checkDisk(): void {
    if (this.diskPending) return;
    this.diskPending = true;
    statfs(this.dataDir, (err, s) => {
      this.diskPending = false;
      if (this.stopped) return;
      if (err !== null) return this.log.debug({ err: err.message, dir: this.dataDir }, 'cannot read free disk space');
      const free = s.bavail * s.bsize;
      this.diskFree = free;
      const limit = this.limits.diskFree;
      const low = free < limit;
      if (low === this.disk) return;
      this.disk = low;
      if (low)
        this.log.warn(
          { free, limit },
          `disk resource limit alarm set: free disk space ${mb(free)} is below the limit ${mb(limit)}; publishers are blocked`,
        );
      else this.log.info({ free, limit }, `disk resource limit alarm cleared: free disk space ${mb(free)} is above the limit ${mb(limit)}`);
      this.onChange();
    });
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
