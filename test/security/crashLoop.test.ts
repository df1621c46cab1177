// Attacks by a run that takes down the worker that runs it, and what each must get:
// - a run that kills its worker each time it is taken (kill -9 at each claim, as a worker killed
//   for lack of memory): it ends `failed` (`interrupted`, naming TOLSTOY_STEP_RESUME_LIMIT) once
//   its step was cut short more often than the limit, not after the queue's 1000 retries.
import t from 'tap';
import { world } from '../engine/world.ts';
import { buildTestApp, freshDatabaseUrl } from '../helper.ts';
import { startWorker, type WorkerProcess } from '../process.ts';

// Made here, not in a subtest: the test PostgreSQL of a file run alone lives as long as what made it first.
const crashDatabase = await freshDatabaseUrl(t);

t.test('a run that kills its worker each time it is taken ends failed after TOLSTOY_STEP_RESUME_LIMIT', async (t) => {
  const app = await buildTestApp(t, { worker: false }, crashDatabase);
  const w = await world(t, {}, app);
  // The step never answers: each worker is killed while it waits, as one killed for lack of memory.
  const flow = await w.flow({ steps: [{ key: 'deadly', actionId: await w.action({ method: 'GET', endpoint: '/hang/x' }) }] });
  const started = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  const id = started.data.id;
  const env = { DATABASE_URL: crashDatabase, TOLSTOY_STEP_RESUME_LIMIT: '1' };
  const workers: WorkerProcess[] = [];
  t.teardown(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  let kills = 0;
  const deadline = Date.now() + 120_000;
  for (let claims = 0; ; ) {
    const row = await app.db.execution.findUniqueOrThrow({ where: { id }, include: { steps: true } });
    if (row.status === 'failed') break;
    if (Date.now() > deadline) throw new Error(`the run is still ${row.status} after ${kills} kills`);
    const attempts = row.steps[0]!.attempts;
    if (workers.length === kills) workers.push(await startWorker(env));
    if (attempts > claims && w.target.received.filter((r) => r.path === '/hang/x').length >= attempts) {
      // Taken, and its step sent: kill the worker, as the run does.
      claims = attempts;
      workers.at(-1)!.process.kill('SIGKILL');
      await workers.at(-1)!.exited;
      kills++;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const execution = await w.finished(id);
  t.equal(execution.status, 'failed');
  t.match(execution.error, { code: 'interrupted', step: 'deadly', message: /cut short 2 times.*TOLSTOY_STEP_RESUME_LIMIT is 1/ });
  t.equal(kills, 2, 'two workers died: the first claim and one resume');
  t.equal(execution.steps[0].status, 'failed');
});
