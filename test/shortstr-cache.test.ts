/**
 * The decoder remembers short strings by their bytes. Whatever the table holds, and however
 * many strings share a slot, a decode must give exactly what decoding the bytes gives.
 */
import { describe, expect, it } from 'vitest';
import { shortString } from '../src/protocol/shortstr-cache';

function decode(s: string | Buffer): string {
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  // Placed at an offset inside a larger buffer, as in a socket read.
  const buf = Buffer.concat([Buffer.from('prefix'), bytes, Buffer.from('suffix')]);
  return shortString(buf, 6, bytes.length);
}

describe('short string cache', () => {
  it('gives what the UTF-8 decoder gives, for 20,000 distinct names sharing 4,096 slots', () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 20_000; i++) {
        const name = `key.${i}.${(i * 7919) % 1000}`;
        expect(decode(name)).toBe(name);
      }
    }
  });

  it('handles the empty string, non-ASCII and the 32/33-byte boundary', () => {
    for (const s of ['', 'é', 'заказ', '日本.キー', 'a'.repeat(31), 'b'.repeat(32), 'c'.repeat(33), 'ж'.repeat(16), 'ж'.repeat(17)]) {
      expect(decode(s)).toBe(s);
      expect(decode(s)).toBe(s);
    }
  });

  it('never confuses strings of one length that differ only in their last byte', () => {
    const names = Array.from({ length: 256 }, (_, i) => 'orders.' + String.fromCharCode(32 + (i % 95)) + String(i));
    for (const n of names) expect(decode(n)).toBe(n);
    for (const n of [...names].reverse()) expect(decode(n)).toBe(n);
  });

  it('decodes invalid UTF-8 the same way each time', () => {
    const bad = Buffer.from([0x61, 0xff, 0xfe, 0x62]);
    const want = bad.toString('utf8');
    expect(decode(bad)).toBe(want);
    expect(decode(bad)).toBe(want);
  });
});
