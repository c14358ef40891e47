import type { Connection } from '../../server/connection';
import type { User } from '../../auth/users';
import type { ManagementContext } from '../context';
import { isAdministrator } from '../access';
import { CONNECTION } from '../stats/kinds';
import { detailed } from '../stats/json';
import { tableJson } from './field-json';
import { TLSSocket } from 'node:tls';
import { tlsFacts, type TlsFacts } from '../../server/tls';

/** Administrators and monitoring users see every client; others only their own (RabbitMQ's is_monitor). */
export const isMonitor = (u: User): boolean => isAdministrator(u) || u.tags.includes('monitoring');

/**
 * The connections the management API shows: those past connection.open (before it they
 * have no user or vhost) that have not closed yet, as RabbitMQ lists them.
 */
export function listedConnections(ctx: ManagementContext): Connection[] {
  const out: Connection[] = [];
  for (const c of ctx.connections) if (c.vhost !== null && c.apiState !== 'closed') out.push(c);
  return out;
}

/** The connections `user` may see: all of them for monitors, else its own. */
export function visibleConnections(ctx: ManagementContext, user: User): Connection[] {
  const all = listedConnections(ctx);
  return isMonitor(user) ? all : all.filter((c) => c.user.name === user.name);
}

export function findConnection(ctx: ManagementContext, name: string): Connection | undefined {
  return listedConnections(ctx).find((c) => c.name === name);
}

/** RabbitMQ shows its Erlang process's garbage collector settings; we have none to show. */
export const GC_PLACEHOLDER = { fullsweep_after: 65535, max_heap_size: 0, min_bin_vheap_size: 46422, min_heap_size: 233, minor_gcs: 0 };

export interface ConnectionViewOptions {
  /** the single-object GET: RabbitMQ shows absent TLS facts as "" there and as null in lists */
  single: boolean;
  /** disable_stats=true: no counters or rates */
  noStats: boolean;
}

/** A connection as RabbitMQ 3.10's /api/connections shows it (keys in its order: sorted). */
export function connectionJson(c: Connection, ctx: ManagementContext, opts: ConnectionViewOptions): Record<string, unknown> {
  const noTls = opts.single ? '' : null;
  const s = c.socket;
  const tls: TlsFacts | null = s instanceof TLSSocket ? tlsFacts(s) : null;
  const name = c.clientProperties.connection_name;
  const out: Record<string, unknown> = {
    auth_mechanism: c.authMechanism,
    channel_max: c.channelMax,
    channels: countChannels(c),
    client_properties: tableJson(c.clientProperties),
    connected_at: c.connectedAt,
    frame_max: c.frameMax,
    garbage_collection: GC_PLACEHOLDER,
    host: s.localAddress ?? '',
    name: c.name,
    node: ctx.nodeName,
    peer_cert_issuer: tls?.peer_cert_issuer ?? noTls,
    peer_cert_subject: tls?.peer_cert_subject ?? noTls,
    peer_cert_validity: tls?.peer_cert_validity ?? noTls,
    peer_host: s.remoteAddress ?? '',
    peer_port: s.remotePort ?? 0,
    port: s.localPort ?? 0,
    protocol: 'AMQP 0-9-1',
  };
  if (!opts.noStats) {
    const row = new Float64Array(CONNECTION.fields.length);
    CONNECTION.read(c, row);
    const rates = ctx.stats.rates(c, CONNECTION.fields.length);
    // RabbitMQ gives rates for the octets only.
    const octets = detailed(CONNECTION.fields, row, rates, ['recv_oct', 'send_oct']);
    Object.assign(out, {
      recv_cnt: row[1],
      recv_oct: octets.recv_oct,
      recv_oct_details: octets.recv_oct_details,
      reductions: 0,
      reductions_details: { rate: 0 },
      send_cnt: row[3],
      send_oct: octets.send_oct,
      send_oct_details: octets.send_oct_details,
      send_pend: s.writableLength,
    });
  }
  Object.assign(out, {
    ssl: tls !== null,
    ssl_cipher: tls?.ssl_cipher ?? noTls,
    ssl_hash: tls?.ssl_hash ?? noTls,
    ssl_key_exchange: tls?.ssl_key_exchange ?? noTls,
    ssl_protocol: tls?.ssl_protocol ?? noTls,
    state: c.apiState,
    timeout: c.heartbeat,
    type: 'network',
    user: c.user.name,
  });
  if (typeof name === 'string' || Buffer.isBuffer(name)) out.user_provided_name = name.toString();
  out.user_who_performed_action = c.user.name;
  out.vhost = c.vhost?.name ?? '';
  return out;
}

function countChannels(c: Connection): number {
  let n = 0;
  for (const ch of c.openChannels()) if (ch.state === 'open') n++;
  return n;
}
