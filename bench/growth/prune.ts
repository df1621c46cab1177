// The growth benchmark's prune: every organization's retention set through the API to keep
// `days` days, then retention run as production runs it (the worker's `maintenance.retention`
// jobs, one after another, until nothing older is left) while reads go on against the API, and
// what the tables hold and take on disk before, after, and after a plain VACUUM.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { openQueue } from '../../src/engine/jobs/queue.ts';
import { HISTORY_TABLES, rowCounts } from './fill.ts';
import { type Latency, type Probe, type Read, readsDuring } from './reads.ts';
import { setRetention } from './tenants.ts';

export interface TableSize {
  totalBytes: number;
  tableBytes: number;
  indexBytes: number;
  liveRows: number;
  deadRows: number;
  /** The table's free space as its free space map records it (VACUUM updates it): room new rows reuse. */
  freeBytes: number;
}

export type Sizes = Record<string, TableSize>;

/** The tables' sizes (the database needs pg_freespacemap: see freeSpaceReadable). */
export async function sizesOf(client: pg.Client): Promise<Sizes> {
  const { rows } = await client.query(
    `SELECT relname AS name, pg_total_relation_size(relid)::float8 AS "totalBytes", pg_relation_size(relid)::float8 AS "tableBytes",
       pg_indexes_size(relid)::float8 AS "indexBytes", n_live_tup::float8 AS "liveRows", n_dead_tup::float8 AS "deadRows",
       (SELECT coalesce(sum(avail), 0) FROM pg_freespace(relid))::float8 AS "freeBytes"
     FROM pg_stat_user_tables WHERE relname = ANY($1)`,
    [HISTORY_TABLES],
  );
  return Object.fromEntries(rows.map(({ name, ...size }) => [name, size]));
}

export async function freeSpaceReadable(client: pg.Client): Promise<void> {
  await client.query('CREATE EXTENSION IF NOT EXISTS pg_freespacemap');
}

export interface PruneFigures {
  days: number;
  seconds: number;
  /** Rows removed by kind and the retention jobs it took, or why a job failed. */
  removed: Record<string, number> | { failed: string };
  rowsBefore: Record<string, number>;
  rowsAfter: Record<string, number>;
  /** The same reads, mixed, for `quietSeconds` before the prune (quiet) and during it. */
  quiet: Record<Read | 'all', Latency>;
  during: Record<Read | 'all', Latency>;
  sizes: { before: Sizes; afterPrune: Sizes; afterVacuum: Sizes };
  vacuumSeconds: number;
  /** Whether autovacuum had visited the tables between the prune and the VACUUM. */
  autovacuumed: string[];
}

export async function prune(
  databaseUrl: string,
  base: string,
  probes: Probe[],
  days: number,
  connections: number,
  quietSeconds: number,
): Promise<PruneFigures> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const before = await sizesOf(client);
    const rowsBefore = await rowCounts(client);
    // The same reads mixed, on the full database before the prune: the quiet figure it is held to.
    const quiet = await readsDuring(base, probes, connections, new Promise((resolve) => setTimeout(resolve, quietSeconds * 1000)));
    const began: Date = (await client.query('SELECT now() AS now')).rows[0].now;
    await setRetention(base, probes, days);
    let seconds = 0;
    const timed = async () => {
      const began = performance.now();
      const jobs = await retentionJobs(databaseUrl, client, days);
      seconds = (performance.now() - began) / 1000;
      return jobs;
    };
    const during = await readsDuring(base, probes, connections, timed());
    const afterPrune = await sizesOf(client);
    const rowsAfter = await rowCounts(client);
    const { rows } = await client.query<{ name: string }>(`SELECT relname AS name FROM pg_stat_user_tables WHERE relname = ANY($1) AND last_autovacuum > $2`, [
      HISTORY_TABLES,
      began,
    ]);
    const vacuuming = performance.now();
    await client.query(`VACUUM (ANALYZE) ${HISTORY_TABLES.join(', ')}`);
    const vacuumSeconds = (performance.now() - vacuuming) / 1000;
    const afterVacuum = await sizesOf(client);
    return {
      days,
      seconds: Math.round(seconds * 10) / 10,
      removed: 'failed' in during.value ? during.value : { ...removedRows(rowsBefore, rowsAfter), jobs: during.value.jobs },
      rowsBefore,
      rowsAfter,
      quiet: quiet.reads,
      during: during.reads,
      sizes: { before, afterPrune, afterVacuum },
      vacuumSeconds: Math.round(vacuumSeconds * 10) / 10,
      autovacuumed: rows.map((row) => row.name),
    };
  } finally {
    await client.end();
  }
}

const RETENTION = 'maintenance.retention';

/**
 * Sends the worker's retention job and waits for it, again while finished executions older than
 * `days` are left (a job stops beginning batches after 8 minutes, as the next one goes on); a
 * job the schedule sends meanwhile is one of them (the queue runs one at a time).
 */
async function retentionJobs(databaseUrl: string, client: pg.Client, days: number): Promise<{ jobs: number } | { failed: string }> {
  const boss = await openQueue({ url: databaseUrl, working: false });
  try {
    for (let jobs = 1; ; jobs++) {
      const id = (await boss.send(RETENTION, {}))!;
      for (;;) {
        const job = await boss.getJobById(RETENTION, id);
        if (job?.state === 'completed') break;
        if (job?.state === 'failed' || !job) return { failed: JSON.stringify(job?.output ?? 'the job is gone') };
        await sleep(250);
      }
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM executions WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < now() - make_interval(days => $1)`,
        [days],
      );
      if (rows[0]!.n === 0) return { jobs };
    }
  } finally {
    await boss.stop({ graceful: false });
  }
}

/** What the prune removed, by kind, from the tables' rows before and after it. */
function removedRows(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const gone = (table: string) => before[table]! - after[table]!;
  return {
    executions: gone('executions'),
    steps: gone('execution_steps'),
    logs: gone('execution_logs'),
    triggerDeliveries: gone('trigger_deliveries'),
    eventDeliveries: gone('event_deliveries'),
  };
}
