// The cluster's members as the leader sees them (/api/nodes in cluster mode: cluster_role,
// in_sync, replication.*). A single-node broker's entry has no cluster_role, and the card
// stays hidden.
import { h, fill, card, badge } from '../dom.js';
import { bytes, num, text } from '../format.js';
import { table } from '../table.js';

/** How long a follower has been silent, as people read it ("—" for the leader itself). */
function silence(m) {
  const ms = m.replication?.silent_ms;
  if (m.cluster_role === 'leader' || typeof ms !== 'number') return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function role(m) {
  return m.cluster_role === 'leader' ? badge('leader', 'feat') : badge(text(m.cluster_role));
}

function state(m) {
  if (m.running === false) return badge('down', 'warn');
  if (m.cluster_role === 'leader') return badge('serving', 'ok');
  return m.replication?.streaming ? badge('streaming', 'ok') : badge('not streaming', 'warn');
}

export function clusterCard() {
  const summary = h('p', { class: 'muted cluster-summary' });
  const members = table(
    [
      { label: 'Node', cell: (m) => h('span', { class: 'name' }, text(m.name)) },
      { label: 'Role', cell: role },
      { label: 'State', cell: state },
      { label: 'In sync (ISR)', cell: (m) => (m.in_sync ? badge('in ISR', 'ok') : badge('out of ISR', 'warn')) },
      { label: 'Acked LSN', num: true, cell: (m) => num(m.replication?.acked_lsn) },
      {
        label: 'Lag',
        num: true,
        title: 'Bytes of the leader’s log this follower has not made durable yet',
        cell: (m) => (m.cluster_role === 'leader' ? '—' : bytes(m.replication?.lag_bytes)),
      },
      { label: 'Last ack', num: true, title: 'Time since the follower’s last acknowledgement', cell: silence },
      { label: 'Address', cell: (m) => text(m.advertise_host) },
    ],
    { empty: 'No members.' },
  );
  const el = card('Cluster', summary, members.el);
  el.hidden = true;
  return {
    el,
    /** nodes: the /api/nodes list. */
    update(nodes) {
      const list = (Array.isArray(nodes) ? nodes : []).filter((m) => m && typeof m.cluster_role === 'string');
      el.hidden = list.length === 0;
      if (list.length === 0) return;
      const leader = list.find((m) => m.cluster_role === 'leader');
      const r = leader?.replication ?? {};
      const isr = list.filter((m) => m.in_sync).length;
      fill(
        summary,
        [
          `${list.length} member${list.length === 1 ? '' : 's'}`,
          `leader ${text(leader?.name)}`,
          `term ${num(leader?.cluster_term)}`,
          `${isr} in the ISR (min-isr ${num(r.min_isr)})`,
          `leader LSN ${num(r.leader_lsn)}`,
        ].join(' · '),
      );
      members.rows(
        [...list].sort((a, b) =>
          a.cluster_role === 'leader' ? -1 : b.cluster_role === 'leader' ? 1 : String(a.name).localeCompare(String(b.name)),
        ),
        (m) => String(m.name),
      );
    },
  };
}
