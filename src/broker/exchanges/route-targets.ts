import type { BindingDestination } from './exchange';

/**
 * Where an exchange puts the destinations a message reaches: a list reused for every
 * message. It may name a destination more than once (the vhost keeps each queue once).
 * Emptied by resetting a count, so routing a message sets no array length and allocates
 * nothing; entries past the count are stale and never read.
 */
export class RouteTargets {
  private readonly items: BindingDestination[] = [];
  count = 0;

  add(dest: BindingDestination): void {
    this.items[this.count++] = dest;
  }

  at(i: number): BindingDestination {
    return this.items[i];
  }

  clear(): void {
    this.count = 0;
  }

  /** The destinations added since the last clear (for tests). */
  toArray(): BindingDestination[] {
    return this.items.slice(0, this.count);
  }
}
