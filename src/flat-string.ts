/**
 * A dictionary-mode object used only for `in` lookups: looking a string up as a property
 * key makes V8 store it once, flat, and point the string at that copy.
 */
const LOOKUP: Record<string, unknown> = Object.create(null) as Record<string, unknown>;

/**
 * The same string, stored flat. A string built by concatenation is kept by V8 as a tree
 * of its pieces (32 bytes a node) until something reads it whole; for strings that live
 * as long as a connection or a channel (names, cache keys) the flat copy is about half the
 * size. For setup paths only: the lookup costs a hash of the string.
 */
export function flatString(s: string): string {
  // The result of the lookup does not matter, only that it is made.
  void (s in LOOKUP);
  return s;
}
