// Per-flow concurrency with keys (src/engine/runs/slots.ts), counted at a real target: at most
// `limit` runs of a flow hold a slot at once per key value; the others wait `queued`, in the
// order they were created, holding no worker; other keys go on meanwhile.
import t from 'tap';
import { buildTestApp, call, freshDatabaseUrl, testEngine } from '../helper.ts';
import { peakInFlight, type Received } from './target.ts';
import { type World, world } from './world.ts';

const MERGE_PATCH = { 'content-type': 'application/merge-patch+json' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A flow whose one step calls the target's `/slow/<ms>/<name>` with the run's input. */
async function slowFlow(w: World, name: string, ms: number, concurrency: unknown): Promise<string> {
  const actionId = await w.action({ endpoint: `/slow/${ms}/${name}` });
  const flow = await w.flow({ steps: [{ key: 'call', actionId, inputs: { $eval: 'input' } }], concurrency });
  return flow.id;
}

async function start(w: World, flowId: string, input: Record<string, unknown>): Promise<string> {
  const started = await w.send({ method: 'POST', url: `/flows/${flowId}/executions`, payload: { input } });
  if (started.statusCode !== 202) throw new Error(`starting a run failed: ${started.body}`);
  return started.data.id;
}

function callsOf(w: World, name: string): Received[] {
  return w.target.received.filter((entry) => entry.path.endsWith(`/${name}`));
}

t.test('limit 2 per customer: never more than 2 in flight per key, other keys unaffected, each key in creation order', async (t) => {
  const w = await world(t, { concurrency: 10, orgConcurrency: 10 });
  const flowId = await slowFlow(w, 'keyed', 300, { limit: 2, key: 'input.customer' });
  const ids: { customer: string; id: string }[] = [];
  for (const customer of ['A', 'B']) for (let n = 0; n < 10; n++) ids.push({ customer, id: await start(w, flowId, { customer, n }) });

  const runs = await Promise.all(ids.map(({ id }) => w.finished(id, 60_000)));
  t.same(
    runs.map((run) => (run.status === 'completed' ? run.status : `${run.status}: ${JSON.stringify(run.error)}`)),
    ids.map(() => 'completed'),
    'every run completes',
  );
  const calls = callsOf(w, 'keyed');
  t.equal(calls.length, 20, 'each run called the target once');
  for (const customer of ['A', 'B']) {
    const mine = calls.filter((entry) => (entry.body as { customer: string }).customer === customer);
    t.equal(peakInFlight(mine), 2, `customer ${customer}: 2 in flight at most, and 2 at times`);
    const started = runs.filter((run) => run.input.customer === customer).map((run) => Date.parse(run.startedAt));
    t.same(
      started,
      [...started].sort((a, b) => a - b),
      `customer ${customer}: its runs took their slots in the order they were created`,
    );
    t.same(
      runs.filter((run) => run.input.customer === customer).map((run) => run.concurrencyKey),
      Array(10).fill(JSON.stringify(customer)),
      'each run shows its key',
    );
  }
  t.ok(peakInFlight(calls) > 2, `the two customers' runs were in flight together (peak ${peakInFlight(calls)})`);
  const firstOfB = Math.min(...calls.filter((entry) => (entry.body as { customer: string }).customer === 'B').map((entry) => entry.at));
  const lastOfA = Math.max(...calls.filter((entry) => (entry.body as { customer: string }).customer === 'A').map((entry) => entry.at));
  t.ok(firstOfB < lastOfA, "B's runs, created after A's, did not wait for A's to end");
});

t.test('without a key the limit holds per flow; a waiting run is queued and holds no worker', async (t) => {
  const w = await world(t, { concurrency: 2, orgConcurrency: 2 });
  const flowId = await slowFlow(w, 'whole', 1500, { limit: 1 });
  const other = await slowFlow(w, 'other', 10, null);
  const first = await start(w, flowId, { n: 0 });
  const rest = [];
  for (let n = 1; n < 4; n++) rest.push(await start(w, flowId, { n }));
  while (callsOf(w, 'whole').length === 0) await sleep(20);

  const waiting = await w.send({ method: 'GET', url: `/executions/${rest[0]}` });
  t.match(waiting.data, { status: 'queued', concurrencyKey: '', startedAt: null }, 'a run waiting for a slot is queued');
  // Two worker slots: one holds the first run; the runs waiting for the flow's slot hold none.
  const unrelated = await w.run(other, { input: {} });
  t.equal(unrelated.status, 'completed', 'a run of another flow completes meanwhile');
  t.equal(callsOf(w, 'whole').length, 1, 'while the first run holds the slot, no other started');

  const runs = await Promise.all([first, ...rest].map((id) => w.finished(id, 30_000)));
  t.same(
    runs.map((run) => run.status),
    ['completed', 'completed', 'completed', 'completed'],
  );
  t.equal(peakInFlight(callsOf(w, 'whole')), 1, 'one in flight at a time');
});

t.test('a run parked on a sleep is running and keeps its slot', async (t) => {
  const w = await world(t);
  const actionId = await w.action({ endpoint: '/echo/after-nap' });
  const flow = await w.flow({
    steps: [
      { key: 'nap', sleep: { ms: 1500 } },
      { key: 'call', actionId },
    ],
    concurrency: { limit: 1 },
  });
  const sleeper = await start(w, flow.id, {});
  const next = await start(w, flow.id, {});
  await sleep(700);
  const parked = (await w.send({ method: 'GET', url: `/executions/${sleeper}` })).data;
  t.match(parked, { status: 'running', steps: [{ key: 'nap', status: 'waiting' }] }, 'the first run is parked, running');
  t.equal((await w.send({ method: 'GET', url: `/executions/${next}` })).data.status, 'queued', 'the next one waits for its slot meanwhile');
  const [first, second] = [await w.finished(sleeper), await w.finished(next)];
  t.same([first.status, second.status], ['completed', 'completed']);
  t.ok(Date.parse(second.startedAt) >= Date.parse(first.finishedAt), 'the second started once the first ended');
});

t.test('a cancelled waiting run wakes nobody; the next waiting one starts when the holder ends', async (t) => {
  const w = await world(t);
  const flowId = await slowFlow(w, 'cancel', 1500, { limit: 1, key: 'input.k' });
  const holder = await start(w, flowId, { k: 1 });
  const second = await start(w, flowId, { k: 1 });
  const third = await start(w, flowId, { k: 1 });
  while (callsOf(w, 'cancel').length === 0) await sleep(20);
  const cancelled = await w.send({ method: 'POST', url: `/executions/${second}/cancel` });
  t.ok(cancelled.statusCode < 300, 'a run waiting for a slot can be cancelled');
  await sleep(300);
  t.equal((await w.send({ method: 'GET', url: `/executions/${third}` })).data.status, 'queued', 'the next one still waits: the slot is held');
  t.equal(callsOf(w, 'cancel').length, 1);
  t.equal((await w.finished(holder)).status, 'completed');
  t.equal((await w.finished(third)).status, 'completed', 'the next waiting run starts when the holder ends');
  t.equal((await w.finished(second)).status, 'cancelled');
  t.equal(callsOf(w, 'cancel').length, 2, 'the cancelled run never called');
});

t.test('cancelling the holder frees its slot at once', async (t) => {
  const w = await world(t);
  const flowId = await slowFlow(w, 'holder', 20_000, { limit: 1 });
  const quick = await slowFlow(w, 'quick', 10, null);
  const holder = await start(w, flowId, {});
  while (callsOf(w, 'holder').length === 0) await sleep(20);
  // The same flow, updated so that its next runs are quick: they share the flow's slots.
  const steps = (await w.send({ method: 'GET', url: `/flows/${quick}` })).data.steps;
  const patched = await w.send({ method: 'PATCH', url: `/flows/${flowId}`, headers: MERGE_PATCH, payload: { steps } });
  t.equal(patched.data.version, 2);
  const next = await start(w, flowId, {});
  await sleep(300);
  t.equal((await w.send({ method: 'GET', url: `/executions/${next}` })).data.status, 'queued', 'a later version waits for the same slots');
  await w.send({ method: 'POST', url: `/executions/${holder}/cancel` });
  const since = Date.now();
  t.equal((await w.finished(next, 10_000)).status, 'completed');
  t.ok(Date.now() - since < 5000, 'it started once the holder was cancelled');
});

t.test('a key that fails, or whose value is too long, fails the run with concurrency-key', async (t) => {
  const w = await world(t);
  const flowId = await slowFlow(w, 'bad-key', 10, { limit: 1, key: 'input.customer.id' });
  const thrown = await w.run(flowId, { input: {} });
  t.match(thrown, { status: 'failed', error: { code: 'concurrency-key', message: /^concurrency\.key/ }, concurrencyKey: null });
  const huge = await w.run(flowId, { input: { customer: { id: 'x'.repeat(300) } } });
  t.match(huge, { status: 'failed', error: { code: 'concurrency-key', message: /at most 256/ } });
  t.equal(callsOf(w, 'bad-key').length, 0, 'neither ran a step');
  const fine = await w.run(flowId, { input: { customer: { id: 'c1' } } });
  t.match(fine, { status: 'completed', concurrencyKey: '"c1"' }, 'another run of the flow is unaffected');
});

t.test('reruns and sub-flows’ runs take slots too', async (t) => {
  const w = await world(t);
  const child = await slowFlow(w, 'child', 10, { limit: 1, key: 'input.k' });
  const parent = await w.flow({ steps: [{ key: 'sub', flow: { flowId: child, input: { k: 'from-parent' } } }] });
  const run = await w.run(parent.id, { input: {} });
  t.equal(run.status, 'completed');
  const childId = run.steps[0].childExecutionId;
  t.equal((await w.send({ method: 'GET', url: `/executions/${childId}` })).data.concurrencyKey, '"from-parent"', 'the child run has its key');
  const rerun = await w.send({
    method: 'POST',
    url: `/executions/${childId}/retry`,
    payload: { fromStep: 'call', input: { k: 'again' } },
    headers: { prefer: 'wait=30' },
  });
  t.match(rerun.data, { status: 'completed', concurrencyKey: '"again"' }, 'a rerun has its key, from its input');
});

t.test('the contract: limit and key are checked when the flow is written, and versioned with it', async (t) => {
  const w = await world(t);
  const actionId = await w.action();
  const steps = [{ key: 'call', actionId }];
  const refused = async (concurrency: unknown, status: number, pointer: string) => {
    const response = await w.send({ method: 'POST', url: '/flows', payload: { name: 'X', steps, concurrency } });
    t.equal(response.statusCode, status, JSON.stringify(concurrency));
    t.match(response.data.errors, [{ pointer }]);
  };
  await refused({ limit: 0 }, 400, '/concurrency/limit');
  await refused({ limit: 1001 }, 400, '/concurrency/limit');
  await refused({ key: 'input.a' }, 400, '/concurrency');
  await refused({ limit: 1, key: 'input.(' }, 422, '/concurrency/key');
  await refused({ limit: 1, key: 'steps.call.output' }, 422, '/concurrency/key');
  await refused({ limit: 1, key: 'x'.repeat(1001) }, 400, '/concurrency/key');
  await refused({ limit: 1, other: true }, 400, '/concurrency/other');

  const flow = await w.flow({ steps, concurrency: { limit: 3, key: 'input.region' } });
  t.same((flow as { concurrency?: unknown }).concurrency, { limit: 3, key: 'input.region' });
  const updated = await w.send({ method: 'PATCH', url: `/flows/${flow.id}`, headers: MERGE_PATCH, payload: { concurrency: null } });
  t.equal(updated.data.concurrency, null);
  const first = await w.send({ method: 'GET', url: `/flows/${flow.id}/versions/1` });
  t.same(first.data.concurrency, { limit: 3, key: 'input.region' }, 'the first version keeps its concurrency');
  const run = await w.run(flow.id, { input: { region: null }, version: 1 });
  t.match(run, { status: 'completed', concurrencyKey: 'null' }, 'a key whose value is null is the key "null"');
  const unlimited = await w.run(flow.id, { input: {} });
  t.notOk('concurrencyKey' in unlimited, 'a run of a version without concurrency has no key');
});

t.test('a webhook delivery to an API process without a worker: its key is evaluated there, when the run is created', async (t) => {
  const url = await freshDatabaseUrl(t);
  const api = await buildTestApp(t, { worker: false }, url);
  const w = await world(t, {}, api);
  const flowId = await slowFlow(w, 'hooked', 10, { limit: 1, key: 'input.body.repo' });
  const hook = (await w.send({ method: 'POST', url: '/triggers', payload: { flowId, name: 'Hook', type: 'webhook', webhook: {} } })).data;
  const delivered = await call(w.app, undefined, {
    method: 'POST',
    url: `/hooks/${hook.webhook.token}`,
    payload: JSON.stringify({ repo: 'tolstoy' }),
    headers: { 'content-type': 'application/json' },
  });
  t.equal(delivered.statusCode, 202);
  const queued = (await w.send({ method: 'GET', url: `/executions/${delivered.data.executionId}` })).data;
  t.match(queued, { status: 'queued', concurrencyKey: '"tolstoy"' }, 'stored with its key before any worker saw it');
  await testEngine(t, api.database, { worker: true });
  t.equal((await w.finished(delivered.data.executionId)).status, 'completed');
});

t.test('the safety net wakes a run left waiting while a slot is free', async (t) => {
  const url = await freshDatabaseUrl(t);
  const api = await buildTestApp(t, { worker: false }, url);
  const w = await world(t, {}, api);
  const flowId = await slowFlow(w, 'stranded', 10, { limit: 1 });
  const id = await start(w, flowId, {});
  // As if the wake-up of the run that freed the slot had been lost: the run waits, with no job.
  await w.db.$executeRawUnsafe(`DELETE FROM pgboss.job WHERE data->>'executionId' = $1`, id);
  await w.db.$executeRawUnsafe('UPDATE executions SET awaits_slot = true WHERE id = $1::uuid', id);
  await testEngine(t, api.database, { worker: true, maintenanceCron: '* * * * * *' });
  t.equal((await w.finished(id, 20_000)).status, 'completed', 'the maintenance job woke it');
});
