/**
 * Whether `a[aAt, aAt + len)` and `b[0, len)` hold the same bytes. Used on the publish path
 * for a method's or a header's few dozen bytes, where a loop costs less than a native call.
 */
export function sameBytes(a: Buffer, aAt: number, b: Buffer, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aAt + i] !== b[i]) return false;
  return true;
}
