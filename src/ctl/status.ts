// `leveret status`: one screen on the broker's health, from /api/overview and the node's
// own entry in /api/nodes (uptime, memory, disk, alarms).
import { Refused, seg, type Client } from './client';
import type { Format } from './table';

type Obj = Record<string, unknown>;

/** Message rates worth a glance, in the order the dashboard's overview shows them. */
const RATES = ['publish', 'confirm', 'deliver_get', 'redeliver', 'ack', 'return_unroutable', 'drop_unroutable'];

export interface Status {
  product: string;
  version: string;
  rabbitmq_version: string;
  node: string;
  cluster_name: string;
  uptime_ms: number | null;
  listeners: { protocol: string; ip_address: string; port: number }[];
  object_totals: Record<string, number>;
  queue_totals: { messages: number; messages_ready: number; messages_unacknowledged: number };
  message_rates: Record<string, number>;
  memory: { used: number | null; limit: number | null };
  disk: { free: number | null; limit: number | null };
  alarms: string[];
  /** the broker's log level; null for a user who may not read it (administrators only) */
  log_level: string | null;
}

export async function readStatus(client: Client): Promise<Status> {
  const o = (await client.get('/api/overview')) as Obj;
  const nodeName = str(o.node);
  const node = nodeName === '' ? {} : ((await client.get(`/api/nodes/${seg(nodeName)}`)) as Obj);
  const stats = obj(o.message_stats);
  const queues = obj(o.queue_totals);
  const alarms: string[] = [];
  if (node.mem_alarm === true) alarms.push('memory');
  if (node.disk_free_alarm === true) alarms.push('disk');
  const logLevel = await client.get('/api/log-level').then(
    (l) => str(obj(l).level) || null,
    (err: unknown) => {
      if (err instanceof Refused) return null;
      throw err;
    },
  );
  return {
    product: str(o.product_name) || 'Leveret',
    version: str(o.product_version),
    rabbitmq_version: str(o.rabbitmq_version),
    node: nodeName,
    cluster_name: str(o.cluster_name),
    uptime_ms: num(node.uptime),
    listeners: (Array.isArray(o.listeners) ? (o.listeners as Obj[]) : []).map((l) => ({
      protocol: str(l.protocol),
      ip_address: str(l.ip_address),
      port: num(l.port) ?? 0,
    })),
    object_totals: Object.fromEntries(Object.entries(obj(o.object_totals)).map(([k, v]) => [k, num(v) ?? 0])),
    queue_totals: {
      messages: num(queues.messages) ?? 0,
      messages_ready: num(queues.messages_ready) ?? 0,
      messages_unacknowledged: num(queues.messages_unacknowledged) ?? 0,
    },
    message_rates: Object.fromEntries(RATES.map((r) => [r, num(obj(stats[`${r}_details`]).rate) ?? 0])),
    memory: { used: num(node.mem_used), limit: num(node.mem_limit) },
    disk: { free: num(node.disk_free), limit: num(node.disk_free_limit) },
    alarms,
    log_level: logLevel,
  };
}

export function renderStatus(s: Status, format: Format): string {
  if (format === 'json') return JSON.stringify(s, null, 2) + '\n';
  const lines = [
    `${s.product} ${s.version} (RabbitMQ management API ${s.rabbitmq_version})`,
    `Node:        ${s.node}${s.cluster_name !== '' && s.cluster_name !== s.node ? ` (cluster ${s.cluster_name})` : ''}`,
    `Uptime:      ${s.uptime_ms === null ? 'unknown' : duration(s.uptime_ms)}`,
    `Listeners:   ${s.listeners.map((l) => `${l.protocol} ${hostPort(l.ip_address, l.port)}`).join(', ') || 'none'}`,
    `Objects:     ${Object.entries(s.object_totals)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `Messages:    ${s.queue_totals.messages} (ready ${s.queue_totals.messages_ready}, unacknowledged ${s.queue_totals.messages_unacknowledged})`,
    `Rates (/s):  ${Object.entries(s.message_rates)
      .map(([k, v]) => `${k} ${round(v)}`)
      .join(', ')}`,
    `Memory:      ${bytes(s.memory.used)} used, limit ${bytes(s.memory.limit)}`,
    `Disk:        ${bytes(s.disk.free)} free, limit ${bytes(s.disk.limit)}`,
    `Alarms:      ${s.alarms.length === 0 ? 'none' : s.alarms.join(', ')}`,
    `Log level:   ${s.log_level ?? 'unknown (administrators only)'}`,
  ];
  return lines.join('\n') + '\n';
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});
const round = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));
const hostPort = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

export function duration(ms: number): string {
  let s = Math.floor(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (s >= size || parts.length > 0) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  parts.push(`${s}s`);
  return parts.join(' ');
}

export function bytes(n: number | null): string {
  if (n === null) return 'unknown';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}
