import { readdirSync, readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import type { ManagementContext } from '../context';

/** RabbitMQ's defaults: a memory watermark of 0.4 of RAM, 50 MB of free disk. */
const MEMORY_HIGH_WATERMARK = 0.4;
export const DISK_FREE_LIMIT = 50_000_000;
/** Node has no process limit like Erlang's; RabbitMQ's default is shown. */
const PROC_TOTAL = 1_048_576;

const EXCHANGE_DESCRIPTIONS: Array<[string, string]> = [
  ['direct', 'AMQP direct exchange, as per the AMQP specification'],
  ['fanout', 'AMQP fanout exchange, as per the AMQP specification'],
  ['headers', 'AMQP headers exchange, as per the AMQP specification'],
  ['topic', 'AMQP topic exchange, as per the AMQP specification'],
];

/** The exchange types as /api/overview and /api/nodes list them. */
export const exchangeTypes = (): Array<Record<string, unknown>> =>
  EXCHANGE_DESCRIPTIONS.map(([name, description]) => ({ name, description, enabled: true }));

const AUTH_MECHANISMS = [
  { name: 'AMQPLAIN', description: 'QPid AMQPLAIN mechanism', enabled: true },
  { name: 'PLAIN', description: 'SASL PLAIN authentication mechanism', enabled: true },
];

/** The management listener, as RabbitMQ's `contexts` (its port a string, as RabbitMQ sends it). */
export function webContexts(ctx: ManagementContext, withNode: boolean): Array<Record<string, unknown>> {
  return ctx
    .listeners()
    .filter((l) => l.protocol === 'http' || l.protocol === 'https')
    .map((l) => ({
      ...(withNode ? { node: ctx.nodeName } : {}),
      description: 'Leveret Management',
      path: '/',
      port: String(l.port),
      ...(l.protocol === 'https' ? { ssl: true } : {}),
    }));
}

/** Resource figures of this process and host, read afresh on each call. */
export interface NodeResources {
  mem_used: number;
  fd_used: number;
  sockets_used: number;
  proc_used: number;
  disk_free: number;
  /** the store's file I/O since start-up (system calls and the bytes handed to them) */
  io_read_count: number;
  io_read_bytes: number;
  io_write_count: number;
  io_write_bytes: number;
  io_sync_count: number;
}

export const RESOURCE_FIELDS: ReadonlyArray<keyof NodeResources> = [
  'mem_used',
  'fd_used',
  'sockets_used',
  'proc_used',
  'disk_free',
  'io_read_count',
  'io_read_bytes',
  'io_write_count',
  'io_write_bytes',
  'io_sync_count',
];

export function readResources(ctx: ManagementContext): NodeResources {
  const io = ctx.io();
  return {
    mem_used: process.memoryUsage.rss(),
    fd_used: openFiles(),
    sockets_used: ctx.connections.size + ctx.listeners().length,
    // Node's nearest to Erlang processes: the handles and requests keeping the loop alive.
    proc_used: process.getActiveResourcesInfo().length,
    disk_free: diskFree(ctx.dataDir),
    io_read_count: io.readCount,
    io_read_bytes: io.readBytes,
    io_write_count: io.writeCount,
    io_write_bytes: io.writeBytes,
    io_sync_count: io.syncCount,
  };
}

function openFiles(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** The soft limit on open files, from /proc/self/limits (RabbitMQ's fd_total). */
export function fileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m !== null) return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    // not Linux
  }
  return 1024;
}

function diskFree(dir: string): number {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return 0;
  }
}

/** Rates of the resource figures between two readings, per second. */
export class ResourceRates {
  private last: { at: number; r: NodeResources } | null = null;
  private rates: Record<string, number> = {};

  constructor(private readonly minIntervalMs: number) {}

  update(r: NodeResources, now: number): Record<string, number> {
    const prev = this.last;
    if (prev === null) {
      this.last = { at: now, r };
    } else if (now - prev.at >= this.minIntervalMs) {
      const secs = (now - prev.at) / 1000;
      for (const f of RESOURCE_FIELDS) this.rates[f] = Math.round(((r[f] - prev.r[f]) / secs) * 10) / 10;
      this.last = { at: now, r };
    }
    return this.rates;
  }
}

/** Counters RabbitMQ keeps about its runtime, I/O and object churn, which the dashboard charts. */
const ZERO_COUNTERS = [
  'gc_num',
  'gc_bytes_reclaimed',
  'context_switches',
  'io_read_avg_time',
  'io_write_avg_time',
  'io_sync_avg_time',
  'io_seek_count',
  'io_seek_avg_time',
  'io_reopen_count',
  'mnesia_ram_tx_count',
  'mnesia_disk_tx_count',
  'msg_store_read_count',
  'msg_store_write_count',
  'queue_index_write_count',
  'queue_index_read_count',
  'connection_created',
  'connection_closed',
  'channel_created',
  'channel_closed',
  'queue_declared',
  'queue_created',
  'queue_deleted',
];

/** How many of `fds` descriptors may be sockets: RabbitMQ keeps some back for files. */
export const socketLimit = (fds: number): number => Math.max(0, Math.floor((fds - 100) * 0.9));

/** This node as RabbitMQ 3.10's /api/nodes/{name} shows it, in its key order. */
export function nodeJson(ctx: ManagementContext, resources: NodeResources, rates: Record<string, number>): Record<string, unknown> {
  const fdTotal = fileLimit();
  const alarms = ctx.alarms();
  const out: Record<string, unknown> = {
    partitions: [],
    os_pid: String(process.pid),
    fd_total: fdTotal,
    sockets_total: socketLimit(fdTotal),
    mem_limit: alarms.memoryLimit ?? Math.floor(os.totalmem() * MEMORY_HIGH_WATERMARK),
    mem_alarm: alarms.memory,
    disk_free_limit: alarms.diskFreeLimit ?? DISK_FREE_LIMIT,
    disk_free_alarm: alarms.disk,
    proc_total: PROC_TOTAL,
    rates_mode: 'basic',
    uptime: Date.now() - ctx.startedAt,
    run_queue: 0,
    processors: os.cpus().length,
    exchange_types: exchangeTypes(),
    auth_mechanisms: AUTH_MECHANISMS,
    applications: [],
    contexts: webContexts(ctx, false),
    log_files: ['<stdout>'],
    db_dir: ctx.dataDir,
    config_files: [],
    net_ticktime: 60,
    enabled_plugins: ['rabbitmq_management'],
    mem_calculation_strategy: 'rss',
    name: ctx.nodeName,
    type: 'disc',
    running: true,
    being_drained: false,
  };
  for (const f of RESOURCE_FIELDS) {
    out[f] = resources[f];
    out[`${f}_details`] = { rate: rates[f] ?? 0 };
  }
  // Leveret does not count these: zeros, so that tools reading them keep working.
  for (const f of ZERO_COUNTERS) {
    out[f] = 0;
    out[`${f}_details`] = { rate: 0 };
  }
  out.cluster_links = [];
  return out;
}
