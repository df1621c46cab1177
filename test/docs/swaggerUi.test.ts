// The documentation, used in a real browser (Debian's Chromium, driven by playwright-core):
// every operation is listed, the tenant headers can be filled in, and "Try it out" works against
// the live server. The screenshot lands in reports/screenshots/.
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Page, chromium as playwright } from 'playwright-core';
import t from 'tap';
import { chromium } from '../../scripts/debian.ts';
import { operations } from '../contract.ts';
import { buildTestApp } from '../helper.ts';

const SCREENSHOTS = fileURLToPath(new URL('../../reports/screenshots/', import.meta.url));

const { app } = await buildTestApp(t);
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

t.test('a newcomer creates an organization, then lists its users with the tenant headers', async (t) => {
  const created = await tryItOut(page, 'createOrganization');
  t.equal(created.status, 201, 'the example body creates an organization and its owner');
  t.match(created.body, { name: 'My Organization', owner: { email: 'owner@example.com' } });
  const users = await tryItOut(page, 'listUsers', { 'X-Org-ID': created.body.id, 'X-User-ID': created.body.owner.id });
  t.equal(users.status, 200);
  t.same(
    users.body.items.map((user: { id: string }) => user.id),
    [created.body.owner.id],
  );
  await page.screenshot({ path: join(SCREENSHOTS, 'try-it-out.png') });
  t.pass(`screenshots: ${join(SCREENSHOTS, 'docs.png')}, ${join(SCREENSHOTS, 'try-it-out.png')}`);
});
