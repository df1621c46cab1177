// Sub-flows: a step runs another flow as a child execution and waits for it without a worker; the
// child records its parent, the parent's cancel cancels it, and runs nest only so deep.
import t from 'tap';
import { world } from './world.ts';

const w = await world(t);

t.test('a sub-flow step starts the child, waits for it, and takes its output', async (t) => {
  const child = await w.flow({ name: 'Child', steps: [{ key: 'double', transform: { $eval: 'input.n * 2' } }] });
  const parent = await w.flow({
    steps: [
      { key: 'call', flow: { flowId: child.id, input: { n: { $eval: 'input.n' } } } },
      { key: 'plus', transform: { $eval: 'steps.call.output + 1' } },
    ],
  });
  const done = await w.run(parent.id, { input: { n: 20 } });
  t.match(done, { status: 'completed', output: 41, parent: null });
  const step = done.steps[0];
  t.match(step, { kind: 'flow', status: 'completed', output: 40, childExecutionId: String });
  const childRun = (await w.send({ method: 'GET', url: `/executions/${step.childExecutionId}` })).data;
  t.match(childRun, {
    status: 'completed',
    flowId: child.id,
    input: { n: 20 },
    parent: { executionId: done.id, step: 'call' },
    trigger: { type: 'flow', executionId: done.id, step: 'call' },
  });
  const children = (await w.send({ method: 'GET', url: `/executions?parentId=${done.id}` })).data;
  t.same(
    children.items.map((item: { id: string }) => item.id),
    [step.childExecutionId],
  );
});

t.test('a child’s failure fails its step (continueOnError applies); a missing flow fails it too', async (t) => {
  const failing = await w.action({ endpoint: '/status/500' });
  const child = await w.flow({ name: 'Failing child', steps: [{ key: 'boom', actionId: failing }] });
  const parent = await w.flow({
    steps: [
      { key: 'call', flow: { flowId: child.id }, continueOnError: true },
      { key: 'after', transform: { $eval: 'steps.call.status' } },
    ],
  });
  const done = await w.run(parent.id);
  t.match(done, {
    status: 'completed',
    output: 'failed',
    steps: [{ status: 'failed', error: { code: 'child-failed', message: /Its sub-flow's run .* failed: Step boom failed/ } }, {}],
  });
  const gone = await w.flow({ name: 'Gone', steps: [{ key: 'x', transform: 1 }] });
  const caller = await w.flow({ steps: [{ key: 'call', flow: { flowId: gone.id, version: 9 } }] });
  const refused = await w.run(caller.id);
  t.match(refused, { status: 'failed', steps: [{ status: 'failed', error: { code: 'child-refused', message: /has no version 9/ } }] });
});

t.test('cancelling the parent cancels its children and theirs', async (t) => {
  const grandchild = await w.flow({ name: 'Grandchild', steps: [{ key: 'nap', sleep: { ms: 60_000 } }] });
  const child = await w.flow({ name: 'Child', steps: [{ key: 'deeper', flow: { flowId: grandchild.id } }] });
  const parent = await w.flow({ steps: [{ key: 'call', flow: { flowId: child.id } }] });
  const id = (await w.send({ method: 'POST', url: `/flows/${parent.id}/executions`, payload: {} })).data.id;
  let grandchildId: string | undefined;
  for (let i = 0; i < 200 && !grandchildId; i++) {
    const children = (await w.send({ method: 'GET', url: `/executions?parentId=${id}` })).data.items;
    const grandchildren = children.length > 0 ? (await w.send({ method: 'GET', url: `/executions?parentId=${children[0].id}` })).data.items : [];
    grandchildId = grandchildren[0]?.id;
    if (!grandchildId) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  t.ok(grandchildId, 'the grandchild started');
  t.equal((await w.send({ method: 'POST', url: `/executions/${id}/cancel` })).statusCode, 200);
  const gone = (await w.send({ method: 'GET', url: `/executions/${grandchildId}` })).data;
  t.match(gone, {
    status: 'cancelled',
    error: { code: 'cancelled', message: new RegExp(`Cancelled with its parent execution ${id}`) },
    steps: [{ status: 'cancelled' }],
  });
});

t.test('cancelling a child alone fails the parent’s step', async (t) => {
  const child = await w.flow({ name: 'Sleeper', steps: [{ key: 'nap', sleep: { ms: 60_000 } }] });
  const parent = await w.flow({ steps: [{ key: 'call', flow: { flowId: child.id } }] });
  const id = (await w.send({ method: 'POST', url: `/flows/${parent.id}/executions`, payload: {} })).data.id;
  let childId: string | undefined;
  for (let i = 0; i < 200 && !childId; i++) {
    childId = (await w.send({ method: 'GET', url: `/executions?parentId=${id}` })).data.items[0]?.id;
    if (!childId) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await w.send({ method: 'POST', url: `/executions/${childId}/cancel` });
  const done = await w.finished(id);
  t.match(done, { status: 'failed', steps: [{ status: 'failed', error: { code: 'child-cancelled' } }] });
});

t.test('a flow that calls itself stops at the depth limit, with a message that says why', async (t) => {
  const flow = await w.flow({ name: 'Recursive', steps: [{ key: 'noop', transform: 1 }] });
  const updated = await w.send({
    method: 'PUT',
    url: `/flows/${flow.id}`,
    payload: { name: 'Recursive', steps: [{ key: 'self', flow: { flowId: flow.id, input: { depth: { $eval: 'input.depth + 1' } } } }] },
  });
  t.equal(updated.statusCode, 200, updated.body);
  const done = await w.run(flow.id, { input: { depth: 0 } });
  t.equal(done.status, 'failed');
  let deepest = done;
  for (let depth = 0; depth < 10; depth++) {
    const children = (await w.send({ method: 'GET', url: `/executions?parentId=${deepest.id}` })).data.items;
    if (children.length === 0) break;
    deepest = (await w.send({ method: 'GET', url: `/executions/${children[0].id}` })).data;
  }
  t.match(deepest, {
    input: { depth: 5 },
    parent: { step: 'self' },
    steps: [{ status: 'failed', error: { code: 'too-deep', message: /runs nest at most 5 deep/ } }],
  });
  t.match(done.error, { message: /Its sub-flow's run .* failed/ });
});
