// Pages bounded in bytes: a page of large items stops before its stored documents exceed
// PAGE_BYTES, answering fewer items than `limit`, and its nextCursor continues after its last item,
// so that walking a list still yields every item once, newest first. An item larger than the bound
// alone is answered alone.
import t from 'tap';
import { v7 as uuidv7 } from 'uuid';
import { PAGE_BYTES } from '../../src/resources/pagination.ts';
import { buildTestApp, call, createTenant } from '../helper.ts';

const { app, db } = await buildTestApp(t);
const acme = await createTenant(app);
const send = (options: Parameters<typeof call>[2]) => call(app, acme, options);

// Four large items fit in a page, the fifth does not.
const LARGE = 900_000;
const text = (bytes: number) => 'x'.repeat(bytes);
// Large and small items alternate irregularly, so that pages stop at different places.
const SIZES = [LARGE, 10, LARGE, LARGE, 10, 10, LARGE, LARGE, LARGE, 10, LARGE, 10];

async function created(response: Awaited<ReturnType<typeof send>>): Promise<string> {
  if (response.statusCode !== 201 && response.statusCode !== 202) throw new Error(`creating failed: ${response.body}`);
  return response.data.id;
}

const tool = await created(await send({ method: 'POST', url: '/tools', payload: { name: 'Tool', baseUrl: 'https://x.io' } }));
const action = (key: string, size: number) =>
  send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool, name: key, key, method: 'POST', endpoint: '/x', inputSchema: { type: 'object', description: text(size) } },
  });
const actionId = await created(await action('first', 10));
for (const [i, size] of SIZES.entries()) await created(await action(`a${i}`, size));

const step = (size: number) => ({ key: 's', actionId, inputs: { text: text(size) } });
const flowIds: string[] = [];
for (const size of SIZES) flowIds.push(await created(await send({ method: 'POST', url: '/flows', payload: { name: 'Flow', steps: [step(size)] } })));
const versioned = flowIds[0]!;
for (const size of SIZES) await send({ method: 'PUT', url: `/flows/${versioned}`, payload: { steps: [step(size)] } });

for (const size of SIZES) await created(await send({ method: 'POST', url: `/flows/${versioned}/executions`, payload: { input: { text: text(size) } } }));

const log = (size: number) => ({ flowId: versioned, executionId: 'e', stepKey: 's', status: 'completed', outputs: { text: text(size) } });
for (const size of SIZES) await created(await send({ method: 'POST', url: '/execution-logs', payload: log(size) }));
// Larger than a page: only the engine could write it (a body holds at most 1 MiB).
await db.$executeRaw`
  INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, outputs, updated_at)
  VALUES (${uuidv7()}::uuid, ${acme.orgId}::uuid, ${versioned}::uuid, ${acme.userId}::uuid, 'e', 's', 'completed', '{}',
    ${JSON.stringify({ text: text(PAGE_BYTES + 1000) })}, now())`;
for (const size of [10, LARGE]) await created(await send({ method: 'POST', url: '/execution-logs', payload: log(size) }));

type Item = Record<string, unknown> & { id: string };

/** The lists, the stored documents of each item (what PAGE_BYTES counts), and their ids newest first in the database. */
const LISTS = [
  {
    url: '/execution-logs',
    documents: (item: Item) => [item.inputs, item.outputs, item.error],
    stored: () => db.$queryRaw<{ id: string }[]>`SELECT id FROM execution_logs WHERE org_id = ${acme.orgId}::uuid ORDER BY id DESC`,
  },
  {
    url: '/executions',
    documents: (item: Item) => [item.input, item.output, item.error],
    stored: () => db.$queryRaw<{ id: string }[]>`SELECT id FROM executions WHERE org_id = ${acme.orgId}::uuid ORDER BY id DESC`,
  },
  {
    url: '/flows',
    documents: (item: Item) => [item.steps, item.output],
    stored: () => db.$queryRaw<{ id: string }[]>`SELECT id FROM flows WHERE org_id = ${acme.orgId}::uuid AND deleted_at IS NULL ORDER BY id DESC`,
  },
  {
    url: `/flows/${versioned}/versions`,
    name: '/flows/{id}/versions',
    documents: (item: Item) => [item.steps, item.output],
    stored: () => db.$queryRaw<{ id: string }[]>`SELECT id FROM flow_versions WHERE flow_id = ${versioned}::uuid ORDER BY id DESC`,
  },
  {
    url: '/actions',
    documents: (item: Item) => [item.headers, item.inputSchema],
    stored: () => db.$queryRaw<{ id: string }[]>`SELECT id FROM actions WHERE org_id = ${acme.orgId}::uuid ORDER BY id DESC`,
  },
];

/** The bytes of an item's documents as stored: their JSON text. */
function bytesOf(documents: unknown[]): number {
  return documents.reduce<number>((sum, document) => sum + (document == null ? 0 : Buffer.byteLength(JSON.stringify(document))), 0);
}

async function walk(url: string, limit: number): Promise<Item[][]> {
  const pages: Item[][] = [];
  let cursor: string | null = null;
  do {
    const page = await send({ method: 'GET', url: `${url}${url.includes('?') ? '&' : '?'}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}` });
    if (page.statusCode !== 200) throw new Error(`listing failed: ${page.body}`);
    pages.push(page.data.items);
    cursor = page.data.nextCursor;
  } while (cursor);
  return pages;
}

for (const list of LISTS) {
  t.test(`${list.name ?? list.url}: pages stop at ${PAGE_BYTES} bytes, and their cursors continue with no item lost or repeated`, async (t) => {
    const stored = (await list.stored()).map((row) => row.id);
    for (const limit of [100, 3]) {
      const pages = await walk(list.url, limit);
      const sizes = pages.map((page) => page.map((item) => bytesOf(list.documents(item))));
      t.same(
        pages.flat().map((item) => item.id),
        stored,
        `limit ${limit}: every item once, newest first`,
      );
      for (const [i, page] of sizes.entries()) {
        const total = page.reduce((sum, size) => sum + size, 0);
        t.ok(page.length === 1 || total <= PAGE_BYTES, `limit ${limit}, page ${i}: ${page.length} items of ${total} bytes`);
        const next = sizes[i + 1]?.[0];
        // A page cut short is full: the next item would have taken it past the bound.
        if (page.length < limit && next !== undefined) t.ok(total + next > PAGE_BYTES, `limit ${limit}, page ${i} stops only at the bound`);
      }
      if (limit === 100) t.ok(pages.length > 1, `the list of ${stored.length} items takes ${pages.length} pages of at most 100`);
    }
  });
}

t.test('an item larger than a page is answered alone, and the list goes on after it', async (t) => {
  const pages = await walk('/execution-logs', 100);
  const alone = pages.find((page) => page.some((item) => bytesOf([item.outputs]) > PAGE_BYTES));
  t.equal(alone?.length, 1);
  t.not(pages.at(-1), alone, 'pages follow it');
  t.equal(pages[0]!.length, 2, 'the page before it stops before it');
});

t.test('a filtered list is bounded the same way, and its cursor keeps the filter', async (t) => {
  const first = await send({ method: 'GET', url: `/executions?flowId=${versioned}&status=queued&limit=100` });
  t.equal(first.data.items.length, 8, 'the four newest large inputs, and the small ones among them');
  t.ok(first.data.nextCursor);
  const pages = await walk(`/executions?flowId=${versioned}&status=queued&createdAfter=2000-01-01T00:00:00Z`, 100);
  t.equal(pages.flat().length, SIZES.length);
  t.same(await walk(`/executions?flowId=${flowIds[1]}`, 100), [[]], 'another flow has none');
});
