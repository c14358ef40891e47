// Pieces the views share: stat tiles, links to queues and exchanges, the vhost path part.
import { h, fill } from '../dom.js';
import { seg } from '../api.js';

export function stat(label, extraClass = '') {
  const v = h('div', { class: 'stat-value' }, '—');
  const el = h('div', { class: `stat ${extraClass}` }, h('div', { class: 'stat-label' }, label), v);
  return { el, set: (text) => fill(v, text) };
}

export function queueLink(vhost, name) {
  return h('a', { href: `#/queues/${seg(vhost ?? '')}/${seg(name ?? '')}`, class: 'name' }, name === '' ? '(AMQP default)' : String(name ?? '—'));
}

export function exchangeLink(vhost, name) {
  return h('a', { href: `#/exchanges/${seg(vhost ?? '')}/${seg(name === '' ? 'amq.default' : name ?? '')}`, class: 'name' },
    name === '' ? '(AMQP default)' : String(name ?? '—'));
}

export function vhostCell(v) {
  return h('span', { class: 'vhost-cell' }, String(v ?? '—'));
}

export function heading(title, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', null, title), h('div', { class: 'page-actions' }, ...extra));
}
