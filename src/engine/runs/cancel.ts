// Cancelling a run: the run and its open steps end `cancelled`, and workers hear of it.
import type { Database } from '../../db/client.ts';
import { toJsonText } from '../../db/client.ts';
import { RUN_CHANGES } from './changes.ts';
import { OPEN_STEP, sqlList, UNFINISHED } from './statuses.ts';

/**
 * Cancels a queued or running execution in one transaction: its open steps end `cancelled`, and
 * the attempt in flight, if any, is logged as cancelled like any other attempt. False when the
 * execution is not there or already finished.
 */
export async function cancelRun(db: Database, { orgId, executionId, by }: { orgId: string; executionId: string; by: string }): Promise<boolean> {
  const error = toJsonText({ code: 'cancelled', message: `Cancelled by ${by}.` });
  return db.$transaction(async (tx) => {
    // The row lock orders this against the worker's own writes, which check the state first.
    const [row] = await tx.$queryRaw<{ id: string }[]>`
      UPDATE executions SET status = 'cancelled', error = ${error}, finished_at = now(), updated_at = now(), lease = NULL
      WHERE org_id = ${orgId}::uuid AND id = ${executionId}::uuid AND status IN ${sqlList(UNFINISHED)} RETURNING id`;
    if (!row) return false;
    await tx.$executeRaw`
      WITH ended AS (
        -- The worker may have started the step after this transaction began (now()), on its own clock.
        UPDATE execution_steps SET status = 'cancelled', finished_at = greatest(now(), started_at), wake_at = NULL,
          -- A waiting step keeps its last attempt's duration and error.
          duration_ms = CASE WHEN status = 'running' THEN greatest(0, extract(epoch FROM now() - started_at) * 1000)::int ELSE duration_ms END,
          error = CASE WHEN status = 'running' THEN ${toJsonText({ code: 'cancelled', message: 'The execution was cancelled during this step.' })} ELSE error END
        WHERE execution_id = ${executionId}::uuid AND status IN ${sqlList(OPEN_STEP)}
        RETURNING path, duration_ms, error, (SELECT status FROM execution_steps s WHERE s.execution_id = execution_steps.execution_id AND s.path = execution_steps.path) AS was
      ), logged AS (
        INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, error, duration_ms, updated_at)
        SELECT gen_random_uuid(), e.org_id, e.flow_id, e.created_by, e.id::text, ended.path, 'cancelled', '{}', ended.error, ended.duration_ms, now()
        FROM ended JOIN executions e ON e.id = ${executionId}::uuid WHERE ended.was = 'running'
      )
      SELECT pg_notify(${RUN_CHANGES}, ${executionId}::text || ':cancelled')`;
    return true;
  });
}
