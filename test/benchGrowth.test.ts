// The growth benchmark must not rot: its smoke run (a few thousand executions, seconds per step)
// measures B and every read on the empty and the full database, fills the history, and fails on
// any error; the report it writes must hold every figure the full run reports.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { READS } from '../bench/growth/reads.ts';

t.setTimeout(300_000);

const TABLES = ['executions', 'execution_steps', 'execution_logs', 'trigger_deliveries', 'event_deliveries'];

t.test('npm run bench:growth -- --smoke', async (t) => {
  const result = await promisify(execFile)(process.execPath, ['bench/growth/run.ts', '--smoke'], { maxBuffer: 16 * 1024 * 1024 }).catch((error) => error);
  t.equal(result.code ?? 0, 0, result.code ? `${result.stdout}${result.stderr}` : 'the smoke run passes');
  const results = JSON.parse(await readFile('reports/bench-growth-smoke.json', 'utf8'));
  for (const phase of ['empty', 'full'] as const) {
    const { throughput, reads } = results[phase];
    t.ok(throughput.executionsPerSecond > 0 && throughput.completed > 0, `${phase}: B completed runs`);
    t.equal(throughput.errors, 0, `${phase}: no B run failed or was left unfinished`);
    t.ok(throughput.cpuMsPerExecution.postgresql > 0, `${phase}: CPU per execution of PostgreSQL`);
    for (const read of READS) {
      t.equal(reads[read].requests, results.settings.requests, `${phase}: every ${read} read sent`);
      t.equal(reads[read].errors, 0, `${phase}: every ${read} read answered 200 with its shape`);
      t.ok(reads[read].p50Ms > 0 && reads[read].p99Ms >= reads[read].p50Ms, `${phase}: ${read}'s p50 and p99`);
    }
  }
  const { fill, sizes } = results;
  t.ok(fill.seconds > 0, 'the fill was timed');
  t.ok(fill.rows.executions >= results.settings.executions, 'the history holds the executions asked for');
  t.equal(fill.rows.execution_steps, 3 * fill.rows.executions, 'three steps each');
  t.ok(fill.rows.execution_logs >= fill.rows.execution_steps - fill.rows.executions, 'an engine log for each settled attempt');
  t.ok(fill.rows.trigger_deliveries > 0 && fill.rows.event_deliveries > 0, 'trigger and event deliveries');
  for (const table of TABLES) t.ok(sizes[table].tableBytes > 0 && sizes[table].indexBytes > 0, `${table}: table and index bytes`);
  t.ok(
    results.full.rows >= fill.rows.executions && results.empty.rows < results.settings.executions,
    "the full database holds the history, the empty one B's runs only",
  );
  const prune = results.prune;
  t.ok(prune.seconds > 0, 'the prune was timed');
  for (const kind of ['executions', 'logs', 'triggerDeliveries', 'eventDeliveries']) t.ok(prune.removed[kind] > 0, `the prune removed ${kind}`);
  // 18 of 90 days kept: about 80% of the history goes (the runs of the empty side's B are young).
  const share = (prune.rowsBefore.executions - prune.rowsAfter.executions) / fill.rows.executions;
  t.ok(share > 0.7 && share < 0.85, `about 80% of the executions removed (${share})`);
  t.equal(prune.rowsAfter.execution_steps, 3 * prune.rowsAfter.executions, 'their steps went with them');
  t.ok(prune.during.all.requests > 0 && prune.during.all.errors === 0, 'reads answered during the prune');
  t.ok(prune.quiet.all.requests > 0 && prune.quiet.all.p99Ms > 0, 'the quiet reads before it');
  t.ok(prune.sizes.afterVacuum.executions.freeBytes > prune.sizes.before.executions.freeBytes, 'VACUUM recorded the room the prune left');
  for (const table of TABLES) t.ok(prune.sizes.afterVacuum[table].totalBytes > 0, `${table}: bytes after VACUUM`);
});
