/**
 * Objects to call back once at the next event-loop turn, all from one immediate: no
 * closure or timer object per connection, which an idle one would keep for its whole life.
 * What is added while a batch runs waits for the next turn, as with one immediate each.
 */
export class NextTurn<T> {
  private due: T[] = [];
  private running: T[] = [];
  private queued = false;

  constructor(private readonly run: (item: T) => void) {}

  add(item: T): void {
    this.due.push(item);
    if (this.queued) return;
    this.queued = true;
    setImmediate(this.runDue);
  }

  private readonly runDue = (): void => {
    this.queued = false;
    const list = this.due;
    this.due = this.running;
    this.running = list;
    for (let i = 0; i < list.length; i++) this.run(list[i]);
    list.length = 0;
  };
}
