// Attacks through JSON-e templates, which tenants write and the worker evaluates. Each reads the
// run's input, so that it passes the flow's save and strikes at run time. Each must fail its own
// step (or, the output template, its own execution) with `template-limit` and a message naming
// the setting, while the API keeps answering and another tenant's run completes:
//   - nested `$reduce` over `range(0, input.n)`: a million interpreter rounds, ~10 s unbounded
//     -> template-limit at TOLSTOY_TEMPLATE_TIMEOUT_MS;
//   - `range(0, input.n)` with n = 150,000,000: gigabytes -> template-limit at
//     TOLSTOY_EVALUATOR_MEMORY_MB, the evaluator process replaced, the worker alive;
//   - a condition (`if`) that allocates the same -> the step fails, it is not skipped or run;
//   - an output template that loops -> the execution fails with template-limit;
//   - a template rendering megabytes of JSON -> template-limit at TOLSTOY_TEMPLATE_RESULT_LIMIT_BYTES,
//     nothing stored or sent.
//   - every step of one organization's runs running to the deadline, to hold every evaluator
//     process -> another organization's steps do not wait for those deadlines: its run of five
//     steps completes before the first of them passes (one organization holds every process but one).
// The /health latency and the process's memory while they run are logged (not asserted).
import t from 'tap';
import { EVALUATION } from '../../src/config/settings.ts';
import { world } from '../engine/world.ts';
import { call, createTenant } from '../helper.ts';
import { described, watchHealth } from './health.ts';

const w = await world(t);
// A deadline well longer than a few steps take on a busy machine, so that "before the deadline" says "without waiting for it".
const patient = await world(t, { evaluation: { ...EVALUATION, templateTimeoutMs: 3000 } });

const nestedReduce = {
  $reduce: { $eval: 'range(0, input.n)' },
  initial: 0,
  'each(a, x)': { $reduce: { $eval: 'range(0, input.n)' }, initial: 0, 'each(b, y)': { $eval: 'b + 1' } },
};

async function attack(body: Record<string, unknown>, input: Record<string, unknown>) {
  const flow = await w.flow(body);
  // Prefer: wait rather than polling, so that the figures are the server's, not the test's reading.
  const started = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: { input }, headers: { prefer: 'wait=30' } });
  return started.data;
}

/** A run of an ordinary flow of another organization, started while the attacks run. */
async function bystander() {
  const other = await createTenant(w.app, 'Bystander');
  const send = (options: Parameters<typeof call>[2]) => call(w.app, other, options);
  const tool = await send({ method: 'POST', url: '/tools', payload: { name: 'Target', baseUrl: w.target.url } });
  const action = await send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'Echo', key: 'echo', method: 'POST', endpoint: '/echo/bystander' },
  });
  const flow = await send({
    method: 'POST',
    url: '/flows',
    payload: { name: 'Ordinary', steps: [{ key: 'a', actionId: action.data.id, inputs: { v: { $eval: 'input.v' } } }] },
  });
  const started = await send({ method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: { input: { v: 1 } }, headers: { prefer: 'wait=30' } });
  return started.data;
}

t.test('templates that loop or allocate fail their step; the API and other runs go on', async (t) => {
  const echo = await w.action();
  const idle = watchHealth(w.app);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.comment(`before the attacks: ${described(await idle())}`);
  const stop = watchHealth(w.app);
  const began = Date.now();
  const [reduced, allocated, condition, output, huge, other] = await Promise.all([
    attack({ steps: [{ key: 'loop', actionId: echo, inputs: { x: nestedReduce } }] }, { n: 1000 }),
    attack({ steps: [{ key: 'alloc', actionId: echo, inputs: { x: { $eval: 'range(0, input.n)' } } }] }, { n: 150_000_000 }),
    attack({ steps: [{ key: 'cond', actionId: echo, if: 'len(range(0, input.n)) > 0', inputs: {} }] }, { n: 150_000_000 }),
    attack({ steps: [{ key: 'a', actionId: echo, inputs: {} }], output: nestedReduce }, { n: 1000 }),
    attack({ steps: [{ key: 'big', actionId: echo, inputs: { x: { $eval: 'range(0, input.n)' } } }] }, { n: 1_000_000 }),
    bystander(),
  ]);
  const health = await stop();
  t.comment(`five template attacks at once, all settled in ${Date.now() - began} ms: ${described(health)}`);

  t.match(reduced, { status: 'failed', error: { code: 'step-failed', step: 'loop' } });
  t.match(reduced.steps[0], {
    status: 'failed',
    request: null,
    error: { code: 'template-limit', message: 'inputs: evaluating the template took longer than TOLSTOY_TEMPLATE_TIMEOUT_MS (1000 ms)' },
  });
  // Whichever bound it reaches first: on a busy machine, collecting a full heap takes a while.
  const exhausted = /evaluating the template (needed more memory than TOLSTOY_EVALUATOR_MEMORY_MB \(128 MB\)|took longer than TOLSTOY_TEMPLATE_TIMEOUT_MS)/;
  t.match(allocated.steps[0], { status: 'failed', error: { code: 'template-limit', message: exhausted } });
  t.match(allocated.steps[0].error.message, /^inputs: /);
  t.match(condition.steps[0], { status: 'failed', request: null, error: { code: 'template-limit', message: exhausted } });
  t.match(condition.steps[0].error.message, /^if: /);
  t.match(output, {
    status: 'failed',
    error: { code: 'template-limit', message: /^output: evaluating the template took longer than TOLSTOY_TEMPLATE_TIMEOUT_MS/ },
  });
  t.match(output.steps[0], { status: 'completed' });
  t.match(huge.steps[0], {
    status: 'failed',
    request: null,
    error: { code: 'template-limit', message: 'inputs: the template renders more than TOLSTOY_TEMPLATE_RESULT_LIMIT_BYTES (4194304 bytes of JSON)' },
  });
  for (const execution of [reduced, allocated, condition, huge]) {
    t.equal(w.target.received.filter((r) => r.headers['idempotency-key']?.startsWith(execution.id)).length, 0, 'the failed step called nothing');
  }
  t.match(other, { status: 'completed', output: { body: { v: 1 } } }, "another organization's run completed");
});

t.test('after the attacks, the same worker runs templates as before', async (t) => {
  const echo = await w.action();
  const flow = await w.flow({ steps: [{ key: 'a', actionId: echo, if: 'input.n > 1', inputs: { n: { $eval: 'input.n * 2' } } }] });
  const execution = await w.run(flow.id, { input: { n: 2 } });
  t.match(execution, { status: 'completed', steps: [{ status: 'completed', request: { body: { n: 4 } } }] });
});

t.test("an organization whose every template runs to the deadline does not make another's steps wait for it", async (t) => {
  const echo = await patient.action();
  const hostile = await patient.flow({ steps: ['a', 'b'].map((key) => ({ key, actionId: echo, continueOnError: true, inputs: { x: nestedReduce } })) });
  const runs: string[] = [];
  for (let i = 0; i < 2; i++) {
    runs.push((await patient.send({ method: 'POST', url: `/flows/${hostile.id}/executions`, payload: { input: { n: 1000 } } })).data.id);
  }
  // Both runs are evaluating their first step.
  while ((await patient.db.execution.count({ where: { id: { in: runs }, status: 'running' } })) < runs.length) await new Promise((r) => setTimeout(r, 20));

  const other = await createTenant(patient.app, 'Bystander');
  const send = (options: Parameters<typeof call>[2]) => call(patient.app, other, options);
  const tool = await send({ method: 'POST', url: '/tools', payload: { name: 'Target', baseUrl: patient.target.url } });
  const action = await send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'Echo', key: 'echo', method: 'POST', endpoint: '/echo/b' },
  });
  const steps = Array.from({ length: 5 }, (_, i) => ({ key: `s${i}`, actionId: action.data.id, inputs: { v: { $eval: 'input.v' } } }));
  const flow = await send({ method: 'POST', url: '/flows', payload: { name: 'Ordinary', steps } });
  const began = Date.now();
  const run = await send({ method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: { input: { v: 1 } }, headers: { prefer: 'wait=30' } });
  const failedMeanwhile = await patient.db.executionStep.count({ where: { executionId: { in: runs }, status: 'failed' } });
  t.comment(`the other organization's run of five steps took ${Date.now() - began} ms while every step of the first ran to its 3 s deadline`);
  t.equal(run.data.status, 'completed');
  t.equal(failedMeanwhile, 0, "it completed before the first organization's first step reached its deadline");
  for (const id of runs) await patient.send({ method: 'POST', url: `/executions/${id}/cancel` });
});
