// One queue: its numbers and charts, arguments and policy, consumers, bindings, and the
// actions (get messages, publish, purge, delete).
import { h, fill, card, value, button, flash, field, clip, badge } from '../dom.js';
import { api, seg } from '../api.js';
import { chart } from '../chart.js';
import { historyQuery, rates as rateHistory, lengths, rows } from '../history.js';
import { get, num, rate, bytes, text, yesNo } from '../format.js';
import { table } from '../table.js';
import { stat, exchangeLink, heading, publishFields, onPublish } from './common.js';

export function queuePage(root, ctx, vhost, name) {
  const path = `/api/queues/${seg(vhost)}/${seg(name)}`;
  const tiles = {
    messages: stat('Total', 'accent'),
    ready: stat('Ready'),
    unacked: stat('Unacked'),
    consumers: stat('Consumers'),
    pub: stat('Publish'),
    out: stat('Deliver / get'),
    ack: stat('Ack'),
    memory: stat('Memory'),
  };
  tiles.messages.el.id = 'q-messages';
  const rates = chart(
    'Message rates',
    [
      { label: 'Publish', color: '#2f6fde' },
      { label: 'Deliver / get', color: '#1f9d74' },
      { label: 'Ack', color: '#d9622b' },
    ],
    { fmt: rate, height: 160 },
  );
  const depth = chart(
    'Queued messages',
    [
      { label: 'Ready', color: '#2f6fde' },
      { label: 'Unacked', color: '#e0a526' },
    ],
    { fmt: num, height: 160 },
  );
  const details = h('div', { class: 'details' });
  const consumers = table(
    [
      { label: 'Channel', cell: (c) => text(get(c, 'channel_details.name')) },
      { label: 'Consumer tag', cell: (c) => clip(text(c.consumer_tag), 200) },
      { label: 'Ack required', cell: (c) => yesNo(c.ack_required) },
      { label: 'Exclusive', cell: (c) => yesNo(c.exclusive) },
      { label: 'Prefetch', num: true, cell: (c) => num(c.prefetch_count) },
      { label: 'Active', cell: (c) => yesNo(c.active) },
      { label: 'Arguments', cell: (c) => value(c.arguments) },
    ],
    { empty: 'No consumers.' },
  );
  const bindings = table(
    [
      { label: 'From exchange', cell: (b) => exchangeLink(b.vhost, b.source) },
      { label: 'Routing key', cell: (b) => h('code', null, clip(text(b.routing_key), 300)) },
      { label: 'Arguments', cell: (b) => value(b.arguments) },
    ],
    { empty: 'No bindings.' },
  );
  const title = h('div', { class: 'title-badges' });
  const actions = h('div', { class: 'actions' });
  const purge = button(
    'Purge',
    async () => {
      if (!confirm(`Purge all messages from queue "${clip(name, 200)}"?`)) return;
      try {
        await api(`${path}/contents`, { method: 'DELETE' });
        flash(actions, 'Queue purged.');
        ctx.refresh();
      } catch (e) {
        flash(actions, `Purge failed: ${e.message}`, 'error');
      }
    },
    'warn',
  );
  purge.id = 'purge';
  const ifEmpty = h('input', { type: 'checkbox' });
  const ifUnused = h('input', { type: 'checkbox' });
  const del = button(
    'Delete queue',
    async () => {
      if (!confirm(`Delete queue "${clip(name, 200)}"?`)) return;
      const q = new URLSearchParams();
      if (ifEmpty.checked) q.set('if-empty', 'true');
      if (ifUnused.checked) q.set('if-unused', 'true');
      try {
        await api(`${path}${q.size ? `?${q}` : ''}`, { method: 'DELETE' });
        ctx.go('#/queues');
      } catch (e) {
        flash(actions, `Delete failed: ${e.message}`, 'error');
      }
    },
    'danger',
  );
  actions.append(purge, del, h('label', { class: 'check' }, ifEmpty, 'if empty'), h('label', { class: 'check' }, ifUnused, 'if unused'));
  const missing = h('div', { class: 'inline-error', hidden: true });

  root.append(
    h('div', { class: 'crumbs' }, h('a', { href: '#/queues' }, 'Queues'), ' › vhost ', h('code', null, clip(vhost, 200))),
    heading(clip(name, 300) || '(empty name)', title),
    missing,
    h(
      'div',
      { class: 'stats' },
      Object.values(tiles).map((t) => t.el),
    ),
    h('div', { class: 'charts' }, h('section', { class: 'card' }, rates.el), h('section', { class: 'card' }, depth.el)),
    h('div', { class: 'two-col' }, card('Details', details), card('Actions', actions, getForm(path), publishForm(ctx, vhost, name))),
    card('Consumers', consumers.el),
    card('Bindings', bindings.el),
  );

  let seeded = false;
  return {
    async refresh() {
      let q;
      try {
        q = (await api(seeded ? path : `${path}?${historyQuery()}`)) ?? {};
      } catch (e) {
        if (e.status === 404) {
          missing.hidden = false;
          fill(missing, `Queue "${clip(name, 300)}" in vhost "${clip(vhost, 300)}" does not exist (any more).`);
          return;
        }
        throw e;
      }
      missing.hidden = true;
      tiles.messages.set(num(q.messages));
      tiles.ready.set(num(q.messages_ready));
      tiles.unacked.set(num(q.messages_unacknowledged));
      tiles.consumers.set(num(q.consumers));
      tiles.pub.set(rate(get(q, 'message_stats.publish_details.rate')));
      tiles.out.set(rate(get(q, 'message_stats.deliver_get_details.rate')));
      tiles.ack.set(rate(get(q, 'message_stats.ack_details.rate')));
      tiles.memory.set(bytes(q.memory));
      if (!seeded) {
        seeded = true;
        const ms = q.message_stats ?? {};
        rates.seed(rows([rateHistory(ms.publish_details), rateHistory(ms.deliver_get_details), rateHistory(ms.ack_details)]));
        depth.seed(rows([lengths(q.messages_ready_details), lengths(q.messages_unacknowledged_details)]));
      }
      rates.push([
        get(q, 'message_stats.publish_details.rate'),
        get(q, 'message_stats.deliver_get_details.rate'),
        get(q, 'message_stats.ack_details.rate'),
      ]);
      depth.push([q.messages_ready, q.messages_unacknowledged]);
      fill(
        title,
        q.type ? badge(String(q.type)) : null,
        q.state ? badge(String(q.state), q.state === 'running' ? 'ok' : 'idle') : null,
        q.durable ? badge('durable', 'feat') : null,
        q.exclusive ? badge('exclusive', 'feat') : null,
        q.auto_delete ? badge('auto-delete', 'feat') : null,
      );
      fill(
        details,
        h(
          'dl',
          { class: 'kv' },
          h('dt', null, 'Vhost'),
          h('dd', null, text(q.vhost ?? vhost)),
          h('dt', null, 'Node'),
          h('dd', null, text(q.node)),
          h('dt', null, 'Exclusive owner'),
          h('dd', null, text(get(q, 'owner_pid_details.name'))),
          h('dt', null, 'Policy'),
          h('dd', null, text(q.policy)),
          h('dt', null, 'Operator policy'),
          h('dd', null, text(q.operator_policy)),
          h('dt', null, 'Effective policy'),
          h('dd', null, value(q.effective_policy_definition)),
          h('dt', null, 'Arguments'),
          h('dd', null, value(q.arguments)),
          h('dt', null, 'Message bytes'),
          h('dd', null, bytes(q.message_bytes)),
          h('dt', null, 'Idle since'),
          h('dd', null, text(q.idle_since)),
        ),
      );
      consumers.rows(Array.isArray(q.consumer_details) ? q.consumer_details : []);
      try {
        const b = await api(`${path}/bindings`);
        bindings.rows(Array.isArray(b) ? b : []);
      } catch (e) {
        if (e.status === 401) throw e;
        bindings.rows([]);
      }
    },
    destroy() {
      rates.destroy();
      depth.destroy();
    },
  };
}

function getForm(path) {
  const count = h('input', { type: 'number', min: 1, max: 1000, value: '1', class: 'narrow' });
  const ackmode = h(
    'select',
    null,
    [
      ['ack_requeue_true', 'Nack, requeue'],
      ['reject_requeue_true', 'Reject, requeue'],
      ['ack_requeue_false', 'Ack (removes them)'],
      ['reject_requeue_false', 'Reject, no requeue'],
    ].map(([v, l]) => h('option', { value: v }, l)),
  );
  const encoding = h(
    'select',
    null,
    [
      ['auto', 'Auto string / base64'],
      ['base64', 'base64'],
    ].map(([v, l]) => h('option', { value: v }, l)),
  );
  const out = h('div', { class: 'messages' });
  const form = h(
    'form',
    {
      class: 'sub-form',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const msgs = await api(`${path}/get`, {
            method: 'POST',
            body: { count: Number(count.value) || 1, ackmode: ackmode.value, encoding: encoding.value, truncate: 50000 },
          });
          fill(out, Array.isArray(msgs) && msgs.length ? msgs.map(messageView) : h('p', { class: 'muted' }, 'Queue is empty.'));
        } catch (x) {
          fill(out, h('div', { class: 'inline-error' }, `Get failed: ${x.message}`));
        }
      },
    },
    h('h3', null, 'Get messages'),
    h(
      'div',
      { class: 'row' },
      field('Count', count),
      field('Mode', ackmode),
      field('Encoding', encoding),
      h('button', { type: 'submit', class: 'btn' }, 'Get'),
    ),
    out,
  );
  return form;
}

function messageView(m, i) {
  return h(
    'div',
    { class: 'message' },
    h(
      'div',
      { class: 'message-head' },
      h('b', null, `#${i + 1}`),
      h('span', null, 'exchange ', h('code', null, clip(text(m?.exchange), 200))),
      h('span', null, 'routing key ', h('code', null, clip(text(m?.routing_key), 200))),
      m?.redelivered ? badge('redelivered', 'warn') : null,
      h('span', { class: 'muted' }, `${num(m?.payload_bytes)} bytes, ${text(m?.payload_encoding)}`),
      h('span', { class: 'muted' }, `${num(m?.message_count)} left`),
    ),
    h('details', null, h('summary', null, 'Properties'), value(m?.properties)),
    h('pre', { class: 'payload' }, clip(text(m?.payload), 50000)),
  );
}

function publishForm(ctx, vhost, queue) {
  const fields = publishFields();
  const { payload, headers, persistent } = fields;
  const form = h(
    'form',
    { class: 'sub-form', onsubmit: onPublish(ctx, vhost, 'amq.default', () => queue, fields, 'Message published but not routed.') },
    h('h3', null, 'Publish message'),
    h('p', { class: 'muted small' }, 'Sent through the default exchange with this queue\u2019s name as routing key.'),
    field('Payload', payload),
    h(
      'div',
      { class: 'row' },
      field('Headers (JSON)', headers),
      h('label', { class: 'check' }, persistent, 'Persistent'),
      h('button', { type: 'submit', class: 'btn' }, 'Publish'),
    ),
  );
  return form;
}
