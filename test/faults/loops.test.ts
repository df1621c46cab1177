// A worker killed (kill -9) in the middle of a forEach, of parallel branches, and of a sub-flow's
// child run: another worker finishes each run, no step run that had settled is sent again, and
// the only calls sent twice are those in flight at the kill, with the same Idempotency-Key.
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { peakInFlight, startTarget, type Target } from '../engine/target.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl, type Member, type TestApp } from '../helper.ts';
import { startWorker, type WorkerProcess } from '../process.ts';

const KEY = randomBytes(32).toString('base64');

interface Scene {
  app: TestApp;
  target: Target;
  member: Member;
  send: (options: Parameters<typeof call>[2]) => ReturnType<typeof call>;
  slowAction: string;
  workerEnv: Record<string, string>;
}

async function scene(t: Test): Promise<Scene> {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const target = await startTarget();
  t.teardown(() => target.close());
  const member = await createTenant(app.app);
  const send = (options: Parameters<typeof call>[2]) => call(app.app, member, options);
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: target.url } })).data;
  const action = (
    await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 's', key: 'slow', method: 'POST', endpoint: '/slow/1000/item' } })
  ).data;
  return { app, target, member, send, slowAction: action.id, workerEnv: { DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: KEY, TOLSTOY_WORKER_CONCURRENCY: '5' } };
}

async function worker(t: Test, s: Scene): Promise<WorkerProcess> {
  const started = await startWorker(s.workerEnv);
  t.teardown(() => started.process.kill('SIGKILL'));
  return started;
}

const callsOf = (s: Scene, executionId: string) => s.target.received.filter((call) => call.headers['idempotency-key']?.startsWith(`${executionId}:`));

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function finished(s: Scene, id: string, ms = 90_000) {
  await until(
    `execution ${id} finished`,
    async () => !['queued', 'running'].includes((await s.send({ method: 'GET', url: `/executions/${id}` })).data.status),
    ms,
  );
  return s.app.db.executionStep.findMany({ where: { executionId: id } });
}

/**
 * Kills the worker, and checks once the run is over: no step run settled before the kill was sent
 * again, each call sent twice was in flight at the kill, and both copies carry one Idempotency-Key.
 */
async function killAndCheck(t: Test, s: Scene, killed: WorkerProcess, ids: string[]): Promise<void> {
  killed.process.kill('SIGKILL');
  const killedAt = Date.now();
  await worker(t, s);
  let twice = 0;
  for (const id of ids) {
    const steps = await finished(s, id);
    const calls = callsOf(s, id);
    for (const step of steps.filter((row) => row.kind === 'action')) {
      const sent = calls.filter((call) => call.headers['idempotency-key'] === `${id}:${step.path}`);
      t.equal(step.status, 'completed', `${step.path} completed`);
      if (sent.length === 1) continue;
      twice++;
      t.equal(sent.length, 2, `${step.path} was sent at most twice`);
      t.ok(sent[0]!.at < killedAt && (sent[0]!.doneAt ?? Number.POSITIVE_INFINITY) >= killedAt - 50, `${step.path}: its first call was in flight at the kill`);
    }
  }
  t.ok(twice > 0, `${twice} calls in flight at the kill were sent again`);
}

t.test('kill -9 in the middle of a forEach (40 items of 1 s, 5 at once)', async (t) => {
  const s = await scene(t);
  const first = await worker(t, s);
  const flow = (
    await s.send({
      method: 'POST',
      url: '/flows',
      payload: {
        name: 'Loop',
        steps: [
          {
            key: 'each',
            forEach: { items: 'range(0, 40)', concurrency: 5, steps: [{ key: 'call', actionId: s.slowAction, inputs: { i: { $eval: 'item' } } }] },
          },
        ],
      },
    })
  ).data;
  const id = (await s.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  await until('12 items called', () => callsOf(s, id).length >= 12);
  await killAndCheck(t, s, first, [id]);
  const execution = (await s.send({ method: 'GET', url: `/executions/${id}` })).data;
  t.equal(execution.status, 'completed');
  t.equal(execution.output.length, 40);
  t.ok(peakInFlight(callsOf(s, id)) <= 5, 'never more than 5 calls at once, across both workers');
});

t.test('kill -9 in the middle of parallel branches', async (t) => {
  const s = await scene(t);
  const first = await worker(t, s);
  const branches = Object.fromEntries(['a', 'b', 'c', 'd'].map((name) => [name, ['1', '2', '3'].map((n) => ({ key: `${name}${n}`, actionId: s.slowAction }))]));
  const flow = (await s.send({ method: 'POST', url: '/flows', payload: { name: 'Branches', steps: [{ key: 'all', parallel: { branches } }] } })).data;
  const id = (await s.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  await until('the second steps called', () => callsOf(s, id).length >= 6);
  await killAndCheck(t, s, first, [id]);
  t.match((await s.send({ method: 'GET', url: `/executions/${id}` })).data, { status: 'completed', output: { a: {}, b: {}, c: {}, d: {} } });
});

t.test('kill -9 while a sub-flow’s child run is in the middle of its steps', async (t) => {
  const s = await scene(t);
  const first = await worker(t, s);
  const steps = ['one', 'two', 'three'].map((key) => ({ key, actionId: s.slowAction }));
  const child = (await s.send({ method: 'POST', url: '/flows', payload: { name: 'Child', steps } })).data;
  const parent = (await s.send({ method: 'POST', url: '/flows', payload: { name: 'Parent', steps: [{ key: 'sub', flow: { flowId: child.id } }] } })).data;
  const id = (await s.send({ method: 'POST', url: `/flows/${parent.id}/executions`, payload: {} })).data.id;
  let childId = '';
  await until('the child’s second step called', async () => {
    childId = (await s.send({ method: 'GET', url: `/executions?parentId=${id}` })).data.items[0]?.id ?? '';
    return childId !== '' && callsOf(s, childId).length >= 2;
  });
  await killAndCheck(t, s, first, [childId]);
  // The child's end wakes its parent, which then completes.
  await finished(s, id);
  const done = (await s.send({ method: 'GET', url: `/executions/${id}` })).data;
  t.match(done, { status: 'completed', steps: [{ path: 'sub', status: 'completed', childExecutionId: childId }] });
});
