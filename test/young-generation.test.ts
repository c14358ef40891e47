// The young generation policy of the CLI's broker (src/young-generation.ts): held from
// start-up, free to grow while messages move (and during recovery), held again after ten
// quiet seconds (20 ticks). Memory figures are the benchmark's business (scenario f), not asserted here;
// this checks the switching, with the real V8 flag calls in this test process.
import { describe, expect, it } from 'vitest';
import { growingYoungGeneration, holdYoungGeneration, youngGenerationGrowing, YoungGenerationPolicy } from '../src/young-generation';
import { adjustOldGenerationGrowth, growingPercentFor } from '../src/old-generation';

describe('young generation policy', () => {
  it('grows while messages move and is held again after twenty quiet ticks', () => {
    holdYoungGeneration();
    expect(youngGenerationGrowing()).toBe(false);
    let moved = 0;
    const policy = new YoungGenerationPolicy(() => moved);
    policy.tick();
    expect(youngGenerationGrowing()).toBe(false);
    moved += 5000;
    policy.tick();
    expect(youngGenerationGrowing()).toBe(true);
    // A lull shorter than twenty ticks keeps it growing; traffic restarts the count.
    for (let i = 0; i < 19; i++) policy.tick();
    expect(youngGenerationGrowing()).toBe(true);
    moved += 500;
    policy.tick();
    for (let i = 0; i < 19; i++) policy.tick();
    expect(youngGenerationGrowing()).toBe(true);
    policy.tick();
    expect(youngGenerationGrowing()).toBe(false);
    // Counts that step back (a queue deleted with its counters) are not traffic.
    moved -= 100_000;
    policy.tick();
    expect(youngGenerationGrowing()).toBe(false);
    moved += 499;
    policy.tick();
    expect(youngGenerationGrowing()).toBe(false);
  });

  it('lets recovery grow it and holds it again afterwards, even when recovery throws', () => {
    holdYoungGeneration();
    expect(growingYoungGeneration(() => youngGenerationGrowing())).toBe(true);
    expect(youngGenerationGrowing()).toBe(false);
    expect(() =>
      growingYoungGeneration(() => {
        throw new Error('bad segment');
      }),
    ).toThrow('bad segment');
    expect(youngGenerationGrowing()).toBe(false);
  });

  it('asks V8 for 48 MB of room above a small old generation, and leaves a big one to V8', () => {
    const MB = 1024 * 1024;
    // room = old generation x percent / 100: at least 48 MB, in steps of 25 %, a factor of 5 at most
    expect(growingPercentFor(8 * MB)).toBe(400);
    expect(growingPercentFor(13 * MB)).toBe(375);
    expect(growingPercentFor(48 * MB)).toBe(100);
    expect(growingPercentFor(100 * MB)).toBe(50);
    expect(growingPercentFor(255 * MB)).toBe(25);
    expect(growingPercentFor(256 * MB)).toBe(0);
    for (const mb of [8, 13, 20, 48, 100, 200])
      expect((mb * MB * growingPercentFor(mb * MB)) / 100).toBeGreaterThanOrEqual(mb < 12 ? 8 * MB * 4 : 48 * MB);
    // this process's own heap (a vitest worker, well under 256 MB): a percent is set
    expect(adjustOldGenerationGrowth()).toBeGreaterThan(0);
  });
});
