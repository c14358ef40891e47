// What the dashboard tests share: Debian's chromium driven by playwright-core, a page that
// records the script errors it raises, and the login form.
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });

/** A new page (1440 × 900 unless told otherwise) and the script errors it raises. */
export async function watchedPage(browser: Browser, options: BrowserContextOptions = {}): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, ...options });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { page, errors };
}

/** Opens the dashboard at `base` and submits the login form (it may be refused: not waited for). */
export async function logIn(page: Page, base: string, user = 'guest', pass = 'guest'): Promise<void> {
  await page.goto(`${base}/`);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', pass);
  await page.click('form.login button[type=submit]');
}

/** Logs in as guest and waits for the dashboard's header. */
export async function signedIn(page: Page, base: string): Promise<void> {
  await logIn(page, base);
  await page.waitForSelector('header.top');
}
