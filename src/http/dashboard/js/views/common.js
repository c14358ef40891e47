// Pieces the views share: stat tiles, links to queues and exchanges, the vhost path part,
// the publish forms' fields and submit.
import { h, fill, flash } from '../dom.js';
import { api, seg } from '../api.js';

export function stat(label, extraClass = '') {
  const v = h('div', { class: 'stat-value' }, '—');
  const el = h('div', { class: `stat ${extraClass}` }, h('div', { class: 'stat-label' }, label), v);
  return { el, set: (text) => fill(v, text) };
}

export function queueLink(vhost, name) {
  return h(
    'a',
    { href: `#/queues/${seg(vhost ?? '')}/${seg(name ?? '')}`, class: 'name' },
    name === '' ? '(AMQP default)' : String(name ?? '—'),
  );
}

export function exchangeLink(vhost, name) {
  return h(
    'a',
    { href: `#/exchanges/${seg(vhost ?? '')}/${seg(name === '' ? 'amq.default' : (name ?? ''))}`, class: 'name' },
    name === '' ? '(AMQP default)' : String(name ?? '—'),
  );
}

export function vhostCell(v) {
  return h('span', { class: 'vhost-cell' }, String(v ?? '—'));
}

/** The fields every publish form has: payload, headers (JSON) and persistence. */
export function publishFields() {
  return {
    payload: h('textarea', { rows: 3, placeholder: 'Message body' }),
    headers: h('input', { placeholder: '{"x-my-header": "value"}' }),
    persistent: h('input', { type: 'checkbox', checked: true }),
  };
}

/**
 * A publish form's submit: `fields` (publishFields) sent to `exchange` ('amq.default' for the
 * default exchange) with `routingKey()`; `unrouted` is what a message no queue got says.
 */
export function onPublish(ctx, vhost, exchange, routingKey, fields, unrouted) {
  return async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    let hdrs;
    try {
      hdrs = fields.headers.value.trim() ? JSON.parse(fields.headers.value) : undefined;
    } catch {
      flash(form, 'Headers must be a JSON object.', 'error');
      return;
    }
    const properties = { delivery_mode: fields.persistent.checked ? 2 : 1 };
    if (hdrs) properties.headers = hdrs;
    try {
      const r = await api(`/api/exchanges/${seg(vhost)}/${seg(exchange)}/publish`, {
        method: 'POST',
        body: { properties, routing_key: routingKey(), payload: fields.payload.value, payload_encoding: 'string' },
      });
      flash(form, r?.routed === false ? unrouted : 'Message published.', r?.routed === false ? 'error' : 'ok');
      ctx.refresh();
    } catch (x) {
      flash(form, `Publish failed: ${x.message}`, 'error');
    }
  };
}

export function heading(title, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', null, title), h('div', { class: 'page-actions' }, ...extra));
}
