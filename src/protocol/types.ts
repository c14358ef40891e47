/**
 * JavaScript shapes of AMQP field values. Integers decode to numbers (64-bit ones beyond
 * 2^53 to bigint); the AMQP types that have no natural JS shape get small classes so that a
 * table decoded and encoded again keeps its meaning.
 */
export class Decimal {
  constructor(readonly scale: number, readonly value: number) {}
}

export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Date
  | Decimal
  | null
  | FieldValue[]
  | FieldTable;

export interface FieldTable {
  [key: string]: FieldValue | undefined;
}
