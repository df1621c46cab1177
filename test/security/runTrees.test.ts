// Attacks on sub-flows' runs and signals by Globex, another organization with one API key of its
// own, against Acme's runs, and by a tenant against everyone through the runs its flows fan out to.
// Each attack, and what it must get:
// - reading Acme's parent or child run, listing Acme's children (`?parentId=`), their logs,
//   signalling, cancelling or retrying them: 404 (an empty list for the list), and Acme's runs go on
//   untouched: the child still waits, no signal is kept, nothing is cancelled or started;
// - a flow of Globex's whose sub-flow step (at the top, or nested in a loop) names Acme's flow:
//   422 naming the step's flowId, on create and on update; one stored all the same (written to the
//   database directly) fails its step `child-refused` and starts nothing of Acme's;
// - a loop that starts sub-flows' runs faster than workers take them: each start counts against
//   TOLSTOY_ORG_QUEUE_LIMIT while queued, and past it the step fails `child-refused` naming it;
// - a loop whose sub-flows' runs start a few at a time and then wait (each queued only a moment):
//   the queue's limit then bounds nothing, and one run's tree of runs, five deep and fifty wide at
//   each level, would reach 50^5 live runs. The runs of one tree (the root and every descendant) are
//   bounded by TOLSTOY_RUN_TREE_LIMIT; the step that would start one more fails `too-many-runs`.
import t from 'tap';
import { world } from '../engine/world.ts';
import { buildTestApp, call, createTenant, testAuth } from '../helper.ts';

const w = await world(t, {}, await buildTestApp(t, { worker: true }, undefined, testAuth('keys')));
const globex = await createTenant(w.app, 'Globex');
const asGlobex = (options: Parameters<typeof call>[2]) => call(w.app, globex, options);

async function until<T>(what: string, read: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what} never happened`);
}

t.test('Globex can neither read, list, signal, cancel nor retry Acme’s parent and child runs', async (t) => {
  const child = await w.flow({ name: 'Approval', steps: [{ key: 'approval', waitFor: { signal: 'go', timeoutMs: 600_000 } }] });
  const parent = await w.flow({ steps: [{ key: 'ask', flow: { flowId: child.id } }] });
  const parentId = (await w.send({ method: 'POST', url: `/flows/${parent.id}/executions`, payload: {} })).data.id;
  const childId = await until('the child’s start', async () => (await w.send({ method: 'GET', url: `/executions?parentId=${parentId}` })).data.items[0]?.id);
  await until('the child’s wait', async () => {
    const run = (await w.send({ method: 'GET', url: `/executions/${childId}` })).data;
    return run.steps[0]?.status === 'waiting' ? run : undefined;
  });

  for (const id of [parentId, childId]) {
    t.equal((await asGlobex({ method: 'GET', url: `/executions/${id}` })).statusCode, 404, `GET ${id}`);
    t.equal((await asGlobex({ method: 'POST', url: `/executions/${id}/cancel` })).statusCode, 404, `cancel ${id}`);
    t.equal((await asGlobex({ method: 'POST', url: `/executions/${id}/retry`, payload: { fromStep: 'ask' } })).statusCode, 404, `retry ${id}`);
    t.equal((await asGlobex({ method: 'POST', url: `/executions/${id}/signals/go`, payload: { payload: 'forged' } })).statusCode, 404, `signal ${id}`);
    t.same((await asGlobex({ method: 'GET', url: `/execution-logs?executionId=${id}` })).data.items, [], `logs of ${id}`);
  }
  const children = await asGlobex({ method: 'GET', url: `/executions?parentId=${parentId}` });
  t.equal(children.statusCode, 200);
  t.same(children.data.items, [], 'Acme’s children are not listed to Globex');

  const [kept] = await w.db.$queryRaw<{ count: number }[]>`SELECT count(*)::int AS count FROM execution_signals WHERE execution_id = ${childId}::uuid`;
  t.equal(kept!.count, 0, 'no signal was kept for Acme’s child');
  t.match(
    (await w.send({ method: 'GET', url: `/executions/${childId}` })).data,
    { status: 'running', steps: [{ status: 'waiting' }] },
    'the child still waits',
  );
  t.equal((await w.send({ method: 'GET', url: `/executions/${parentId}` })).data.status, 'running', 'the parent still runs');
  const [runs] = await w.db.$queryRaw<{ count: number }[]>`SELECT count(*)::int AS count FROM executions WHERE org_id = ${globex.orgId}::uuid`;
  t.equal(runs!.count, 0, 'no retry started for Globex');
  t.equal((await w.send({ method: 'POST', url: `/executions/${parentId}/cancel` })).statusCode, 200);
});

t.test('Globex cannot start Acme’s flow as a sub-flow', async (t) => {
  const acmeFlow = await w.flow({ name: 'Acme’s own', steps: [{ key: 'secret', transform: 'acme data' }] });
  const direct = { name: 'Borrow', steps: [{ key: 'borrow', flow: { flowId: acmeFlow.id } }] };
  const nested = { name: 'Borrow', steps: [{ key: 'each', forEach: { items: '[1]', steps: [{ key: 'borrow', flow: { flowId: acmeFlow.id } }] } }] };
  const created = await asGlobex({ method: 'POST', url: '/flows', payload: direct });
  t.equal(created.statusCode, 422);
  t.match(created.data.errors, [{ pointer: '/steps/0/flow/flowId', message: /no flow .* in this organization/ }]);
  const inLoop = await asGlobex({ method: 'POST', url: '/flows', payload: nested });
  t.equal(inLoop.statusCode, 422);
  t.match(inLoop.data.errors, [{ pointer: '/steps/0/forEach/steps/0/flow/flowId' }]);
  const own = await asGlobex({ method: 'POST', url: '/flows', payload: { name: 'Own', steps: [{ key: 'noop', transform: 1 }] } });
  const updated = await asGlobex({ method: 'PUT', url: `/flows/${own.data.id}`, payload: direct });
  t.equal(updated.statusCode, 422, 'an update is checked the same way');

  // Stored all the same, as if the check had been passed by.
  const stored = JSON.stringify([{ key: 'borrow', if: null, continueOnError: false, flow: { flowId: acmeFlow.id, version: null, input: {} } }]);
  await w.db.$executeRaw`UPDATE flow_versions SET steps = ${stored} WHERE org_id = ${globex.orgId}::uuid AND flow_id = ${own.data.id}::uuid`;
  const started = await asGlobex({ method: 'POST', url: `/flows/${own.data.id}/executions`, payload: {}, headers: { prefer: 'wait=30' } });
  t.match(started.data, { status: 'failed', steps: [{ status: 'failed', error: { code: 'child-refused', message: /not found|no flow/i } }] });
  const [runs] = await w.db.$queryRaw<{ count: number }[]>`SELECT count(*)::int AS count FROM executions WHERE flow_id = ${acmeFlow.id}::uuid`;
  t.equal(runs!.count, 0, 'no run of Acme’s flow started');
});

t.test('sub-flows’ runs started faster than they are taken count against the queue’s limit', async (t) => {
  // One slot for the organization, which the parent's turn holds: its children stay queued.
  const tight = await world(t, { orgQueueLimit: 5, orgConcurrency: 1 });
  const child = await tight.flow({ name: 'Child', steps: [{ key: 'one', transform: 1 }] });
  const parent = await tight.flow({
    steps: [{ key: 'each', forEach: { items: 'range(0, 30)', concurrency: 30, steps: [{ key: 'call', flow: { flowId: child.id }, continueOnError: true }] } }],
  });
  const done = await tight.run(parent.id);
  const refused = done.steps.filter((step: { error: { code: string } | null }) => step.error?.code === 'child-refused');
  t.ok(refused.length > 0, `${refused.length} of the 30 children were refused`);
  t.match(refused[0].error.message, /TOLSTOY_ORG_QUEUE_LIMIT/);
  const children = (await tight.send({ method: 'GET', url: `/executions?parentId=${done.id}&limit=100` })).data.items;
  t.equal(children.length + refused.length, 30, 'every child either started or was refused');
});

t.test('the runs of one tree of sub-flows are bounded, however slowly they start', async (t) => {
  // TOLSTOY_RUN_TREE_LIMIT: the runs of one tree, its root included.
  const fan = await world(t, { orgQueueLimit: 25, runTreeLimit: 50 });
  const child = await fan.flow({ name: 'Sleeper', steps: [{ key: 'nap', sleep: { ms: 600_000 } }] });
  // Each second, twenty more children start, and each is taken (and parks) before the next second.
  const root = await fan.flow({
    steps: [
      {
        key: 'wave',
        forEach: {
          items: 'range(0, 5)',
          concurrency: 5,
          steps: [
            { key: 'stagger', sleep: { until: "fromNow(str(item) + ' seconds')" } },
            { key: 'each', forEach: { items: 'range(0, 20)', concurrency: 20, steps: [{ key: 'call', flow: { flowId: child.id }, continueOnError: true }] } },
          ],
        },
      },
    ],
  });
  const rootId = (await fan.send({ method: 'POST', url: `/flows/${root.id}/executions`, payload: {} })).data.id;
  const settled = async () => {
    const [row] = await fan.db.$queryRaw<{ waiting: number; refused: number }[]>`
      SELECT count(*) FILTER (WHERE status = 'waiting')::int AS waiting, count(*) FILTER (WHERE status = 'failed')::int AS refused
      FROM execution_steps WHERE execution_id = ${rootId}::uuid AND kind = 'flow'`;
    return row!.waiting + row!.refused === 100 ? row : undefined;
  };
  const steps = await until('every sub-flow step’s start', settled);
  const [tree] = await fan.db.$queryRaw<{ runs: number; queued: number }[]>`
    SELECT count(*)::int AS runs, count(*) FILTER (WHERE status = 'queued')::int AS queued FROM executions WHERE parent_id = ${rootId}::uuid OR id = ${rootId}::uuid`;
  t.ok(tree!.runs <= 50, `the tree holds ${tree!.runs} runs (${tree!.queued} queued, the queue's limit 25); at most 50`);
  t.equal(steps.refused, 100 - (tree!.runs - 1), 'every sub-flow step past the bound failed');
  const failed = await fan.db.$queryRaw<{ error: string }[]>`
    SELECT error FROM execution_steps WHERE execution_id = ${rootId}::uuid AND kind = 'flow' AND status = 'failed' LIMIT 1`;
  t.match(JSON.parse(failed[0]?.error ?? '{}'), { code: 'too-many-runs', message: /TOLSTOY_RUN_TREE_LIMIT/ });
  await fan.send({ method: 'POST', url: `/executions/${rootId}/cancel` });
});
