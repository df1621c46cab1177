// GROWTH.md from the growth benchmark's results: every figure against its target, the plans of
// the reads that missed theirs, and the notes written by hand (bench/growth/notes.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Latency, Read } from './reads.ts';
import { READ_NAMES, READS } from './reads.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Full against empty: throughput at least 90%, each p99 at most 1.5×; during a prune, p99 at most 2× quiet. */
export const TARGETS = { throughputRatio: 0.9, readP99Ratio: 1.5, pruneP99Ratio: 2 };

/** The reads whose p99 on the full database is more than TARGETS.readP99Ratio times the empty one's. */
export function misses(empty: Record<Read, Latency>, full: Record<Read, Latency>): Read[] {
  return READS.filter((read) => full[read].p99Ms > TARGETS.readP99Ratio * empty[read].p99Ms);
}

const check = (ok: boolean) => (ok ? '✓' : '✗');
const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const count = (n: number) => n.toLocaleString('en-US');

function sizeTable(sizes: Record<string, any>, executions: number): string[] {
  const rows = Object.entries(sizes).map(
    ([name, s]) =>
      `| ${name} | ${count(s.liveRows)} | ${mb(s.tableBytes)} | ${mb(s.indexBytes)} | ${mb(s.totalBytes)} | ${Math.round(s.tableBytes / executions)} | ${Math.round(s.indexBytes / executions)} | ${Math.round(s.totalBytes / executions)} |`,
  );
  const sum = (key: string) => Object.values(sizes).reduce((total: number, s: any) => total + s[key], 0);
  return [
    '| table | rows | table MB | indexes MB | total MB (with TOAST) | table bytes / execution | index bytes / execution | total bytes / execution |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    `| all | | ${mb(sum('tableBytes'))} | ${mb(sum('indexBytes'))} | ${mb(sum('totalBytes'))} | ${Math.round(sum('tableBytes') / executions)} | ${Math.round(sum('indexBytes') / executions)} | ${Math.round(sum('totalBytes') / executions)} |`,
  ];
}

function pruneSection(results: any): string[] {
  const p = results.prune;
  const total = (sizes: Record<string, any>) => mb(Object.values(sizes).reduce((sum: number, s: any) => sum + s.totalBytes, 0));
  const dead = (sizes: Record<string, any>) => count(Object.values(sizes).reduce((sum: number, s: any) => sum + s.deadRows, 0));
  const readRows = ([...READS, 'all'] as (Read | 'all')[]).map((read) => {
    const quiet = p.quiet[read];
    const during = p.during[read];
    const r = ratio(during.p99Ms, quiet.p99Ms);
    return `| ${read === 'all' ? 'all reads' : READ_NAMES[read]} | ${quiet.requests} | ${quiet.p50Ms} | ${quiet.p99Ms} | ${during.requests} | ${during.p50Ms} | ${during.p99Ms} | ${r}× ${check(r <= TARGETS.pruneP99Ratio)} | ${during.errors} |`;
  });
  const free = (sizes: Record<string, any>) => mb(Object.values(sizes).reduce((sum: number, s: any) => sum + s.freeBytes, 0));
  return [
    `Every organization's retention set to ${p.days} days (\`PATCH /organizations/{id}\`, owners' keys), then the worker's retention job (\`maintenance.retention\`, src/engine/runs/retention.ts) sent by the benchmark and sent again while anything older was left, as production runs it, while the same reads as above, mixed, went on with ${results.settings.readConnections} connections.`,
    '',
    p.removed.failed
      ? `**The prune failed** after ${p.seconds} s: ${p.removed.failed}`
      : `Duration: **${p.seconds} s**. Removed: ${Object.entries(p.removed)
          .map(([kind, n]) => `${kind} ${count(n as number)}`)
          .join(', ')}.`,
    '',
    ...(p.during.all.errors > 0
      ? [`Failed reads during the prune, by what they got: ${JSON.stringify(p.during.all.failures ?? 'not recorded by this run')}.`, '']
      : []),
    '| table | rows before | rows after |',
    '|---|---:|---:|',
    ...Object.keys(p.rowsBefore).map((table) => `| ${table} | ${count(p.rowsBefore[table])} | ${count(p.rowsAfter[table])} |`),
    '',
    '| read | quiet: requests | p50 ms | p99 ms | during the prune: requests | p50 ms | p99 ms | p99 / quiet (target ≤ 2×) | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...readRows,
    '',
    `Bytes on disk (all five tables, with indexes and TOAST): ${total(p.sizes.before)} MB before the prune, ${total(p.sizes.afterPrune)} MB after it (dead rows: ${dead(p.sizes.afterPrune)}), ${total(p.sizes.afterVacuum)} MB after a plain \`VACUUM (ANALYZE)\` of them (${p.vacuumSeconds} s; dead rows: ${dead(p.sizes.afterVacuum)}). Free space the tables' free space maps record (room their new rows reuse, not given back to the OS): ${free(p.sizes.afterPrune)} MB after the prune, ${free(p.sizes.afterVacuum)} MB after VACUUM. Autovacuum had visited ${p.autovacuumed.length === 0 ? 'none of them' : p.autovacuumed.join(', ')} between the prune's start and that VACUUM.`,
    '',
    '| table | MB before | MB after the prune | MB after VACUUM | of which free for reuse (heap, after VACUUM) |',
    '|---|---:|---:|---:|---:|',
    ...Object.keys(p.sizes.before).map(
      (table) =>
        `| ${table} | ${mb(p.sizes.before[table].totalBytes)} | ${mb(p.sizes.afterPrune[table]?.totalBytes ?? 0)} | ${mb(p.sizes.afterVacuum[table]?.totalBytes ?? 0)} | ${mb(p.sizes.afterVacuum[table]?.freeBytes ?? 0)} |`,
    ),
  ];
}

export function growthReport(results: any): string {
  const { empty, full, fill, settings } = results;
  const throughputRatio = ratio(full.throughput.executionsPerSecond, empty.throughput.executionsPerSecond);
  const cpu = (t: any) =>
    Object.entries(t.cpuMsPerExecution)
      .map(([name, ms]) => `${name} ${ms}`)
      .join(', ');
  const lines = [
    '# Growth benchmark results',
    '',
    `Generated by \`npm run bench:growth\` on ${results.date.slice(0, 10)}: Tolstoy (an API process and one worker process, as \`npm start\` and \`npm run worker\` run them) on one embedded PostgreSQL 18 with durable settings, every flow step calling one local JSON echo server, measured in the same run on two databases of that one server: one empty (${settings.tenants} organizations set up through the API, and only the runs the benchmark itself starts), one with the same set-up and a history of ${count(fill.rows.executions)} executions written into it. The two were measured alternately (B round by round, the reads read by read, each time the other going first), so that neither always met a busier machine. Only ratios mean anything on a shared machine.`,
    '',
    `Machine: ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.memoryGb} GiB, ${results.machine.os}; Node.js ${results.versions.node}.`,
    '',
    '## The history',
    '',
    `Written in bulk with SQL (bench/growth/fill.ts), not through the API: ${count(settings.executions)} executions of the two three-step flows of each of ${settings.tenants} organizations over ${settings.days} days, in batches of ${count(settings.batch)} (\`INSERT … SELECT\` from \`generate_series\`), oldest first, ids UUIDv7 made at each row's creation time. Half the runs are of the flow scenario B starts through the API, half of a flow a webhook trigger starts (a trigger delivery each, and an event delivery of each end to a subscription). ${1000 - 40 - 10} in 1,000 completed, 40 failed (their second step after 3 attempts), 10 were cancelled. Each row has the columns and sizes a real run leaves (its steps' requests and responses, one engine log per settled attempt).`,
    '',
    `Fill: **${fill.seconds} s**, then \`ANALYZE\` ${fill.analyzeSeconds} s. Rows: ${Object.entries(fill.rows)
      .map(([table, n]) => `${table} ${count(n as number)}`)
      .join(', ')}.`,
    '',
    '## Bytes per execution',
    '',
    ...sizeTable(results.sizes, fill.rows.executions),
    '',
    '## Scenario B on the empty and the full database',
    '',
    `Three-step runs started through the API as fast as accepted (bench/engine's load generator, ${settings.connections} connections, ${settings.seconds} s, after ${settings.warmupSeconds} s of warm-up), across all ${settings.tenants} organizations, start to finish; the median of ${settings.rounds} rounds.`,
    '',
    '| database | executions in it | completed/s (rounds) | p50 ms | p99 ms | errors | CPU ms per execution |',
    '|---|---:|---|---:|---:|---:|---|',
    `| empty | ${count(empty.rows)} | ${empty.throughput.executionsPerSecond} (${empty.throughput.rounds.join(', ')}) | ${empty.throughput.p50Ms} | ${empty.throughput.p99Ms} | ${empty.throughput.errors} | ${cpu(empty.throughput)} |`,
    `| full | ${count(full.rows)} | ${full.throughput.executionsPerSecond} (${full.throughput.rounds.join(', ')}) | ${full.throughput.p50Ms} | ${full.throughput.p99Ms} | ${full.throughput.errors} | ${cpu(full.throughput)} |`,
    '',
    `Full / empty: **${throughputRatio}×** (target ≥ ${TARGETS.throughputRatio} ${check(throughputRatio >= TARGETS.throughputRatio)}).`,
    '',
    '## Reads on the empty and the full database',
    '',
    `${settings.requests} requests of each read (after a few unmeasured), ${settings.readConnections} at a time, sent from the benchmark's own process (undici) to the API process, spread over the organizations (each with its owner's API key); each answer checked (200, the right shape). The ids read are picked at random among each organization's executions; the later page starts at the execution half-way down the organization's list.`,
    '',
    '| read | empty: p50 ms | p99 ms | full: p50 ms | p99 ms | p99 full / empty (target ≤ 1.5×) | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...READS.map((read) => {
      const e = empty.reads[read];
      const f = full.reads[read];
      const r = ratio(f.p99Ms, e.p99Ms);
      return `| ${READ_NAMES[read]} | ${e.p50Ms} | ${e.p99Ms} | ${f.p50Ms} | ${f.p99Ms} | ${r}× ${check(r <= TARGETS.readP99Ratio)} | ${e.errors + f.errors} |`;
    }),
    '',
    ...Object.entries(results.explain).flatMap(([read, plan]) => [
      `### The plan of ${READ_NAMES[read as Read]} on the full database (missed its target)`,
      '',
      '```',
      plan as string,
      '```',
      '',
    ]),
    `## Pruning ${Math.round((1 - settings.retentionDays / settings.days) * 100)}% of the history with retention`,
    '',
    ...pruneSection(results),
    '',
  ];
  const notes = readFileSync(join(ROOT, 'bench', 'growth', 'notes.md'), 'utf8').trim();
  return [...lines, notes, ''].join('\n');
}
