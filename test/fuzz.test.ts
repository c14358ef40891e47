// A short run of the fuzz harness (fuzz/): mutated frames of every kind over real
// sockets against a Leveret of its own; after every round the broker lives, a
// well-behaved client publishes and consumes, and memory ends near where it started.
// The full run (a million frames and more) is `npm run fuzz -- --frames 1000000`.
import { describe, expect, it } from 'vitest';
import { runFuzz } from '../fuzz/run';
import { describe as summarize } from '../fuzz/cli-summary';

describe('fuzzing', () => {
  it('20,000 mutated and valid frames: no crash, no stuck client, no memory growth, no error logged', async () => {
    const s = await runFuzz({ frames: 20_000, seed: 20260512 });
    console.log(summarize(s));
    expect(s.findings).toEqual([]);
    expect(s.frames).toBeGreaterThanOrEqual(20_000);
    expect(s.rounds).toBeGreaterThanOrEqual(2);
    expect(s.healthyChecks).toBe(s.rounds);
    // Every kind of mutation was sent, and the broker answered with protocol errors, not 541.
    expect(Object.keys(s.mutations).filter((k) => !k.startsWith('handshake:')).length).toBe(17);
    expect(s.outcomes['close 541']).toBeUndefined();
    expect(s.outcomes['close 501']).toBeGreaterThan(0);
    expect(s.rss.final).not.toBeNull();
  }, 120_000);
});
