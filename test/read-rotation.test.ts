// The read budget over real sockets with more flooding publishers than are resumed per
// turn (16): the broker reads them in turns, and every one of them gets its turn: none is
// left paused, everything each one sent arrives, and another connection is answered while
// they flood.
import { afterAll, describe, expect, it } from 'vitest';
import { Connection, parseUri } from '../bench/client';
import { buildTemplates, Producer } from '../bench/load';
import { startBroker, type StartedBroker } from './helpers/broker';
import { uid } from './helpers/clients';

let broker: StartedBroker | undefined;
const open: Connection[] = [];

afterAll(async () => {
  for (const c of open) c.destroy();
  await broker?.stop();
});

const PUBLISHERS = 40;
const EACH = 4000;

describe('read budget in turns', () => {
  it('forty publishers writing as fast as their sockets take it all get read; a bystander is answered meanwhile', async () => {
    broker = await startBroker();
    const uri = parseUri(broker.url);
    const admin = await Connection.connect(uri, uid('rot-admin'));
    open.push(admin);
    const ach = await admin.openChannel();
    const queues: string[] = [];
    for (let i = 0; i < PUBLISHERS; i++) {
      const q = uid(`rot-${i}`);
      await admin.queueDeclare(ach, q, {});
      queues.push(q);
    }

    // Each publisher writes its messages in batches as fast as its socket takes them (no
    // confirms, no rate): far more than one read budget each, so they wait for their turns.
    const producers: Producer[] = [];
    for (let i = 0; i < PUBLISHERS; i++) {
      const c = await Connection.connect(uri, `rot-publisher-${i}`);
      open.push(c);
      await c.openChannel();
      const templates = buildTemplates({ size: 16, persistent: false }, [{ exchange: '', routingKey: queues[i] }], c.frameMax);
      producers.push(new Producer(c, templates, 0, 0, 0));
    }
    const written = producers.map((p) => p.start(EACH));

    // A bystander connection gets its answers while the flood is being read.
    const bystander = await Connection.connect(uri, uid('rot-bystander'));
    open.push(bystander);
    const bch = await bystander.openChannel();
    const seen = await bystander.queueDeclare(bch, queues[PUBLISHERS - 1], { passive: true });
    expect(seen.messageCount).toBeLessThanOrEqual(EACH);
    await Promise.all(written);

    // Every publisher was read to the end: each queue holds all it was sent.
    const counts = async (): Promise<number[]> => {
      const out: number[] = [];
      for (const q of queues) out.push((await admin.queueDeclare(ach, q, { passive: true })).messageCount);
      return out;
    };
    let got = await counts();
    while (got.some((n) => n < EACH)) {
      await new Promise((r) => setTimeout(r, 50));
      got = await counts();
    }
    expect(got).toEqual(queues.map(() => EACH));
    for (const q of queues) await admin.queueDelete(ach, q);
  }, 60_000);
});
