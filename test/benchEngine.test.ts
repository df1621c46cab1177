// The engine benchmark must not rot either: its smoke run (seconds per scenario) starts Tolstoy
// as production runs it, runs every scenario, and fails on any error, any execution lost or any
// completed step repeated when workers are killed, any loop item or sleeping run not completed.
// n8n and Restate take part only where they are installed; DBOS (a devDependency) always does,
// in A and B.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import t from 'tap';

t.setTimeout(300_000);

t.test('npm run bench:engine -- --smoke', async (t) => {
  const result = await promisify(execFile)(process.execPath, ['bench/engine/run.ts', '--smoke'], { maxBuffer: 16 * 1024 * 1024 }).catch((error) => error);
  t.equal(result.code ?? 0, 0, result.code ? `${result.stdout}${result.stderr}` : 'the smoke run passes');
  const results = JSON.parse(await readFile('reports/bench-engine-smoke.json', 'utf8'));
  t.ok(results.synchronous.tolstoy.executions > 0, 'A: runs answered when finished');
  t.equal(results.synchronous.tolstoy.errors, 0, 'A: none failed');
  for (const [layout, figures] of Object.entries<any>(results.throughput.tolstoy)) {
    t.ok(figures.executions > 0, `B, ${layout}: runs completed`);
    t.equal(figures.errors, 0, `B, ${layout}: none failed or left unfinished`);
  }
  const crash = results.crash.tolstoy;
  t.ok(crash.workersKilled >= 1 && crash.accepted > 0, 'C: workers were killed under load');
  t.equal(crash.lost, 0, 'C: no execution lost');
  t.equal(crash.completedStepsRepeated, 0, 'C: no completed step repeated');
  const loop = results.loop;
  t.equal(loop.status, 'completed', 'D: the loop completed');
  t.equal(loop.itemsCompleted, loop.items, 'D: every item completed');
  t.equal(loop.itemsMissing, 0, 'D: no item missing in any round');
  t.ok(loop.itemsPerSecond > 0 && loop.processes['tolstoy worker 1'].peakRssMb > 0, "D: items per second and the worker's peak RSS");
  const sleeping = results.sleeping;
  t.equal(sleeping.accepted, sleeping.runs, 'E: every start accepted');
  t.equal(sleeping.completed, sleeping.runs, 'E: every sleeping run completed');
  t.ok(sleeping.seconds * 1000 >= sleeping.sleepMs, 'E: no run finished before its sleep');
  t.ok(sleeping.workerRssMb.samples >= 2 && sleeping.workerRssMb.min > 0, "E: the worker's RSS was sampled");
  t.match(results.versions.dbos, /^5\./, 'DBOS took part');
  for (const [scenario, figures] of [
    ['A', results.synchronous],
    ['B', results.throughput],
  ] as const) {
    t.ok(figures.dbos.executions > 0, `${scenario}: DBOS completed runs`);
    t.equal(figures.dbos.errors, 0, `${scenario}: none of DBOS's failed or was left unfinished`);
    t.ok(figures.dbos.processes.dbos.cpuMsPerExecution > 0 && figures.dbos.processes.dbos.peakRssMb > 0, `${scenario}: DBOS's CPU per execution and peak RSS`);
    t.ok(figures.dbos.processes.postgresql.cpuMsPerExecution > 0, `${scenario}: PostgreSQL's CPU per DBOS execution`);
    t.ok(figures.tolstoyVsDbos > 0, `${scenario}: the ratio Tolstoy / DBOS`);
  }
  if (results.versions.n8n === null) t.match(results.notes.join(' '), /n8n/, 'says why n8n did not take part');
  else t.ok(results.synchronous.n8n.executions > 0, 'n8n answered too');
  if (results.versions.restate === null) t.match(results.notes.join(' '), /Restate/, 'says why Restate did not take part');
  else {
    t.ok(results.synchronous.restate.executions > 0 && results.synchronous.restate.errors === 0, 'Restate answered A, none failed');
    t.ok(results.throughput.restate.executions > 0 && results.throughput.restate.errors === 0, 'Restate completed B, none failed or left unfinished');
    t.ok(results.throughput.restate.processes['restate-server'].cpuMsPerExecution > 0, "Restate's server was metered");
    t.ok(results.synchronous.tolstoyVsRestate > 0 && results.throughput.tolstoyVsRestate > 0, 'the ratios Tolstoy / Restate');
  }
});
