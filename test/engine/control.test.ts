// Controlling runs: cancelling one mid-step, retrying from the step that failed, runs pinned to
// the version they started with, and one organization unable to take every worker.
import t from 'tap';
import { finishedRuns as finishedChanges } from '../../src/engine/runs/changes.ts';
import { createTenant } from '../helper.ts';
import { world } from './world.ts';

const w = await world(t, { orgConcurrency: 2, concurrency: 6 });
const finishedRuns = async (db: typeof w.db, ids: string[]) => (await finishedChanges(db, ids)).map((change) => change.executionId);
const calls = (executionId: string, key: string) => w.target.received.filter((r) => r.headers['idempotency-key'] === `${executionId}:${key}`);

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('cancelling a run aborts the request in flight and cancels what was left', async (t) => {
  const echo = await w.action();
  const hang = await w.action({ endpoint: '/hang/forever' });
  const flow = await w.flow({
    steps: [
      { key: 'first', actionId: echo },
      { key: 'hanging', actionId: hang, timeoutMs: 60_000 },
      { key: 'after', actionId: echo },
    ],
  });
  const started = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  await until(() => calls(started.data.id, 'hanging').length > 0, 'the hanging call');
  const cancelled = await w.send({ method: 'POST', url: `/executions/${started.data.id}/cancel` });
  t.equal(cancelled.statusCode, 200);
  t.match(cancelled.data, {
    status: 'cancelled',
    error: { code: 'cancelled', message: `Cancelled by ${w.member.userId}.` },
    steps: [{ status: 'completed' }, { status: 'cancelled', error: { code: 'cancelled' } }, { status: 'cancelled', attempts: 0 }],
  });
  t.ok(cancelled.data.finishedAt);
  await until(() => calls(started.data.id, 'hanging')[0]!.aborted, 'the target seeing the request aborted', 3000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const later = await w.send({ method: 'GET', url: `/executions/${started.data.id}` });
  t.same(later.data, cancelled.data, 'the worker wrote nothing after the cancel');
  const logs = await w.send({ method: 'GET', url: `/execution-logs?executionId=${started.data.id}` });
  t.same(logs.data.items.map((log: any) => [log.stepKey, log.status]).reverse(), [
    ['first', 'completed'],
    ['hanging', 'cancelled'],
  ]);
  t.same(
    logs.data.items.filter((log: any) => log.id[14] !== '7').map((log: any) => log.id),
    [],
    "every log's id is a UUIDv7, the cancellation's too: listings are in the order they were written",
  );
  const again = await w.send({ method: 'POST', url: `/executions/${started.data.id}/cancel` });
  t.equal(again.statusCode, 409);
  t.match(again.data.detail, /has already been cancelled; only a queued or running execution can be cancelled/);
});

t.test('a queued run can be cancelled before any worker takes it; a finished one cannot', async (t) => {
  const other = await createTenant(w.app, 'Queued');
  const send = (options: Parameters<typeof w.send>[0]) => w.app.inject({ ...options, headers: other.headers }).then((r) => ({ ...r, data: r.json() }));
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: w.target.url } })).data;
  const hang = (await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'h', key: 'h', method: 'GET', endpoint: '/hang/q' } })).data;
  const flow = (await send({ method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'h', actionId: hang.id }] } })).data;
  // The organization may run two at once: the third waits in the queue.
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push((await send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data);
  await until(async () => (await send({ method: 'GET', url: `/executions?flowId=${flow.id}&status=running` })).data.items.length === 2, 'two running');
  const waiting = (await send({ method: 'GET', url: `/executions?flowId=${flow.id}&status=queued` })).data.items;
  t.equal(waiting.length, 1, 'the third is still queued');
  // Workers stop the runs in flight that finished: one just taken is still queued, and must go on.
  t.same(await finishedRuns(w.db, [waiting[0].id, ...runs.map((run) => run.id)]), [], 'queued and running runs are not stopped');
  const cancelled = await send({ method: 'POST', url: `/executions/${waiting[0].id}/cancel` });
  t.match(cancelled.data, { status: 'cancelled', startedAt: null, steps: [{ status: 'cancelled', attempts: 0 }] });
  t.same(await finishedRuns(w.db, [waiting[0].id]), [waiting[0].id], 'a cancelled one is');
  for (const run of runs) await send({ method: 'POST', url: `/executions/${run.id}/cancel` });

  const echo = await w.action();
  const done = await w.run((await w.flow({ steps: [{ key: 'a', actionId: echo }] })).id);
  const refused = await w.send({ method: 'POST', url: `/executions/${done.id}/cancel` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /has already completed/);
});

t.test('one organization running its limit does not hold up another', async (t) => {
  const busy = await createTenant(w.app, 'Busy');
  const send = (options: Parameters<typeof w.send>[0]) => w.app.inject({ ...options, headers: busy.headers }).then((r) => ({ ...r, data: r.json() }));
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: w.target.url } })).data;
  const hang = (await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'h', key: 'h', method: 'GET', endpoint: '/hang/busy' } })).data;
  const flow = (await send({ method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'h', actionId: hang.id, timeoutMs: 60_000 }] } })).data;
  const runs = [];
  for (let i = 0; i < 8; i++) runs.push((await send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data);
  await until(async () => (await send({ method: 'GET', url: `/executions?flowId=${flow.id}&status=running` })).data.items.length === 2, 'Busy running its 2');
  const echo = await w.action();
  const quick = await w.flow({ steps: [{ key: 'a', actionId: echo }] });
  const ran = await w.run(quick.id);
  t.equal(ran.status, 'completed', "another organization's run is not stuck behind Busy's 8");
  t.equal((await send({ method: 'GET', url: `/executions?flowId=${flow.id}&status=running` })).data.items.length, 2, 'Busy never runs more than its 2');
  for (const run of runs) await send({ method: 'POST', url: `/executions/${run.id}/cancel` });
});

t.test('a failed run is retried from its first unfinished step, reusing what completed', async (t) => {
  const echo = await w.action();
  const failing = await w.action({ endpoint: '/once/retry-me' });
  const flow = await w.flow({
    steps: [
      { key: 'one', actionId: echo, inputs: { n: { $eval: 'input.n' } } },
      { key: 'skipped', actionId: echo, if: 'false' },
      { key: 'two', actionId: failing, inputs: { from: { $eval: 'steps.one.output.body.n' } } },
      { key: 'three', actionId: echo },
    ],
  });
  const failed = await w.run(flow.id, { input: { n: 5 } });
  t.match(failed, { status: 'failed', error: { step: 'two' } });
  const retried = await w.send({ method: 'POST', url: `/executions/${failed.id}/retry` });
  t.equal(retried.statusCode, 202);
  t.equal(retried.headers.location, `/executions/${retried.data.id}`);
  t.match(retried.data, { retryOf: failed.id, flowVersion: 1, input: { n: 5 }, status: 'queued' });
  const done = await w.finished(retried.data.id);
  t.match(done, {
    status: 'completed',
    steps: [
      { key: 'one', status: 'completed', reusedFrom: failed.id },
      { key: 'skipped', status: 'skipped', reusedFrom: failed.id },
      { key: 'two', status: 'completed', reusedFrom: null, attempts: 1 },
      { key: 'three', status: 'completed', reusedFrom: null },
    ],
  });
  t.same(done.steps[0].response, failed.steps[0].response, 'the reused step is as it was');
  t.equal(calls(done.id, 'one').length, 0, 'the completed step was not called again');
  t.same(calls(done.id, 'two')[0]!.body, { from: 5 }, "the reused step's output fed the next");
  t.equal((await w.send({ method: 'POST', url: `/executions/${done.id}/retry` })).statusCode, 409, 'a completed run is not retried');
  const again = await w.send({ method: 'POST', url: `/executions/${failed.id}/retry` });
  t.equal(again.statusCode, 202, 'a failed run may be retried again');
  const twice = await w.finished(again.data.id);
  t.equal(twice.steps[0].reusedFrom, failed.id);
});

t.test('a run keeps the version it started with, even when the flow changes or is deleted mid-run', async (t) => {
  const slow = await w.action({ endpoint: '/slow/600/pin' });
  const v1 = await w.action({ endpoint: '/echo/v1' });
  const v2 = await w.action({ endpoint: '/echo/v2' });
  const flow = await w.flow({
    steps: [
      { key: 'slow', actionId: slow },
      { key: 'second', actionId: v1 },
    ],
  });
  const started = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  await until(() => calls(started.data.id, 'slow').length > 0, 'the slow step');
  const updated = await w.send({
    method: 'PUT',
    url: `/flows/${flow.id}`,
    payload: {
      steps: [
        { key: 'slow', actionId: slow },
        { key: 'second', actionId: v2 },
      ],
    },
  });
  t.equal(updated.data.version, 2);
  const pinned = await w.finished(started.data.id);
  t.match(pinned, { status: 'completed', flowVersion: 1 });
  t.equal(calls(pinned.id, 'second')[0]!.path, '/echo/v1', 'version 1 ran to its end');
  const next = await w.run(flow.id);
  t.equal(calls(next.id, 'second')[0]!.path, '/echo/v2', 'new runs take the new version');
  const older = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: { version: 1 }, headers: { prefer: 'wait=10' } });
  t.equal(calls(older.data.id, 'second')[0]!.path, '/echo/v1', 'or the version asked for');
  const none = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: { version: 9 } });
  t.equal(none.statusCode, 422);
  t.match(none.data.errors, [{ pointer: '/version', message: /has no version 9; its current version is 2/ }]);

  const doomed = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  await until(() => calls(doomed.data.id, 'slow').length > 0, 'the slow step');
  t.equal((await w.send({ method: 'DELETE', url: `/flows/${flow.id}` })).statusCode, 204);
  t.equal((await w.finished(doomed.data.id)).status, 'completed', 'a run of a flow deleted mid-run finishes on its snapshot');
  t.equal((await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).statusCode, 404, 'a deleted flow does not start');
  t.equal((await w.send({ method: 'GET', url: `/executions/${doomed.data.id}` })).statusCode, 200, 'its runs stay readable');
});

t.test('a cancelled run of a deleted flow cannot be retried', async (t) => {
  const hang = await w.action({ endpoint: '/hang/deleted' });
  const flow = await w.flow({ steps: [{ key: 'h', actionId: hang }] });
  const started = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  await w.send({ method: 'POST', url: `/executions/${started.data.id}/cancel` });
  await w.send({ method: 'DELETE', url: `/flows/${flow.id}` });
  const refused = await w.send({ method: 'POST', url: `/executions/${started.data.id}/retry` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /was deleted; it cannot run again/);
});
