import type { Queue } from './queue';

/** Numbers every routing pass in the process, so a queue's mark from an older pass never matches. */
let lastPass = 0;

/**
 * The queues one message is routed to, each once. Exchanges may name a queue several times
 * (overlapping patterns, several keys of a CC header); instead of a Set, each queue carries
 * the number of the pass that last added it, so routing a message hashes nothing and the
 * list is reused from message to message. Marks only matter while a pass adds queues, and
 * nothing else routes in between, so passes of different lists never overlap.
 */
export class QueueTargets {
  private readonly items: Queue[] = [];
  size = 0;
  private pass = ++lastPass;

  add(q: Queue): void {
    if (q.routeMark === this.pass) return;
    q.routeMark = this.pass;
    this.items[this.size++] = q;
  }

  at(i: number): Queue {
    return this.items[i];
  }

  /** Empties the list for the next message (and drops the references it held). */
  clear(): void {
    for (let i = 0; i < this.size; i++) this.items[i] = undefined as unknown as Queue;
    this.size = 0;
    this.pass = ++lastPass;
  }

  *[Symbol.iterator](): IterableIterator<Queue> {
    for (let i = 0; i < this.size; i++) yield this.items[i];
  }
}
