import type { SegmentPosition as Position } from '../broker/storage';

/**
 * Where a stored message lives: which segment, the offset of its record, the record's size,
 * and for an index record the shared segment holding its body (0: the record holds the
 * message itself). The store reads `shared` back when the message is settled, to release
 * its reference without reading the record again.
 */
export class SegmentPosition implements Position {
  constructor(
    readonly segment: number,
    readonly offset: number,
    readonly size: number,
    readonly shared: number,
  ) {}
}
