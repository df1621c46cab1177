// An execution's progress, as the worker records it. Each call is one statement (one round trip):
// claiming a run, and recording changes: the step runs begun, settled or waiting, their attempts'
// logs, the steps cancelled under a failed loop or branch, and at the end the execution's outcome.
// Every write is fenced by the lease the claim took, and by the execution still running: a worker
// that lost its job, or whose run was cancelled, writes nothing more (and learns so from the
// answer). Handing a waiting run back, with its timer, is in waits.ts.
import { v7 as uuidv7 } from 'uuid';
import type { Database } from '../../db/client.ts';
import { toJsonText } from '../../db/client.ts';
import type { StepKind, StoredStep } from '../../definitions/steps.ts';
import type { RunQueue } from '../jobs/queue.ts';
import { RUN_CHANGES } from './changes.ts';
import { freeSlots, takeSlot } from './slots.ts';
import { OPEN_STEP, type StepStatus, sqlList, UNFINISHED } from './statuses.ts';
import { wakeParent } from './waits.ts';

export interface ClaimedRun {
  id: string;
  orgId: string;
  flowId: string;
  flowVersion: number;
  input: Record<string, unknown>;
  /** What started it (src/engine/runs/start.ts), as templates see it. */
  trigger: Record<string, unknown>;
  createdBy: string | null;
  /** For a sub-flow's run, its parent execution. */
  parentId: string | null;
  /** How deep in sub-flows it runs: 0 for a run started otherwise. */
  depth: number;
  /** For a sub-flow's run, the first run of its tree. */
  rootId: string | null;
  /** For a version with concurrency, the slots it holds (src/engine/runs/slots.ts): its end frees one. */
  concurrencyKey: string | null;
  lease: string;
  steps: StoredStep[];
  outputTemplate: Record<string, unknown> | null;
  /** Each step run's state as the claim found it: a resumed run skips what is settled, and goes on from there. */
  progress: StepProgress[];
  /** Bytes the run stored before this claim: its attempts' inputs and responses (as logged), holders' outputs, what its kinds keep (a loop's items), and the answers of the steps a retry reused. */
  stored: number;
  /** The actions the steps call, with their tools, by action id. */
  actions: Map<string, ActionCall>;
  /** The database's clock at the claim: what a waiting step's time is compared with. */
  claimedAt: Date;
}

export interface StepProgress {
  path: string;
  kind: StepKind;
  status: StepStatus;
  /** When a waiting step is due. */
  wakeAt: string | null;
  attempts: number;
  /** How often a worker stopped in the middle of it. */
  resumes: number;
  response: { status: number; headers: Record<string, string>; body: unknown } | null;
  output: unknown;
  error: Failure | null;
  /** What its kind keeps: a loop's items, a switch's case, a sub-flow's child, the signal awaited. */
  state: StepState | null;
}

/** What a step of a kind other than an action keeps while it runs. */
export interface StepState {
  items?: unknown[];
  case?: number | 'default';
  childId?: string;
  signal?: string;
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
  parent_id: string | null;
  depth: number;
  root_id: string | null;
  concurrency_key: string | null;
  steps: string;
  output_template: string | null;
  progress: (Omit<StepProgress, 'output' | 'state'> & { output: string | null; state: string | null })[] | null;
  stored: number;
  actions: (Omit<ActionCall, 'headers' | 'inputSchema'> & { headers: string; inputSchema: string })[] | null;
}

/** Takes the run for this worker (a new lease), with every step run's state; null when there is nothing left to run, or it needs a slot first. */
export async function claimRun(db: Pick<Database, '$queryRaw'>, executionId: string): Promise<ClaimedRun | null> {
  const lease = uuidv7();
  const [row] = await db.$queryRaw<ClaimRow[]>`
    WITH claimed AS (
      UPDATE executions SET status = 'running', lease = ${lease}::uuid, started_at = COALESCE(started_at, now()), updated_at = now()
      -- A queued run of a version with concurrency first takes a slot (src/engine/runs/slots.ts).
      WHERE id = ${executionId}::uuid AND status IN ${sqlList(UNFINISHED)} AND (concurrency_limit IS NULL OR status = 'running')
      RETURNING id, org_id, flow_id, flow_version, input, trigger, created_by, parent_id, depth, root_id, concurrency_key
    )
    SELECT now() AS now, c.id, c.org_id, c.flow_id, c.flow_version, c.input, c.trigger, c.created_by, c.parent_id, c.depth, c.root_id, c.concurrency_key, v.steps, v.output AS output_template,
      (SELECT COALESCE(sum(octet_length(l.inputs) + COALESCE(octet_length(l.outputs), 0)), 0)::float8 FROM execution_logs l
        WHERE l.org_id = c.org_id AND l.execution_id = c.id::text AND l.written_by_engine)
      -- A retry holds the answers of the steps it reuses: without them, each retry would hold a budget more.
      + (SELECT COALESCE(sum(COALESCE(octet_length(s.response), 0) + COALESCE(octet_length(s.output), 0)), 0)::float8 FROM execution_steps s WHERE s.execution_id = c.id AND s.reused_from IS NOT NULL)
      -- The outputs of loops, switches and parallel steps, which no log keeps.
      + (SELECT COALESCE(sum(octet_length(s.output)), 0)::float8 FROM execution_steps s WHERE s.execution_id = c.id AND s.reused_from IS NULL AND s.kind IN ('switch', 'forEach', 'parallel'))
      -- What the kinds keep: a loop's items, which it holds for its iterations' templates.
      + (SELECT COALESCE(sum(octet_length(s.state)), 0)::float8 FROM execution_steps s WHERE s.execution_id = c.id) AS stored,
      (SELECT json_agg(json_build_object('path', s.path, 'kind', s.kind, 'status', s.status, 'wakeAt', s.wake_at, 'attempts', s.attempts, 'resumes', s.resumes,
          'response', s.response::json, 'output', s.output, 'error', s.error::json, 'state', s.state) ORDER BY s.position)
        FROM execution_steps s WHERE s.execution_id = c.id) AS progress,
      (SELECT json_agg(json_build_object('id', a.id, 'method', a.method, 'endpoint', a.endpoint, 'headers', a.headers, 'inputSchema', a.input_schema,
          'tool', json_build_object('id', t.id, 'baseUrl', t.base_url, 'authType', t.auth_type, 'credentials', t.credentials)))
        FROM actions a JOIN tools t ON t.org_id = a.org_id AND t.id = a.tool_id
        -- The ids of the steps' actions at any depth, read in their text: jsonb refuses a template holding U+0000.
        WHERE a.org_id = c.org_id AND a.id::text IN (SELECT lower(id[1]) FROM regexp_matches(v.steps, '"actionId"[[:space:]]*:[[:space:]]*"([0-9a-fA-F-]{36})"', 'g') AS id)) AS actions
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
    parentId: row.parent_id,
    depth: row.depth,
    rootId: row.root_id,
    concurrencyKey: row.concurrency_key,
    lease,
    steps: JSON.parse(row.steps),
    outputTemplate: row.output_template === null ? null : JSON.parse(row.output_template),
    progress: (row.progress ?? []).map((step) => ({
      ...step,
      output: step.output === null ? null : JSON.parse(step.output),
      state: step.state === null ? null : JSON.parse(step.state),
    })),
    stored: row.stored,
    actions: new Map(
      (row.actions ?? []).map((action) => [action.id, { ...action, headers: JSON.parse(action.headers), inputSchema: JSON.parse(action.inputSchema) }]),
    ),
  };
}

/**
 * Claims the run; for a queued run of a version with concurrency, only with a slot of its key, in
 * the transaction that takes it. Null when there is nothing to run now: finished, waiting for a
 * slot (its job ends, and the run that frees one wakes it), or failed for its key.
 */
export async function claimWithSlot(db: Database, queue: RunQueue, executionId: string): Promise<ClaimedRun | null> {
  const run = await claimRun(db, executionId);
  if (run) return run;
  const claimed = await db.$transaction(async (tx) => {
    const slot = await takeSlot(tx, queue, executionId);
    return slot.outcome === 'go' ? { run: await claimRun(tx, executionId) } : slot;
  });
  if ('run' in claimed) return claimed.run;
  if (claimed.outcome === 'fail') await abandonRun(db, queue, executionId, claimed.error);
  return null;
}

/** Thrown when the run is no longer this worker's to write: cancelled, or taken by another worker. */
export class LostRun extends Error {
  constructor() {
    super('The execution is no longer this worker’s to run.');
  }
}

export interface Failure {
  code: string;
  message: string;
  step?: string;
}

/**
 * A change of one step run, as recorded: the state it takes, with what its attempt sent and
 * received. `attempt` counts an attempt made now (one found running is then counted as resumed);
 * `refused` takes back the attempt counted when the step began, which its tool's rate limit did
 * not let go; `keep` keeps the last attempt's record (a new attempt begins); `log` writes the attempt's
 * execution log.
 */
export interface StepWrite {
  path: string;
  key: string;
  kind: StepKind;
  actionId?: string | null;
  status: StepStatus;
  attempt?: boolean;
  refused?: boolean;
  keep?: boolean;
  wakeAt?: Date | null;
  request?: unknown;
  response?: unknown;
  output?: unknown;
  error?: Failure;
  durationMs?: number;
  state?: StepState;
  /** The attempt's execution log: its status, and the inputs it was given. */
  log?: { status: 'completed' | 'failed' | 'skipped' | 'cancelled'; inputs: unknown };
}

export interface Changes {
  writes: StepWrite[];
  /** Step runs whose open descendants end `cancelled` (a loop or parallel step that failed). */
  cancelUnder?: string[];
  finish?: { status: 'completed' | 'failed'; output?: unknown; error?: Failure };
}

const FINAL_STEP = ['completed', 'failed', 'skipped', 'cancelled', 'not_run'];

/** Records changes in one statement; false when the run is no longer this worker's to write. */
export async function recordChanges(db: Database, run: ClaimedRun, { writes, cancelUnder = [], finish }: Changes): Promise<boolean> {
  const text = (value: unknown) => (value === undefined ? null : toJsonText(value as object));
  const rows = writes.map((write, n) => ({
    n,
    path: write.path,
    key: write.key,
    kind: write.kind,
    action_id: write.actionId ?? null,
    status: write.status,
    count: write.attempt ? 1 : write.refused ? -1 : 0,
    keep: write.keep === true,
    final: FINAL_STEP.includes(write.status),
    wake_at: write.wakeAt?.toISOString() ?? null,
    request: text(write.request),
    response: text(write.response),
    output: text(write.output),
    error: text(write.error),
    duration_ms: write.durationMs ?? null,
    state: text(write.state),
    log_id: write.log ? uuidv7() : null,
    log_status: write.log?.status ?? null,
    log_inputs: write.log ? (text(write.log.inputs) ?? '{}') : null,
  }));
  const [row] = await db.$queryRaw<{ owned: number }[]>`
    WITH owner AS (
      SELECT id, org_id, flow_id, created_by FROM executions
      WHERE id = ${run.id}::uuid AND lease = ${run.lease}::uuid AND status = 'running' FOR UPDATE
    ),
    w AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS w(n int, path text, key text, kind text, action_id uuid, status text, count int, keep boolean,
        final boolean, wake_at timestamptz, request text, response text, output text, error text, duration_ms int, state text, log_id uuid, log_status text, log_inputs text)
      WHERE EXISTS (SELECT 1 FROM owner)
    ),
    base AS (SELECT COALESCE(max(position), -1) + 1 AS p FROM execution_steps WHERE execution_id = ${run.id}::uuid),
    -- New step runs are inserted; those recorded before are updated (this statement's UPDATE does not see the rows it inserts).
    inserted AS (
      INSERT INTO execution_steps (execution_id, path, position, org_id, key, kind, action_id, status, attempts, started_at, finished_at, duration_ms, request, response, output, error, state, wake_at)
      SELECT ${run.id}::uuid, w.path, base.p + w.n, ${run.orgId}::uuid, w.key, w.kind, w.action_id, w.status::step_state, CASE WHEN w.status = 'skipped' THEN 0 ELSE w.count END,
        CASE WHEN w.status <> 'skipped' THEN now() END, CASE WHEN w.final THEN now() END, w.duration_ms, w.request, w.response, w.output, w.error, w.state, w.wake_at
      FROM w, base
      ON CONFLICT (execution_id, path) DO NOTHING
    ),
    updated AS (
      UPDATE execution_steps s SET
        status = w.status::step_state,
        wake_at = w.wake_at,
        -- A skipped step was never attempted.
        attempts = CASE WHEN w.status = 'skipped' THEN 0 ELSE s.attempts + w.count END,
        resumes = s.resumes + CASE WHEN w.count = 1 AND s.status = 'running' THEN 1 ELSE 0 END,
        started_at = CASE WHEN w.status = 'skipped' THEN NULL ELSE COALESCE(s.started_at, now()) END,
        finished_at = CASE WHEN w.final THEN now() END,
        duration_ms = CASE WHEN w.keep THEN s.duration_ms ELSE w.duration_ms END,
        request = CASE WHEN w.keep THEN s.request ELSE w.request END,
        response = CASE WHEN w.keep THEN s.response ELSE w.response END,
        output = CASE WHEN w.keep THEN s.output ELSE w.output END,
        error = CASE WHEN w.keep THEN s.error ELSE w.error END,
        state = COALESCE(w.state, s.state)
      FROM w WHERE s.execution_id = ${run.id}::uuid AND s.path = w.path
    ),
    logged AS (
      INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, outputs, error, duration_ms, updated_at)
      SELECT w.log_id, owner.org_id, owner.flow_id, owner.created_by, owner.id::text, w.path, w.log_status::execution_status,
        -- A log's outputs are an object: an action's answer, or another kind's output under "output".
        w.log_inputs, COALESCE(w.response, CASE WHEN w.output IS NOT NULL THEN json_build_object('output', w.output::json)::text END), w.error, w.duration_ms, now()
      FROM w, owner WHERE w.log_status IS NOT NULL
    ),
    cancelled AS (
      UPDATE execution_steps SET status = 'cancelled', wake_at = NULL, finished_at = now()
      WHERE execution_id = ${run.id}::uuid AND status IN ${sqlList(OPEN_STEP)} AND EXISTS (SELECT 1 FROM owner)
        AND EXISTS (SELECT 1 FROM unnest(${cancelUnder}::text[]) AS holder
          WHERE left(path, length(holder) + 1) IN (holder || '.', holder || '['))
        AND NOT EXISTS (SELECT 1 FROM w WHERE w.path = execution_steps.path)
    ),
    finished AS (
      UPDATE executions SET status = ${finish?.status ?? null}::execution_state, output = ${text(finish?.output)}, error = ${text(finish?.error)},
        finished_at = now(), updated_at = now(), lease = NULL
      FROM owner WHERE executions.id = owner.id AND ${finish?.status ?? null}::text IS NOT NULL
      RETURNING executions.id, executions.status
    ),
    -- A plain SELECT: it runs because the final SELECT counts it.
    notified AS (SELECT pg_notify(${RUN_CHANGES}, id || ':' || status) FROM finished),
    -- The steps the execution ended before never run, and those it ended during (a budget spent) end with it: that is final too.
    unrun AS (
      UPDATE execution_steps SET status = CASE WHEN status = 'pending' THEN 'not_run' ELSE 'cancelled' END::step_state, wake_at = NULL
      WHERE execution_id = ${run.id}::uuid AND status IN ${sqlList(OPEN_STEP)} AND ${finish?.status ?? null}::text IS NOT NULL AND EXISTS (SELECT 1 FROM owner)
        AND NOT EXISTS (SELECT 1 FROM w WHERE w.path = execution_steps.path)
    )
    SELECT (SELECT count(*) FROM owner)::int AS owned, (SELECT count(*) FROM notified)::int AS notified`;
  return (row?.owned ?? 0) > 0;
}

/**
 * Fails a run that cannot go on (its flow version or an action vanished, the queue gave up): its
 * open step runs fail with the same error (those not begun are `not_run`), and its parent, if it is
 * a sub-flow's run, hears of it.
 */
export async function abandonRun(db: Database, queue: RunQueue, executionId: string, error: Failure): Promise<void> {
  await db.$transaction(async (tx) => {
    const [abandoned] = await tx.$queryRaw<{ id: string }[]>`
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
      SELECT id, pg_notify(${RUN_CHANGES}, id || ':failed')::text AS notified FROM abandoned`;
    if (!abandoned) return;
    await wakeParent(tx, queue, executionId);
    await freeSlots(tx, queue, [executionId]);
  });
}

/** How many runs of the organization wait in the queue (they have not started). */
export async function queuedRuns(db: Pick<Database, '$queryRaw'>, orgId: string): Promise<number> {
  const [row] = await db.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM executions WHERE org_id = ${orgId}::uuid AND status = 'queued'`;
  return row?.count ?? 0;
}
