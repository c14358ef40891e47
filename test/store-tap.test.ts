/**
 * The store tells an attached tap about its writes (the replication stream's source), with
 * the bytes as written, and tells nothing once detached.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attachStoreTap, type StoreTap } from '../src/store/store-tap';
import { writeFully } from '../src/store/file-io';

afterEach(() => attachStoreTap(null));

describe('store tap', () => {
  it('reports positional writes while attached, with their bytes, and nothing after detach', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leveret-tap-'));
    const fd = fs.openSync(path.join(dir, 'f'), 'w+');
    try {
      const seen: Array<[number, string, number]> = [];
      const tap = {
        wrote: (f: number, data: Buffer, position: number) => seen.push([f, data.toString(), position]),
      } as unknown as StoreTap;
      attachStoreTap(tap);
      writeFully(fd, Buffer.from('hello'), 0);
      writeFully(fd, Buffer.from('world'), 5);
      attachStoreTap(null);
      writeFully(fd, Buffer.from('!'), 10);
      expect(seen).toEqual([
        [fd, 'hello', 0],
        [fd, 'world', 5],
      ]);
      expect(fs.readFileSync(path.join(dir, 'f'), 'utf8')).toBe('helloworld!');
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
