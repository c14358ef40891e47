// What `leveret list KIND` reads and which columns it shows when none are named. The
// defaults follow rabbitmqctl's list_* commands, widened by what an operator needs next
// (a connection's name to close it, a queue's consumers); any field of the API's objects,
// nested ones with dots (queue.name), may be named instead.
import { seg } from './client';

export interface Listing {
  /** The API path listing every vhost's objects. */
  all: string;
  /** The path for one vhost's objects; undefined when the objects belong to no vhost (users). */
  inVhost?: (vhost: string) => string;
  columns: string[];
  summary: string;
  /** Where a row says its vhost, when not in a top-level `vhost` field. */
  vhostColumn?: string;
}

const inVhost = (kind: string) => (vhost: string) => `/api/${kind}/${seg(vhost)}`;
const underVhost = (kind: string) => (vhost: string) => `/api/vhosts/${seg(vhost)}/${kind}`;

export const LISTINGS: Record<string, Listing> = {
  queues: {
    all: '/api/queues',
    inVhost: inVhost('queues'),
    columns: ['name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers'],
    summary: 'queues with their message counts',
  },
  exchanges: {
    all: '/api/exchanges',
    inVhost: inVhost('exchanges'),
    columns: ['name', 'type', 'durable', 'auto_delete'],
    summary: 'exchanges',
  },
  bindings: {
    all: '/api/bindings',
    inVhost: inVhost('bindings'),
    columns: ['source', 'destination', 'destination_type', 'routing_key', 'arguments'],
    summary: 'bindings (an empty source is the default exchange)',
  },
  connections: {
    all: '/api/connections',
    inVhost: underVhost('connections'),
    columns: ['name', 'user', 'state', 'channels'],
    summary: 'client connections (the name is what `close connection` takes)',
  },
  channels: {
    all: '/api/channels',
    inVhost: underVhost('channels'),
    columns: ['name', 'user', 'consumer_count', 'messages_unacknowledged', 'prefetch_count'],
    summary: 'channels of the client connections',
  },
  consumers: {
    all: '/api/consumers',
    inVhost: inVhost('consumers'),
    columns: ['queue.name', 'channel_details.name', 'consumer_tag', 'ack_required', 'prefetch_count'],
    vhostColumn: 'queue.vhost',
    summary: 'consumers, with their queue and channel',
  },
  users: { all: '/api/users', columns: ['name', 'tags'], summary: 'users and their tags' },
  vhosts: { all: '/api/vhosts', columns: ['name', 'description'], summary: 'virtual hosts' },
  permissions: {
    all: '/api/permissions',
    inVhost: underVhost('permissions'),
    columns: ['user', 'configure', 'write', 'read'],
    summary: "users' permissions",
  },
  policies: {
    all: '/api/policies',
    inVhost: inVhost('policies'),
    columns: ['name', 'pattern', 'apply-to', 'definition', 'priority'],
    summary: 'policies',
  },
};

/** Without --vhost a listing spans every vhost, so its rows say which vhost they are in. */
export function defaultColumns(listing: Listing, vhost: string | undefined): string[] {
  return vhost === undefined && listing.inVhost !== undefined ? [listing.vhostColumn ?? 'vhost', ...listing.columns] : listing.columns;
}
