// An execution's progress, as the worker records it. Each call is one statement (one round trip):
// claiming a run, and each step's transition, which also starts the next step, logs the attempt
// and, at the end, finishes the execution. Every write is fenced by the lease the claim took, and
// by the execution still running: a worker that lost its job, or whose run was cancelled,
// writes nothing more (and learns so from the answer). A step that waits is recorded with the
// queue's timer for it, in one transaction (recordWait).
import { v7 as uuidv7 } from 'uuid';
import type { Database, Transaction } from '../../db/client.ts';
import { toJsonText } from '../../db/client.ts';
import type { StoredStep } from '../../resources/flows.ts';
import { RUN_CHANGES } from './changes.ts';
import { OPEN_STEP, type StepStatus, sqlList, UNFINISHED } from './statuses.ts';

export interface ClaimedRun {
  id: string;
  orgId: string;
  flowId: string;
  flowVersion: number;
  input: Record<string, unknown>;
  /** What started it (src/engine/runs/start.ts), as templates see it. */
  trigger: Record<string, unknown>;
  createdBy: string | null;
  lease: string;
  steps: StoredStep[];
  outputTemplate: Record<string, unknown> | null;
  /** Each step's state as the claim found it: a resumed run skips what completed, and goes on from there. */
  progress: StepProgress[];
  /** The path of the step the claim began (its first not yet settled, when due), or null when it began none. */
  begun: string | null;
  /** How often the begun step was resumed after its worker stopped mid-step, this claim included. */
  resumes: number;
  /** Bytes the run's attempts stored before this claim (their inputs and responses, as logged), and the answers of the steps a retry reused. */
  stored: number;
  /** The actions the steps call, with their tools, by action id. */
  actions: Map<string, ActionCall>;
  /** The database's clock at the claim: what a waiting step's time is compared with. */
  claimedAt: Date;
}

export interface StepProgress {
  path: string;
  status: StepStatus;
  /** When a waiting step is due. */
  wakeAt: string | null;
  attempts: number;
  response: { status: number; headers: Record<string, string>; body: unknown } | null;
}

export interface ActionCall {
  id: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  endpoint: string;
  headers: Record<string, string>;
  inputSchema: Record<string, unknown>;
  tool: { id: string; baseUrl: string; authType: 'none' | 'apiKey' | 'bearer' | 'basic' | 'oauth2'; credentials: string | null };
}

interface ClaimRow {
  now: Date;
  id: string;
  org_id: string;
  flow_id: string;
  flow_version: number;
  input: string;
  trigger: string;
  created_by: string | null;
  steps: string;
  output_template: string | null;
  progress: StepProgress[] | null;
  begun: string | null;
  resumes: number | null;
  stored: number;
  actions: (Omit<ActionCall, 'headers' | 'inputSchema'> & { headers: string; inputSchema: string })[] | null;
}

/**
 * Takes the run for this worker (a new lease) and begins its first step not yet settled, or
 * answers null when there is nothing left to run. A step is settled when it completed, was
 * skipped, or failed with continueOnError: one that failed otherwise finished its execution, so
 * the first step still open (pending, running, or waiting and due) is the one to go on with. A
 * step that waits and is not due is not begun: the queue holds a job for when it is.
 */
export async function claimRun(db: Database, executionId: string): Promise<ClaimedRun | null> {
  const lease = uuidv7();
  const [row] = await db.$queryRaw<ClaimRow[]>`
    WITH claimed AS (
      UPDATE executions SET status = 'running', lease = ${lease}::uuid, started_at = COALESCE(started_at, now()), updated_at = now()
      WHERE id = ${executionId}::uuid AND status IN ${sqlList(UNFINISHED)}
      RETURNING id, org_id, flow_id, flow_version, input, trigger, created_by
    ),
    begun AS (
      -- A step found running was cut short: its worker stopped (or was killed) mid-step.
      UPDATE execution_steps SET status = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, now()), wake_at = NULL,
        resumes = resumes + CASE WHEN status = 'running' THEN 1 ELSE 0 END
      WHERE execution_id = ${executionId}::uuid AND EXISTS (SELECT 1 FROM claimed) AND (status <> 'waiting' OR wake_at <= now())
        AND path = (SELECT path FROM execution_steps WHERE execution_id = ${executionId}::uuid AND status IN ${sqlList(OPEN_STEP)} ORDER BY position LIMIT 1)
      RETURNING path, resumes
    )
    -- progress is read as it was before this statement began the step.
    SELECT now() AS now, c.id, c.org_id, c.flow_id, c.flow_version, c.input, c.trigger, c.created_by, v.steps, v.output AS output_template, (SELECT path FROM begun) AS begun, (SELECT resumes FROM begun) AS resumes,
      (SELECT COALESCE(sum(octet_length(l.inputs) + COALESCE(octet_length(l.outputs), 0)), 0)::float8 FROM execution_logs l
        WHERE l.org_id = c.org_id AND l.execution_id = c.id::text AND l.written_by_engine)
      -- A retry holds the answers of the steps it reuses: without them, each retry would hold a budget more.
      + (SELECT COALESCE(sum(octet_length(s.response)), 0)::float8 FROM execution_steps s WHERE s.execution_id = c.id AND s.reused_from IS NOT NULL) AS stored,
      (SELECT json_agg(json_build_object('path', s.path, 'status', s.status, 'wakeAt', s.wake_at, 'attempts', s.attempts, 'response', s.response::json) ORDER BY s.position)
        FROM execution_steps s WHERE s.execution_id = c.id) AS progress,
      (SELECT json_agg(json_build_object('id', a.id, 'method', a.method, 'endpoint', a.endpoint, 'headers', a.headers, 'inputSchema', a.input_schema,
          'tool', json_build_object('id', t.id, 'baseUrl', t.base_url, 'authType', t.auth_type, 'credentials', t.credentials)))
        FROM actions a JOIN tools t ON t.org_id = a.org_id AND t.id = a.tool_id
        WHERE a.org_id = c.org_id AND a.id IN (SELECT (step->>'actionId')::uuid FROM json_array_elements(v.steps::json) AS step)) AS actions
    FROM claimed c JOIN flow_versions v ON v.org_id = c.org_id AND v.flow_id = c.flow_id AND v.version = c.flow_version`;
  if (!row) return null;
  return {
    claimedAt: row.now,
    id: row.id,
    orgId: row.org_id,
    flowId: row.flow_id,
    flowVersion: row.flow_version,
    input: JSON.parse(row.input),
    trigger: JSON.parse(row.trigger),
    createdBy: row.created_by,
    lease,
    steps: JSON.parse(row.steps),
    outputTemplate: row.output_template === null ? null : JSON.parse(row.output_template),
    progress: row.progress ?? [],
    begun: row.begun,
    resumes: row.resumes ?? 0,
    stored: row.stored,
    actions: new Map(
      (row.actions ?? []).map((action) => [action.id, { ...action, headers: JSON.parse(action.headers), inputSchema: JSON.parse(action.inputSchema) }]),
    ),
  };
}

export interface Failure {
  code: string;
  message: string;
  step?: string;
}

/** How one attempt (or a skip) of a step ended, as recorded. */
export interface Settlement {
  path: string;
  /** `waiting` when the step will be tried again (at `wakeAt`). */
  status: 'waiting' | 'completed' | 'failed' | 'skipped' | 'cancelled';
  wakeAt?: Date;
  request?: unknown;
  response?: unknown;
  error?: Failure;
  durationMs?: number;
  /** What the attempt's execution log keeps: the inputs it was given. */
  inputs?: unknown;
}

export interface Transition {
  settle?: Settlement;
  /** The path of the step whose attempt is sent now: its attempt is counted. */
  begin?: string;
  finish?: { status: 'completed' | 'failed'; output?: unknown; error?: Failure };
}

/** Records a transition in one statement; false when the run is no longer this worker's to write. */
export async function recordTransition(db: Database, run: ClaimedRun, { settle, begin, finish }: Transition): Promise<boolean> {
  const path = settle?.path ?? null;
  const next = begin ?? null;
  const text = (value: unknown) => (value === undefined ? null : toJsonText(value as object));
  // A step that waits for another attempt logs the attempt that failed.
  const logStatus = settle ? (settle.status === 'waiting' ? 'failed' : settle.status) : null;
  // Stored twice (the step, its log): made into text once.
  const outputs = settle?.response === undefined ? null : text(settle.response);
  const [row] = await db.$queryRaw<{ owned: number }[]>`
    WITH owner AS (
      SELECT id, org_id, flow_id, created_by FROM executions
      WHERE id = ${run.id}::uuid AND lease = ${run.lease}::uuid AND status = 'running' FOR UPDATE
    ),
    settled AS (
      UPDATE execution_steps SET status = ${settle?.status ?? 'pending'}::step_state, wake_at = ${settle?.wakeAt ?? null}::timestamptz,
        finished_at = CASE WHEN ${settle?.status ?? null}::text <> 'waiting' THEN now() END,
        duration_ms = ${settle?.durationMs ?? null}::int, request = ${text(settle?.request)}, response = ${outputs},
        error = ${text(settle?.error)},
        -- A skipped step was begun (its condition is read after), but never attempted.
        attempts = CASE WHEN ${settle?.status ?? null}::text = 'skipped' THEN 0 ELSE attempts END,
        started_at = CASE WHEN ${settle?.status ?? null}::text = 'skipped' THEN NULL ELSE started_at END
      WHERE execution_id = ${run.id}::uuid AND path = ${path}::text AND EXISTS (SELECT 1 FROM owner)
    ),
    begun AS (
      UPDATE execution_steps SET status = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, now()), wake_at = NULL
      WHERE execution_id = ${run.id}::uuid AND path = ${next}::text AND EXISTS (SELECT 1 FROM owner)
    ),
    logged AS (
      INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, outputs, error, duration_ms, updated_at)
      SELECT ${uuidv7()}::uuid, org_id, flow_id, created_by, id::text, ${path}::text, ${logStatus}::execution_status,
        ${text(settle?.inputs) ?? '{}'}, ${outputs}, ${text(settle?.error)}, ${settle?.durationMs ?? null}::int, now()
      FROM owner WHERE ${logStatus}::text IS NOT NULL
    ),
    finished AS (
      UPDATE executions SET status = ${finish?.status ?? null}::execution_state, output = ${text(finish?.output)}, error = ${text(finish?.error)},
        finished_at = now(), updated_at = now(), lease = NULL
      FROM owner WHERE executions.id = owner.id AND ${finish?.status ?? null}::text IS NOT NULL
      RETURNING executions.id, executions.status
    ),
    -- A plain SELECT: it runs because the final SELECT counts it.
    notified AS (SELECT pg_notify(${RUN_CHANGES}, id || ':' || status) FROM finished),
    -- The steps the execution ended before (a step failed) never run: that is final too.
    unrun AS (
      UPDATE execution_steps SET status = 'not_run'
      WHERE execution_id = ${run.id}::uuid AND status = 'pending' AND ${finish?.status ?? null}::text IS NOT NULL AND EXISTS (SELECT 1 FROM owner)
    )
    SELECT (SELECT count(*) FROM owner)::int AS owned, (SELECT count(*) FROM notified)::int AS notified`;
  return (row?.owned ?? 0) > 0;
}

/**
 * Records that a step waits until `settle.wakeAt`, and sets the queue's timer for that moment
 * (`startTimer`), in one transaction: the run holds no worker while it waits, and neither a crash
 * nor a restart loses the wait or shortens it. False when the run is no longer this worker's.
 */
export async function recordWait(
  db: Database,
  run: ClaimedRun,
  settle: Settlement & { wakeAt: Date },
  startTimer: (tx: Transaction) => Promise<void>,
): Promise<boolean> {
  return db.$transaction(async (tx) => {
    if (!(await recordTransition(tx as unknown as Database, run, { settle }))) return false;
    await startTimer(tx);
    return true;
  });
}

/**
 * Fails a run that cannot go on (its flow version or an action vanished, the queue gave up): the
 * step it was in fails with the same error, and the steps after it are `not_run`.
 */
export async function abandonRun(db: Database, executionId: string, error: Failure): Promise<void> {
  await db.$executeRaw`
    WITH abandoned AS (
      UPDATE executions SET status = 'failed', error = ${toJsonText(error)}, finished_at = now(), updated_at = now(), lease = NULL
      WHERE id = ${executionId}::uuid AND status IN ${sqlList(UNFINISHED)}
      RETURNING id
    ), ended AS (
      -- A waiting step was in the middle of its attempts: it fails with the run, like a running one.
      UPDATE execution_steps SET status = CASE WHEN status = 'pending' THEN 'not_run' ELSE 'failed' END::step_state, wake_at = NULL,
        error = CASE WHEN status = 'pending' THEN error ELSE ${toJsonText(error)} END, finished_at = CASE WHEN status = 'pending' THEN NULL ELSE now() END
      WHERE execution_id IN (SELECT id FROM abandoned) AND status IN ${sqlList(OPEN_STEP)}
    )
    SELECT pg_notify(${RUN_CHANGES}, id || ':failed') FROM abandoned`;
}

/** How many runs of the organization wait in the queue (they have not started). */
export async function queuedRuns(db: Pick<Database, '$queryRaw'>, orgId: string): Promise<number> {
  const [row] = await db.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM executions WHERE org_id = ${orgId}::uuid AND status = 'queued'`;
  return row?.count ?? 0;
}
