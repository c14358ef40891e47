/** Makes a switch over a union exhaustive: a case left out is a compile error here. */
export function assertNever(value: never): never {
  throw new Error(`unexpected state ${String(value)}`);
}
