// Steps that never ran: once an execution ends, no step of it stays `pending`. The steps after a
// step that failed it, and those of a run abandoned by the engine, are `not_run`, a final state,
// never attempted.
import t from 'tap';
import { abandonRun, claimRun, recordChanges } from '../../src/engine/runs/progress.ts';
import { buildTestApp } from '../helper.ts';
import { world } from './world.ts';

const w = await world(t);

t.test('the steps after one that failed the execution are not_run, never attempted', async (t) => {
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'first', actionId: echo },
      { key: 'broken', actionId: echo, inputs: { v: { $eval: 'steps.first.output.nothing.here' } } },
      { key: 'third', actionId: echo },
      { key: 'fourth', actionId: echo, if: 'false' },
    ],
  });
  const execution = await w.run(flow.id);
  t.match(execution, { status: 'failed', error: { step: 'broken' } });
  t.match(execution.steps, [
    { key: 'first', status: 'completed' },
    { key: 'broken', status: 'failed', error: { code: 'template-error' } },
    { key: 'third', status: 'not_run', attempts: 0, startedAt: null, finishedAt: null, request: null, response: null, error: null },
    { key: 'fourth', status: 'not_run', attempts: 0 },
  ]);
  const logs = await w.send({ method: 'GET', url: `/execution-logs?executionId=${execution.id}` });
  t.same(logs.data.items.map((log: { stepKey: string }) => log.stepKey).sort(), ['broken', 'first'], 'a step that never ran has no log');
});

t.test('a step that fails with continueOnError leaves the rest to run', async (t) => {
  const failing = await w.action({ endpoint: '/status/404' });
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'a', actionId: failing, continueOnError: true },
      { key: 'b', actionId: echo },
    ],
  });
  const execution = await w.run(flow.id);
  t.match(execution, { status: 'completed', steps: [{ status: 'failed' }, { status: 'completed' }] });
});

t.test('a run the engine abandons: the step it was in fails with its error, the rest are not_run', async (t) => {
  const app = await buildTestApp(t, { worker: false });
  const local = await world(t, {}, app);
  const echo = await local.action();
  const flow = await local.flow({ steps: ['a', 'b', 'c'].map((key) => ({ key, actionId: echo })) });
  const error = { code: 'interrupted', message: 'The execution was interrupted too often.' };
  const queued = (await local.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data;
  await abandonRun(app.db, app.engine.queue, queued.id, error);
  const abandoned = (await local.send({ method: 'GET', url: `/executions/${queued.id}` })).data;
  t.match(abandoned, { status: 'failed', error, steps: [{ status: 'not_run' }, { status: 'not_run' }, { status: 'not_run' }] });
  const running = (await local.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data;
  const claimed = await claimRun(app.db, running.id);
  t.ok(claimed, 'a worker took the run');
  t.ok(
    await recordChanges(app.db, claimed!, { writes: [{ path: 'a', key: 'a', kind: 'action', status: 'running', attempt: true, keep: true }] }),
    'and began its first step',
  );
  await abandonRun(app.db, app.engine.queue, running.id, error);
  const cut = (await local.send({ method: 'GET', url: `/executions/${running.id}` })).data;
  t.match(cut, { status: 'failed', steps: [{ key: 'a', status: 'failed', error, finishedAt: String }, { status: 'not_run' }, { status: 'not_run' }] });
});
