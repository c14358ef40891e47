// Policies: the list, a form to add or replace one (PUT), and delete.
import { h, card, value, button, flash, field, clip } from '../dom.js';
import { api, seg } from '../api.js';
import { num, text } from '../format.js';
import { table } from '../table.js';
import { vhostCell, heading } from './common.js';

export function policies(root, ctx) {
  const notes = h('div');
  const list = table(
    [
      { label: 'Vhost', cell: (p) => vhostCell(p.vhost) },
      { label: 'Name', cell: (p) => h('span', { class: 'name' }, clip(text(p.name), 200)) },
      { label: 'Pattern', cell: (p) => h('code', null, clip(text(p.pattern), 300)) },
      { label: 'Apply to', cell: (p) => text(p['apply-to']) },
      { label: 'Priority', num: true, cell: (p) => num(p.priority) },
      { label: 'Definition', cell: (p) => value(p.definition) },
      {
        label: '',
        cell: (p) =>
          button(
            'Delete',
            async () => {
              if (!confirm(`Delete policy "${clip(String(p.name), 200)}"?`)) return;
              try {
                await api(`/api/policies/${seg(p.vhost)}/${seg(p.name)}`, { method: 'DELETE' });
                flash(notes, 'Policy deleted.');
                ctx.refresh();
              } catch (e) {
                flash(notes, `Delete failed: ${e.message}`, 'error');
              }
            },
            'danger small',
          ),
      },
    ],
    { empty: 'No policies.' },
  );

  const vhost = h('input', { value: ctx.vhost || '/', required: true });
  const name = h('input', { required: true, placeholder: 'ttl-for-logs' });
  const pattern = h('input', { required: true, placeholder: '^logs\\.' });
  const applyTo = h(
    'select',
    null,
    ['queues', 'exchanges', 'all'].map((a) => h('option', { value: a }, a)),
  );
  const priority = h('input', { type: 'number', value: '0', class: 'narrow' });
  const definition = h('textarea', { rows: 3, required: true, placeholder: '{"max-length": 10000, "message-ttl": 60000}' });
  const form = h(
    'form',
    {
      class: 'sub-form',
      onsubmit: async (e) => {
        e.preventDefault();
        let def;
        try {
          def = JSON.parse(definition.value);
        } catch {
          flash(notes, 'The definition must be a JSON object.', 'error');
          return;
        }
        try {
          await api(`/api/policies/${seg(vhost.value)}/${seg(name.value)}`, {
            method: 'PUT',
            body: { pattern: pattern.value, definition: def, priority: Number(priority.value) || 0, 'apply-to': applyTo.value },
          });
          flash(notes, `Policy ${name.value} saved.`);
          ctx.refresh();
        } catch (x) {
          flash(notes, `Could not save: ${x.message}`, 'error');
        }
      },
    },
    h(
      'div',
      { class: 'row' },
      field('Vhost', vhost),
      field('Name', name),
      field('Pattern (regex)', pattern),
      field('Apply to', applyTo),
      field('Priority', priority),
    ),
    field('Definition (JSON)', definition),
    h('button', { type: 'submit', class: 'btn primary' }, 'Add / update policy'),
  );

  root.append(heading('Policies'), notes, h('section', { class: 'card flush' }, list.el), card('Add a policy', form));
  return {
    async refresh() {
      const path = ctx.vhost ? `/api/policies/${seg(ctx.vhost)}` : '/api/policies';
      try {
        const r = await api(path);
        list.rows(Array.isArray(r) ? r : []);
      } catch (e) {
        if (e.status !== 404) throw e;
        list.rows([]);
      }
    },
  };
}
