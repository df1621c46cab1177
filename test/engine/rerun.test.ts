// Running an execution again (POST /executions/{id}/retry): from a named step (fromStep), with a
// new input, on another version; the refusals (409, 422); Prefer: wait and Idempotency-Key on it.
// And GET /executions/{id} with Prefer: wait, on this API node and on another one.
import t from 'tap';
import { buildTestApp, call, MISSING_ID } from '../helper.ts';
import { world } from './world.ts';

const w = await world(t);
const calls = (executionId: string, path: string) => w.target.received.filter((r) => r.headers['idempotency-key'] === `${executionId}:${path}`);
const retry = (id: string, payload?: object, headers: Record<string, string> = {}) =>
  w.send({ method: 'POST', url: `/executions/${id}/retry`, ...(payload && { payload }), headers });
const without = (step: Record<string, unknown>, field: string) => Object.fromEntries(Object.entries(step).filter(([name]) => name !== field));

async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A three-step flow a → b → c, each echoing the input's x and what came before. */
async function threeSteps() {
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'a', actionId: echo, inputs: { x: { $eval: 'input.x' } } },
      { key: 'b', actionId: echo, inputs: { x: { $eval: 'input.x' }, fromA: { $eval: 'steps.a.output.body.x' } } },
      { key: 'c', actionId: echo, inputs: { x: { $eval: 'input.x' }, fromB: { $eval: 'steps.b.output.body' } } },
    ],
  });
  return { echo, flow };
}

t.test('a completed run again from step b: a is reused byte for byte without a call, b and c run once', async (t) => {
  const { flow } = await threeSteps();
  const original = await w.run(flow.id, { input: { x: 1 } });
  t.equal(original.status, 'completed');
  const rerun = await retry(original.id, { fromStep: 'b' });
  t.equal(rerun.statusCode, 202);
  t.equal(rerun.headers.location, `/executions/${rerun.data.id}`);
  t.match(rerun.data, { retryOf: original.id, retryFromStep: 'b', flowVersion: 1, input: { x: 1 }, status: 'queued' });
  const done = await w.finished(rerun.data.id);
  t.match(done, { status: 'completed', retryOf: original.id, retryFromStep: 'b', trigger: { type: 'api', userId: w.member.userId } });
  t.same(without(done.steps[0], 'reusedFrom'), without(original.steps[0], 'reusedFrom'), 'step a is as the original recorded it, to the byte');
  t.equal(done.steps[0].reusedFrom, original.id);
  t.equal(original.steps[0].reusedFrom, null);
  t.match(done.steps[0], { status: 'completed', attempts: 1 });
  t.ok(done.steps[0].durationMs !== null && done.steps[0].startedAt && done.steps[0].finishedAt, 'timings kept');
  t.equal(calls(done.id, 'a').length, 0, 'no call for the reused step');
  t.equal(calls(done.id, 'b').length, 1, 'b called once');
  t.equal(calls(done.id, 'c').length, 1, 'c called once');
  t.match(done.steps.slice(1), [
    { path: 'b', status: 'completed', attempts: 1, reusedFrom: null },
    { path: 'c', status: 'completed', attempts: 1, reusedFrom: null },
  ]);
  t.not(done.steps[1].startedAt, original.steps[1].startedAt, 'b ran again');
  t.same(calls(done.id, 'b')[0]!.body, { x: 1, fromA: 1 }, "the reused step's output fed b");

  // A rerun of a rerun reuses what the first original recorded, and says so.
  const again = await w.finished((await retry(done.id, { fromStep: 'c' })).data.id);
  t.match(again, { status: 'completed', retryOf: done.id, retryFromStep: 'c' });
  t.same(again.steps[0], { ...original.steps[0], reusedFrom: original.id }, 'a still points at the run that made the call');
  t.same(again.steps[1], { ...done.steps[1], reusedFrom: done.id }, 'b points at the rerun that made it');
  t.equal(calls(again.id, 'a').length + calls(again.id, 'b').length, 0);
  t.equal(calls(again.id, 'c').length, 1);
});

t.test('input replaces the input for the steps that run; the reused ones keep their answers', async (t) => {
  const { flow } = await threeSteps();
  const original = await w.run(flow.id, { input: { x: 'old' } });
  const rerun = await retry(original.id, { fromStep: 'b', input: { x: 'new' } });
  t.equal(rerun.statusCode, 202);
  t.same(rerun.data.input, { x: 'new' });
  const done = await w.finished(rerun.data.id);
  t.equal(done.status, 'completed');
  t.same(done.steps[0].response, original.steps[0].response, 'a answered as it did for the old input');
  t.equal(done.steps[0].response.body.body.x, 'old');
  t.same(calls(done.id, 'b')[0]!.body, { x: 'new', fromA: 'old' }, 'b saw the new input and the reused answer of a');
  t.same(calls(done.id, 'c')[0]!.body, { x: 'new', fromB: { x: 'new', fromA: 'old' } });
  t.same(original.input, { x: 'old' }, 'the original keeps its input');
});

t.test('version: the original by default, an integer, or latest; an unknown one is refused', async (t) => {
  const echo = await w.action();
  const v1 = await w.action({ endpoint: '/echo/c-v1' });
  const v2 = await w.action({ endpoint: '/echo/c-v2' });
  const steps = (c: string) => [
    { key: 'a', actionId: echo },
    { key: 'b', actionId: echo },
    { key: 'c', actionId: c },
  ];
  const flow = await w.flow({ steps: steps(v1) });
  const original = await w.run(flow.id);
  const updated = await w.send({ method: 'PUT', url: `/flows/${flow.id}`, payload: { steps: steps(v2) } });
  t.equal(updated.data.version, 2);

  const byDefault = await w.finished((await retry(original.id, { fromStep: 'b' })).data.id);
  t.match(byDefault, { status: 'completed', flowVersion: 1 });
  t.equal(calls(byDefault.id, 'c')[0]!.path, '/echo/c-v1', 'the original version by default');

  const latest = await w.finished((await retry(original.id, { fromStep: 'b', version: 'latest' })).data.id);
  t.match(latest, { status: 'completed', flowVersion: 2 });
  t.equal(calls(latest.id, 'c')[0]!.path, '/echo/c-v2', 'latest runs the current version');
  t.equal(latest.steps[0].reusedFrom, original.id, 'a is matched by path across versions');
  t.equal(calls(latest.id, 'a').length, 0);

  const two = await w.finished((await retry(original.id, { fromStep: 'c', version: 2 })).data.id);
  t.match(two, { status: 'completed', flowVersion: 2, steps: [{ reusedFrom: original.id }, { reusedFrom: original.id }, { reusedFrom: null }] });
  t.equal(calls(two.id, 'c')[0]!.path, '/echo/c-v2');
  const one = await w.finished((await retry(latest.id, { fromStep: 'c', version: 1 })).data.id);
  t.match(one, { status: 'completed', flowVersion: 1 });
  t.equal(calls(one.id, 'c')[0]!.path, '/echo/c-v1', 'an older version by number');

  const unknown = await retry(original.id, { fromStep: 'b', version: 7 });
  t.equal(unknown.statusCode, 422);
  t.match(unknown.data.errors, [{ pointer: '/version', message: /has no version 7; its current version is 2/ }]);
  const badType = await retry(original.id, { fromStep: 'b', version: 'newest' });
  t.equal(badType.statusCode, 400, 'neither an integer nor latest: off the schema');
  t.match(badType.data.errors, [{ in: 'body', pointer: '/version' }]);
});

t.test('without a body: failed and cancelled runs go on from their first unfinished step; others are refused', async (t) => {
  const echo = await w.action();
  const broken = await w.action({ endpoint: '/status/500' });
  const failedFlow = await w.flow({
    steps: [
      { key: 'a', actionId: echo },
      { key: 'b', actionId: broken },
      { key: 'c', actionId: echo },
    ],
  });
  const failed = await w.run(failedFlow.id);
  t.match(failed, { status: 'failed', steps: [{ status: 'completed' }, { status: 'failed' }, { status: 'not_run' }] });
  const retried = await retry(failed.id);
  t.equal(retried.statusCode, 202);
  t.match(retried.data, { retryOf: failed.id, retryFromStep: null, flowVersion: 1 });
  const again = await w.finished(retried.data.id);
  t.match(again, { status: 'failed', steps: [{ reusedFrom: failed.id }, { reusedFrom: null, status: 'failed' }, { status: 'not_run' }] });
  t.equal(calls(again.id, 'a').length, 0);
  t.equal(calls(again.id, 'b').length, 1, 'from the step that failed');

  const slow = await w.action({ endpoint: '/slow/1500/cancel-me' });
  const cancelFlow = await w.flow({
    steps: [
      { key: 'a', actionId: echo },
      { key: 'b', actionId: slow },
      { key: 'c', actionId: echo },
    ],
  });
  const started = await w.send({ method: 'POST', url: `/flows/${cancelFlow.id}/executions`, payload: {} });
  await until(() => calls(started.data.id, 'b').length > 0, 'the slow step');
  const cancelled = await w.send({ method: 'POST', url: `/executions/${started.data.id}/cancel` });
  t.match(cancelled.data, { status: 'cancelled', steps: [{ status: 'completed' }, { status: 'cancelled' }, { status: 'cancelled' }] });
  const resumed = await w.finished((await retry(started.data.id)).data.id);
  t.match(resumed, {
    status: 'completed',
    retryOf: started.data.id,
    retryFromStep: null,
    steps: [{ reusedFrom: started.data.id }, { reusedFrom: null, status: 'completed' }, { reusedFrom: null, status: 'completed' }],
  });
  t.equal(calls(resumed.id, 'a').length, 0);
  t.equal(calls(resumed.id, 'b').length, 1);

  const completed = await retry(resumed.id);
  t.equal(completed.statusCode, 409, 'a completed run without fromStep');
  t.match(completed.data.detail, /is completed; only a failed or cancelled execution can be retried from where it stopped/);

  const hang = await w.action({ endpoint: '/hang/running' });
  const hangFlow = await w.flow({ steps: [{ key: 'h', actionId: hang, timeoutMs: 60_000 }] });
  const running = await w.send({ method: 'POST', url: `/flows/${hangFlow.id}/executions`, payload: {} });
  await until(() => calls(running.data.id, 'h').length > 0, 'the hanging call');
  const busy = await retry(running.data.id);
  t.equal(busy.statusCode, 409, 'a running run');
  t.match(busy.data.detail, /is running/);
  const busyFrom = await retry(running.data.id, { fromStep: 'h' });
  t.equal(busyFrom.statusCode, 409, 'a running run, even from a step');
  t.match(busyFrom.data.detail, /is running; only a finished execution can be run again/);
  await w.send({ method: 'POST', url: `/executions/${running.data.id}/cancel` });
  t.equal((await retry(MISSING_ID)).statusCode, 404);
});

t.test('fromStep must name a step, and every step before it must have completed or been skipped', async (t) => {
  const { flow } = await threeSteps();
  const original = await w.run(flow.id, { input: { x: 1 } });
  const unknown = await retry(original.id, { fromStep: 'nope' });
  t.equal(unknown.statusCode, 422);
  t.match(unknown.data.errors, [{ pointer: '/fromStep', message: 'version 1 of the flow has no step "nope"; its steps are a, b, c' }]);

  const echo = await w.action();
  const broken = await w.action({ endpoint: '/status/500' });
  const tolerant = await w.flow({
    steps: [
      { key: 'a', actionId: echo },
      { key: 'skipped', actionId: echo, if: 'false' },
      { key: 'b', actionId: broken, continueOnError: true },
      { key: 'c', actionId: echo },
    ],
  });
  const partly = await w.run(tolerant.id);
  t.match(partly, { status: 'completed', steps: [{ status: 'completed' }, { status: 'skipped' }, { status: 'failed' }, { status: 'completed' }] });
  const past = await retry(partly.id, { fromStep: 'c' });
  t.equal(past.statusCode, 422, 'a step that failed (continueOnError) cannot be reused');
  t.match(past.data.errors, [{ pointer: '/fromStep', message: /step "b" comes before "c" and was failed in this execution, so it cannot be reused/ }]);
  const fromFailed = await w.finished((await retry(partly.id, { fromStep: 'b' })).data.id);
  t.match(fromFailed, { steps: [{ reusedFrom: partly.id }, { status: 'skipped', reusedFrom: partly.id }, { reusedFrom: null }, { reusedFrom: null }] });

  const failedFlow = await w.flow({
    steps: [
      { key: 'a', actionId: echo },
      { key: 'b', actionId: broken },
      { key: 'c', actionId: echo },
      { key: 'd', actionId: echo },
    ],
  });
  const failed = await w.run(failedFlow.id);
  t.match(failed.steps, [{ status: 'completed' }, { status: 'failed' }, { status: 'not_run' }, { status: 'not_run' }]);
  const afterFailure = await retry(failed.id, { fromStep: 'd' });
  t.equal(afterFailure.statusCode, 422);
  t.match(afterFailure.data.errors, [{ pointer: '/fromStep', message: /step "b" comes before "d" and was failed/ }]);
  // A step the original never ran (a version that added it): it has nothing to reuse.
  await w.send({
    method: 'PUT',
    url: `/flows/${flow.id}`,
    payload: {
      steps: [
        { key: 'a', actionId: echo },
        { key: 'new', actionId: echo },
        { key: 'b', actionId: echo },
        { key: 'c', actionId: echo },
      ],
    },
  });
  const notRun = await retry(original.id, { fromStep: 'b', version: 'latest' });
  t.equal(notRun.statusCode, 422);
  t.match(notRun.data.errors, [{ pointer: '/fromStep', message: /step "new" comes before "b" and did not run in this execution/ }]);
});

t.test('Prefer: wait and Idempotency-Key on a rerun', async (t) => {
  const { flow } = await threeSteps();
  const original = await w.run(flow.id, { input: { x: 2 } });
  const waited = await retry(original.id, { fromStep: 'b' }, { prefer: 'wait=10' });
  t.equal(waited.statusCode, 200);
  t.equal(waited.headers['preference-applied'], 'wait=10');
  t.match(waited.data, { status: 'completed', retryOf: original.id, steps: [{ reusedFrom: original.id }, { status: 'completed' }, { status: 'completed' }] });
  t.ok(waited.data.finishedAt);

  const first = await retry(original.id, { fromStep: 'c' }, { 'idempotency-key': 'rerun-1' });
  t.equal(first.statusCode, 202);
  t.equal(first.headers['idempotent-replayed'], undefined);
  const replay = await retry(original.id, { fromStep: 'c' }, { 'idempotency-key': 'rerun-1' });
  t.equal(replay.statusCode, 202);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.data.id, first.data.id, 'the same rerun');
  t.same(replay.data, first.data, 'as first answered');
  const other = await retry(original.id, { fromStep: 'b' }, { 'idempotency-key': 'rerun-1' });
  t.equal(other.statusCode, 422, 'the same key with another body');
  t.match(other.data.detail, /The Idempotency-Key rerun-1 was used for a different request/);
  const bodiless = await retry(original.id, undefined, { 'idempotency-key': 'rerun-1' });
  t.equal(bodiless.statusCode, 422, 'or with none');
  await w.finished(first.data.id);
  const reruns = (await w.send({ method: 'GET', url: `/executions?flowId=${flow.id}&limit=100` })).data.items.filter((e: any) => e.retryOf === original.id);
  t.equal(reruns.length, 2, 'one for Prefer, one for the key');
  const at = Date.now();
  const waitedReplay = await retry(original.id, { fromStep: 'c' }, { 'idempotency-key': 'rerun-1', prefer: 'wait=5' });
  const took = Date.now() - at;
  t.equal(waitedReplay.statusCode, 200, 'a replay with Prefer: wait shows the run as it is now');
  t.match(waitedReplay.data, { id: first.data.id, status: 'completed' });
  t.equal(waitedReplay.headers['idempotent-replayed'], 'true');
  t.ok(took < 1000, `at once, the run having finished already (${took} ms), not after the 5 s wait`);
});

t.test('GET /executions/{id} with Prefer: wait answers when the run finishes, or when the wait is over', async (t) => {
  const quick = await w.action({ endpoint: '/slow/1000/quick' });
  const long = await w.action({ endpoint: '/slow/10000/long' });
  const quickFlow = await w.flow({ steps: [{ key: 's', actionId: quick }] });
  const longFlow = await w.flow({ steps: [{ key: 's', actionId: long, timeoutMs: 30_000 }] });

  const started = await w.send({ method: 'POST', url: `/flows/${quickFlow.id}/executions`, payload: {} });
  let at = Date.now();
  const finished = await w.send({ method: 'GET', url: `/executions/${started.data.id}`, headers: { prefer: 'wait=5' } });
  let took = Date.now() - at;
  t.equal(finished.statusCode, 200);
  t.equal(finished.data.status, 'completed');
  t.equal(finished.headers['preference-applied'], 'wait=5');
  t.ok(took >= 700 && took < 3000, `answered when the run finished, ${took} ms (not 5 s)`);

  const running = await w.send({ method: 'POST', url: `/flows/${longFlow.id}/executions`, payload: {} });
  await until(() => calls(running.data.id, 's').length > 0, 'the long step');
  at = Date.now();
  const still = await w.send({ method: 'GET', url: `/executions/${running.data.id}`, headers: { prefer: 'wait=1' } });
  took = Date.now() - at;
  t.equal(still.statusCode, 200);
  t.equal(still.data.status, 'running');
  t.equal(still.headers['preference-applied'], 'wait=1');
  t.ok(took >= 950 && took < 2500, `answered once the wait was over, ${took} ms`);
  at = Date.now();
  const now = await w.send({ method: 'GET', url: `/executions/${running.data.id}` });
  took = Date.now() - at;
  t.equal(now.data.status, 'running');
  t.equal(now.headers['preference-applied'], undefined);
  t.ok(took < 500, `without Prefer, at once (${took} ms)`);
  await w.send({ method: 'POST', url: `/executions/${running.data.id}/cancel` });

  // When the wait ends unfinished, the answer is the run as it is then, not as it was when asked.
  const first = await w.action({ endpoint: '/slow/300/first' });
  const twoSteps = await w.flow({
    steps: [
      { key: 'first', actionId: first },
      { key: 'second', actionId: long, timeoutMs: 30_000 },
    ],
  });
  const fresh = await w.send({ method: 'POST', url: `/flows/${twoSteps.id}/executions`, payload: {} });
  const later = await w.send({ method: 'GET', url: `/executions/${fresh.data.id}`, headers: { prefer: 'wait=1' } });
  t.match(later.data, { status: 'running', steps: [{ status: 'completed' }, { status: 'running' }] }, 'GET: the first step done during the wait shows');
  const startedWaiting = await w.send({ method: 'POST', url: `/flows/${twoSteps.id}/executions`, payload: {}, headers: { prefer: 'wait=1' } });
  t.equal(startedWaiting.statusCode, 202);
  t.match(startedWaiting.data, { status: 'running', steps: [{ status: 'completed' }, { status: 'running' }] }, 'starting: likewise');
  for (const id of [fresh.data.id, startedWaiting.data.id]) await w.send({ method: 'POST', url: `/executions/${id}/cancel` });

  const done = await w.send({ method: 'GET', url: `/executions/${finished.data.id}`, headers: { prefer: 'wait=5' } });
  t.equal(done.data.status, 'completed', 'a finished run, at once');
});

t.test('Prefer: wait on GET hears of a run on another API node, one without a worker', async (t) => {
  const other = await buildTestApp(t, { worker: false }, w.database.url);
  const send = (options: Parameters<typeof call>[2]) => call(other.app, w.member, options);
  const quick = await w.action({ endpoint: '/slow/1000/elsewhere' });
  const flow = await w.flow({ steps: [{ key: 's', actionId: quick }] });

  // Started on the node without a worker: this node's worker runs it; the other node hears it finish.
  const started = await send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  t.equal(started.statusCode, 202);
  let at = Date.now();
  const there = await send({ method: 'GET', url: `/executions/${started.data.id}`, headers: { prefer: 'wait=5' } });
  let took = Date.now() - at;
  t.match(there.data, { status: 'completed' });
  t.equal(there.headers['preference-applied'], 'wait=5');
  t.ok(took >= 500 && took < 3000, `the other node answered when the run finished, ${took} ms`);

  // Started there, waited for here.
  const second = await send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  at = Date.now();
  const here = await w.send({ method: 'GET', url: `/executions/${second.data.id}`, headers: { prefer: 'wait=5' } });
  took = Date.now() - at;
  t.match(here.data, { status: 'completed' });
  t.ok(took >= 500 && took < 3000, `this node answered when the run finished, ${took} ms`);

  // A rerun asked of the other node, waited for there.
  at = Date.now();
  const rerun = await send({ method: 'POST', url: `/executions/${second.data.id}/retry`, payload: { fromStep: 's' }, headers: { prefer: 'wait=5' } });
  took = Date.now() - at;
  t.equal(rerun.statusCode, 200);
  t.ok(took >= 500 && took < 3000, `answered when the rerun finished, ${took} ms`);
  t.match(rerun.data, { status: 'completed', retryOf: second.data.id, retryFromStep: 's' });
});
