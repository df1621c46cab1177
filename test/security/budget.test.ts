// Attacks on what one execution may consume, and what each must get:
// - a flow of many steps that each answer about 1 MiB, to hold and store without end: the run
//   fails `budget-exceeded` at the step that would take it past TOLSTOY_EXECUTION_BUDGET_BYTES,
//   naming the setting; what it stored stays within the budget, and the worker goes on.
// - the same against a real worker process with the production heap cap (256 MB), several runs
//   at once: every run fails cleanly, the process survives, and its peak RSS is reported.
// - an output template that stores more than the budget leaves: the run fails `budget-exceeded`.
// - a run failed for its budget, retried again and again: each retry reuses the answers of the
//   steps before, so without counting them each retry would hold one budget more than the last,
//   without end. What a retry reuses counts against its budget: it fails at the same step.
// - steps whose failures quote megabytes (a template error quotes the value it could not use,
//   an endpoint that leaves its base URL is quoted with its inputs): each failure's message is
//   stored cut to 1000 characters, saying how long it was, so that errors do not store what the
//   budget would refuse.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { world } from '../engine/world.ts';
import { buildTestApp, freshDatabaseUrl } from '../helper.ts';
import { startWorker } from '../process.ts';

const MiB = 1024 * 1024;
// Made here, not in a subtest: the test PostgreSQL of a file run alone lives as long as what made it first.
const processesDatabase = await freshDatabaseUrl(t);

t.test('a run that would store more than its budget fails at the step that goes past it', async (t) => {
  const w = await world(t, { executionBudgetBytes: 4 * MiB });
  const huge = await w.action({ method: 'GET', endpoint: '/huge/900000' });
  const steps = Array.from({ length: 10 }, (_, i) => ({ key: `s${i}`, actionId: huge }));
  const flow = await w.flow({ steps });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'failed');
  t.match(execution.error, { code: 'budget-exceeded', step: 's4', message: /TOLSTOY_EXECUTION_BUDGET_BYTES/ });
  t.same(
    execution.steps.map((step: { status: string }) => step.status),
    ['completed', 'completed', 'completed', 'completed', 'failed', 'not_run', 'not_run', 'not_run', 'not_run', 'not_run'],
  );
  t.equal(execution.steps[4].response, null, 'the answer past the budget is not stored');
  const [stored] = await w.db.$queryRaw<{ bytes: number }[]>`
    SELECT sum(octet_length(inputs) + COALESCE(octet_length(outputs), 0))::float8 AS bytes FROM execution_logs WHERE execution_id = ${execution.id}`;
  t.ok(stored!.bytes <= 4 * MiB, `the logs keep ${stored!.bytes} bytes, within the budget`);

  const echo = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
  t.equal((await w.run(echo.id)).status, 'completed', 'the worker goes on with other runs');
});

t.test('an output that would go past the budget fails the run', async (t) => {
  const w = await world(t, { executionBudgetBytes: 2 * MiB });
  const huge = await w.action({ method: 'GET', endpoint: '/huge/700000' });
  const flow = await w.flow({
    steps: [{ key: 'big', actionId: huge }],
    output: { one: { $eval: 'steps.big.output' }, two: { $eval: 'steps.big.output' } },
  });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'failed');
  t.match(execution.error, { code: 'budget-exceeded', message: /The output .*TOLSTOY_EXECUTION_BUDGET_BYTES/ });
  t.equal(execution.output, null);
});

t.test('retrying a run that went past its budget does not hold more than the budget', async (t) => {
  const w = await world(t, { executionBudgetBytes: MiB });
  const big = await w.action({ method: 'GET', endpoint: '/huge/400000' });
  const flow = await w.flow({ steps: Array.from({ length: 8 }, (_, i) => ({ key: `s${i}`, actionId: big })) });
  let execution = await w.run(flow.id);
  t.match(execution.error, { code: 'budget-exceeded', step: 's2' });
  for (let retry = 1; retry <= 3; retry++) {
    const retried = await w.send({ method: 'POST', url: `/executions/${execution.id}/retry` });
    t.equal(retried.statusCode, 202);
    execution = await w.finished(retried.data.id);
    t.equal(execution.status, 'failed');
    t.match(execution.error, { code: 'budget-exceeded', step: 's2' }, `retry ${retry} fails at the same step`);
    const held = execution.steps.reduce((sum: number, step: { response: unknown }) => sum + JSON.stringify(step.response).length, 0);
    t.ok(held <= MiB, `retry ${retry} holds ${held} bytes of answers, within the budget`);
  }
});

t.test('failures that quote megabytes are stored cut short', async (t) => {
  const w = await world(t, { executionBudgetBytes: MiB });
  const echo = await w.action();
  const steps = Array.from({ length: 5 }, (_, i) => ({ key: `s${i}`, actionId: echo, continueOnError: true, inputs: { x: { $eval: 'fromNow(input.k)' } } }));
  const flow = await w.flow({ steps });
  const execution = await w.run(flow.id, { input: { k: 'x'.repeat(900_000) } });
  t.equal(execution.status, 'completed');
  for (const step of execution.steps) {
    t.match(step.error, { code: 'template-error', message: /… \(\d+ characters in all\)$/ });
    t.ok(step.error.message.length <= 1100, `${step.key}'s error message holds ${step.error.message.length} characters`);
  }
  const [stored] = await w.db.$queryRaw<{ bytes: number }[]>`
    SELECT sum(COALESCE(octet_length(error), 0))::float8 AS bytes FROM execution_logs WHERE execution_id = ${execution.id}`;
  t.ok(stored!.bytes < 10_000, `the logs keep ${stored!.bytes} bytes of errors`);
});

/** Peak resident memory of a process, in MB, from /proc (VmHWM). */
function peakRssMb(pid: number): number {
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return Math.round(kb / 1024);
}

t.test('a worker process with a 256 MB heap survives runs of 100 steps of 1 MB each, one and then ten at once', async (t) => {
  const app = await buildTestApp(t, { worker: false }, processesDatabase);
  const w = await world(t, {}, app);
  const worker = await startWorker({ DATABASE_URL: processesDatabase, NODE_OPTIONS: '--max-old-space-size=256' });
  t.teardown(() => worker.process.kill('SIGKILL'));
  t.comment(`peak RSS of the worker process at rest: ${peakRssMb(worker.process.pid!)} MB`);
  const huge = await w.action({ method: 'GET', endpoint: '/huge/1000000' });
  // Retried: the target shares this busy process, and may drop a connection now and then.
  const retry = { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 100 };
  const flow = await w.flow({ steps: Array.from({ length: 100 }, (_, i) => ({ key: `s${i}`, actionId: huge, retry })) });
  const runAll = async (count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push((await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id);
    // Polled in the database: polling GET /executions/{id}, megabytes each, would load this process more than the worker.
    const deadline = Date.now() + 90_000;
    while ((await app.db.execution.count({ where: { id: { in: ids }, status: { in: ['queued', 'running'] } } })) > 0) {
      if (Date.now() > deadline) throw new Error('the runs did not finish within 90 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    for (const row of await app.db.execution.findMany({ where: { id: { in: ids } }, select: { id: true, status: true, error: true } })) {
      t.match(row, { status: 'failed', error: /"code":"budget-exceeded".*TOLSTOY_EXECUTION_BUDGET_BYTES/ }, `run ${row.id} failed cleanly`);
    }
    return ids;
  };
  const [one] = await runAll(1);
  t.comment(`peak RSS of the worker process with one such run: ${peakRssMb(worker.process.pid!)} MB`);
  await runAll(10);
  t.comment(`peak RSS of the worker process with ten such runs at once: ${peakRssMb(worker.process.pid!)} MB`);
  t.equal(worker.process.exitCode, null, 'the worker is still running');
  const echo = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
  t.equal((await w.run(echo.id)).status, 'completed', 'and runs the next flow');
  const answer = await w.send({ method: 'GET', url: `/executions/${one}` });
  t.comment(`GET /executions/{id} of one of them answers ${answer.body.length} bytes`);
});
