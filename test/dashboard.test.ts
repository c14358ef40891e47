// The web dashboard, driven by a real browser (Debian's chromium through playwright-core)
// against a running Leveret: log in, find a queue, watch its depth follow what amqplib
// publishes, purge it from the queue page.
import fs from 'node:fs/promises';
import path from 'node:path';
import amqp from 'amqplib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { launchChromium, logIn as logInAt, watchedPage } from './helpers/dashboard';

const OUT = path.join(__dirname, 'out');
const QUEUE = 'dash-test-orders';
// Shown as text, never run: the page would set window.__pwned if it parsed names as HTML.
const HOSTILE = 'dash-test-<img src=x onerror="window.__pwned=1">';

let broker: StartedBroker;
let browser: Browser;
let base: string;

beforeAll(async () => {
  broker = await startBroker();
  base = `http://127.0.0.1:${broker.httpPort}`;
  browser = await launchChromium();
  await fs.mkdir(OUT, { recursive: true });
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await broker?.stop();
});

const newPage = () => watchedPage(browser);
const logIn = (page: Page, user: string, pass: string) => logInAt(page, base, user, pass);

describe('dashboard', () => {
  it('serves the page and its assets without a login, with content types', async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await index.text()).toContain('/ui/js/app.js');
    for (const [asset, type] of [
      ['/ui/js/app.js', /^text\/javascript/],
      ['/ui/style.css', /^text\/css/],
      ['/ui/vendor/uPlot.esm.js', /^text\/javascript/],
      ['/ui/vendor/uPlot.min.css', /^text\/css/],
    ] as const) {
      const res = await fetch(`${base}${asset}`);
      expect(res.status, asset).toBe(200);
      expect(res.headers.get('content-type'), asset).toMatch(type);
      const again = await fetch(`${base}${asset}`, { headers: { 'if-none-match': res.headers.get('etag') ?? '' } });
      expect(again.status, asset).toBe(304);
    }
    for (const missing of ['/ui/nope.js', '/ui/../package.json', '/ui/%2e%2e/package.json']) {
      expect((await fetch(`${base}${missing}`)).status, missing).toBe(404);
    }
  });

  it('refuses a wrong password and keeps showing the login', async () => {
    const { page, errors } = await newPage();
    await logIn(page, 'guest', 'not-the-password');
    await expect.poll(() => page.textContent('.login-error')).toContain('Wrong username or password');
    expect(await page.locator('header.top').count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('draws a value nested 10,000 deep a few levels down and no further', async () => {
    const { page, errors } = await newPage();
    await page.goto(`${base}/`);
    // A string, so the test runner's transform leaves the browser's import() alone.
    const drawn = (await page.evaluate(`(async () => {
      const { value } = await import('/ui/js/dom.js');
      const deep = JSON.parse('{"a":'.repeat(10000) + '"<img src=x onerror=window.__pwned=3>"' + '}'.repeat(10000));
      const el = value({ 'x-deep': deep, '<b>key</b>': '<script>window.__pwned=4</script>' });
      document.body.append(el);
      return { lists: el.querySelectorAll('dl').length + (el.matches('dl') ? 1 : 0), cut: el.querySelector('.v-deep')?.textContent, text: el.textContent,
        markup: el.querySelectorAll('img, script, b').length };
    })()`)) as { lists: number; cut: string; text: string; markup: number };
    expect(drawn.lists).toBe(4);
    expect(drawn.cut).toBe('{… 1}');
    expect(drawn.text).toContain('<b>key</b>');
    expect(drawn.markup).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a queue, follows its depth, and purges it from the queue page', async () => {
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createConfirmChannel();
    try {
      await ch.assertQueue(QUEUE, { durable: true });
      await ch.assertQueue(HOSTILE, { durable: false, arguments: { 'x-note': '<script>window.__pwned=2</script>' } });

      const { page, errors } = await newPage();
      page.on('dialog', (d) => void d.accept());
      await logIn(page, 'guest', 'guest');
      await page.waitForSelector('header.top');
      await page.selectOption('select[aria-label="Refresh every"]', '2000');

      await page.goto(`${base}/#/queues`);
      await page.fill('input.filter', 'dash-test');
      const row = page.locator('table.grid tbody tr', { hasText: QUEUE });
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(1);
      // The Total column is the bold cell.
      await expect.poll(() => row.locator('td b').textContent(), { timeout: 10_000 }).toBe('0');
      await expect.poll(() => page.locator('table.grid tbody tr', { hasText: 'onerror=' }).count()).toBe(1);

      for (let i = 0; i < 25; i++) ch.sendToQueue(QUEUE, Buffer.from(`order ${i}`), { persistent: true });
      await ch.waitForConfirms();
      // No reload: the table refreshes itself.
      await expect.poll(() => row.locator('td b').textContent(), { timeout: 15_000, interval: 250 }).toBe('25');
      await page.screenshot({ path: path.join(OUT, 'dashboard-queues.png'), fullPage: true });

      await row.locator('a', { hasText: QUEUE }).click();
      await expect.poll(() => page.textContent('#q-messages .stat-value'), { timeout: 10_000 }).toBe('25');
      await page.click('#purge');
      await expect.poll(() => page.textContent('#q-messages .stat-value'), { timeout: 10_000, interval: 250 }).toBe('0');
      await page.screenshot({ path: path.join(OUT, 'dashboard-queue.png'), fullPage: true });
      expect((await ch.checkQueue(QUEUE)).messageCount).toBe(0);

      await page.goto(`${base}/#/overview`);
      await page.waitForSelector('.stats .stat');
      await page.screenshot({ path: path.join(OUT, 'dashboard-overview.png'), fullPage: true });

      expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await ch.deleteQueue(QUEUE).catch(() => {});
      await ch.deleteQueue(HOSTILE).catch(() => {});
      await conn.close().catch(() => {});
    }
  }, 60_000);
});
