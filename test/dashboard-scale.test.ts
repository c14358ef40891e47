// The dashboard where RabbitMQ 3.10's own UI gives up: 10,000 queues (the page asks the
// server for one page at a time, so it never fetches the whole list) and hostile data (a
// queue whose arguments nest hundreds of levels deep, HTML in names, argument keys and
// message headers). Driven in headless Chromium (Debian's chromium through playwright-core).
import fs from 'node:fs/promises';
import path from 'node:path';
import amqp from 'amqplib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { launchChromium, signedIn, watchedPage } from './helpers/dashboard';
import { api } from './helpers/http';

const OUT = path.join(__dirname, 'out');
const N = 10_000;
const name = (i: number) => `scale-q-${String(i).padStart(5, '0')}`;
// Sorts after the scale-q-* names, so the first page is theirs.
const DEEP = 'zz-deep-<img src=x onerror="window.__pwned=1">';
// As deep as Leveret takes a table over AMQP (one level more is refused).
const LEVELS = 1500;

let broker: StartedBroker;
let browser: Browser;
let base: string;

/** A table nested `levels` deep, its innermost value a script that must never run. */
function nested(levels: number): Record<string, unknown> {
  let v: unknown = '<script>window.__pwned=2</script>';
  for (let i = 0; i < levels; i++) v = { [`<i>l${i}</i>`]: v };
  return v as Record<string, unknown>;
}

beforeAll(async () => {
  broker = await startBroker();
  base = `http://127.0.0.1:${broker.httpPort}`;
  const c = await amqp.connect(broker.url);
  try {
    const ch = await c.createConfirmChannel();
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => ch.assertQueue(name(i + j), { durable: false })));
    }
    // One deep queue among the 10,000, so sorting by depth has to be done by the server.
    for (let i = 0; i < 7; i++) ch.sendToQueue(name(4321), Buffer.from(`m${i}`));
    await ch.assertQueue(DEEP, {
      durable: false,
      arguments: { 'x-nested': nested(LEVELS), '<b>key</b>': '<svg onload="window.__pwned=3">' },
    });
    ch.sendToQueue(DEEP, Buffer.from('<script>window.__pwned=4</script>'), {
      headers: { 'x-deep': nested(LEVELS), '<u>h</u>': '<img src=x onerror="window.__pwned=5">' },
    });
    await ch.waitForConfirms();
  } finally {
    await c.close();
  }
  browser = await launchChromium();
  await fs.mkdir(OUT, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await broker?.stop();
});

async function loggedIn(): Promise<{ page: Page; errors: string[]; queueLists: string[] }> {
  const { page, errors } = await watchedPage(browser);
  const queueLists: string[] = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (/^\/api\/queues\/?(%2F)?$/.test(u.pathname)) queueLists.push(u.search);
  });
  page.on('dialog', (d) => void d.accept());
  await signedIn(page, base);
  return { page, errors, queueLists };
}

const pwned = (page: Page) => page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned);

describe('dashboard at scale and with hostile data', () => {
  it('pages 10,000 queues on the server: one page of rows, next page, filter and sort by depth', async () => {
    expect(((await api(broker.httpPort, 'GET', '/api/overview')).json as { object_totals: { queues: number } }).object_totals.queues).toBe(
      N + 1,
    );
    const { page, errors, queueLists } = await loggedIn();
    const rows = page.locator('table.grid tbody tr');
    const t0 = performance.now();
    await page.goto(`${base}/#/queues`);
    await expect.poll(() => page.textContent('.paged .count'), { timeout: 20_000 }).toBe('10,001 total');
    console.log(`queues page with ${N + 1} queues drawn in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(await rows.count()).toBe(100);
    expect(await page.textContent('.page-label')).toBe('1 / 101');
    expect(await rows.first().locator('td').first().textContent()).toBe(name(0));

    await page.click('button:has-text("Next ›")');
    await expect.poll(() => page.textContent('.page-label'), { timeout: 20_000 }).toBe('2 / 101');
    await expect.poll(() => rows.first().locator('td').first().textContent(), { timeout: 20_000 }).toBe(name(100));
    expect(await rows.count()).toBe(100);

    // Filtering is the server's: 10 names end in 999x.
    await page.fill('input.filter', 'scale-q-0999');
    await expect.poll(() => page.textContent('.paged .count'), { timeout: 20_000 }).toBe('10 of 10,001 match');
    expect(await rows.count()).toBe(10);
    expect(await page.textContent('.page-label')).toBe('1 / 1');

    // Sorting by depth, deepest first: the one queue with messages leads.
    await page.fill('input.filter', '');
    await expect.poll(() => page.textContent('.paged .count'), { timeout: 20_000 }).toBe('10,001 total');
    await page.click('th:has-text("Total")');
    await expect.poll(() => rows.first().locator('td').first().textContent(), { timeout: 20_000 }).toBe(name(4321));
    expect(await rows.first().locator('td b').textContent()).toBe('7');
    await page.screenshot({ path: path.join(OUT, 'dashboard-10k-queues.png'), fullPage: false });

    // Every listing the page asked for was one page; the whole list was never fetched.
    expect(queueLists.length).toBeGreaterThan(3);
    for (const q of queueLists) {
      const p = new URLSearchParams(q);
      expect(p.get('page'), q).toMatch(/^\d+$/);
      expect(Number(p.get('page_size')), q).toBeLessThanOrEqual(500);
    }
    expect(errors).toEqual([]);
    expect(await pwned(page)).toBeUndefined();
    await page.close();
  }, 90_000);

  it(`shows a queue whose arguments nest ${LEVELS} levels deep, and its message, as text cut a few levels down`, async () => {
    const { page, errors } = await loggedIn();
    await page.goto(`${base}/#/queues`);
    await page.fill('input.filter', 'zz-deep');
    const row = page.locator('table.grid tbody tr', { hasText: 'zz-deep-' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    expect(await row.locator('td').first().textContent()).toBe(DEEP);
    // The features cell lists the argument keys as text.
    expect(await row.textContent()).toContain('<b>key</b>');

    await row.locator('a', { hasText: 'zz-deep-' }).click();
    await expect.poll(() => page.textContent('h1'), { timeout: 20_000 }).toContain(DEEP);
    await expect.poll(() => page.locator('.v-deep').count(), { timeout: 20_000 }).toBeGreaterThan(0);
    const args = await page.textContent('body');
    expect(args).toContain(`<i>l${LEVELS - 1}</i>`);
    expect(args).toContain('<svg onload="window.__pwned=3">');
    // Cut a few levels down: the innermost levels are not drawn.
    expect(args).not.toContain('<i>l0</i>');

    await page.click('form.sub-form button:has-text("Get")');
    const message = page.locator('.messages .message');
    await expect.poll(() => message.count(), { timeout: 20_000 }).toBe(1);
    expect(await message.locator('pre.payload').textContent()).toBe('<script>window.__pwned=4</script>');
    await message.locator('summary').click();
    const props = (await message.textContent()) ?? '';
    expect(props).toContain('<u>h</u>');
    expect(props).toContain('<img src=x onerror="window.__pwned=5">');
    expect(props).not.toContain('<i>l0</i>');
    await page.screenshot({ path: path.join(OUT, 'dashboard-hostile-queue.png'), fullPage: true });

    // None of the hostile markup became elements.
    expect(await page.locator('main [onerror], main [onload], main script, main svg').count()).toBe(0);
    expect(await pwned(page)).toBeUndefined();
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
