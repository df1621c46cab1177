// Cursor pagination: complete, ordered newest first, stable while items are added, and every
// cursor the contract's pattern allows is a position (a schemathesis finding: a well-formed
// cursor was once refused).
import t from 'tap';
import { encodeCursor } from '../../src/resources/pagination.ts';
import { buildTestApp, call, createTenant } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);
const created: string[] = [];
for (let i = 0; i < 23; i++)
  created.push((await call(app, acme, { method: 'POST', url: '/tools', payload: { name: `Tool ${i}`, baseUrl: 'https://x.io' } })).data.id);
const newestFirst = [...created].reverse();

async function walk(limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url: string = `/tools?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
    const page = await call(app, acme, { method: 'GET', url });
    t.ok(page.data.items.length <= limit);
    ids.push(...page.data.items.map((item: { id: string }) => item.id));
    cursor = page.data.nextCursor;
    pages++;
  } while (cursor);
  return { ids, pages };
}

t.test('walking the pages yields every item once, newest first', async (t) => {
  for (const limit of [1, 5, 22, 23, 24, 100]) {
    const { ids, pages } = await walk(limit);
    t.same(ids, newestFirst, `limit ${limit}`);
    t.equal(pages, Math.max(1, Math.ceil(23 / limit)), `limit ${limit}: no empty last page`);
  }
});

t.test('the default page holds 20', async (t) => {
  const page = await call(app, acme, { method: 'GET', url: '/tools' });
  t.equal(page.data.items.length, 20);
  t.match(page.data.nextCursor, /^v1[A-Za-z0-9_-]{22}$/);
});

t.test('items created while paging do not shift later pages', async (t) => {
  const first = await call(app, acme, { method: 'GET', url: '/tools?limit=10' });
  await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Late', baseUrl: 'https://x.io' } });
  const second = await call(app, acme, { method: 'GET', url: `/tools?limit=10&cursor=${first.data.nextCursor}` });
  t.same(
    second.data.items.map((i: { id: string }) => i.id),
    newestFirst.slice(10, 20),
  );
});

t.test('any cursor of the documented shape is a position in the list', async (t) => {
  const before = (id: string) => call(app, acme, { method: 'GET', url: `/tools?limit=100&cursor=${encodeCursor(id)}` });
  t.same(
    (await before(created[5]!)).data.items.map((i: { id: string }) => i.id),
    created.slice(0, 5).reverse(),
  );
  for (const cursor of [`v1${'A'.repeat(22)}`, `v1${'_'.repeat(22)}`, 'v10000000000000000000000']) {
    const response = await call(app, acme, { method: 'GET', url: `/tools?cursor=${cursor}` });
    t.equal(response.statusCode, 200, cursor);
  }
  t.same(
    (await call(app, acme, { method: 'GET', url: `/tools?cursor=v1${'A'.repeat(22)}` })).data,
    { items: [], nextCursor: null },
    'nothing comes before the smallest id',
  );
});
