// Attacks on list pagination, by a member of Globex with one ordinary API key:
// - a forged cursor (the largest id, so that every row is "after" it) on GET /organizations:
//   must list Globex alone, never every organization;
// - the same forged cursor on every other list operation of the contract: must list Globex's
//   items alone, never Acme's;
// - a cursor made from one of Acme's ids: must list nothing of Acme's either;
// - either cursor with Acme's run as the parentId filter: must list none of its sub-flow runs.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { encodeCursor } from '../../src/resources/pagination.ts';
import { operations } from '../contract.ts';
import { buildTestApp, call, createTenant, testAuth } from '../helper.ts';

const { app, db } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const acme = await createTenant(app, 'Acme');
const globex = await createTenant(app, 'Globex');

// Acme has one item in every list; Globex its own flow, so that its lists of a flow exist.
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } })).data;
const action = (
  await call(app, acme, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'Post', key: 'post', method: 'POST', endpoint: '/post' } })
).data;
const acmeFlow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Announce', steps: [{ key: 'post', actionId: action.id }] } })).data;
await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { flowId: acmeFlow.id, executionId: 'run-1', stepKey: 'post', status: 'completed' } });
const acmeRun = (await call(app, acme, { method: 'POST', url: `/flows/${acmeFlow.id}/executions`, payload: { input: {} } })).data;
// A sub-flow's run of Acme's run, stored as the engine stores one (no worker runs here): Globex filters by its parent.
const child = await db.execution.create({
  data: {
    orgId: acme.orgId,
    flowId: acmeFlow.id,
    flowVersion: 1,
    parentId: acmeRun.id,
    parentStep: 'post',
    depth: 1,
    trigger: JSON.stringify({ type: 'flow', executionId: acmeRun.id, step: 'post' }),
  },
});
const globexFlow = (await call(app, globex, { method: 'POST', url: '/flows', payload: { name: 'Mine' } })).data;
// A webhook each, Acme's with a delivery: Globex lists its own trigger's deliveries.
const hook = (flowId: string) => ({ method: 'POST' as const, url: '/triggers', payload: { flowId, name: 'Hook', type: 'webhook' } });
const acmeTrigger = (await call(app, acme, hook(acmeFlow.id))).data;
await app.inject({ method: 'POST', url: `/hooks/${acmeTrigger.webhook.token}`, payload: {} });
const globexTrigger = (await call(app, globex, hook(globexFlow.id))).data;
// A subscription each, Acme's with a delivery stored as the database stores one: Globex lists its own subscription's deliveries.
const subscribe = { method: 'POST' as const, url: '/subscriptions', payload: { url: 'https://hooks.example.com/in', events: ['execution.started'] } };
const acmeSubscription = (await call(app, acme, subscribe)).data;
const acmeEvent = await db.eventDelivery.create({
  data: { id: randomUUID(), orgId: acme.orgId, subscriptionId: acmeSubscription.id, executionId: acmeRun.id, event: 'execution.started', payload: '{}' },
});
const globexSubscription = (await call(app, globex, subscribe)).data;

const LAST = encodeCursor('ffffffff-ffff-7fff-bfff-ffffffffffff');
const lists = operations.filter(({ operationId }) => operationId.startsWith('list') && operationId !== 'listProblemTypes');

/** Whether an item of a list belongs to Acme: its orgId, or (an organization) its id, or its trigger, or (a subscription's delivery) its id. */
const isAcme = (item: { id: string; orgId?: string; triggerId?: string }) =>
  item.orgId === acme.orgId || item.id === acme.orgId || item.triggerId === acmeTrigger.id || item.id === acmeEvent.id;

for (const cursor of [LAST, encodeCursor(acmeFlow.id)]) {
  t.test(`a forged cursor (${cursor}) narrows every list, never widens it`, async (t) => {
    t.ok(lists.length >= 8, 'every list operation is tried');
    for (const { path } of lists) {
      const id = path.startsWith('/triggers/') ? globexTrigger.id : path.startsWith('/subscriptions/') ? globexSubscription.id : globexFlow.id;
      const url = `${path.replace('{id}', id)}?limit=100&cursor=${cursor}`;
      const listed = await call(app, globex, { method: 'GET', url });
      t.equal(listed.statusCode, 200, url);
      t.same(listed.data.items.filter(isAcme), [], `${path}: nothing of Acme's`);
    }
    const children = await call(app, globex, { method: 'GET', url: `/executions?parentId=${acmeRun.id}&limit=100&cursor=${cursor}` });
    t.equal(children.statusCode, 200);
    t.same(children.data.items, [], "filtered by Acme's run: none of its children");
  });
}

t.test("Acme itself finds its run's child by the same filter", async (t) => {
  const children = await call(app, acme, { method: 'GET', url: `/executions?parentId=${acmeRun.id}` });
  t.same(
    children.data.items.map((item: { id: string }) => item.id),
    [child.id],
  );
});

t.test("the forged cursor lists Globex's organization alone", async (t) => {
  const listed = await call(app, globex, { method: 'GET', url: `/organizations?cursor=${LAST}` });
  t.same(
    listed.data.items.map((item: { id: string }) => item.id),
    [globex.orgId],
  );
});
