// Runs survive what kills workers and databases: two worker processes with one killed (kill -9)
// mid-run, a worker stopped with SIGTERM mid-run, and PostgreSQL stopped and started under load.
// Every acknowledged run completes, and no step that had completed is run again.
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { HEARTBEAT_SECONDS, SUPERVISE_SECONDS } from '../../src/engine/jobs/queue.ts';
import { ownPostgres } from '../faults/postgres.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl, type Member, type TestApp } from '../helper.ts';
import { startWorker, type WorkerProcess } from '../process.ts';
import { startTarget, type Target } from './target.ts';

const KEY = randomBytes(32).toString('base64');

interface Scene {
  app: TestApp;
  target: Target;
  member: Member;
  flowId: string;
}

/** An API without a worker, a target, and a three-step flow whose steps take a while. */
async function scene(t: Test, app: TestApp): Promise<Scene> {
  const target = await startTarget();
  t.teardown(() => target.close());
  const member = await createTenant(app.app);
  const send = (options: Parameters<typeof call>[2]) => call(app.app, member, options);
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: target.url } })).data;
  const action = (
    await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 's', key: 'slow', method: 'POST', endpoint: '/slow/300/step' } })
  ).data;
  const steps = ['one', 'two', 'three'].map((key) => ({ key, actionId: action.id, inputs: { previous: { $eval: 'execution.id' } } }));
  const flow = (await send({ method: 'POST', url: '/flows', payload: { name: 'Crash', steps } })).data;
  return { app, target, member, flowId: flow.id };
}

async function startRuns({ app, member, flowId }: Scene, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++)
    ids.push((await call(app.app, member, { method: 'POST', url: `/flows/${flowId}/executions`, payload: { input: { i } } })).data.id);
  return ids;
}

async function allFinished({ app }: Scene, ids: string[], ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = await app.db.execution.findMany({ where: { id: { in: ids } }, include: { steps: true } });
    if (rows.every((row) => !['queued', 'running'].includes(row.status))) return rows;
    if (Date.now() > deadline) throw new Error(`${rows.filter((row) => ['queued', 'running'].includes(row.status)).length} runs unfinished after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Every run completed, and no request for a step arrived after that step's completion was recorded. */
function checkRuns(t: Test, { target }: Scene, rows: Awaited<ReturnType<typeof allFinished>>) {
  t.same(
    rows.filter((row) => row.status !== 'completed').map((row) => [row.id, row.status, row.error]),
    [],
    `all ${rows.length} runs completed`,
  );
  let repeated = 0;
  for (const row of rows) {
    for (const step of row.steps) {
      const requests = target.received.filter((r) => r.headers['idempotency-key'] === `${row.id}:${step.path}`);
      const late = requests.filter((r) => r.at > step.finishedAt!.getTime());
      if (late.length > 0) t.fail(`${row.id}:${step.key} was called again after it completed`);
      if (requests.length > 1) repeated++;
      if (requests.length > step.attempts) t.fail(`${row.id}:${step.key}: ${requests.length} requests but ${step.attempts} attempts recorded`);
    }
  }
  t.comment(`${repeated} steps whose outcome the crash left unknown were sent again (with the same Idempotency-Key)`);
}

const workerEnv = (url: string) => ({
  DATABASE_URL: url,
  TOLSTOY_ENCRYPTION_KEY: KEY,
  TOLSTOY_WORKER_CONCURRENCY: '10',
  TOLSTOY_ORG_CONCURRENCY: '100',
});

t.test('two workers, one killed mid-run: every run completes, no completed step runs again', async (t) => {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const s = await scene(t, app);
  const workers: WorkerProcess[] = [await startWorker(workerEnv(url)), await startWorker(workerEnv(url))];
  t.teardown(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  const ids = await startRuns(s, 40);
  await new Promise((resolve) => setTimeout(resolve, 700));
  const inFlight = await app.db.execution.count({ where: { id: { in: ids }, status: 'running' } });
  t.ok(inFlight > 0, `${inFlight} runs in flight when the worker is killed`);
  workers[0]!.process.kill('SIGKILL');
  const killedAt = Date.now();
  const rows = await allFinished(s, ids, 60_000);
  checkRuns(t, s, rows);
  t.comment(`the last run finished ${Date.now() - killedAt} ms after the kill (heartbeat ${HEARTBEAT_SECONDS} s, supervisor every ${SUPERVISE_SECONDS} s)`);
});

t.test('a worker stopped with SIGTERM finishes its steps in flight and hands its runs on at once', async (t) => {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const s = await scene(t, app);
  const leaving = await startWorker({ ...workerEnv(url), SHUTDOWN_TIMEOUT_MS: '5000' });
  t.teardown(() => leaving.process.kill('SIGKILL'));
  const ids = await startRuns(s, 10);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const staying = await startWorker(workerEnv(url));
  t.teardown(() => staying.process.kill('SIGKILL'));
  leaving.process.kill('SIGTERM');
  const stoppedAt = Date.now();
  t.equal(await leaving.exited, 0, 'it exits cleanly');
  t.ok(Date.now() - stoppedAt < 5000, 'within its deadline');
  const rows = await allFinished(s, ids, 30_000);
  checkRuns(t, s, rows);
  t.ok(Date.now() - stoppedAt < HEARTBEAT_SECONDS * 1000, 'its runs went on without waiting for a heartbeat to lapse');
});

t.test('a worker stopped between steps hands the run on; the next step is counted once, by the worker that sends it', async (t) => {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const s = await scene(t, app);
  const send = (options: Parameters<typeof call>[2]) => call(app.app, s.member, options);
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'S', baseUrl: s.target.url } })).data;
  const slow = (
    await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 's', key: 'slower', method: 'POST', endpoint: '/slow/1500/s' } })
  ).data;
  const steps = ['first', 'second'].map((key) => ({ key, actionId: slow.id }));
  const flow = (await send({ method: 'POST', url: '/flows', payload: { name: 'Two', steps } })).data;
  const leaving = await startWorker({ ...workerEnv(url), SHUTDOWN_TIMEOUT_MS: '5000' });
  t.teardown(() => leaving.process.kill('SIGKILL'));
  const id = (await send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  for (let i = 0; i < 100 && requestsOf(s, `${id}:first`) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(requestsOf(s, `${id}:first`), 1, 'the first step is in flight');
  leaving.process.kill('SIGTERM');
  t.equal(await leaving.exited, 0, 'it exits once the step in flight is done');
  const handed = await app.db.executionStep.findMany({ where: { executionId: id }, orderBy: { position: 'asc' } });
  t.match(
    handed,
    [
      { status: 'completed', attempts: 1 },
      { status: 'pending', attempts: 0 },
    ],
    'the step in flight finished; the next was not begun',
  );
  const staying = await startWorker(workerEnv(url));
  t.teardown(() => staying.process.kill('SIGKILL'));
  const [row] = await allFinished(s, [id], 30_000);
  t.equal(row!.status, 'completed');
  t.same(
    row!.steps.map((step) => [step.key, step.attempts, requestsOf(s, `${id}:${step.key}`)]).sort(),
    [
      ['first', 1, 1],
      ['second', 1, 1],
    ],
    'each step counts the one request its target received',
  );
});

t.test('a worker stopped while a step waits to be retried hands it on; the attempt it never sent is not counted', async (t) => {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const s = await scene(t, app);
  const send = (options: Parameters<typeof call>[2]) => call(app.app, s.member, options);
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'F', baseUrl: s.target.url } })).data;
  const flaky = (await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'f', key: 'flaky', method: 'POST', endpoint: '/flaky/1/x' } }))
    .data;
  // The wait before the second attempt (2 to 4 s) outlasts the drain (1 s).
  const retry = { maxAttempts: 3, initialDelayMs: 4000, maxDelayMs: 4000 };
  const flow = (await send({ method: 'POST', url: '/flows', payload: { name: 'Retry', steps: [{ key: 'flaky', actionId: flaky.id, retry }] } })).data;
  const leaving = await startWorker({ ...workerEnv(url), SHUTDOWN_TIMEOUT_MS: '1000' });
  t.teardown(() => leaving.process.kill('SIGKILL'));
  const id = (await send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  const key = `${id}:flaky`;
  for (let i = 0; i < 100 && requestsOf(s, key) === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(requestsOf(s, key), 1, 'the first attempt was sent, and answered 503');
  await new Promise((resolve) => setTimeout(resolve, 300));
  leaving.process.kill('SIGTERM');
  t.equal(await leaving.exited, 0, 'it exits cleanly: the waiting run held nothing');
  const waiting = await app.db.executionStep.findFirstOrThrow({ where: { executionId: id } });
  t.match(waiting, { status: 'waiting', attempts: 1 }, 'the wait is recorded, with the one attempt sent');
  t.ok(waiting.wakeAt, 'and when it ends');
  const staying = await startWorker(workerEnv(url));
  t.teardown(() => staying.process.kill('SIGKILL'));
  const [row] = await allFinished(s, [id], 30_000);
  t.equal(row!.status, 'completed');
  t.equal(requestsOf(s, key), 2, 'the second attempt was sent by the worker that took it on');
  t.equal(row!.steps[0]!.attempts, 2, 'two attempts counted, as the target received');
});

function requestsOf({ target }: Scene, idempotencyKey: string): number {
  return target.received.filter((r) => r.headers['idempotency-key'] === idempotencyKey).length;
}

t.test('PostgreSQL stopped and started under load: no acknowledged run is lost', async (t) => {
  const postgres = await ownPostgres(t, { durable: true });
  const app = await buildTestApp(t, { worker: true }, postgres.url);
  const s = await scene(t, app);
  const acknowledged: string[] = [];
  let refused = 0;
  let loading = true;
  const load = (async () => {
    while (loading) {
      const answer = await call(app.app, s.member, { method: 'POST', url: `/flows/${s.flowId}/executions`, payload: {} }).catch(() => undefined);
      if (answer?.statusCode === 202) acknowledged.push(answer.data.id);
      else refused++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 800));
  await postgres.stop();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const restarted = await startEmbeddedPostgres({ dataDir: postgres.dataDir, port: Number(new URL(postgres.url).port) });
  t.teardown(() => restarted.stop());
  await new Promise((resolve) => setTimeout(resolve, 1500));
  loading = false;
  await load;
  t.ok(refused > 0, `${refused} starts refused (503) while the database was down`);
  t.ok(acknowledged.length > 10, `${acknowledged.length} runs acknowledged`);
  const rows = await allFinished(s, acknowledged, 60_000);
  t.equal(rows.length, acknowledged.length, 'every acknowledged run is stored');
  checkRuns(t, s, rows);
});
