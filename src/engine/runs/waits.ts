// Waiting without a worker. A turn with nothing left to do now parks its run: the lease is let go
// and the queue holds one timer, for the earliest time a step of the run is due (a retry, a
// sleep's end, a waitFor's timeout). News that a waiting step is waiting for (a signal, the end of
// a sub-flow's run) wakes the run: a parked run gets a job now; a run in a turn hears of it on
// `tolstoy_runs`, and parking looks for such news under the run's row lock first, so that news
// that came during the turn is never left unread.
import type { Transaction } from '../../db/client.ts';
import { fromJsonText, toJsonText } from '../../db/client.ts';
import type { RunQueue } from '../jobs/queue.ts';
import { RUN_CHANGES } from './changes.ts';
import type { ClaimedRun, Failure } from './progress.ts';
import { FINISHED, sqlList } from './statuses.ts';

export type Parked = 'parked' | 'news' | 'lost';

/**
 * Hands the run back until `until` (or until news, when null), in one transaction with `handBack`,
 * which ends this turn's job: 'news' when a waiting step can go on now (the turn goes on instead),
 * 'lost' when the run is no longer this worker's.
 */
export async function park(
  tx: Transaction,
  run: ClaimedRun,
  until: Date | null,
  queue: RunQueue,
  handBack: (tx: Transaction) => Promise<void>,
): Promise<Parked> {
  const [owner] = await tx.$queryRaw<{ timer_at: Date | null; now: Date }[]>`
    SELECT timer_at, now() AS now FROM executions WHERE id = ${run.id}::uuid AND lease = ${run.lease}::uuid AND status = 'running' FOR UPDATE`;
  if (!owner) return 'lost';
  // A statement of its own, after the lock: it sees news committed while this waited for the lock.
  if (await hasNews(tx, run.id)) return 'news';
  // A timer already set for a time no later than this one wakes the run soon enough.
  const timerSet = owner.timer_at !== null && owner.timer_at > owner.now && until !== null && owner.timer_at <= until;
  await tx.$executeRaw`
    UPDATE executions SET lease = NULL, timer_at = CASE WHEN ${until !== null && !timerSet} THEN ${until}::timestamptz ELSE timer_at END
    WHERE id = ${run.id}::uuid`;
  if (until !== null && !timerSet) await queue.wakeAt(tx, run, until);
  await handBack(tx);
  return 'parked';
}

/** Whether a waitFor step of the run has a signal to take, or a sub-flow step's child run has finished. */
async function hasNews(tx: Transaction, executionId: string): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ news: boolean }[]>`
    SELECT EXISTS (
      SELECT 1 FROM execution_steps s JOIN execution_signals g ON g.execution_id = s.execution_id AND g.name = s.state::json->>'signal' AND g.taken_by IS NULL
      WHERE s.execution_id = ${executionId}::uuid AND s.status = 'waiting' AND s.kind = 'waitFor'
    ) OR EXISTS (
      SELECT 1 FROM execution_steps s JOIN executions c ON c.id = (s.state::json->>'childId')::uuid
      WHERE s.execution_id = ${executionId}::uuid AND s.status = 'waiting' AND s.kind = 'flow' AND c.status IN ${sqlList(FINISHED)}
    ) AS news`;
  return row?.news === true;
}

/**
 * The waiting steps of the run that news is for: waitFor steps with a signal of their name to take
 * (oldest steps first, as many as there are signals), sub-flow steps whose child run ended.
 */
export async function waitingWithNews(db: Pick<Transaction, '$queryRaw'>, executionId: string): Promise<Set<string>> {
  const rows = await db.$queryRaw<{ path: string }[]>`
    WITH pending AS (
      SELECT name, count(*) AS signals FROM execution_signals WHERE execution_id = ${executionId}::uuid AND taken_by IS NULL GROUP BY name
    ), waiting AS (
      SELECT path, kind, state::json->>'signal' AS signal, state::json->>'childId' AS child,
        row_number() OVER (PARTITION BY kind, state::json->>'signal' ORDER BY position) AS turn
      FROM execution_steps WHERE execution_id = ${executionId}::uuid AND status = 'waiting' AND kind IN ('waitFor', 'flow')
    )
    SELECT w.path FROM waiting w LEFT JOIN pending p ON w.kind = 'waitFor' AND p.name = w.signal
    WHERE (w.kind = 'waitFor' AND w.turn <= COALESCE(p.signals, 0))
      OR (w.kind = 'flow' AND EXISTS (SELECT 1 FROM executions c WHERE c.id = w.child::uuid AND c.status IN ${sqlList(FINISHED)}))`;
  return new Set(rows.map((row) => row.path));
}

/**
 * Tells a run there is news for it, in `tx`: a parked run gets a job now; a run in a turn hears of
 * it (and its parking finds it if it did not). Nothing for a finished run, nor for a parked run
 * when the news is a signal no waiting step will take: a job would take the run up for nothing.
 */
export async function wake(tx: Transaction, queue: RunQueue, executionId: string, signal?: string): Promise<void> {
  const [run] = await tx.$queryRaw<{ id: string; org_id: string; parked: boolean }[]>`
    SELECT id, org_id, lease IS NULL AND status = 'running' AS parked FROM executions WHERE id = ${executionId}::uuid AND status IN ('queued', 'running') FOR UPDATE`;
  if (!run) return;
  if (!run.parked) {
    await tx.$executeRaw`SELECT pg_notify(${RUN_CHANGES}, ${executionId}::text || ':news')`;
    return;
  }
  if (signal !== undefined && !(await isTaken(tx, executionId, signal))) return;
  // Woken once: news that comes before its job is taken finds it no longer parked (the claim
  // takes a lease of its own, and its turn looks at every waiting step).
  await tx.$executeRaw`UPDATE executions SET lease = gen_random_uuid() WHERE id = ${executionId}::uuid`;
  await queue.wake(tx, { id: run.id, orgId: run.org_id });
}

/** Whether the waiting steps of a parked run will take every signal of this name kept for it, the latest included. */
async function isTaken(tx: Transaction, executionId: string, name: string): Promise<boolean> {
  const [row] = await tx.$queryRaw<{ taken: boolean }[]>`
    SELECT (SELECT count(*) FROM execution_steps WHERE execution_id = ${executionId}::uuid AND status = 'waiting' AND kind = 'waitFor' AND state::json->>'signal' = ${name})
      >= (SELECT count(*) FROM execution_signals WHERE execution_id = ${executionId}::uuid AND name = ${name} AND taken_by IS NULL) AS taken`;
  return row?.taken === true;
}

/** Wakes the parent of a sub-flow's run that just ended, in the transaction that ended it. */
export async function wakeParent(tx: Transaction, queue: RunQueue, executionId: string): Promise<void> {
  const [row] = await tx.$queryRaw<{ parent_id: string | null }[]>`SELECT parent_id FROM executions WHERE id = ${executionId}::uuid`;
  if (row?.parent_id) await wake(tx, queue, row.parent_id);
}

/**
 * Takes the oldest signal of this name not yet taken, for the waitFor step at `path`, and
 * completes the step with its payload, in one statement; undefined when none waits (or the run is
 * no longer this worker's).
 */
export async function takeSignal(tx: Transaction, run: ClaimedRun, path: string, name: string): Promise<{ payload: unknown } | undefined> {
  const [row] = await tx.$queryRaw<{ payload: string }[]>`
    WITH owner AS (
      SELECT id FROM executions WHERE id = ${run.id}::uuid AND lease = ${run.lease}::uuid AND status = 'running' FOR UPDATE
    ), taken AS (
      UPDATE execution_signals SET taken_by = ${path}
      WHERE id = (SELECT id FROM execution_signals WHERE execution_id = ${run.id}::uuid AND name = ${name} AND taken_by IS NULL AND EXISTS (SELECT 1 FROM owner)
        ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING payload
    )
    SELECT payload FROM taken`;
  return row ? { payload: fromJsonText(row.payload) } : undefined;
}

/** How a sub-flow's child run ended: its output, or why it failed; undefined while it runs. */
export async function childOutcome(
  tx: Transaction,
  childId: string,
): Promise<{ status: 'completed'; output: unknown } | { status: 'failed'; error: Failure } | undefined> {
  const [row] = await tx.$queryRaw<{ status: string; output: string | null; error: string | null }[]>`
    SELECT status::text, output, error FROM executions WHERE id = ${childId}::uuid AND status IN ${sqlList(FINISHED)}`;
  if (!row) return undefined;
  if (row.status === 'completed') return { status: 'completed', output: row.output === null ? null : fromJsonText(row.output) };
  const cause = row.error === null ? undefined : fromJsonText<Failure>(row.error);
  const message = `Its sub-flow's run ${childId} ${row.status === 'cancelled' ? 'was cancelled' : 'failed'}${cause ? `: ${cause.message}` : '.'}`;
  return { status: 'failed', error: { code: row.status === 'cancelled' ? 'child-cancelled' : 'child-failed', message } };
}

/** Keeps a signal for the execution, and wakes it; the caller holds the execution's row lock. */
export async function keepSignal(
  tx: Transaction,
  queue: RunQueue,
  signal: { id: string; orgId: string; executionId: string; name: string; payload: unknown },
): Promise<void> {
  await tx.$executeRaw`
    INSERT INTO execution_signals (id, org_id, execution_id, name, payload) VALUES
      (${signal.id}::uuid, ${signal.orgId}::uuid, ${signal.executionId}::uuid, ${signal.name}, ${toJsonText(signal.payload ?? null)})`;
  await wake(tx, queue, signal.executionId, signal.name);
}
