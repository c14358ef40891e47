// The dashboard's other pages in headless Chromium (Debian's chromium through
// playwright-core), each checked against what the broker then holds: an exchange with its
// bindings, closing a connection, adding and deleting a policy, downloading and uploading
// definitions.
import fs from 'node:fs/promises';
import path from 'node:path';
import amqp from 'amqplib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type StartedBroker } from './helpers/broker';
import { launchChromium, signedIn, watchedPage } from './helpers/dashboard';
import { api } from './helpers/http';
import { closeReason, waitFor } from './helpers/clients';

const OUT = path.join(__dirname, 'out');

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

async function loggedIn(): Promise<{ page: Page; errors: string[] }> {
  const { page, errors } = await watchedPage(browser, { acceptDownloads: true });
  page.on('dialog', (d) => void d.accept());
  await signedIn(page, base);
  return { page, errors };
}

/** The input or textarea of the form field labelled `label`. */
const field = (page: Page, label: string) =>
  page.locator('label.field', { has: page.locator(`span:text-is("${label}")`) }).locator('input, textarea');

describe('dashboard pages', () => {
  it('shows an exchange with the bindings from and to it', async () => {
    const c = await amqp.connect(broker.url);
    const ch = await c.createChannel();
    await ch.assertExchange('dpx-orders', 'topic', { durable: false });
    await ch.assertExchange('dpx-upstream', 'fanout', { durable: false });
    await ch.assertQueue('dpx-q', { durable: false });
    await ch.bindQueue('dpx-q', 'dpx-orders', 'order.*.eu');
    await ch.bindExchange('dpx-orders', 'dpx-upstream', '');
    const { page, errors } = await loggedIn();
    await page.goto(`${base}/#/exchanges`);
    await page.fill('input.filter', 'dpx-orders');
    const row = page.locator('table.grid tbody tr', { hasText: 'dpx-orders' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    await row.locator('a', { hasText: 'dpx-orders' }).click();
    const from = page.locator('section.card:has(h2:text-is("Bindings from this exchange")) tbody tr');
    const to = page.locator('section.card:has(h2:text-is("Bindings to this exchange")) tbody tr');
    await expect.poll(() => from.first().textContent(), { timeout: 20_000 }).toContain('dpx-q');
    expect(await from.first().textContent()).toContain('order.*.eu');
    await expect.poll(() => to.first().textContent(), { timeout: 20_000 }).toContain('dpx-upstream');
    await page.screenshot({ path: path.join(OUT, 'dashboard-exchange.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
    await c.close();
  }, 60_000);

  it('closes a connection from the connections page, with 320 and its reason', async () => {
    const c = await amqp.connect(broker.url, { clientProperties: { connection_name: 'dpx-closeme' } });
    let closed: unknown = null;
    c.on('error', (e: unknown) => (closed = e));
    c.on('close', (e: unknown) => (closed ??= e ?? 'closed'));
    const { page, errors } = await loggedIn();
    await page.goto(`${base}/#/connections`);
    const row = page.locator('table.grid tbody tr', { hasText: 'amqplib' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    await row.locator('button', { hasText: 'Close' }).click();
    await waitFor(() => closed !== null, 10_000, 'the connection to close');
    expect(closeReason(closed)).toEqual({ code: 320, text: 'CONNECTION_FORCED - Closed from the Leveret dashboard' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('adds a policy that applies to a queue, and deletes it', async () => {
    const { page, errors } = await loggedIn();
    await page.goto(`${base}/#/policies`);
    await field(page, 'Name').fill('dpx-cap');
    await field(page, 'Pattern (regex)').fill('^dpx-capped$');
    await field(page, 'Priority').fill('4');
    await field(page, 'Definition (JSON)').fill('{"max-length": 2}');
    await page.click('button:has-text("Add / update policy")');
    const row = page.locator('table.grid tbody tr', { hasText: 'dpx-cap' });
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    expect((await api(broker.httpPort, 'GET', '/api/policies/%2F/dpx-cap')).json).toEqual({
      vhost: '/',
      name: 'dpx-cap',
      pattern: '^dpx-capped$',
      'apply-to': 'queues',
      definition: { 'max-length': 2 },
      priority: 4,
    });
    const c = await amqp.connect(broker.url);
    const ch = await c.createConfirmChannel();
    await ch.assertQueue('dpx-capped', { durable: false });
    for (let i = 0; i < 5; i++) ch.sendToQueue('dpx-capped', Buffer.from(`m${i}`));
    await ch.waitForConfirms();
    expect((await ch.checkQueue('dpx-capped')).messageCount).toBe(2);

    await row.locator('button', { hasText: 'Delete' }).click();
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(0);
    expect((await api(broker.httpPort, 'GET', '/api/policies/%2F/dpx-cap')).status).toBe(404);
    for (let i = 0; i < 3; i++) ch.sendToQueue('dpx-capped', Buffer.from(`n${i}`));
    await ch.waitForConfirms();
    expect((await ch.checkQueue('dpx-capped')).messageCount).toBe(5);
    await c.close();
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it('downloads the definitions and uploads a document that declares a queue', async () => {
    expect((await api(broker.httpPort, 'PUT', '/api/queues/%2F/dpx-exported', { body: { durable: true } })).status).toBe(201);
    const { page, errors } = await loggedIn();
    await page.goto(`${base}/#/admin`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Download definitions")')]);
    const file = await download.path();
    const exported = JSON.parse(await fs.readFile(file, 'utf8')) as { queues: Array<{ name: string }>; users: unknown[] };
    expect(exported.queues.map((q) => q.name)).toContain('dpx-exported');
    expect(exported.users.length).toBeGreaterThan(0);

    const upload = path.join(OUT, 'dpx-upload.json');
    await fs.writeFile(
      upload,
      JSON.stringify({
        queues: [{ name: 'dpx-uploaded', vhost: '/', durable: true, auto_delete: false, arguments: { 'x-max-length': 9 } }],
        exchanges: [{ name: 'dpx-up-x', vhost: '/', type: 'direct', durable: true, auto_delete: false, internal: false, arguments: {} }],
        bindings: [
          { source: 'dpx-up-x', vhost: '/', destination: 'dpx-uploaded', destination_type: 'queue', routing_key: 'k', arguments: {} },
        ],
      }),
    );
    await page.setInputFiles('input[type=file]', upload);
    await page.click('button:has-text("Upload definitions")');
    await expect.poll(() => page.textContent('.flash'), { timeout: 20_000 }).toContain('imported');
    const q = (await api(broker.httpPort, 'GET', '/api/queues/%2F/dpx-uploaded')).json as { arguments: Record<string, unknown> };
    expect(q.arguments).toEqual({ 'x-max-length': 9 });
    const b = (await api(broker.httpPort, 'GET', '/api/bindings/%2F/e/dpx-up-x/q/dpx-uploaded')).json as Array<{ routing_key: string }>;
    expect(b.map((x) => x.routing_key)).toEqual(['k']);

    // A document that does not parse is refused in the page, and nothing is sent.
    const bad = path.join(OUT, 'dpx-bad.json');
    await fs.writeFile(bad, '{"queues": [');
    await page.setInputFiles('input[type=file]', bad);
    await page.click('button:has-text("Upload definitions")');
    await expect.poll(() => page.locator('.flash.error').textContent(), { timeout: 20_000 }).toContain('not JSON');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
