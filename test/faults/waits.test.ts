// Durable waits under faults, with real worker processes: a step that waits for its next attempt
// is a timer in the queue, not a sleeping worker. A worker killed (kill -9) in the middle of the
// wait loses nothing and shortens nothing: the next worker sends the attempt when the wait that was
// recorded ends, not at once and not a whole wait later. A worker stopped with SIGTERM while its
// runs wait holds nothing, so it exits at once; the runs go on with the next worker when due.
import t, { type Test } from 'tap';
import { startTarget, type Target } from '../engine/target.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl, type Member, type TestApp } from '../helper.ts';
import { startWorker } from '../process.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Scene {
  app: TestApp;
  target: Target;
  member: Member;
  url: string;
  send: (options: Parameters<typeof call>[2]) => ReturnType<typeof call>;
}

/** An API without a worker on a database of the test's own, which worker processes share, and a target. */
async function scene(t: Test): Promise<Scene> {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const target = await startTarget();
  t.teardown(() => target.close());
  const member = await createTenant(app.app);
  return { app, target, member, url, send: (options) => call(app.app, member, options) };
}

/**
 * A one-step flow whose step is answered 503 with Retry-After: `seconds` the first time each run
 * calls, and may be tried twice (a 429 would pause the tool for every run: rateLimits.test.ts).
 */
async function limitedFlow({ send, target }: Scene, seconds: number): Promise<string> {
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'Limited', baseUrl: target.url } })).data;
  const action = (
    await send({
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.id, name: 'limited', key: 'limited', method: 'POST', endpoint: `/unavailable/${seconds}` },
    })
  ).data;
  // The backoff is short: the wait is the one the answer's Retry-After asks for.
  const retry = { maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 100 };
  return (await send({ method: 'POST', url: '/flows', payload: { name: 'Limited', steps: [{ key: 'call', actionId: action.id, retry }] } })).data.id;
}

const workerEnv = (url: string) => ({ DATABASE_URL: url, TOLSTOY_WORKER_CONCURRENCY: '4', SHUTDOWN_TIMEOUT_MS: '10000' });

/** The requests for a step, in the order they arrived at the target. */
const requestsOf = ({ target }: Scene, executionId: string, path = 'call') =>
  target.received.filter((r) => r.headers['idempotency-key'] === `${executionId}:${path}`);

/** The execution as the API shows it, once `ready` holds of it (polling, up to `ms`). */
async function until({ send }: Scene, executionId: string, ready: (execution: any) => boolean, what: string, ms: number): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const execution = (await send({ method: 'GET', url: `/executions/${executionId}` })).data;
    if (ready(execution)) return execution;
    if (Date.now() > deadline) throw new Error(`${executionId} not ${what} after ${ms} ms: ${JSON.stringify(execution)}`);
    await sleep(50);
  }
}

const waiting = (execution: any) => execution.steps[0]?.status === 'waiting' && execution.steps[0]?.wakeAt !== null;
const finished = (execution: any) => !['queued', 'running'].includes(execution.status);

t.test('a worker killed mid-wait: the next worker sends the attempt when the recorded wait ends, not at once and not from zero', async (t) => {
  const s = await scene(t);
  const flowId = await limitedFlow(s, 10);
  const first = await startWorker(workerEnv(s.url));
  t.teardown(() => first.process.kill('SIGKILL'));
  const id = (await s.send({ method: 'POST', url: `/flows/${flowId}/executions`, payload: {} })).data.id;

  const recorded = await until(s, id, waiting, 'waiting', 30_000);
  const [attempt1] = requestsOf(s, id);
  t.ok(attempt1, 'the first attempt reached the target, and was answered 503');
  t.match(recorded.steps[0], { path: 'call', status: 'waiting', attempts: 1, response: { status: 503 } }, 'the failed attempt is recorded, the step waits');
  const wakeAt = Date.parse(recorded.steps[0].wakeAt);
  const asked = wakeAt - attempt1!.at;
  t.ok(asked >= 10000 - 200 && asked < 10000 + 1000, `it waits until the Retry-After is over (${asked} ms after the attempt)`);

  await sleep(attempt1!.at + 4000 - Date.now());
  first.process.kill('SIGKILL');
  const killedAt = Date.now();
  t.equal(await first.exited, null, 'killed');
  const second = await startWorker(workerEnv(s.url));
  t.teardown(() => second.process.kill('SIGKILL'));
  t.comment(`killed ${killedAt - attempt1!.at} ms after the first attempt; the next worker was running ${Date.now() - killedAt} ms after the kill`);

  const execution = await until(s, id, finished, 'finished', 30_000);
  const requests = requestsOf(s, id);
  t.equal(requests.length, 2, 'two attempts reached the target');
  const gap = requests[1]!.at - attempt1!.at;
  t.ok(gap >= 10000 - 200, `the second attempt waited for the Retry-After (${gap} ms after the first)`);
  t.ok(requests[1]!.at >= wakeAt - 200, 'not before the recorded wakeAt');
  t.ok(gap < 12_500, `the wait went on from where it was, not from the kill (${gap} ms after the first, the kill at ${killedAt - attempt1!.at} ms)`);
  t.match(execution, { status: 'completed', steps: [{ path: 'call', status: 'completed', attempts: 2, wakeAt: null, response: { status: 200 } }] });
});

t.test('SIGTERM while runs wait: the worker exits at once, and the next worker completes them when due', async (t) => {
  const s = await scene(t);
  const seconds = 8;
  const flowId = await limitedFlow(s, seconds);
  const leaving = await startWorker(workerEnv(s.url));
  t.teardown(() => leaving.process.kill('SIGKILL'));
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await s.send({ method: 'POST', url: `/flows/${flowId}/executions`, payload: {} })).data.id);
  for (const id of ids) await until(s, id, waiting, 'waiting', 30_000);
  t.equal(ids.filter((id) => requestsOf(s, id).length === 1).length, 3, 'each run sent its first attempt, and waits');

  const since = Date.now();
  leaving.process.kill('SIGTERM');
  const code = await leaving.exited;
  const ms = Date.now() - since;
  t.equal(code, 0, 'it exits cleanly');
  t.ok(ms < 3000, `at once: waiting runs hold nothing (${ms} ms)`);
  for (const id of ids) {
    const execution = (await s.send({ method: 'GET', url: `/executions/${id}` })).data;
    t.match(execution.steps[0], { status: 'waiting', attempts: 1 }, 'the wait is still recorded, with no attempt counted that was not sent');
  }

  const staying = await startWorker(workerEnv(s.url));
  t.teardown(() => staying.process.kill('SIGKILL'));
  for (const id of ids) {
    const execution = await until(s, id, finished, 'finished', 30_000);
    t.match(execution, { status: 'completed', steps: [{ status: 'completed', attempts: 2 }] });
    const [attempt1, attempt2, ...more] = requestsOf(s, id);
    t.same(more, [], 'two attempts reached the target');
    const gap = attempt2!.at - attempt1!.at;
    t.ok(gap >= seconds * 1000 - 200, `the second attempt waited for the Retry-After (${gap} ms)`);
    t.ok(gap < seconds * 1000 + 2500, `and was sent once due (${gap} ms)`);
  }
});
