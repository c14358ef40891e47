// SIGTERM while several publishers stream persistent messages with confirms: the broker
// closes every client with 320, flushes the store, marks the stop clean and exits 0; after
// a restart every confirmed message is there, and the start says the last stop was clean.
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDataDir, startOn, tempDataDir, type DurableBroker } from './helpers/durable-broker';

const T = 90_000;
const PUBLISHERS = 4;
const QUEUE = 'shutdown-q';
let dir = '';
const running: DurableBroker[] = [];

afterAll(async () => {
  for (const b of running) await b.crash();
  if (dir) await removeDataDir(dir);
});

/** Publishes numbered messages with confirms until the connection goes; returns the confirmed ones. */
async function publishUntilClosed(url: string, id: number): Promise<{ confirmed: string[]; closeCode: number | null }> {
  const conn = await amqp.connect(url);
  let closeCode: number | null = null;
  const gone = new Promise<void>((resolve) => {
    conn.on('close', (err?: Error & { code?: number }) => {
      closeCode = err?.code ?? null;
      resolve();
    });
    conn.on('error', () => {});
  });
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  const confirmed: string[] = [];
  let open = true;
  void gone.then(() => (open = false));
  for (let n = 0; open; n++) {
    const body = `${id}-${n}`;
    const ok = await new Promise<boolean>((resolve) => {
      try {
        ch.sendToQueue(QUEUE, Buffer.from(body), { persistent: true }, (err) => resolve(err === null || err === undefined));
      } catch {
        resolve(false);
      }
      void gone.then(() => resolve(false));
    });
    if (ok) confirmed.push(body);
  }
  await gone;
  return { confirmed, closeCode };
}

describe('graceful shutdown under load', () => {
  it(
    'SIGTERM mid-stream: clients get 320, exit 0, the stop is marked clean, every confirmed message survives',
    async () => {
      dir = await tempDataDir('leveret-shutdown-');
      let b = await startOn(dir);
      running.push(b);
      const setup = await amqp.connect(b.url);
      await (await setup.createChannel()).assertQueue(QUEUE, { durable: true });
      await setup.close();

      const streams = Array.from({ length: PUBLISHERS }, (_, i) => publishUntilClosed(b.url, i));
      await new Promise((r) => setTimeout(r, 1500));
      const code = await b.stop();
      const results = await Promise.all(streams);
      expect(code, b.output()).toBe(0);
      for (const r of results) expect(r.closeCode).toBe(320);
      const confirmed = results.flatMap((r) => r.confirmed);
      expect(confirmed.length).toBeGreaterThan(100);
      console.log(`graceful shutdown: ${confirmed.length} messages confirmed by ${PUBLISHERS} publishers before SIGTERM`);
      expect(
        b.logLines().some((l) => l.msg === 'store closed cleanly: every write is on disk, the next start has nothing to recover'),
      ).toBe(true);

      b = await startOn(dir);
      running.push(b);
      expect(b.logLines().find((l) => l.msg === 'store recovered')).toMatchObject({ previousStop: 'clean' });
      const conn = await amqp.connect(b.url);
      const ch = await conn.createChannel();
      const found = new Set<string>();
      for (;;) {
        const m = await ch.get(QUEUE, { noAck: true });
        if (m === false) break;
        found.add(m.content.toString());
      }
      await conn.close();
      const lost = confirmed.filter((c) => !found.has(c));
      expect(lost).toEqual([]);

      // A crash leaves no mark: the next start says so.
      await b.crash();
      b = await startOn(dir);
      running.push(b);
      expect(String(b.logLines().find((l) => l.msg === 'store recovered')?.previousStop)).toMatch(/^unclean/);
    },
    T,
  );
});
