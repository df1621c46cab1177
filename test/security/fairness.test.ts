// Attacks on fairness between organizations, and what each must get:
// - an organization queues runs without end (starting, or retrying failed ones): past
//   TOLSTOY_ORG_QUEUE_LIMIT queued runs it gets 429 problem+json with Retry-After naming the
//   setting, nothing more is stored or queued, and other organizations still start runs.
import t from 'tap';
import { world } from '../engine/world.ts';
import { buildTestApp, call, createTenant } from '../helper.ts';

t.test('an organization cannot queue more runs than TOLSTOY_ORG_QUEUE_LIMIT', async (t) => {
  // No worker: every run started stays queued.
  const app = await buildTestApp(t, { worker: false, orgQueueLimit: 3 });
  const w = await world(t, {}, app);
  const flow = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
  const start = () => w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  const started = [await start(), await start(), await start()];
  t.same(
    started.map((response) => response.statusCode),
    [202, 202, 202],
  );

  const refused = await start();
  t.equal(refused.statusCode, 429);
  t.match(refused.headers['content-type'], /^application\/problem\+json/);
  t.equal(refused.headers['retry-after'], '5');
  t.match(refused.data, { status: 429, detail: /3 runs queued.*TOLSTOY_ORG_QUEUE_LIMIT/ });
  t.equal(await app.db.execution.count({ where: { orgId: w.member.orgId } }), 3, 'the refused run was not stored');

  // A retry queues a run too: refused while the queue is full, accepted once there is room.
  const cancelled = await w.send({ method: 'POST', url: `/executions/${started[0]!.data.id}/cancel` });
  t.equal(cancelled.data.status, 'cancelled');
  t.equal((await start()).statusCode, 202, 'the cancelled run left room for one');
  const retried = await w.send({ method: 'POST', url: `/executions/${started[0]!.data.id}/retry` });
  t.equal(retried.statusCode, 429);
  t.match(retried.data, { detail: /TOLSTOY_ORG_QUEUE_LIMIT/ });
  t.equal(retried.headers['retry-after'], '5');

  // Another organization is not held back by the first one's queue.
  const other = await createTenant(app.app);
  const tool = await call(app.app, other, { method: 'POST', url: '/tools', payload: { name: 'Target', baseUrl: w.target.url } });
  const action = await call(app.app, other, {
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'echo', key: 'echo', method: 'POST', endpoint: '/echo/x' },
  });
  const otherFlow = await call(app.app, other, { method: 'POST', url: '/flows', payload: { name: 'Flow', steps: [{ key: 'a', actionId: action.data.id }] } });
  const otherStart = await call(app.app, other, { method: 'POST', url: `/flows/${otherFlow.data.id}/executions`, payload: {} });
  t.equal(otherStart.statusCode, 202);
});
