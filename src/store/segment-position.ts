import type { SegmentPosition as Position } from '../broker/storage';

/** Where a stored message lives: which segment, the offset of its record, the record's size. */
export class SegmentPosition implements Position {
  constructor(
    readonly segment: number,
    readonly offset: number,
    readonly size: number,
  ) {}
}
