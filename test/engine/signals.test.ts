// waitFor and signals: a signal sent before the step waits is kept and taken in order, one sent
// during the wait resumes it, a timeout fails it; finished runs take none; the same key sends once.
import t from 'tap';
import { world } from './world.ts';

const w = await world(t);
const signal = (executionId: string, name: string, payload?: unknown, headers: Record<string, string> = {}) =>
  w.send({ method: 'POST', url: `/executions/${executionId}/signals/${name}`, payload: payload === undefined ? {} : { payload }, headers });
const start = async (flowId: string, input: Record<string, unknown> = {}) =>
  (await w.send({ method: 'POST', url: `/flows/${flowId}/executions`, payload: { input } })).data.id as string;

async function waitingOn(executionId: string, path: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const execution = (await w.send({ method: 'GET', url: `/executions/${executionId}` })).data;
    if (execution.steps.some((step: { path: string; status: string }) => step.path === path && step.status === 'waiting')) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${path} never waited`);
}

t.test('a signal sent during the wait resumes the step, its payload the output', async (t) => {
  const flow = await w.flow({
    steps: [
      { key: 'approval', waitFor: { signal: 'approve', timeoutMs: 30_000 } },
      { key: 'after', transform: { $eval: 'steps.approval.output.by' } },
    ],
  });
  const id = await start(flow.id);
  await waitingOn(id, 'approval');
  const sent = await signal(id, 'approve', { by: 'ada' });
  t.equal(sent.statusCode, 202);
  t.match(sent.data, { id: String, executionId: id, name: 'approve', payload: { by: 'ada' }, takenBy: null, createdAt: String });
  const done = await w.finished(id);
  t.match(done, { status: 'completed', output: 'ada', steps: [{ kind: 'waitFor', status: 'completed', output: { by: 'ada' } }, {}] });
});

t.test('signals sent before the step waits are kept, and taken one per step in the order sent', async (t) => {
  const flow = await w.flow({
    steps: [
      { key: 'gate', sleep: { ms: 300 } },
      { key: 'first', waitFor: { signal: 'go' } },
      { key: 'second', waitFor: { signal: 'go' } },
      { key: 'both', transform: [{ $eval: 'steps.first.output' }, { $eval: 'steps.second.output' }] },
    ],
  });
  const id = await start(flow.id);
  t.equal((await signal(id, 'go', 1)).statusCode, 202);
  t.equal((await signal(id, 'go', 2)).statusCode, 202);
  t.equal((await signal(id, 'other', 3)).statusCode, 202, 'a signal no step waits for is kept all the same');
  const done = await w.finished(id);
  t.match(done, { status: 'completed', output: [1, 2] });
});

t.test('signals sent at once to many waiting steps: each step takes exactly one', async (t) => {
  const flow = await w.flow({
    steps: [{ key: 'each', forEach: { items: 'range(0, 6)', concurrency: 6, steps: [{ key: 'wait', waitFor: { signal: 'tick' } }] } }],
  });
  const id = await start(flow.id);
  for (let index = 0; index < 6; index++) await waitingOn(id, `each[${index}].wait`);
  const sent = await Promise.all(Array.from({ length: 6 }, (_, n) => signal(id, 'tick', n)));
  t.same(
    sent.map((answer) => answer.statusCode),
    Array(6).fill(202),
  );
  const done = await w.finished(id);
  t.equal(done.status, 'completed');
  t.same([...done.output].sort(), [0, 1, 2, 3, 4, 5], 'every signal taken once, by one step');
});

t.test('a wait that times out fails its step; continueOnError goes on', async (t) => {
  const flow = await w.flow({
    steps: [
      { key: 'late', waitFor: { signal: 'never', timeoutMs: 300 }, continueOnError: true },
      { key: 'after', transform: { $eval: 'steps.late.status' } },
      { key: 'strict', waitFor: { signal: 'never', timeoutMs: 200 } },
    ],
  });
  const done = await w.finished(await start(flow.id));
  t.match(done, {
    status: 'failed',
    error: { step: 'strict' },
    steps: [
      { status: 'failed', error: { code: 'timeout', message: 'No signal "never" came within 300 ms.' } },
      { status: 'completed', output: 'failed' },
      { status: 'failed' },
    ],
  });
});

t.test('a finished execution takes no signal (409); an unknown one answers 404; bad names and payloads 400/422', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'x', transform: 1 }] });
  const done = await w.run(flow.id);
  const late = await signal(done.id, 'approve', true);
  t.equal(late.statusCode, 409);
  t.match(late.json(), { type: /conflict/, detail: /is completed; only a queued or running execution takes signals/ });
  t.equal((await signal('01a24a6b-42f5-70a7-9f5a-1730f92ca60a', 'approve')).statusCode, 404);
  t.equal((await signal(done.id, 'not a name')).statusCode, 400);
  const big = await signal(done.id, 'big', 'x'.repeat(70_000));
  t.equal(big.statusCode, 422);
  t.match(big.json(), { errors: [{ pointer: '/payload' }] });
});

t.test('Idempotency-Key: a retried signal is kept once and answers the first signal again', async (t) => {
  const flow = await w.flow({
    steps: [
      { key: 'one', waitFor: { signal: 'once' } },
      { key: 'two', waitFor: { signal: 'once', timeoutMs: 500 }, continueOnError: true },
    ],
  });
  const id = await start(flow.id);
  const first = await signal(id, 'once', 'a', { 'idempotency-key': 'signal-1' });
  const again = await signal(id, 'once', 'a', { 'idempotency-key': 'signal-1' });
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.data.id, first.data.id);
  const done = await w.finished(id);
  t.match(
    done,
    {
      status: 'completed',
      steps: [
        { status: 'completed', output: 'a' },
        { status: 'failed', error: { code: 'timeout' } },
      ],
    },
    'the second step got no copy',
  );
});

t.test('a run holding 1,000 signals not taken refuses more', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'wait', sleep: { ms: 60_000 } }] });
  const id = await start(flow.id);
  await w.db.$executeRaw`
    INSERT INTO execution_signals (id, org_id, execution_id, name, payload)
    SELECT gen_random_uuid(), org_id, id, 'flood', 'null' FROM executions, generate_series(1, 1000) WHERE id = ${id}::uuid`;
  const refused = await signal(id, 'flood', 1);
  t.equal(refused.statusCode, 409);
  t.match(refused.json(), { detail: /holds 1000 signals that no step has taken/ });
  await w.send({ method: 'POST', url: `/executions/${id}/cancel` });
});
