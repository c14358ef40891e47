// The shell: login, navigation (#/queues, #/queues/{vhost}/{name}, …), the vhost filter and
// the refresh loop that updates the current view in place every few seconds.
import { h, fill } from './dom.js';
import { api, credentials, login, logout, onUnauthorized, username } from './api.js';
import { overview } from './views/overview.js';
import { queues } from './views/queues.js';
import { queuePage } from './views/queue.js';
import { exchanges, exchangePage } from './views/exchanges.js';
import { connections, channels } from './views/connections.js';
import { policies } from './views/policies.js';
import { admin } from './views/admin.js';

const NAV = [
  ['overview', 'Overview'],
  ['queues', 'Queues'],
  ['exchanges', 'Exchanges'],
  ['connections', 'Connections'],
  ['channels', 'Channels'],
  ['policies', 'Policies'],
  ['admin', 'Definitions'],
];

const root = document.getElementById('app');
const ctx = {
  vhost: sessionStorage.getItem('leveret.vhost') ?? '',
  interval: Number(localStorage.getItem('leveret.interval') ?? 5000),
  go: (hash) => {
    location.hash = hash;
  },
};

let current = null;
let timer = null;
let refreshing = false;
let again = false;
let statusEl;
let vhostSelect;

function showLogin(message) {
  stop();
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
  const err = h('div', { class: 'login-error', role: 'alert' }, message ?? '');
  const submit = h('button', { type: 'submit', class: 'btn primary wide' }, 'Log in');
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        fill(err);
        try {
          await login(user.value, pass.value);
          start();
        } catch (x) {
          fill(err, x.status === 401 ? 'Wrong username or password.' : `Cannot log in: ${x.message}`);
          submit.disabled = false;
        }
      },
    },
    h('div', { class: 'login-brand' }, h('img', { src: '/ui/favicon.svg', alt: '' }), h('span', null, 'Leveret')),
    h('p', { class: 'muted' }, 'Log in with a broker user to manage queues, exchanges and connections.'),
    h('label', { class: 'field' }, h('span', null, 'Username'), user),
    h('label', { class: 'field' }, h('span', null, 'Password'), pass),
    err,
    submit,
  );
  fill(root, h('div', { class: 'login-screen' }, form));
  user.focus();
}

function shell() {
  const nav = h(
    'nav',
    { class: 'nav' },
    NAV.map(([id, label]) => h('a', { href: `#/${id}`, dataset: { id } }, label)),
  );
  vhostSelect = h(
    'select',
    {
      class: 'vhost',
      'aria-label': 'Virtual host',
      onchange: () => {
        ctx.vhost = vhostSelect.value;
        sessionStorage.setItem('leveret.vhost', ctx.vhost);
        route();
      },
    },
    h('option', { value: '' }, 'All vhosts'),
  );
  const interval = h(
    'select',
    {
      'aria-label': 'Refresh every',
      onchange: () => {
        ctx.interval = Number(interval.value);
        localStorage.setItem('leveret.interval', String(ctx.interval));
        schedule();
      },
    },
    [
      [2000, 'Every 2 s'],
      [5000, 'Every 5 s'],
      [10000, 'Every 10 s'],
      [30000, 'Every 30 s'],
      [0, 'Paused'],
    ].map(([v, l]) => h('option', { value: String(v), selected: v === ctx.interval }, l)),
  );
  statusEl = h('span', { class: 'status', title: 'Last refresh' });
  const header = h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: '#/overview' }, h('img', { src: '/ui/favicon.svg', alt: '' }), 'Leveret'),
    nav,
    h(
      'div',
      { class: 'top-right' },
      statusEl,
      vhostSelect,
      interval,
      h('span', { class: 'user', title: 'Logged in as' }, username()),
      h('button', { type: 'button', class: 'btn ghost small', onclick: () => logout() }, 'Log out'),
    ),
  );
  const main = h('main', { id: 'view' });
  fill(root, header, main);
  loadVhosts();
}

async function loadVhosts() {
  try {
    const list = await api('/api/vhosts');
    const names = (Array.isArray(list) ? list : []).map((v) => String(v?.name ?? '')).sort();
    fill(
      vhostSelect,
      h('option', { value: '' }, 'All vhosts'),
      names.map((n) => h('option', { value: n, selected: n === ctx.vhost }, n)),
    );
    if (ctx.vhost && !names.includes(ctx.vhost)) ctx.vhost = '';
  } catch {
    // A user who may not list vhosts still sees everything else.
  }
}

function parseHash() {
  const parts = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { page: parts[0] || 'overview', args: parts.slice(1) };
}

function route() {
  const main = document.getElementById('view');
  if (!main) return;
  if (current?.destroy) current.destroy();
  const { page, args } = parseHash();
  for (const a of document.querySelectorAll('.nav a')) a.classList.toggle('active', a.dataset.id === page);
  fill(main);
  const views = { overview, queues, exchanges, connections, channels, policies, admin };
  if (page === 'queues' && args.length >= 2) current = queuePage(main, ctx, args[0], args.slice(1).join('/'));
  else if (page === 'exchanges' && args.length >= 2) current = exchangePage(main, ctx, args[0], args.slice(1).join('/'));
  else current = (views[page] ?? overview)(main, ctx);
  document.title = `${NAV.find(([id]) => id === page)?.[1] ?? 'Overview'} · Leveret`;
  tick();
}

async function tick() {
  if (!current?.refresh || !credentials()) return;
  // One refresh at a time; a view opened meanwhile gets its own as soon as that one ends.
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  again = false;
  const view = current;
  try {
    await view.refresh();
    statusEl.className = 'status ok';
    fill(statusEl, `Updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e?.status !== 401) {
      statusEl.className = 'status bad';
      fill(statusEl, e?.status ? `API error ${e.status}` : 'Broker unreachable');
      console.error(e);
    }
  } finally {
    refreshing = false;
    if (again) tick();
  }
}

function schedule() {
  clearInterval(timer);
  timer = ctx.interval > 0 ? setInterval(tick, ctx.interval) : null;
}

function stop() {
  clearInterval(timer);
  timer = null;
  if (current?.destroy) current.destroy();
  current = null;
}

function start() {
  shell();
  if (!location.hash) history.replaceState(null, '', '#/overview');
  route();
  schedule();
}

ctx.refresh = tick;
onUnauthorized((why) => showLogin(why === 'refused' ? 'The broker refused these credentials: please log in again.' : ''));
window.addEventListener('hashchange', () => credentials() && route());
if (credentials()) start();
else showLogin();
