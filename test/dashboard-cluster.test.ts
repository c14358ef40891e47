// The dashboard's cluster card (issue 15, point 4), in a real browser (Debian's chromium through
// playwright-core) against a real three-node cluster on one etcd: the members, their roles, ISR
// membership and lag as /api/nodes gives them, followed live when a follower stops; hidden on a
// single node.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from './helpers/broker';
import { launchChromium, signedIn, watchedPage } from './helpers/dashboard';
import { publishConfirmed, settled, tryAmqp, useCluster } from './helpers/cluster';

const OUT = path.join(__dirname, 'out');
const h = useCluster();
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
  await fs.mkdir(OUT, { recursive: true });
}, 30_000);

afterAll(async () => {
  await browser?.close();
});

async function openOverview(httpPort: number): Promise<{ page: Page; errors: string[] }> {
  const { page, errors } = await watchedPage(browser, { viewport: { width: 1440, height: 1000 } });
  await signedIn(page, `http://127.0.0.1:${httpPort}`);
  await page.selectOption('select[aria-label="Refresh every"]', '2000');
  return { page, errors };
}

/** The cluster card's rows as text cells, by node name. */
async function rows(page: Page): Promise<Record<string, string[]>> {
  const trs = page.locator('section.card', { has: page.locator('h2', { hasText: /^Cluster$/ }) }).locator('tbody tr');
  const cells: string[][] = [];
  for (let i = 0, n = await trs.count(); i < n; i++) cells.push(await trs.nth(i).locator('td').allTextContents());
  return Object.fromEntries(cells.filter((c) => c.length > 1).map((c) => [c[0], c]));
}

describe('dashboard: cluster card', { timeout: 120_000 }, () => {
  it('shows the members, roles, ISR and lag, and follows a follower leaving the ISR', async () => {
    const all = await h.startCluster(['--replication-max-lag', '3']);
    const { leader, followers, term } = await settled(all);
    const conn = await tryAmqp(leader.port, 5000);
    expect(conn).not.toBeNull();
    await publishConfirmed(conn!, 'dash-cluster-q');
    await conn!.close();

    // Through a follower's HTTP port: it forwards the page and the API to the leader.
    const { page, errors } = await openOverview(followers[0].httpPort);
    const card = page.locator('section.card', { has: page.locator('h2', { hasText: /^Cluster$/ }) });
    await expect.poll(() => card.isVisible(), { timeout: 15_000 }).toBe(true);
    // Three members, the leader first, everyone in the ISR, followers streaming with no lag.
    await expect
      .poll(
        async () => {
          const r = await rows(page);
          return Object.values(r).every((c) => c[3] === 'in ISR') && followers.every((f) => r[f.name]?.[5] === '0 B') ? Object.keys(r) : [];
        },
        { timeout: 20_000 },
      )
      .toEqual([leader.name, ...followers.map((f) => f.name).sort()]);
    const r = await rows(page);
    expect(r[leader.name].slice(0, 4)).toEqual([leader.name, 'leader', 'serving', 'in ISR']);
    for (const f of followers) expect(r[f.name].slice(0, 4)).toEqual([f.name, 'follower', 'streaming', 'in ISR']);
    // Each follower acked the leader's last LSN (the same figure in every row).
    expect(new Set(Object.values(r).map((c) => c[4])).size).toBe(1);
    expect(r[leader.name][7]).toBe('127.0.0.1');
    const summary = await card.locator('.cluster-summary').textContent();
    expect(summary).toContain(`leader ${leader.name}`);
    expect(summary).toContain(`term ${term.toLocaleString('en-US')}`);
    expect(summary).toContain('3 in the ISR (min-isr 1)');
    await page.screenshot({ path: path.join(OUT, 'dashboard-cluster.png'), fullPage: true });

    // A follower stopped: shown down and out of the ISR once --replication-max-lag (3 s) passed.
    followers[1].signal('SIGSTOP');
    await expect
      .poll(async () => (await rows(page))[followers[1].name]?.slice(1, 4), { timeout: 30_000 })
      .toEqual(['follower', 'down', 'out of ISR']);
    expect(await card.locator('.cluster-summary').textContent()).toContain('2 in the ISR');
    await page.screenshot({ path: path.join(OUT, 'dashboard-cluster-follower-down.png'), fullPage: true });
    followers[1].signal('SIGCONT');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('stays hidden on a single node', async () => {
    const broker = await startBroker();
    try {
      const { page, errors } = await openOverview(broker.httpPort);
      // The overview has drawn its figures (so /api/nodes was read) and no cluster card shows.
      await expect.poll(() => page.locator('.node-info').textContent(), { timeout: 10_000 }).toContain('Leveret');
      await page.waitForTimeout(500);
      expect(await page.locator('section.card', { has: page.locator('h2', { hasText: /^Cluster$/ }) }).isVisible()).toBe(false);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await broker.stop();
    }
  });
});
