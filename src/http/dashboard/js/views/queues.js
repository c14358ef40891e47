// All queues, paged, filtered and sorted by the server, plus a form to declare one.
import { h, badge, keysOf, flash } from '../dom.js';
import { api, seg } from '../api.js';
import { get, num, rate, text } from '../format.js';
import { pagedList } from '../table.js';
import { queueLink, vhostCell, heading } from './common.js';

export function features(q) {
  const out = [];
  if (q.durable) out.push(h('span', { class: 'badge feat', title: 'durable' }, 'D'));
  if (q.auto_delete) out.push(h('span', { class: 'badge feat', title: 'auto-delete' }, 'AD'));
  if (q.exclusive) out.push(h('span', { class: 'badge feat', title: 'exclusive' }, 'Excl'));
  const args = keysOf(q.arguments);
  if (args) out.push(h('span', { class: 'args', title: args }, args));
  return out.length ? out : '—';
}

function stateBadge(q) {
  const s = q.state;
  if (!s) return '—';
  return badge(String(s), s === 'running' ? 'ok' : s === 'idle' ? 'idle' : 'warn');
}

export function queues(root, ctx) {
  const list = pagedList({
    id: 'queues',
    path: '/api/queues',
    vhost: () => ctx.vhost,
    empty: 'No queues match.',
    columns: [
      { label: 'Name', sort: 'name', cell: (q) => queueLink(q.vhost, q.name) },
      { label: 'Vhost', sort: 'vhost', cell: (q) => vhostCell(q.vhost) },
      { label: 'Type', sort: 'type', cell: (q) => text(q.type) },
      { label: 'Features', cell: features },
      { label: 'Policy', sort: 'policy', cell: (q) => (q.policy ? badge(String(q.policy), 'policy') : '—') },
      { label: 'State', sort: 'state', cell: stateBadge },
      { label: 'Ready', sort: 'messages_ready', num: true, cell: (q) => num(q.messages_ready) },
      { label: 'Unacked', sort: 'messages_unacknowledged', num: true, cell: (q) => num(q.messages_unacknowledged) },
      { label: 'Total', sort: 'messages', num: true, cell: (q) => h('b', null, num(q.messages)) },
      {
        label: 'In',
        sort: 'message_stats.publish_details.rate',
        num: true,
        title: 'Publish rate',
        cell: (q) => rate(get(q, 'message_stats.publish_details.rate')),
      },
      {
        label: 'Out',
        sort: 'message_stats.deliver_get_details.rate',
        num: true,
        title: 'Deliver/get rate',
        cell: (q) => rate(get(q, 'message_stats.deliver_get_details.rate')),
      },
      {
        label: 'Ack',
        sort: 'message_stats.ack_details.rate',
        num: true,
        title: 'Ack rate',
        cell: (q) => rate(get(q, 'message_stats.ack_details.rate')),
      },
      { label: 'Consumers', sort: 'consumers', num: true, cell: (q) => num(q.consumers) },
    ],
  });
  root.append(
    heading(
      'Queues',
      h(
        'button',
        {
          type: 'button',
          class: 'btn primary',
          onclick: () => {
            form.hidden = !form.hidden;
          },
        },
        '+ Add queue',
      ),
    ),
  );
  const form = declareForm(root, ctx, () => list.refresh());
  root.append(form, h('section', { class: 'card flush' }, list.el));
  return { refresh: list.refresh };
}

function declareForm(root, ctx, done) {
  const vhost = h('input', { value: ctx.vhost || '/', required: true });
  const name = h('input', { required: true, placeholder: 'orders' });
  const type = h(
    'select',
    null,
    ['classic', 'quorum', 'stream'].map((t) => h('option', { value: t }, t)),
  );
  const durable = h('input', { type: 'checkbox', checked: true });
  const args = h('input', { placeholder: '{"x-max-length": 1000}' });
  return h(
    'form',
    {
      class: 'card inline-form',
      hidden: true,
      onsubmit: async (e) => {
        e.preventDefault();
        let argObj = {};
        try {
          argObj = args.value.trim() ? JSON.parse(args.value) : {};
        } catch {
          flash(e.target, 'Arguments must be a JSON object.', 'error');
          return;
        }
        if (type.value !== 'classic') argObj['x-queue-type'] = type.value;
        try {
          await api(`/api/queues/${seg(vhost.value)}/${seg(name.value)}`, {
            method: 'PUT',
            body: { durable: durable.checked, auto_delete: false, arguments: argObj },
          });
          flash(e.target, `Queue ${name.value} declared.`);
          name.value = '';
          done();
        } catch (x) {
          flash(e.target, `Could not declare: ${x.message}`, 'error');
        }
      },
    },
    h('label', { class: 'field' }, h('span', null, 'Vhost'), vhost),
    h('label', { class: 'field grow' }, h('span', null, 'Name'), name),
    h('label', { class: 'field' }, h('span', null, 'Type'), type),
    h('label', { class: 'field grow' }, h('span', null, 'Arguments (JSON)'), args),
    h('label', { class: 'check' }, durable, 'Durable'),
    h('button', { type: 'submit', class: 'btn primary' }, 'Declare'),
  );
}
