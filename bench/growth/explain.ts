// `EXPLAIN (ANALYZE, BUFFERS)` of the statements behind each read, built from the same pieces the
// handlers use (src/resources/executions.ts, executionLogs.ts: boundedPageSql, EXECUTION_COLUMNS),
// with one organization's values; `GET /executions/{id}` is Prisma's findFirst with its steps and
// their count, written out as Prisma sends it (three statements).
import pg from 'pg';
import { EXECUTION_COLUMNS } from '../../src/engine/runs/start.ts';
import { Prisma } from '../../src/generated/prisma/client.ts';
import { boundedPageSql } from '../../src/resources/pagination.ts';
import type { Probe, Read } from './reads.ts';

function listSql(probe: Probe, filter: Prisma.Sql, cursor?: string): Prisma.Sql {
  const from = Prisma.sql`FROM executions e WHERE e.org_id = ${probe.orgId}::uuid ${filter}`;
  return boundedPageSql({ limit: 20, cursor }, { columns: EXECUTION_COLUMNS, from, documents: ['e.input', 'e.output', 'e.error'] });
}

function statementsOf(read: Read, probe: Probe): Prisma.Sql[] {
  const id = probe.executionIds[0]!;
  switch (read) {
    case 'list':
      return [listSql(probe, Prisma.empty)];
    case 'laterPage':
      return [listSql(probe, Prisma.empty, probe.cursor)];
    case 'byFlow':
      return [listSql(probe, Prisma.sql`AND e.flow_id = ${probe.flowId}::uuid`)];
    case 'byStatus':
      return [listSql(probe, Prisma.sql`AND e.status = ${'completed'}::execution_state`)];
    case 'one':
      return [
        Prisma.sql`SELECT * FROM executions WHERE id = ${id}::uuid AND org_id = ${probe.orgId}::uuid LIMIT 1`,
        Prisma.sql`SELECT * FROM execution_steps WHERE execution_id IN (${id}::uuid) ORDER BY position ASC LIMIT 1000`,
        Prisma.sql`SELECT execution_id, count(*) FROM execution_steps WHERE execution_id IN (${id}::uuid) GROUP BY execution_id`,
      ];
    case 'logs': {
      const from = Prisma.sql`FROM execution_logs WHERE org_id = ${probe.orgId}::uuid AND execution_id = ${id}`;
      return [boundedPageSql({ limit: 20 }, { columns: Prisma.sql`*`, from, documents: ['inputs', 'outputs', 'error'] })];
    }
  }
}

/** The plans of a read's statements, as text. */
export async function explain(databaseUrl: string, read: Read, probe: Probe): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const plans: string[] = [];
    for (const statement of statementsOf(read, probe)) {
      const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`, statement.values as unknown[]);
      plans.push(rows.map((row) => row['QUERY PLAN']).join('\n'));
    }
    return plans.join('\n\n');
  } finally {
    await client.end();
  }
}
