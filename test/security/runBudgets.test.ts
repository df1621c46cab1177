// Attacks on an execution's budget (TOLSTOY_EXECUTION_BUDGET_BYTES) through what control flow
// stores besides step answers, and what each must get:
// - a loop whose items are large (a template may render up to TOLSTOY_TEMPLATE_RESULT_LIMIT_BYTES,
//   4 MiB, twice the default budget), nested in a loop so that each iteration stores them again: a
//   50 KB input became 2 MB of loop items under a 64 KiB budget, and a 1 MB input in 6,000
//   iterations would be 6 GB held in the worker (every loop's items are kept for its templates) and
//   loaded by GET /executions/{id}. The items are charged like an answer: the run fails
//   `budget-exceeded` at the loop that would go past the budget, and what it stored stays within it.
// - signals of 60 KB each (the payload limit is 64 KiB), taken by waitFor steps whose outputs no
//   later step keeps: the take completed the step outside the budget's count, so a run under a
//   64 KiB budget stored 1.2 MB of outputs (and as much again in its logs) and completed. A taken
//   payload is charged like an answer: the run fails `budget-exceeded` at the step that takes it past.
import t from 'tap';
import { world } from '../engine/world.ts';

const KiB = 1024;
const BUDGET = 64 * KiB;
const w = await world(t, { executionBudgetBytes: BUDGET });

/** Bytes an execution's step runs store (answers, outputs, what their kinds keep) and its logs. */
async function storedBy(executionId: string): Promise<{ steps: number; logs: number }> {
  const [steps] = await w.db.$queryRaw<{ bytes: number }[]>`
    SELECT COALESCE(sum(COALESCE(octet_length(response), 0) + COALESCE(octet_length(output), 0) + COALESCE(octet_length(state), 0)), 0)::float8 AS bytes
    FROM execution_steps WHERE execution_id = ${executionId}::uuid`;
  const [logs] = await w.db.$queryRaw<{ bytes: number }[]>`
    SELECT COALESCE(sum(octet_length(inputs) + COALESCE(octet_length(outputs), 0)), 0)::float8 AS bytes FROM execution_logs WHERE execution_id = ${executionId}`;
  return { steps: steps!.bytes, logs: logs!.bytes };
}

t.test('a loop’s items count against the budget', async (t) => {
  const flow = await w.flow({
    steps: [
      {
        key: 'outer',
        forEach: {
          items: 'range(0, 40)',
          concurrency: 5,
          steps: [{ key: 'inner', forEach: { items: '[input.pad]', steps: [{ key: 'tiny', transform: { $eval: 'index' } }] } }],
        },
      },
    ],
  });
  const done = await w.run(flow.id, { input: { pad: 'x'.repeat(50 * KiB) } });
  t.match(done, { status: 'failed', error: { code: 'budget-exceeded', message: /TOLSTOY_EXECUTION_BUDGET_BYTES/ } });
  const stored = await storedBy(done.id);
  t.ok(stored.steps <= BUDGET, `its step runs store ${stored.steps} bytes; the budget is ${BUDGET}`);
});

t.test('signals’ payloads taken by waitFor steps count against the budget', async (t) => {
  const flow = await w.flow({
    steps: [
      // The signals are all kept before the loop begins, so that one turn takes them all.
      { key: 'gate', sleep: { ms: 3000 } },
      {
        key: 'each',
        forEach: {
          items: 'range(0, 20)',
          concurrency: 20,
          steps: [
            { key: 'wait', waitFor: { signal: 'go' } },
            { key: 'forget', transform: null },
          ],
        },
      },
    ],
  });
  const id = (await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  for (let i = 0; i < 20; i++) {
    const sent = await w.send({ method: 'POST', url: `/executions/${id}/signals/go`, payload: { payload: 'y'.repeat(60 * KiB) } });
    t.equal(sent.statusCode, 202, `signal ${i} is kept`);
  }
  const done = await w.finished(id);
  t.match(done, { status: 'failed', error: { code: 'budget-exceeded', message: /TOLSTOY_EXECUTION_BUDGET_BYTES/ } });
  const stored = await storedBy(id);
  t.ok(stored.steps <= BUDGET, `its step runs store ${stored.steps} bytes; the budget is ${BUDGET}`);
  t.ok(stored.logs <= BUDGET, `its logs store ${stored.logs} bytes; the budget is ${BUDGET}`);
});
