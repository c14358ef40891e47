// Client connections and their channels, with a close action (DELETE /api/connections/{name}).
import { h, badge, button, flash, clip } from '../dom.js';
import { api, seg } from '../api.js';
import { get, num, rate, byteRate, text, when } from '../format.js';
import { pagedList } from '../table.js';
import { vhostCell, heading } from './common.js';

async function closeConnection(name, root, ctx) {
  if (!confirm(`Close connection "${clip(name, 200)}"?`)) return;
  try {
    await api(`/api/connections/${seg(name)}`, { method: 'DELETE', headers: { 'x-reason': 'Closed from the Leveret dashboard' } });
    flash(root, 'Connection closed.');
    ctx.refresh();
  } catch (e) {
    flash(root, `Close failed: ${e.message}`, 'error');
  }
}

function client(c) {
  const p = c.client_properties ?? {};
  const s = [p.product, p.version].filter((x) => typeof x === 'string' && x).join(' ');
  return s ? clip(s, 80) : '—';
}

function stateBadge(s) {
  return s ? badge(String(s), s === 'running' ? 'ok' : s === 'flow' || s === 'blocked' ? 'warn' : 'idle') : '—';
}

export function connections(root, ctx) {
  const list = pagedList({
    id: 'connections',
    path: '/api/connections',
    vhost: () => ctx.vhost,
    empty: 'No connections.',
    columns: [
      { label: 'Name', sort: 'name', cell: (c) => h('span', { class: 'name' }, clip(text(c.name), 200)) },
      { label: 'Vhost', sort: 'vhost', cell: (c) => vhostCell(c.vhost) },
      { label: 'User', sort: 'user', cell: (c) => text(c.user) },
      { label: 'Client', cell: client },
      { label: 'Protocol', cell: (c) => text(c.protocol) },
      { label: 'State', sort: 'state', cell: (c) => stateBadge(c.state) },
      { label: 'Channels', sort: 'channels', num: true, cell: (c) => num(c.channels) },
      { label: 'From client', sort: 'recv_oct_details.rate', num: true, cell: (c) => byteRate(get(c, 'recv_oct_details.rate')) },
      { label: 'To client', sort: 'send_oct_details.rate', num: true, cell: (c) => byteRate(get(c, 'send_oct_details.rate')) },
      { label: 'Connected', sort: 'connected_at', cell: (c) => when(c.connected_at) },
      { label: '', cell: (c) => button('Close', () => closeConnection(String(c.name), root, ctx), 'danger small') },
    ],
  });
  root.append(heading('Connections'), h('section', { class: 'card flush' }, list.el));
  return { refresh: list.refresh };
}

export function channels(root, ctx) {
  const list = pagedList({
    id: 'channels',
    path: '/api/channels',
    vhost: () => ctx.vhost,
    empty: 'No channels.',
    columns: [
      { label: 'Channel', sort: 'name', cell: (c) => h('span', { class: 'name' }, clip(text(c.name), 200)) },
      { label: 'Vhost', sort: 'vhost', cell: (c) => vhostCell(c.vhost) },
      { label: 'User', sort: 'user', cell: (c) => text(c.user) },
      {
        label: 'Mode',
        cell: (c) => [c.confirm ? badge('confirm', 'feat') : null, c.transactional ? badge('tx', 'feat') : null].filter(Boolean),
      },
      { label: 'State', sort: 'state', cell: (c) => stateBadge(c.state) },
      { label: 'Prefetch', sort: 'prefetch_count', num: true, cell: (c) => num(c.prefetch_count) },
      { label: 'Unacked', sort: 'messages_unacknowledged', num: true, cell: (c) => num(c.messages_unacknowledged) },
      { label: 'Consumers', sort: 'consumer_count', num: true, cell: (c) => num(c.consumer_count) },
      {
        label: 'Publish',
        sort: 'message_stats.publish_details.rate',
        num: true,
        cell: (c) => rate(get(c, 'message_stats.publish_details.rate')),
      },
      {
        label: 'Deliver',
        sort: 'message_stats.deliver_get_details.rate',
        num: true,
        cell: (c) => rate(get(c, 'message_stats.deliver_get_details.rate')),
      },
      { label: 'Ack', sort: 'message_stats.ack_details.rate', num: true, cell: (c) => rate(get(c, 'message_stats.ack_details.rate')) },
      {
        label: '',
        cell: (c) => {
          const conn = get(c, 'connection_details.name');
          return conn ? button('Close connection', () => closeConnection(String(conn), root, ctx), 'danger small') : '—';
        },
      },
    ],
  });
  root.append(
    heading('Channels'),
    h('p', { class: 'muted' }, 'AMQP has no way to close one channel from outside: closing acts on the channel\u2019s connection.'),
    h('section', { class: 'card flush' }, list.el),
  );
  return { refresh: list.refresh };
}
