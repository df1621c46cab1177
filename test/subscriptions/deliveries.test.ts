// A subscription's deliveries after real runs (a worker, a local target): the database stores one
// per event, in order, with the run's summary as the spec's webhooks describe it; they are listed
// newest first, filtered by status, paginated, and sent again with the same id. The receiver
// refuses every attempt and the next one is an hour away, so what the sender did stays still (the
// sender is tested in test/events/).
import t from 'tap';
import { EVENTS } from '../../src/config/settings.ts';
import { world } from '../engine/world.ts';
import { until } from '../events/scene.ts';
import { createTenant, MISSING_ID } from '../helper.ts';

const w = await world(t, { events: { ...EVENTS, retryScheduleMs: [0, 3_600_000] } });
const echo = await w.action();
const flow = await w.flow({ steps: [{ key: 'notify', actionId: echo, inputs: { n: 1 } }], output: { pad: { $eval: 'input.pad' } } });

async function subscribe(fields: Record<string, unknown> = {}) {
  const created = await w.send({
    method: 'POST',
    url: '/subscriptions',
    payload: { url: `${w.target.url}/status/503`, events: ['execution.started', 'execution.completed'], ...fields },
  });
  if (created.statusCode !== 201) throw new Error(`subscribing failed: ${created.body}`);
  return created.data;
}

async function deliveries(subscriptionId: string, query = '') {
  const listed = await w.send({ method: 'GET', url: `/subscriptions/${subscriptionId}/deliveries${query}` });
  if (listed.statusCode !== 200) throw new Error(`listing deliveries failed: ${listed.body}`);
  return listed.data;
}

t.test('a run is reported started, then completed, with its summary', async (t) => {
  const subscription = await subscribe({ flowId: flow.id });
  const other = await subscribe({ events: ['execution.failed'] });
  const run = await w.run(flow.id, { input: { pad: 'small' } });
  t.equal(run.status, 'completed');
  await until('execution.started attempted', async () =>
    (await deliveries(subscription.id)).items.some((item: { event: string; attempts: number }) => item.event === 'execution.started' && item.attempts === 1),
  );
  const { items, nextCursor } = await deliveries(subscription.id);
  t.equal(nextCursor, null);
  t.same(
    items.map((item: { event: string }) => item.event),
    ['execution.completed', 'execution.started'],
    'newest first',
  );
  const [completed, started] = items;
  t.match(started, { executionId: run.id, status: 'pending', attempts: 1, lastStatus: 503, lastError: /HTTP 503/, deliveredAt: null });
  t.ok(Date.parse(started.nextAttemptAt) > Date.now() + 30 * 60_000, 'its next attempt is an hour away');
  t.match(completed, { status: 'pending', attempts: 0, lastStatus: null, lastError: null }, 'held behind execution.started');
  t.match(started.payload, { type: 'execution.started', data: { id: run.id, status: 'running', output: null, finishedAt: null } });
  t.same(completed.payload.data, {
    id: run.id,
    flowId: flow.id,
    flowVersion: run.flowVersion,
    status: 'completed',
    trigger: run.trigger,
    parent: null,
    error: null,
    output: { pad: 'small' },
    outputOmitted: false,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
  });
  t.equal(completed.payload.type, 'execution.completed');
  t.ok(Date.parse(completed.payload.timestamp) >= Date.parse(started.payload.timestamp));
  t.same((await deliveries(other.id)).items, [], 'a subscription to other events gets none');
});

t.test('an output over 4 KiB is left out, and said to be', async (t) => {
  const subscription = await subscribe({ events: ['execution.completed'], flowId: flow.id });
  const run = await w.run(flow.id, { input: { pad: 'x'.repeat(5000) } });
  const [completed] = (await deliveries(subscription.id)).items;
  t.match(completed.payload.data, { id: run.id, output: null, outputOmitted: true });
});

t.test('deliveries are filtered by status and paginated newest first', async (t) => {
  const subscription = await subscribe({ flowId: flow.id });
  const first = await w.run(flow.id, { input: { pad: 1 } });
  const second = await w.run(flow.id, { input: { pad: 2 } });
  const all = (await deliveries(subscription.id, '?limit=100')).items;
  t.same(
    all.map((item: { executionId: string; event: string }) => `${{ [first.id]: 'first', [second.id]: 'second' }[item.executionId]} ${item.event}`),
    ['second execution.completed', 'second execution.started', 'first execution.completed', 'first execution.started'],
  );
  await w.db.eventDelivery.update({
    where: { id: all[1].id },
    data: { status: 'delivered', attempts: 1, lastStatus: 200, deliveredAt: new Date(), nextAttemptAt: null },
  });
  const delivered = (await deliveries(subscription.id, '?status=delivered')).items;
  t.same(
    delivered.map((item: { id: string }) => item.id),
    [all[1].id],
  );
  t.match(delivered[0], { status: 'delivered', attempts: 1, lastStatus: 200, nextAttemptAt: null });
  t.equal((await deliveries(subscription.id, '?status=pending')).items.length, 3);
  const pages: string[] = [];
  let query = '?limit=1';
  for (;;) {
    const page = await deliveries(subscription.id, query);
    pages.push(...page.items.map((item: { id: string }) => item.id));
    if (page.nextCursor === null) break;
    query = `?limit=1&cursor=${page.nextCursor}`;
  }
  t.same(
    pages,
    all.map((item: { id: string }) => item.id),
    'page by page, the same list',
  );
  t.same((await deliveries(subscription.id, '?cursor=v1AAAAAAAAAAAAAAAAAAAAAA')).items, [], 'a cursor before everything ends the list');
});

t.test('a delivery is sent again with the same id: pending, due now', async (t) => {
  const subscription = await subscribe({ flowId: flow.id, events: ['execution.completed'] });
  await w.run(flow.id, { input: { pad: 3 } });
  const [delivery] = (await deliveries(subscription.id)).items;
  const sent = (await w.db.eventDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).payload;
  await w.db.eventDelivery.update({
    where: { id: delivery.id },
    data: { status: 'failed', attempts: 8, lastStatus: 500, lastError: 'HTTP 500', nextAttemptAt: null },
  });
  const before = Date.now();
  const again = await w.send({ method: 'POST', url: `/subscriptions/${subscription.id}/deliveries/${delivery.id}/redeliver` });
  t.equal(again.statusCode, 202);
  t.match(again.data, { id: delivery.id, status: 'pending', attempts: 8, lastStatus: 500, lastError: 'HTTP 500', payload: delivery.payload });
  t.ok(Math.abs(Date.parse(again.data.nextAttemptAt) - before) < 60_000, 'due now');
  await until('sent again', async () => (await w.db.eventDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).attempts === 9);
  const row = await w.db.eventDelivery.findUniqueOrThrow({ where: { id: delivery.id } });
  t.equal(row.payload, sent, 'the same bytes are sent');

  const elsewhere = await subscribe({ flowId: flow.id, events: ['execution.completed'] });
  const misplaced = await w.send({ method: 'POST', url: `/subscriptions/${elsewhere.id}/deliveries/${delivery.id}/redeliver` });
  t.equal(misplaced.statusCode, 404, "another subscription's delivery");
  t.equal((await w.send({ method: 'POST', url: `/subscriptions/${subscription.id}/deliveries/${MISSING_ID}/redeliver` })).statusCode, 404);
  const stranger = await createTenant(w.app, 'Other');
  const theirs = await w.app.inject({
    method: 'POST',
    url: `/subscriptions/${subscription.id}/deliveries/${delivery.id}/redeliver`,
    headers: stranger.headers,
  });
  t.equal(theirs.statusCode, 404, "another organization's");
  const listed = await w.app.inject({ method: 'GET', url: `/subscriptions/${subscription.id}/deliveries`, headers: stranger.headers });
  t.equal(listed.statusCode, 404);

  await w.send({ method: 'PUT', url: `/subscriptions/${subscription.id}`, payload: { enabled: false } });
  const disabled = await w.send({ method: 'POST', url: `/subscriptions/${subscription.id}/deliveries/${delivery.id}/redeliver` });
  t.equal(disabled.statusCode, 409);
  t.match(disabled.data.detail, /is disabled: enable it first/);
});
