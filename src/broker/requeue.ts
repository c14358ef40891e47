import type Denque from 'denque';

/** Puts requeued entries back among the ready ones so the queue stays in seq order. */
export function requeueBySeq<E extends { readonly seq: number }>(items: Denque<E>, entries: E[]): void {
  entries.sort((a, b) => a.seq - b.seq);
  const front = items.peekFront();
  // The usual case: everything requeued is older than everything still queued.
  if (front === undefined || entries[entries.length - 1].seq < front.seq) {
    for (let i = entries.length - 1; i >= 0; i--) items.unshift(entries[i]);
    return;
  }
  const rest = items.toArray();
  items.clear();
  let i = 0;
  let j = 0;
  while (i < entries.length || j < rest.length) {
    if (j >= rest.length || (i < entries.length && entries[i].seq < rest[j].seq)) items.push(entries[i++]);
    else items.push(rest[j++]);
  }
}
