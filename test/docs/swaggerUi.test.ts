// The documentation, used in a real browser (Debian's Chromium, driven by playwright-core) against
// a live server that requires API keys and runs flows, as in production: Tolstoy's name and mark,
// every operation listed, and the documented first-call path followed as written, each operation's
// example executed as it stands (sign up, Authorize, a tool, an action, a flow, a run of it, the
// run's steps); the code samples name what the page created; a problem's type leads to its page.
// The screenshots land in reports/screenshots/.
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Page, chromium as playwright } from 'playwright-core';
import t from 'tap';
import { chromium } from '../../scripts/debian.ts';
import { document, operations } from '../contract.ts';
import { buildTestApp, testAuth } from '../helper.ts';

const examples = (document as any).components.examples;
const SCREENSHOTS = fileURLToPath(new URL('../../reports/screenshots/', import.meta.url));

const { app } = await buildTestApp(t, { worker: true }, undefined, testAuth('keys'));
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
const pageErrors: string[] = [];
page.on('pageerror', (error) => pageErrors.push(error.message));
await page.goto(`${base}/docs/`);
await page.waitForSelector('.opblock');
await mkdir(SCREENSHOTS, { recursive: true });

const block = (page: Page, operationId: string) => page.locator(`.opblock:has(.opblock-summary-operation-id:text-is("${operationId}"))`);

// Expands an operation, turns on "Try it out", fills in the parameters (the body stays the example), executes, and returns the answer.
async function tryItOut(page: Page, operationId: string, parameters: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const operation = block(page, operationId);
  await operation.locator('.opblock-summary').click();
  await operation.locator('button.try-out__btn').click();
  for (const [name, value] of Object.entries(parameters)) await operation.locator(`tr[data-param-name="${name}"] input`).fill(value);
  await operation.locator('button.execute').click();
  const response = operation.locator('.live-responses-table tr.response');
  await response.waitFor();
  const status = Number((await response.locator('.response-col_status').innerText()).trim());
  const body = await response.locator('.response-col_description pre.microlight').first().innerText();
  await operation.locator('.opblock-summary').click();
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

t.test("the page carries Tolstoy's name, version and mark", async (t) => {
  await page.screenshot({ path: join(SCREENSHOTS, 'docs.png') });
  const { version } = (document as { info: { version: string } }).info;
  t.equal(await page.title(), `Tolstoy API ${version}`);
  t.match(await page.locator('.info .title').innerText(), new RegExp(`Tolstoy API\\s*${version.replaceAll('.', '\\.')}`));
  t.match(await page.locator('.info .description').innerText(), /Getting started/);
  const logo = await page.locator('.topbar .topbar-wrapper a.link img').getAttribute('src');
  t.match(Buffer.from(logo!.replace('data:image/svg+xml;base64,', ''), 'base64').toString(), />Tolstoy<\/text>/, 'the top bar shows Tolstoy, not Fastify');
  const icon = await page.locator('link[rel="icon"]').getAttribute('href');
  const served = await fetch(new URL(icon!, `${base}/docs/`));
  t.equal(served.headers.get('content-type'), 'image/svg+xml');
  t.match(await served.text(), /aria-label="Tolstoy"/, "the favicon is Tolstoy's mark");
});

t.test('every operation of the spec is listed', async (t) => {
  const listed = await page.locator('.opblock-summary-operation-id').allInnerTexts();
  // The events the API sends (the spec's webhooks) are listed beside the routes.
  const webhooks = (document as { webhooks?: Record<string, Record<string, { operationId: string }>> }).webhooks ?? {};
  const events = Object.values(webhooks).flatMap((item) => Object.values(item).map((operation) => operation.operationId));
  t.same(listed.map((id) => id.trim()).sort(), [...operations.map((op) => op.operationId), ...events].sort());
});

t.test('the documented first-call path runs a flow with every example as it stands', async (t) => {
  const organization = await tryItOut(page, 'createOrganization');
  t.equal(organization.status, 201, 'sign up: the example creates an organization and its owner');
  t.match(organization.body, { name: 'My Organization', owner: { email: 'owner@example.com', role: 'owner' }, apiKey: { key: /^tsk_/ } });
  await authorize(page, organization.body.apiKey.key);

  const tool = await tryItOut(page, 'createTool');
  t.equal(tool.status, 201, `a tool: ${JSON.stringify(tool.body)}`);
  t.match(tool.body, { name: 'Tolstoy itself', baseUrl: base, authType: 'bearer', hasCredentials: true }, 'at the address the page is served from');

  const action = await tryItOut(page, 'createAction');
  t.equal(action.status, 201, `an action: ${JSON.stringify(action.body)}`);
  t.equal(action.body.toolId, tool.body.id, 'of the tool the page created');

  const flow = await tryItOut(page, 'createFlow');
  t.equal(flow.status, 201, `a flow: ${JSON.stringify(flow.body)}`);
  t.equal(flow.body.steps[0].actionId, action.body.id, 'calling the action the page created');

  const run = await tryItOut(page, 'startExecution', { id: flow.body.id, Prefer: 'wait=10' });
  t.equal(run.status, 200, `the run finished within the wait: ${JSON.stringify(run.body)}`);
  t.match(run.body, { status: 'completed', input: { orgId: organization.body.id }, output: { greeting: 'Hello, My Organization!' } });

  const seen = await tryItOut(page, 'getExecution', { id: run.body.id });
  t.equal(seen.status, 200);
  t.match(seen.body.steps, [{ key: 'read', status: 'completed', response: { status: 200, body: { id: organization.body.id } } }]);
  await page.screenshot({ path: join(SCREENSHOTS, 'first-call.png') });

  t.test('the code samples name what the page created', async (t) => {
    const operation = block(page, 'startExecution');
    await operation.locator('.opblock-summary').click();
    const samples = await operation.locator('.tolstoy-samples').innerText();
    t.match(samples, `${base}/flows/${flow.body.id}/executions`);
    t.match(samples, `"orgId":"${organization.body.id}"`);
    t.match(samples, `Bearer ${organization.body.apiKey.key}`);
    for (const example of ['Organization', 'Flow']) t.notMatch(samples, examples[example].value.id, `the example ${example.toLowerCase()}'s id is gone`);
    await operation.screenshot({ path: join(SCREENSHOTS, 'code-samples.png') });
  });
});

t.test("a problem's type leads to a page about it", async (t) => {
  const missing = await tryItOut(page, 'getTool', { id: examples.Tool.value.id });
  t.equal(missing.status, 404);
  await page.goto(new URL(missing.body.type, `${base}/docs/`).toString());
  t.equal(await page.title(), 'Not found (404) · Tolstoy API');
  t.match(await page.locator('main').innerText(), /What to do/);
  await page.locator('.crumbs a').click();
  t.equal(await page.title(), 'Problem types · Tolstoy API');
  t.equal(await page.locator('tbody tr').count(), (document as any).components.schemas.ProblemKind.enum.length);
  await page.screenshot({ path: join(SCREENSHOTS, 'problem-types.png') });
});

t.test('the page raised no script errors', async (t) => {
  t.same(pageErrors, []);
});
