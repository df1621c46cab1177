// Cancelling a run: the run, its sub-flows' runs and theirs, and their open steps end `cancelled`,
// and workers hear of it.
import { v7 as uuidv7 } from 'uuid';
import type { Database } from '../../db/client.ts';
import { toJsonText } from '../../db/client.ts';
import type { RunQueue } from '../jobs/queue.ts';
import { RUN_CHANGES } from './changes.ts';
import { freeSlots } from './slots.ts';
import { OPEN_STEP, sqlList, UNFINISHED } from './statuses.ts';
import { wakeParent } from './waits.ts';

/**
 * Cancels a queued or running execution and its unfinished descendants in one transaction: their
 * open steps end `cancelled`, and the attempts in flight are logged as cancelled like any other
 * attempt. A sub-flow's run cancelled alone wakes its parent, whose step then fails. False when
 * the execution is not there or already finished.
 */
export async function cancelRun(
  db: Database,
  queue: RunQueue,
  { orgId, executionId, by }: { orgId: string; executionId: string; by: string },
): Promise<boolean> {
  const error = toJsonText({ code: 'cancelled', message: `Cancelled by ${by}.` });
  const parentCancelled = toJsonText({ code: 'cancelled', message: `Cancelled with its parent execution ${executionId}, by ${by}.` });
  return db.$transaction(async (tx) => {
    // The row locks order this against the workers' own writes, which check the state first.
    const rows = await tx.$queryRaw<{ id: string }[]>`
      WITH RECURSIVE family AS (
        SELECT id, 0 AS depth FROM executions WHERE org_id = ${orgId}::uuid AND id = ${executionId}::uuid AND status IN ${sqlList(UNFINISHED)}
        UNION ALL
        SELECT c.id, f.depth + 1 FROM executions c JOIN family f ON c.parent_id = f.id WHERE c.org_id = ${orgId}::uuid AND c.status IN ${sqlList(UNFINISHED)} AND f.depth < 10
      )
      UPDATE executions SET status = 'cancelled', error = CASE WHEN executions.id = ${executionId}::uuid THEN ${error} ELSE ${parentCancelled} END,
        finished_at = now(), updated_at = now(), lease = NULL
      WHERE id IN (SELECT id FROM family) AND status IN ${sqlList(UNFINISHED)} RETURNING id`;
    if (!rows.some((row) => row.id === executionId)) return false;
    const ids = rows.map((row) => row.id);
    await tx.$executeRaw`
      WITH ended AS (
        -- The worker may have started the step after this transaction began (now()), on its own clock.
        UPDATE execution_steps SET status = 'cancelled', finished_at = greatest(now(), started_at), wake_at = NULL,
          -- A waiting step keeps its last attempt's duration and error.
          duration_ms = CASE WHEN status = 'running' THEN greatest(0, extract(epoch FROM now() - started_at) * 1000)::int ELSE duration_ms END,
          error = CASE WHEN status = 'running' THEN ${toJsonText({ code: 'cancelled', message: 'The execution was cancelled during this step.' })} ELSE error END
        WHERE execution_id = ANY(${ids}::uuid[]) AND status IN ${sqlList(OPEN_STEP)}
        RETURNING execution_id, path, kind, duration_ms, error,
          (SELECT status FROM execution_steps s WHERE s.execution_id = execution_steps.execution_id AND s.path = execution_steps.path) AS was
      ), logged AS (
        INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, error, duration_ms, updated_at)
        -- UUIDv7s, as every log's id (listings are in id order): this statement's time and random
        -- bits, with each row's number in the last four hex digits.
        SELECT overlay(${uuidv7()}::text PLACING lpad(to_hex(row_number() OVER ()), 4, '0') FROM 33 FOR 4)::uuid, e.org_id, e.flow_id, e.created_by, e.id::text, ended.path, 'cancelled', '{}', ended.error, ended.duration_ms, now()
        FROM ended JOIN executions e ON e.id = ended.execution_id WHERE ended.was = 'running' AND ended.kind = 'action'
      )
      SELECT pg_notify(${RUN_CHANGES}, id::text || ':cancelled') FROM unnest(${ids}::uuid[]) AS id`;
    await wakeParent(tx, queue, executionId);
    // Last: the slots' locks come after every execution's row (src/engine/runs/slots.ts).
    await freeSlots(tx, queue, ids);
    return true;
  });
}
