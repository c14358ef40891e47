// Exchanges (paged like queues) and one exchange's bindings, with a publish form.
import { h, fill, card, value, badge, keysOf, clip, field } from '../dom.js';
import { api, seg } from '../api.js';
import { get, rate, text } from '../format.js';
import { pagedList, table } from '../table.js';
import { exchangeLink, queueLink, vhostCell, heading, publishFields, onPublish } from './common.js';

function features(x) {
  const out = [];
  if (x.durable) out.push(h('span', { class: 'badge feat', title: 'durable' }, 'D'));
  if (x.auto_delete) out.push(h('span', { class: 'badge feat', title: 'auto-delete' }, 'AD'));
  if (x.internal) out.push(h('span', { class: 'badge feat', title: 'internal' }, 'I'));
  const args = keysOf(x.arguments);
  if (args) out.push(h('span', { class: 'args', title: args }, args));
  return out.length ? out : '—';
}

export function exchanges(root, ctx) {
  const list = pagedList({
    id: 'exchanges',
    path: '/api/exchanges',
    vhost: () => ctx.vhost,
    empty: 'No exchanges match.',
    columns: [
      { label: 'Name', sort: 'name', cell: (x) => exchangeLink(x.vhost, x.name) },
      { label: 'Vhost', sort: 'vhost', cell: (x) => vhostCell(x.vhost) },
      { label: 'Type', sort: 'type', cell: (x) => text(x.type) },
      { label: 'Features', cell: features },
      { label: 'Policy', sort: 'policy', cell: (x) => (x.policy ? badge(String(x.policy), 'policy') : '—') },
      {
        label: 'In',
        sort: 'message_stats.publish_in_details.rate',
        num: true,
        cell: (x) => rate(get(x, 'message_stats.publish_in_details.rate')),
      },
      {
        label: 'Out',
        sort: 'message_stats.publish_out_details.rate',
        num: true,
        cell: (x) => rate(get(x, 'message_stats.publish_out_details.rate')),
      },
    ],
  });
  root.append(heading('Exchanges'), h('section', { class: 'card flush' }, list.el));
  return { refresh: list.refresh };
}

function destinationLink(b) {
  return b.destination_type === 'exchange' ? exchangeLink(b.vhost, b.destination) : queueLink(b.vhost, b.destination);
}

export function exchangePage(root, ctx, vhost, name) {
  const path = `/api/exchanges/${seg(vhost)}/${seg(name)}`;
  const details = h('div', { class: 'details' });
  const missing = h('div', { class: 'inline-error', hidden: true });
  const bindingCols = (other) => [
    other,
    { label: 'Routing key', cell: (b) => h('code', null, clip(text(b.routing_key), 300)) },
    { label: 'Arguments', cell: (b) => value(b.arguments) },
  ];
  const from = table(bindingCols({ label: 'To', cell: (b) => h('span', null, destinationLink(b), ' ', badge(text(b.destination_type))) }), {
    empty: 'No bindings from this exchange.',
  });
  const to = table(bindingCols({ label: 'From exchange', cell: (b) => exchangeLink(b.vhost, b.source) }), {
    empty: 'No bindings to this exchange.',
  });
  root.append(
    h('div', { class: 'crumbs' }, h('a', { href: '#/exchanges' }, 'Exchanges'), ' › vhost ', h('code', null, clip(vhost, 200))),
    heading(name === 'amq.default' ? '(AMQP default)' : clip(name, 300)),
    missing,
    h('div', { class: 'two-col' }, card('Details', details), card('Publish message', publishForm(ctx, vhost, name))),
    card('Bindings from this exchange', from.el),
    card('Bindings to this exchange', to.el),
  );

  // The per-exchange binding lists, or the vhost's whole list filtered here when absent.
  async function bindingsOf(dir) {
    try {
      const r = await api(`${path}/bindings/${dir}`);
      return Array.isArray(r) ? r : [];
    } catch (e) {
      if (e.status !== 404) throw e;
      const all = await api(`/api/bindings/${seg(vhost)}`);
      const key = name === 'amq.default' ? '' : name;
      return (Array.isArray(all) ? all : []).filter((b) =>
        dir === 'source' ? b.source === key : b.destination_type === 'exchange' && b.destination === key,
      );
    }
  }

  return {
    async refresh() {
      let x;
      try {
        x = (await api(path)) ?? {};
      } catch (e) {
        if (e.status === 404) {
          missing.hidden = false;
          fill(missing, `Exchange "${clip(name, 300)}" does not exist (any more).`);
          return;
        }
        throw e;
      }
      missing.hidden = true;
      fill(
        details,
        h(
          'dl',
          { class: 'kv' },
          h('dt', null, 'Vhost'),
          h('dd', null, text(x.vhost ?? vhost)),
          h('dt', null, 'Type'),
          h('dd', null, text(x.type)),
          h('dt', null, 'Features'),
          h('dd', null, features(x)),
          h('dt', null, 'Policy'),
          h('dd', null, text(x.policy)),
          h('dt', null, 'Arguments'),
          h('dd', null, value(x.arguments)),
          h('dt', null, 'Publish in'),
          h('dd', null, rate(get(x, 'message_stats.publish_in_details.rate'))),
          h('dt', null, 'Publish out'),
          h('dd', null, rate(get(x, 'message_stats.publish_out_details.rate'))),
        ),
      );
      const [s, d] = await Promise.allSettled([bindingsOf('source'), bindingsOf('destination')]);
      from.rows(s.status === 'fulfilled' ? s.value : []);
      to.rows(d.status === 'fulfilled' ? d.value : []);
    },
  };
}

function publishForm(ctx, vhost, exchange) {
  const key = h('input', { placeholder: 'routing key' });
  const fields = publishFields();
  const { payload, headers, persistent } = fields;
  const form = h(
    'form',
    { class: 'sub-form', onsubmit: onPublish(ctx, vhost, exchange, () => key.value, fields, 'Published, but no queue was bound for it.') },
    h('div', { class: 'row' }, field('Routing key', key), field('Headers (JSON)', headers)),
    field('Payload', payload),
    h(
      'div',
      { class: 'row' },
      h('label', { class: 'check' }, persistent, 'Persistent'),
      h('button', { type: 'submit', class: 'btn' }, 'Publish'),
    ),
  );
  return form;
}
