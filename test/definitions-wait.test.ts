// The waits of a cluster leader's answers to definition changes, without sockets: the group
// commit (SyncScheduler) with a replication gate that releases rounds when the test says
// the followers have them. The same classes run in test/cluster-definitions.test.ts over
// real sockets; those brokers are often ended by kill -9 or SIGSTOP, so their coverage is
// not always written, and the edge cases (a round failing, a stop while answers wait) are
// easier to reach here.
import { describe, expect, it } from 'vitest';
import { SyncScheduler } from '../src/store/sync-scheduler';
import type { ReplicationGate } from '../src/store/replication-gate';
import { DefinitionsReplicated } from '../src/store/definitions-replicated';
import { HeldAnswers, type HoldingChannel } from '../src/server/held-answers';
import type { Method } from '../src/protocol/generated';

/** A gate that keeps every locally synced epoch until the test releases it. */
class ManualGate implements ReplicationGate {
  readonly synced: number[] = [];
  constructor(private readonly s: SyncScheduler) {}
  localSynced(epoch: number): void {
    this.synced.push(epoch);
  }
  mayConfirm(): boolean {
    return true;
  }
  releaseAll(): void {
    for (const e of this.synced.splice(0)) this.s.release(e);
  }
}

const turn = () => new Promise<void>((r) => setImmediate(r));

function gated(): { s: SyncScheduler; gate: ManualGate } {
  const s = new SyncScheduler(() => undefined);
  const gate = new ManualGate(s);
  s.gate = gate;
  return { s, gate };
}

describe('definition changes under a replication gate', () => {
  it('a single node (no gate): nothing waits and nothing is scheduled', async () => {
    const s = new SyncScheduler(() => undefined);
    s.definitionsWritten();
    expect(s.definitionsPending).toBe(0);
    expect(new DefinitionsReplicated(s).wait()).toBeNull();
    await turn();
    expect(s.epoch).toBe(1);
  });

  it('with a gate, a change asks for a round; HTTP waits resolve in order once the gate releases it', async () => {
    const { s, gate } = gated();
    const d = new DefinitionsReplicated(s);
    s.definitionsWritten();
    const pending = s.definitionsPending;
    expect(pending).toBeGreaterThan(0);
    const order: string[] = [];
    const first = d.wait()!.then(() => order.push('first'));
    const second = d.wait()!.then(() => order.push('second'));
    await turn();
    // The round ran (no file to sync) and the gate holds it.
    expect(gate.synced).toEqual([pending]);
    expect(s.localSyncedEpoch).toBe(pending);
    expect(s.syncedEpoch).toBeLessThan(pending);
    expect(order).toEqual([]);
    gate.releaseAll();
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect(s.definitionsPending).toBe(0);
    expect(d.wait()).toBeNull();
  });

  it('failing writes leave what waits waiting; a stop rejects it and every later wait', async () => {
    const { s } = gated();
    const d = new DefinitionsReplicated(s);
    s.definitionsWritten();
    let settled = false;
    const waiting = d.wait()!.then(
      () => (settled = true),
      (err: Error) => err,
    );
    d.storeFailed();
    await turn();
    expect(settled).toBe(false);
    d.abandon(new Error('leadership lost'));
    expect(((await waiting) as Error).message).toBe('leadership lost');
    s.definitionsWritten();
    await expect(d.wait()!).rejects.toThrow('leadership lost');
  });
});

describe('held AMQP answers', () => {
  function holder(): { channel: HoldingChannel; released: HeldAnswers[] } {
    const released: HeldAnswers[] = [];
    return { channel: { answersReleased: (h) => released.push(h) }, released };
  }

  it('keeps the frames that arrive behind the answer, in order, and lets them go with it', async () => {
    const { s, gate } = gated();
    const { channel, released } = holder();
    s.definitionsWritten();
    const h = new HeldAnswers(channel, s, s.definitionsPending);
    const header = Buffer.from([9, 9, 1, 2, 3, 9]);
    h.method({ name: 'basic.publish' } as unknown as Method);
    h.header(header, 2, 5);
    header.fill(0); // the parser may reuse its buffer: the held copy must not change
    h.body(Buffer.from('body'));
    expect(h.input.map((f) => f.kind)).toEqual(['method', 'header', 'body']);
    expect(h.input[1]).toEqual({ kind: 'header', bytes: Buffer.from([1, 2, 3]) });
    h.storeFailed();
    // A release of an earlier epoch is not enough.
    h.storeSynced(s.definitionsPending - 1);
    expect(released).toEqual([]);
    await turn();
    gate.releaseAll();
    expect(released).toEqual([h]);
    // Released once: the waiter is gone from the scheduler.
    s.release(s.epoch + 10);
    expect(released).toEqual([h]);
  });

  it('a channel that closes drops its held answer: it is never released', async () => {
    const { s, gate } = gated();
    const { channel, released } = holder();
    s.definitionsWritten();
    const h = new HeldAnswers(channel, s, s.definitionsPending);
    h.drop();
    await turn();
    gate.releaseAll();
    expect(released).toEqual([]);
  });
});
