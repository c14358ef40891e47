// A table whose rows are replaced on every refresh, and a list with RabbitMQ's server-side
// paging, filtering and sorting (?page=&page_size=&name=&use_regex=&sort=&sort_reverse=), so
// 10,000 queues cost one page of rows.
import { h, fill } from './dom.js';
import { api } from './api.js';
import { num, get } from './format.js';

/**
 * columns: [{label, sort?: 'field.path', num?: true, cell: (row) => Node|string}]
 * sortState: {sort, reverse} (optional): headers with `sort` become clickable.
 */
export function table(columns, { empty = 'Nothing here.', onSort, sortState } = {}) {
  const head = h('tr');
  const body = h('tbody');
  const el = h('div', { class: 'table-wrap' }, h('table', { class: 'grid' }, h('thead', null, head), body));
  const drawHead = () => {
    fill(
      head,
      columns.map((c) => {
        const sorted = sortState && c.sort && sortState.sort === c.sort;
        const th = h(
          'th',
          { class: (c.num ? 'num ' : '') + (c.sort && onSort ? 'sortable ' : '') + (sorted ? 'sorted' : ''), title: c.title },
          c.label,
          sorted ? h('span', { class: 'arrow' }, sortState.reverse ? ' ▾' : ' ▴') : null,
        );
        if (c.sort && onSort) {
          th.tabIndex = 0;
          th.addEventListener('click', () => onSort(c.sort));
          th.addEventListener('keydown', (e) => e.key === 'Enter' && onSort(c.sort));
        }
        return th;
      }),
    );
  };
  drawHead();
  return {
    el,
    drawHead,
    /** note replaces the "empty" text, e.g. when the list could not be read. */
    rows(items, key, note) {
      if (!items || items.length === 0) {
        fill(body, h('tr', { class: 'empty' }, h('td', { colSpan: columns.length }, note ?? empty)));
        return;
      }
      fill(
        body,
        items.map((row) =>
          h(
            'tr',
            { dataset: key ? { key: key(row) } : undefined },
            columns.map((c) => h('td', { class: c.num ? 'num' : c.class }, cellOf(c, row))),
          ),
        ),
      );
    },
  };
}

function cellOf(c, row) {
  try {
    return c.cell(row);
  } catch {
    return '—';
  }
}

const states = new Map();

/**
 * A paged list of /api/{what}[/{vhost}]. Falls back to paging in the page when the endpoint
 * answers a plain array (not paged yet).
 */
export function pagedList({ id, path, columns, vhost, defaultSort = 'name', empty, toolbarExtra }) {
  const st = states.get(id) ?? { page: 1, pageSize: 100, name: '', regex: false, sort: defaultSort, reverse: false };
  states.set(id, st);
  const sortState = {
    get sort() {
      return st.sort;
    },
    get reverse() {
      return st.reverse;
    },
  };
  let refreshNow = () => {};
  const t = table(columns, {
    empty,
    sortState,
    onSort: (field) => {
      if (st.sort === field) st.reverse = !st.reverse;
      else {
        st.sort = field;
        st.reverse = field !== 'name';
      }
      st.page = 1;
      t.drawHead();
      refreshNow();
    },
  });
  let timer;
  const filter = h('input', {
    type: 'search',
    class: 'filter',
    placeholder: 'Filter by name…',
    value: st.name,
    'aria-label': 'Filter by name',
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        st.name = filter.value;
        st.page = 1;
        refreshNow();
      }, 250);
    },
  });
  const regex = h('input', {
    type: 'checkbox',
    checked: st.regex,
    onchange: () => {
      st.regex = regex.checked;
      st.page = 1;
      refreshNow();
    },
  });
  const size = h(
    'select',
    {
      'aria-label': 'Rows per page',
      onchange: () => {
        st.pageSize = Number(size.value);
        st.page = 1;
        refreshNow();
      },
    },
    [20, 50, 100, 500].map((n) => h('option', { value: String(n), selected: n === st.pageSize }, `${n} / page`)),
  );
  const info = h('span', { class: 'muted count' });
  const pageLabel = h('span', { class: 'page-label' });
  const prev = h(
    'button',
    {
      type: 'button',
      class: 'btn small',
      onclick: () => {
        st.page--;
        refreshNow();
      },
    },
    '‹ Prev',
  );
  const next = h(
    'button',
    {
      type: 'button',
      class: 'btn small',
      onclick: () => {
        st.page++;
        refreshNow();
      },
    },
    'Next ›',
  );
  const error = h('div', { class: 'inline-error', hidden: true });
  const el = h(
    'div',
    { class: 'paged' },
    h(
      'div',
      { class: 'toolbar' },
      filter,
      h('label', { class: 'check' }, regex, 'Regex'),
      toolbarExtra ?? null,
      h('span', { class: 'spacer' }),
      info,
      size,
      prev,
      pageLabel,
      next,
    ),
    error,
    t.el,
  );

  // Answers can cross (typing in the filter): only the latest request's answer is drawn.
  let seq = 0;
  async function refresh() {
    const mine = ++seq;
    const q = new URLSearchParams({
      page: String(st.page),
      page_size: String(st.pageSize),
      name: st.name,
      use_regex: String(st.regex),
      sort: st.sort,
      sort_reverse: String(st.reverse),
      pagination: 'true',
    });
    const base = vhost() ? `${path}/${encodeURIComponent(vhost())}` : path;
    let res;
    try {
      res = await api(`${base}?${q}`);
    } catch (e) {
      if (mine !== seq) return;
      // Asking past the last page (the list shrank) is a 400 in RabbitMQ: go back to page 1.
      if (e.status === 400 && st.page > 1) {
        st.page = 1;
        return refresh();
      }
      error.hidden = false;
      fill(error, e.status === 404 ? 'This list is not available from this server yet.' : `Could not load: ${e.message}`);
      t.rows([], undefined, '—');
      return;
    }
    if (mine !== seq) return;
    error.hidden = true;
    const paged = Array.isArray(res) ? pageLocally(res, st) : (res ?? {});
    const items = Array.isArray(paged.items) ? paged.items : [];
    const pageCount = Math.max(1, Number(paged.page_count) || 1);
    if (st.page > pageCount) st.page = pageCount;
    t.rows(items, (r) => `${r.vhost ?? ''}/${r.name ?? ''}`);
    const total = paged.total_count;
    const filtered = paged.filtered_count;
    fill(info, st.name && filtered !== total ? `${num(filtered)} of ${num(total)} match` : `${num(total)} total`);
    fill(pageLabel, `${num(st.page)} / ${num(pageCount)}`);
    prev.disabled = st.page <= 1;
    next.disabled = st.page >= pageCount;
  }
  refreshNow = refresh;
  return { el, refresh };
}

/** RabbitMQ's paging, done in the page for a server that sends the whole list. */
function pageLocally(all, st) {
  let items = all;
  if (st.name) {
    let test;
    if (st.regex) {
      try {
        const re = new RegExp(st.name);
        test = (n) => re.test(n);
      } catch {
        test = () => false;
      }
    } else {
      const needle = st.name.toLowerCase();
      test = (n) => n.toLowerCase().includes(needle);
    }
    items = items.filter((r) => test(String(r.name ?? '')));
  }
  const filtered = items.length;
  items = [...items].sort((a, b) => {
    const x = get(a, st.sort);
    const y = get(b, st.sort);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x ?? '').localeCompare(String(y ?? ''));
    return st.reverse ? -c : c;
  });
  const pageCount = Math.max(1, Math.ceil(filtered / st.pageSize));
  const page = Math.min(st.page, pageCount);
  return {
    items: items.slice((page - 1) * st.pageSize, page * st.pageSize),
    page,
    page_count: pageCount,
    filtered_count: filtered,
    total_count: all.length,
  };
}
