// Building DOM without markup strings: every piece of data becomes a text node, so a queue
// called "<img onerror=…>" is shown, never run.

/** h('div', {class: 'x', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'value') el.value = String(v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const MAX_DEPTH = 4;
const MAX_KEYS = 40;
const MAX_TEXT = 4000;

/** A string cut to a readable length (a header can be megabytes). */
export function clip(s, max = MAX_TEXT) {
  s = String(s);
  return s.length > max ? `${s.slice(0, max)}… (${s.length.toLocaleString()} chars)` : s;
}

/**
 * Any JSON value (arguments, headers, policy definitions) as nested key/value lists, cut at a
 * few levels and a few dozen keys: a queue with arguments nested 10,000 deep must not take
 * the page down, so this never walks deeper than MAX_DEPTH whatever it is given.
 */
export function value(v, depth = 0) {
  if (v === null || v === undefined) return h('span', { class: 'v-null' }, v === null ? 'null' : '—');
  if (typeof v === 'boolean') return h('span', { class: 'v-bool' }, String(v));
  if (typeof v === 'number') return h('span', { class: 'v-num' }, String(v));
  if (typeof v === 'string') return h('span', { class: 'v-str' }, clip(v));
  if (typeof v !== 'object') return h('span', null, clip(String(v)));
  const isArray = Array.isArray(v);
  const keys = isArray ? v.map((_, i) => i) : Object.keys(v);
  if (keys.length === 0) return h('span', { class: 'v-null' }, isArray ? '[]' : '{}');
  if (depth >= MAX_DEPTH) {
    return h(
      'span',
      { class: 'v-deep', title: `nested deeper than ${MAX_DEPTH} levels: not shown` },
      isArray ? `[… ${keys.length}]` : `{… ${keys.length}}`,
    );
  }
  const list = h('dl', { class: 'kv' + (depth > 0 ? ' nested' : '') });
  for (const k of keys.slice(0, MAX_KEYS)) {
    list.append(h('dt', null, isArray ? `[${k}]` : clip(k, 200)), h('dd', null, value(v[k], depth + 1)));
  }
  if (keys.length > MAX_KEYS) list.append(h('dt', null, '…'), h('dd', { class: 'muted' }, `${keys.length - MAX_KEYS} more`));
  return list;
}

/** The keys of an arguments table, for a table cell. */
export function keysOf(obj) {
  if (!obj || typeof obj !== 'object') return '';
  const keys = Object.keys(obj);
  return keys.length > 4 ? `${keys.slice(0, 4).join(', ')} +${keys.length - 4}` : keys.join(', ');
}

export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}` }, text);
}

export function button(label, onclick, kind = '') {
  return h('button', { type: 'button', class: `btn ${kind}`, onclick }, label);
}

/** A message in a view that goes away by itself. */
export function flash(el, text, kind = 'ok') {
  const note = h('div', { class: `flash ${kind}` }, text);
  el.prepend(note);
  setTimeout(() => note.remove(), kind === 'error' ? 8000 : 4000);
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', null, title) : null, ...children);
}

export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', null, hint) : null);
}
