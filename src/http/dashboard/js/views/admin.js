// Definitions: download (GET /api/definitions) and upload (POST) of the broker's topology.
import { h, card, flash, field, fill } from '../dom.js';
import { api, seg } from '../api.js';
import { num } from '../format.js';
import { heading } from './common.js';

export function admin(root, ctx) {
  const notes = h('div');
  let imports = 0;
  const summary = h('p', { class: 'muted' });
  const download = h(
    'button',
    {
      type: 'button',
      class: 'btn primary',
      onclick: async () => {
        try {
          const path = ctx.vhost ? `/api/definitions/${seg(ctx.vhost)}` : '/api/definitions';
          const text = await api(path, { raw: true });
          const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
          const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
          const a = h('a', { href: url, download: `leveret-definitions-${stamp}.json` });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10_000);
        } catch (e) {
          flash(notes, `Download failed: ${e.message}`, 'error');
        }
      },
    },
    'Download definitions',
  );
  const file = h('input', { type: 'file', accept: '.json,application/json', required: true });
  const upload = h(
    'form',
    {
      class: 'sub-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const f = file.files?.[0];
        if (!f) return;
        const body = await f.text();
        try {
          JSON.parse(body);
        } catch {
          flash(notes, 'That file is not JSON.', 'error');
          return;
        }
        try {
          const path = ctx.vhost ? `/api/definitions/${seg(ctx.vhost)}` : '/api/definitions';
          await api(path, { method: 'POST', body });
          flash(notes, `Definitions from ${f.name} imported.`);
          imports++;
          ctx.refresh();
        } catch (x) {
          flash(notes, `Import failed: ${x.message}`, 'error');
        }
      },
    },
    field('Definitions file (JSON)', file),
    h('button', { type: 'submit', class: 'btn' }, 'Upload definitions'),
  );

  root.append(
    heading('Definitions'),
    notes,
    h(
      'div',
      { class: 'two-col' },
      card(
        'Export',
        h('p', null, 'Users, vhosts, permissions, policies, queues, exchanges and bindings as one JSON file, in RabbitMQ\u2019s format.'),
        summary,
        download,
      ),
      card(
        'Import',
        h('p', null, 'Adds or updates what the file defines; nothing is deleted. RabbitMQ exports are read as they are.'),
        upload,
      ),
    ),
  );
  // The whole topology is big with many queues: read it once, and again after an import.
  let counted = '';
  return {
    async refresh() {
      if (counted === ctx.vhost + '\0' + imports) return;
      counted = ctx.vhost + '\0' + imports;
      const path = ctx.vhost ? `/api/definitions/${seg(ctx.vhost)}` : '/api/definitions';
      const d = (await api(path)) ?? {};
      const n = (k) => (Array.isArray(d[k]) ? num(d[k].length) : '—');
      fill(
        summary,
        `Currently: ${n('users')} users, ${n('vhosts')} vhosts, ${n('policies')} policies, ${n('queues')} queues, ${n('exchanges')} exchanges, ${n('bindings')} bindings.`,
      );
    },
  };
}
