import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { adjustOldGenerationGrowth } from './old-generation';

/*
 * V8's young generation (two semi-spaces) starts at 1 MiB each and doubles whenever more
 * bytes survived scavenges since the last doubling than it holds, up to 16 MiB each. It
 * does not give the memory back while the process keeps allocating, and once allocation
 * stops nothing collects, so a broker keeps whatever size its busiest moment asked for.
 * Message traffic needs the large size (small semi-spaces cost about a third more CPU per
 * message in a 1 -> 1 flood: in-flight messages get copied and promoted), but a burst of
 * handshakes does not: with the young generation grown and touched by 1,000 connections
 * opening, the broker's RSS grows by 17-19 kB per connection, of which only 7-8 kB is the
 * connections' own memory.
 *
 * So the broker run by the CLI lets the young generation grow only while messages move
 * (V8's own growth rule, switched off and on with its growth factor), and once they have
 * stopped for a while asks for one scavenge: V8 then sees its allocation rate is low and
 * shrinks the semi-spaces back to their start size on its own (its rule, not ours).
 * Nothing here runs per message: a half-second timer reads counters the hot path keeps.
 */

/**
 * Growth factor while messages move: V8 still decides when (its survival rule), but one step
 * takes the semi-spaces to their maximum (V8's default factor, 2, would take four steps from
 * 1 MiB to 16 MiB, scavenging a flood's in-flight messages at each smaller size on the way).
 */
const GROWTH_FACTOR = 16;
/**
 * Messages (routed in, delivered or got) per tick above which the young generation may grow:
 * 1,000 a second. Half-second ticks: a flood starting gets its young generation within ~1 s.
 */
const BUSY_MESSAGES_PER_TICK = 500;
const TICK_MS = 500;
/**
 * Quiet ticks (10 s) before a scavenge is asked for: V8 shrinks only when its allocation rate
 * over the last ~5 s is low, so sooner would be wasted.
 */
const QUIET_TICKS = 20;
/** Committed young generation at V8's start size (two 1 MiB semi-spaces): nothing to give back. */
const START_SIZE = 2 << 20;

let active = false;
let growing = true;

function setGrowth(on: boolean): void {
  if (growing === on) return;
  growing = on;
  setFlagsFromString(`--semi-space-growth-factor=${on ? GROWTH_FACTOR : 1}`);
}

/**
 * Keeps the young generation at its size from now on, until load says otherwise: called by
 * the CLI before anything else is loaded (see hold-young-generation.ts). A process that
 * never calls it (tests that embed a Server) keeps V8's default behaviour.
 */
export function holdYoungGeneration(): void {
  active = true;
  setGrowth(false);
  adjustOldGenerationGrowth();
}

/** Whether the young generation may grow now (for tests and the log). */
export function youngGenerationGrowing(): boolean {
  return growing;
}

/** Runs `work` (recovery of a large store) with the young generation free to grow. */
export function growingYoungGeneration<T>(work: () => T): T {
  if (!active) return work();
  setGrowth(true);
  try {
    return work();
  } finally {
    // Whatever it grew to is given back by the policy once the broker is quiet.
    setGrowth(false);
  }
}

/** A scavenge on request, when the runtime lets us ask for one (as alarms.ts does for full collections). */
const scavenge: (() => void) | null = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? () => (gc as (o: { type: string }) => void)({ type: 'minor' }) : null;
  } catch {
    return null;
  }
})();

function youngGenerationBytes(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_size;
  return 0;
}

/**
 * Watches how many messages move and switches the young generation's growth on while they
 * do; when they have stopped, asks once per QUIET_TICKS for the scavenge that lets V8 shrink
 * it. `messagesMoved` is a running total (it may step back when objects go: only rises count).
 */
export class YoungGenerationPolicy {
  private timer: NodeJS.Timeout | null = null;
  private last: number;
  private quiet = 0;

  constructor(private readonly messagesMoved: () => number) {
    this.last = messagesMoved();
  }

  start(): void {
    if (!active || this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** @internal (the timer; tests may call it) */
  tick(): void {
    adjustOldGenerationGrowth();
    const now = this.messagesMoved();
    const moved = now - this.last;
    this.last = now;
    if (moved >= BUSY_MESSAGES_PER_TICK) {
      this.quiet = 0;
      setGrowth(true);
      return;
    }
    if (++this.quiet < QUIET_TICKS) return;
    setGrowth(false);
    if (this.quiet % QUIET_TICKS === 0 && scavenge !== null && youngGenerationBytes() > START_SIZE) scavenge();
  }
}
