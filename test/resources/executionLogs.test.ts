import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);
const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'F' } })).data;
const other = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'G' } })).data;

t.test('a step of a run is recorded, read, updated and deleted', async (t) => {
  const created = await call(app, acme, {
    method: 'POST',
    url: '/execution-logs',
    payload: { flowId: flow.id, executionId: 'run-1', stepKey: 'post', status: 'running', inputs: { channel: '#x' } },
  });
  t.equal(created.statusCode, 201);
  t.match(created.data, {
    flowId: flow.id,
    userId: acme.userId,
    writtenBy: 'member',
    executionId: 'run-1',
    stepKey: 'post',
    status: 'running',
    inputs: { channel: '#x' },
    outputs: null,
    error: null,
    durationMs: null,
  });
  const finished = await call(app, acme, {
    method: 'PUT',
    url: `/execution-logs/${created.data.id}`,
    payload: { status: 'failed', error: { message: 'channel_not_found', code: 'slack' }, durationMs: 240 },
  });
  t.match(finished.data, { status: 'failed', error: { message: 'channel_not_found', code: 'slack' }, durationMs: 240, inputs: { channel: '#x' } });
  const cleared = await call(app, acme, { method: 'PUT', url: `/execution-logs/${created.data.id}`, payload: { error: null, outputs: { ok: true } } });
  t.match(cleared.data, { error: null, outputs: { ok: true } });
  t.same((await call(app, acme, { method: 'GET', url: `/execution-logs/${created.data.id}` })).data, cleared.data);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/execution-logs/${created.data.id}` })).statusCode, 204);
  t.equal((await call(app, acme, { method: 'GET', url: `/execution-logs/${created.data.id}` })).statusCode, 404);
});

t.test('flowId must name a flow of the organization; userId is the caller, never sent', async (t) => {
  const badFlow = await call(app, acme, {
    method: 'POST',
    url: '/execution-logs',
    payload: { flowId: MISSING_ID, executionId: 'r', stepKey: 's', status: 'queued' },
  });
  t.equal(badFlow.statusCode, 422);
  t.same(badFlow.data.errors, [{ in: 'body', pointer: '/flowId', message: `no flow ${MISSING_ID} in this organization` }]);
  const badUser = await call(app, acme, {
    method: 'POST',
    url: '/execution-logs',
    payload: { flowId: flow.id, userId: acme.userId, executionId: 'r', stepKey: 's', status: 'queued' },
  });
  t.equal(badUser.statusCode, 400);
  t.same(badUser.data.errors, [
    {
      in: 'body',
      pointer: '/userId',
      message: 'is not a known field; the fields are flowId, executionId, stepKey, status, inputs, outputs, error, durationMs',
    },
  ]);
  const log = (
    await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { flowId: flow.id, executionId: 'r', stepKey: 's', status: 'queued' } })
  ).data;
  t.equal((await call(app, acme, { method: 'PUT', url: `/execution-logs/${log.id}`, payload: { flowId: MISSING_ID } })).statusCode, 422);
  t.equal((await call(app, acme, { method: 'PUT', url: `/execution-logs/${log.id}`, payload: { flowId: other.id } })).data.flowId, other.id);
});

t.test('status is one of the documented states and durationMs fits', async (t) => {
  const base = { flowId: flow.id, executionId: 'r', stepKey: 's' };
  t.equal((await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { ...base, status: 'done' } })).statusCode, 400);
  t.equal((await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { ...base, status: 'completed', durationMs: -1 } })).statusCode, 400);
  t.equal((await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { ...base, status: 'completed', durationMs: 2 ** 31 } })).statusCode, 400);
  t.equal((await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { ...base, status: 'completed', durationMs: 1.5 } })).statusCode, 400);
});

t.test('logs are filtered by flow, run and status', async (t) => {
  const record = (flowId: string, executionId: string, status: string) =>
    call(app, acme, { method: 'POST', url: '/execution-logs', payload: { flowId, executionId, stepKey: 'a', status } });
  await record(flow.id, 'filter-1', 'completed');
  await record(flow.id, 'filter-1', 'failed');
  await record(other.id, 'filter-2', 'completed');
  const byFlow = (await call(app, acme, { method: 'GET', url: `/execution-logs?flowId=${other.id}&limit=100` })).data.items;
  t.ok(byFlow.length > 0 && byFlow.every((l: { flowId: string }) => l.flowId === other.id));
  const byRun = (await call(app, acme, { method: 'GET', url: '/execution-logs?executionId=filter-1' })).data.items;
  t.same(
    byRun.map((l: { status: string }) => l.status),
    ['failed', 'completed'],
  );
  const failedOfRun = (await call(app, acme, { method: 'GET', url: '/execution-logs?executionId=filter-1&status=failed' })).data.items;
  t.equal(failedOfRun.length, 1);
  t.equal((await call(app, acme, { method: 'GET', url: '/execution-logs?status=lost' })).statusCode, 400);
});

t.test('missing logs answer 404', async (t) => {
  t.equal((await call(app, acme, { method: 'GET', url: `/execution-logs/${MISSING_ID}` })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'PUT', url: `/execution-logs/${MISSING_ID}`, payload: { status: 'failed' } })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/execution-logs/${MISSING_ID}` })).statusCode, 404);
});
