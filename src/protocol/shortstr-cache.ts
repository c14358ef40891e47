/**
 * Decoded short strings, remembered by their bytes. Publishers repeat the same exchange
 * names, routing keys and header keys message after message; hashing and comparing a few
 * bytes here costs a fraction of decoding them again (a call into the UTF-8 decoder and a
 * new string each time), and handing back the same string object lets Map lookups keyed by
 * it reuse the hash V8 keeps on the string. One table for the process: it is small and
 * single-threaded, and names are shared across connections anyway.
 */
const SLOTS = 4096;
/** Longer strings are decoded every time (rare for names, and their bytes would fill the table). */
const MAX_LEN = 32;

const bytes = new Uint8Array(SLOTS * MAX_LEN);
const lengths = new Uint8Array(SLOTS);
const strings: string[] = new Array<string>(SLOTS).fill('');

/** The UTF-8 string in `buf[start, start + len)`. */
export function shortString(buf: Buffer, start: number, len: number): string {
  if (len === 0) return '';
  if (len > MAX_LEN) return buf.toString('utf8', start, start + len);
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ buf[start + i], 0x01000193);
  const slot = (h ^ (h >>> 16)) & (SLOTS - 1);
  const base = slot * MAX_LEN;
  if (lengths[slot] === len) {
    let i = 0;
    while (i < len && bytes[base + i] === buf[start + i]) i++;
    if (i === len) return strings[slot];
  }
  const s = buf.toString('utf8', start, start + len);
  lengths[slot] = len;
  for (let i = 0; i < len; i++) bytes[base + i] = buf[start + i];
  strings[slot] = s;
  return s;
}
