// The documentation, used in a real browser (Debian's Chromium, driven by playwright-core):
// every operation is listed, an API key is set once with "Authorize", and "Try it out" works
// against the live server, which requires keys as in production. The screenshot lands in reports/screenshots/.
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Page, chromium as playwright } from 'playwright-core';
import t from 'tap';
import { chromium } from '../../scripts/debian.ts';
import { operations } from '../contract.ts';
import { buildTestApp, testAuth } from '../helper.ts';

const SCREENSHOTS = fileURLToPath(new URL('../../reports/screenshots/', import.meta.url));

const { app } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const base = await app.listen({ port: 0, host: '127.0.0.1' });
const browser = await playwright.launchPersistentContext(await mkdtemp(join(tmpdir(), 'tolstoy-chromium-')), {
  executablePath: await chromium(),
  headless: true,
  // As root, and without background connections that this machine's closed network refuses.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
  viewport: { width: 1400, height: 1000 },
});
t.teardown(() => browser.close());
const page = await browser.newPage();
await page.goto(`${base}/docs/`);
await page.waitForSelector('.opblock');

// Expands an operation, turns on "Try it out", fills in the parameters, executes, and returns the answer.
async function tryItOut(page: Page, operationId: string, parameters: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const block = page.locator(`.opblock:has(.opblock-summary-operation-id:text-is("${operationId}"))`);
  await block.locator('.opblock-summary').click();
  await block.locator('button.try-out__btn').click();
  for (const [name, value] of Object.entries(parameters)) await block.locator(`tr[data-param-name="${name}"] input`).fill(value);
  await block.locator('button.execute').click();
  const response = block.locator('.live-responses-table tr.response');
  await response.waitFor();
  const status = Number((await response.locator('.response-col_status').innerText()).trim());
  const body = await response.locator('.response-col_description pre.microlight').first().innerText();
  return { status, body: JSON.parse(body) };
}

// Opens "Authorize", gives the API key scheme its key, and closes the dialog.
async function authorize(page: Page, key: string): Promise<void> {
  await page.locator('.auth-wrapper button.authorize').click();
  const scheme = page.locator('.auth-container', { has: page.locator('h4', { hasText: 'apiKey (http, Bearer)' }) });
  await scheme.locator('input').fill(key);
  await scheme.locator('button.authorize').click();
  await page.locator('.dialog-ux button.close-modal').click();
}

t.test('the page names the service and its version', async (t) => {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, 'docs.png'), fullPage: true });
  t.equal(await page.title(), 'Tolstoy API 0.1.0');
  t.match(await page.locator('.info .title').innerText(), /Tolstoy API\s*0\.1\.0/);
  t.match(await page.locator('.info .description').innerText(), /Getting started/);
});

t.test('every operation of the spec is listed', async (t) => {
  const listed = await page.locator('.opblock-summary-operation-id').allInnerTexts();
  t.same(listed.map((id) => id.trim()).sort(), operations.map((op) => op.operationId).sort());
});

t.test('a newcomer signs up, authorizes with the API key, and lists the users', async (t) => {
  const created = await tryItOut(page, 'createOrganization');
  t.equal(created.status, 201, 'the example body creates an organization and its owner');
  t.match(created.body, { name: 'My Organization', owner: { email: 'owner@example.com' }, apiKey: { key: /^tsk_/ } });
  await authorize(page, created.body.apiKey.key);
  const users = await tryItOut(page, 'listUsers');
  t.equal(users.status, 200);
  t.same(
    users.body.items.map((user: { id: string }) => user.id),
    [created.body.owner.id],
  );
  await page.screenshot({ path: join(SCREENSHOTS, 'try-it-out.png') });
  t.pass(`screenshots: ${join(SCREENSHOTS, 'docs.png')}, ${join(SCREENSHOTS, 'try-it-out.png')}`);
});
