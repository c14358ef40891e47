/**
 * Objects to call back once at the next event-loop turn, all from one immediate: no
 * closure or timer object per connection, which an idle one would keep for its whole life.
 * What is added while a batch runs waits for the next turn, as with one immediate each.
 *
 * With a limit, at most that many calls that return anything but false run per turn; the
 * rest are first in line at the next turn, ahead of what was added since (a rotation).
 */
export class NextTurn<T> {
  private due: T[] = [];
  private running: T[] = [];
  private queued = false;
  /** Batches run so far: a turn number that moves only while there is something to do. */
  batches = 0;

  constructor(
    private readonly run: (item: T) => boolean | void,
    private readonly perTurn = Infinity,
  ) {}

  /** Items waiting for the next turn. */
  get waiting(): number {
    return this.due.length;
  }

  add(item: T): void {
    this.due.push(item);
    if (this.queued) return;
    this.queued = true;
    setImmediate(this.runDue);
  }

  private readonly runDue = (): void => {
    this.queued = false;
    this.batches++;
    const list = this.due;
    this.due = this.running;
    this.running = list;
    const n = list.length;
    let i = 0;
    for (let used = 0; i < n && used < this.perTurn; i++) if (this.run(list[i]) !== false) used++;
    if (i === n) {
      list.length = 0;
      return;
    }
    // Over the limit: the rest keep their place, ahead of what was added meanwhile.
    list.copyWithin(0, i, n);
    list.length = n - i;
    const added = this.due;
    for (let j = 0; j < added.length; j++) list.push(added[j]);
    added.length = 0;
    this.due = list;
    this.running = added;
    if (this.queued) return;
    this.queued = true;
    setImmediate(this.runDue);
  };
}
