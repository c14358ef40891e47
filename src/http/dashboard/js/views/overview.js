// Totals from /api/overview, charts of its rates and queue totals, and the deepest queues.
import { h, fill, card } from '../dom.js';
import { api } from '../api.js';
import { chart } from '../chart.js';
import { historyQuery, rates as rateHistory, lengths, rows } from '../history.js';
import { get, num, rate, text } from '../format.js';
import { table } from '../table.js';
import { stat, queueLink, vhostCell, heading } from './common.js';
import { clusterCard } from './cluster.js';

export function overview(root, ctx) {
  const rates = chart(
    'Message rates',
    [
      { label: 'Publish (in)', color: '#2f6fde' },
      { label: 'Deliver / get (out)', color: '#1f9d74' },
      { label: 'Ack', color: '#d9622b' },
    ],
    { fmt: rate },
  );
  const queued = chart(
    'Queued messages',
    [
      { label: 'Ready', color: '#2f6fde' },
      { label: 'Unacked', color: '#e0a526' },
      { label: 'Total', color: '#6b7280' },
    ],
    { fmt: num },
  );
  const tiles = {
    connections: stat('Connections'),
    channels: stat('Channels'),
    exchanges: stat('Exchanges'),
    queues: stat('Queues'),
    consumers: stat('Consumers'),
    messages: stat('Queued messages', 'accent'),
  };
  const node = h('div', { class: 'node-info muted' });
  const cluster = clusterCard();
  const top = table(
    [
      { label: 'Queue', cell: (q) => queueLink(q.vhost, q.name) },
      { label: 'Vhost', cell: (q) => vhostCell(q.vhost) },
      { label: 'Ready', num: true, cell: (q) => num(q.messages_ready) },
      { label: 'Unacked', num: true, cell: (q) => num(q.messages_unacknowledged) },
      { label: 'Total', num: true, cell: (q) => num(q.messages) },
      { label: 'In', num: true, cell: (q) => rate(get(q, 'message_stats.publish_details.rate')) },
      { label: 'Out', num: true, cell: (q) => rate(get(q, 'message_stats.deliver_get_details.rate')) },
      { label: 'Consumers', num: true, cell: (q) => num(q.consumers) },
    ],
    { empty: 'No queues yet.' },
  );

  root.append(
    heading('Overview', node),
    h(
      'div',
      { class: 'stats' },
      Object.values(tiles).map((t) => t.el),
    ),
    h('div', { class: 'charts' }, h('section', { class: 'card' }, rates.el), h('section', { class: 'card' }, queued.el)),
    cluster.el,
    card('Deepest queues', top.el),
  );

  let seeded = false;
  return {
    async refresh() {
      const vq = ctx.vhost ? `/${encodeURIComponent(ctx.vhost)}` : '';
      const [o, deep, nodes] = await Promise.allSettled([
        api(seeded ? '/api/overview' : `/api/overview?${historyQuery()}`),
        api(`/api/queues${vq}?page=1&page_size=8&sort=messages&sort_reverse=true&pagination=true`),
        api('/api/nodes'),
      ]);
      // A user without the monitoring tag may not list nodes: the card then stays hidden.
      if (nodes.status === 'fulfilled') cluster.update(nodes.value);
      if (o.status === 'fulfilled') {
        const ov = o.value ?? {};
        const ms = ov.message_stats ?? {};
        const qt = ov.queue_totals ?? {};
        const ot = ov.object_totals ?? {};
        if (!seeded) {
          seeded = true;
          rates.seed(rows([rateHistory(ms.publish_details), rateHistory(ms.deliver_get_details), rateHistory(ms.ack_details)]));
          queued.seed(
            rows([lengths(qt.messages_ready_details), lengths(qt.messages_unacknowledged_details), lengths(qt.messages_details)]),
          );
        }
        rates.push([get(ms, 'publish_details.rate'), get(ms, 'deliver_get_details.rate'), get(ms, 'ack_details.rate')]);
        queued.push([qt.messages_ready, qt.messages_unacknowledged, qt.messages]);
        for (const k of ['connections', 'channels', 'exchanges', 'queues', 'consumers']) tiles[k].set(num(ot[k]));
        tiles.messages.set(num(qt.messages));
        const product = [ov.product_name, ov.product_version].filter(Boolean).join(' ');
        fill(node, [product, ov.node ? `node ${ov.node}` : ov.cluster_name].filter(Boolean).map(text).join(' · '));
      } else if (o.reason?.status === 401) {
        throw o.reason;
      }
      if (deep.status === 'fulfilled') {
        const v = deep.value;
        top.rows((Array.isArray(v) ? [...v].sort((a, b) => (b.messages ?? 0) - (a.messages ?? 0)).slice(0, 8) : v?.items) ?? []);
      } else {
        top.rows(
          [],
          undefined,
          deep.reason?.status === 404 ? 'This server does not list queues yet.' : `Could not load queues: ${deep.reason?.message}`,
        );
      }
      if (o.status === 'rejected') throw o.reason;
    },
    destroy() {
      rates.destroy();
      queued.destroy();
    },
  };
}
