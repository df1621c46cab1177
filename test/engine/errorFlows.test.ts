// Error flows: a failed run of a flow naming `onFailure` starts that flow once, with the failed
// run's summary as input and its cause in the trigger; an error flow's failure starts no other.
import t from 'tap';
import { world } from './world.ts';

const w = await world(t);

/** The error flows' runs started for a failed execution, once the starter had time to start them. */
async function errorRunsOf(failedId: string, expected: number): Promise<any[]> {
  let runs: any[] = [];
  for (let i = 0; i < 200; i++) {
    const listed = (await w.send({ method: 'GET', url: '/executions?limit=100' })).data.items;
    runs = listed.filter((run: any) => run.trigger.type === 'error' && run.trigger.executionId === failedId);
    if (runs.length >= expected) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return runs;
}

t.test('a failed run starts its error flow once, with its summary and cause', async (t) => {
  const handler = await w.flow({ name: 'Page someone', steps: [{ key: 'who', transform: { $eval: 'input.execution.error.code' } }] });
  const failing = await w.action({ endpoint: '/status/500' });
  const flow = await w.flow({ steps: [{ key: 'boom', actionId: failing }], onFailure: { flowId: handler.id } });
  t.match(flow, { onFailure: { flowId: handler.id } });
  const failed = await w.run(flow.id, { input: { order: 7 } });
  t.equal(failed.status, 'failed');
  const [started, ...more] = await errorRunsOf(failed.id, 1);
  t.ok(started, 'the error flow started');
  const run = await w.finished(started.id);
  t.match(run, {
    flowId: handler.id,
    status: 'completed',
    trigger: { type: 'error', executionId: failed.id, flowId: flow.id },
    input: { execution: { id: failed.id, flowId: flow.id, flowVersion: 1, status: 'failed', error: { code: failed.error.code }, finishedAt: String } },
    output: failed.error.code,
  });
  // Given time to start a second one, none did.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(more.length + (await errorRunsOf(failed.id, 2)).length, 1, 'started once');
});

t.test('a completed or cancelled run starts no error flow', async (t) => {
  const handler = await w.flow({ name: 'Handler', steps: [{ key: 'x', transform: 1 }] });
  const fine = await w.flow({ steps: [{ key: 'ok', transform: 1 }], onFailure: { flowId: handler.id } });
  const done = await w.run(fine.id);
  const sleeper = await w.flow({ steps: [{ key: 'nap', sleep: { ms: 60_000 } }], onFailure: { flowId: handler.id } });
  const id = (await w.send({ method: 'POST', url: `/flows/${sleeper.id}/executions`, payload: {} })).data.id;
  t.equal((await w.send({ method: 'POST', url: `/executions/${id}/cancel` })).statusCode, 200);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.same(await errorRunsOf(done.id, 0), []);
  t.same(await errorRunsOf(id, 0), []);
});

t.test('an error flow that fails starts no other, even when it names itself or one that names it', async (t) => {
  const failing = await w.action({ endpoint: '/status/500' });
  const handler = await w.flow({ name: 'Failing handler', steps: [{ key: 'boom', actionId: failing }] });
  // The handler names itself: its own failure must not start it again.
  t.equal((await w.send({ method: 'PUT', url: `/flows/${handler.id}`, payload: { onFailure: { flowId: handler.id } } })).statusCode, 200);
  const flow = await w.flow({ steps: [{ key: 'boom', actionId: failing }], onFailure: { flowId: handler.id } });
  const failed = await w.run(flow.id);
  const [errorRun] = await errorRunsOf(failed.id, 1);
  t.equal((await w.finished(errorRun.id)).status, 'failed');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.same(await errorRunsOf(errorRun.id, 0), [], 'the error run’s failure started nothing');
});

t.test('a failed sub-flow run under an error flow starts no error flow either', async (t) => {
  const failing = await w.action({ endpoint: '/status/500' });
  const handler = await w.flow({ name: 'Handler', steps: [{ key: 'x', transform: 1 }] });
  const child = await w.flow({ name: 'Child', steps: [{ key: 'boom', actionId: failing }], onFailure: { flowId: handler.id } });
  const errorFlow = await w.flow({ name: 'Calls a failing child', steps: [{ key: 'call', flow: { flowId: child.id } }] });
  const flow = await w.flow({ steps: [{ key: 'boom', actionId: failing }], onFailure: { flowId: errorFlow.id } });
  const failed = await w.run(flow.id);
  const [errorRun] = await errorRunsOf(failed.id, 1);
  const ended = await w.finished(errorRun.id);
  t.equal(ended.status, 'failed');
  const childId = ended.steps[0].childExecutionId;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.same(await errorRunsOf(childId, 0), [], 'the child under the error run started no error flow');
});

t.test('onFailure is versioned, checked, and cleared with null', async (t) => {
  const handler = await w.flow({ name: 'Handler', steps: [{ key: 'x', transform: 1 }] });
  const flow = await w.flow({ steps: [{ key: 'x', transform: 1 }] });
  t.equal((flow as { onFailure?: unknown }).onFailure, null);
  const other = await w.send({ method: 'POST', url: '/flows', payload: { name: 'F', onFailure: { flowId: '01a20ce7-af40-711d-ab0d-549b6f03675a' } } });
  t.equal(other.statusCode, 422);
  t.match(other.data, { errors: [{ pointer: '/onFailure/flowId', message: /names no flow of this organization/ }] });
  const bad = await w.send({ method: 'POST', url: '/flows', payload: { name: 'F', onFailure: { flowId: 'nope' } } });
  t.equal(bad.statusCode, 400);
  t.match(bad.data.errors, [{ pointer: '/onFailure/flowId' }]);
  const set = (await w.send({ method: 'PUT', url: `/flows/${flow.id}`, payload: { onFailure: { flowId: handler.id } } })).data;
  t.match(set, { version: 2, onFailure: { flowId: handler.id } });
  const cleared = (await w.send({ method: 'PUT', url: `/flows/${flow.id}`, payload: { onFailure: null } })).data;
  t.match(cleared, { version: 3, onFailure: null });
  const v2 = (await w.send({ method: 'GET', url: `/flows/${flow.id}/versions/2` })).data;
  t.match(v2, { onFailure: { flowId: handler.id } });
});
