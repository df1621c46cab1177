// Starting a run, and starting one again: the only statements that create an execution. A run
// takes its trigger as data (an API call, a webhook's delivery, a schedule's slot), and is
// stored with a pending row per step and queued, in the caller's transaction, so that an
// acknowledged run is never lost.
import { v7 as uuidv7 } from 'uuid';
import { conflict, notFound, unprocessable } from '../../contract/problems.ts';
import { fromJsonText, type Transaction, toJsonText } from '../../db/client.ts';
import { kindOf, type StoredStep } from '../../definitions/steps.ts';
import { type Execution as ExecutionRow, Prisma, type ExecutionStep as StepRow } from '../../generated/prisma/client.ts';
import type { Evaluator } from '../evaluator.ts';
import { concurrencyOfRun, type RunConcurrency } from './slots.ts';
import { isReusable, type StepStatus } from './statuses.ts';

/** What started a run: a member's call, a delivery of a webhook or schedule trigger (replayed by a member), a sub-flow's step, or a failed run (an error flow). */
export type Trigger =
  | { type: 'api'; userId: string }
  | { type: 'webhook'; id: string; deliveryId: string; replay?: true; userId?: string }
  | { type: 'schedule'; id: string; deliveryId: string; scheduledAt: string; replay?: true; userId?: string }
  | { type: 'flow'; executionId: string; step: string }
  | { type: 'error'; executionId: string; flowId: string };

/** How deep sub-flows' runs nest: a run started by a step of a run this deep is refused. */
export const MAX_RUN_DEPTH = 5;

/**
 * Counts a new run in the tree of sub-flows of `rootId`, on the root's row, in the transaction that
 * starts it; false when the tree holds `limit` runs already (its root included).
 */
export async function countTreeRun(tx: Transaction, rootId: string, limit: number): Promise<boolean> {
  const counted = await tx.$executeRaw`UPDATE executions SET tree_runs = tree_runs + 1 WHERE id = ${rootId}::uuid AND tree_runs < ${limit}`;
  return counted > 0;
}

export interface NewRun {
  orgId: string;
  flowId: string;
  /** The flow's current version when not given. */
  version?: number;
  input: Record<string, unknown>;
  trigger: Trigger;
  /** A sub-flow's run: its parent's depth, one more than which it has. */
  parentDepth?: number;
  /** A sub-flow's run: the first run of its tree. */
  rootId?: string;
}

/** A run as stored; `queuedRuns`: its organization's queued runs (itself included), when the statement that stored it counted them. */
export type StoredRun = ExecutionRow & { steps: StepRow[]; queuedRuns?: number };

// An execution's columns under the names of Prisma's model, so that raw rows read as its rows.
export const EXECUTION_COLUMNS = Prisma.sql`e.id, e.org_id AS "orgId", e.flow_id AS "flowId", e.flow_version AS "flowVersion", e.status::text AS status,
  e.input, e.output, e.error, e.retry_of AS "retryOf", e.retry_from_step AS "retryFromStep", e.trigger, e.trigger_id AS "triggerId", e.parent_id AS "parentId", e.parent_step AS "parentStep", e.depth, e.root_id AS "rootId", e.tree_runs AS "treeRuns", e.timer_at AS "timerAt", e.created_by AS "createdBy",
  e.concurrency_key AS "concurrencyKey", e.concurrency_limit AS "concurrencyLimit", e.awaits_slot AS "awaitsSlot",
  e.created_at AS "createdAt", e.started_at AS "startedAt", e.finished_at AS "finishedAt", e.updated_at AS "updatedAt"`;

/** The member behind a trigger, if a member started the run. */
function memberOf(trigger: Trigger): string | null {
  return 'userId' in trigger ? (trigger.userId ?? null) : null;
}

function triggerIdOf(trigger: Trigger): string | null {
  return trigger.type === 'webhook' || trigger.type === 'schedule' ? trigger.id : null;
}

/** What evaluates a version's concurrency key when a run is created (the engine's bounded evaluator). */
export type KeyEvaluator = Pick<Evaluator, 'value'>;

/** The key's value of a new run (src/engine/runs/slots.ts), over its input and trigger. */
function concurrencyOf(
  evaluator: KeyEvaluator,
  stored: string | null,
  run: { id: string; orgId: string; flowId: string; version: number; input: Record<string, unknown>; trigger: Trigger },
): Promise<RunConcurrency | undefined> {
  const context = {
    input: run.input,
    trigger: run.trigger as unknown as Record<string, unknown>,
    steps: {},
    execution: { id: run.id, flowId: run.flowId, flowVersion: run.version },
  };
  return concurrencyOfRun(evaluator, run.orgId, stored, context);
}

/**
 * Stores a queued execution of the flow's current (or given) version, with a pending row per
 * step. The version's steps are read in JavaScript, not as jsonb in SQL, which refuses a template
 * holding U+0000. A version with `concurrency` has its key evaluated here, once; a key that fails
 * is kept as the run's error, and the run fails when first claimed.
 */
export async function storeRun(tx: Transaction, newRun: NewRun, evaluator: KeyEvaluator): Promise<StoredRun> {
  const { orgId, flowId, version, input, trigger, parentDepth, rootId } = newRun;
  const [snapshot] = await tx.$queryRaw<{ currentVersion: number; version: number | null; steps: string | null; concurrency: string | null }[]>`
    SELECT f.version AS "currentVersion", v.version, v.steps, v.concurrency FROM flows f
    LEFT JOIN flow_versions v ON v.org_id = f.org_id AND v.flow_id = f.id AND v.version = COALESCE(${version ?? null}::int, f.version)
    WHERE f.org_id = ${orgId}::uuid AND f.id = ${flowId}::uuid AND f.deleted_at IS NULL`;
  if (!snapshot) throw notFound('flow', flowId);
  if (snapshot.version === null) throw unprocessable('/version', `flow ${flowId} has no version ${version}; its current version is ${snapshot.currentVersion}`);
  const id = uuidv7();
  const slots = await concurrencyOf(evaluator, snapshot.concurrency, { id, orgId, flowId, version: snapshot.version, input, trigger });
  const parent = trigger.type === 'flow' ? trigger : undefined;
  const steps = fromJsonText<StoredStep[]>(snapshot.steps!).map((step, position) => pendingStep(id, orgId, position, step));
  const pending = steps.map(({ path, position, key, kind, actionId }) => ({ path, position, key, kind, action_id: actionId }));
  const [row] = await tx.$queryRaw<(ExecutionRow & { queuedRuns: number })[]>`
    WITH e AS (
      INSERT INTO executions (id, org_id, flow_id, flow_version, input, trigger, trigger_id, created_by, parent_id, parent_step, depth, root_id,
        concurrency_key, concurrency_limit, error, updated_at)
      VALUES (${id}::uuid, ${orgId}::uuid, ${flowId}::uuid, ${snapshot.version}, ${toJsonText(input)}, ${toJsonText(trigger)}, ${triggerIdOf(trigger)}::uuid,
        ${memberOf(trigger)}::uuid, ${parent?.executionId ?? null}::uuid, ${parent?.step ?? null}, ${parentDepth === undefined ? 0 : parentDepth + 1}, ${rootId ?? null}::uuid,
        ${slots?.key ?? null}, ${slots?.limit ?? null}::int, ${slots?.failure ? toJsonText(slots.failure) : null}, now())
      RETURNING *
    ), pending AS (
      INSERT INTO execution_steps (execution_id, path, position, org_id, key, kind, action_id)
      SELECT ${id}::uuid, step.path, step.position, ${orgId}::uuid, step.key, step.kind, step.action_id
      FROM jsonb_to_recordset(${JSON.stringify(pending)}::jsonb) AS step(path text, position int, key text, kind text, action_id uuid)
    ), queued AS (
      -- The statement does not see its own insert: the run itself is the one added.
      SELECT count(*)::int + 1 AS n FROM executions WHERE org_id = ${orgId}::uuid AND status = 'queued'
    )
    SELECT ${EXECUTION_COLUMNS}, queued.n AS "queuedRuns" FROM e, queued`;
  return { ...row!, steps };
}

function pendingStep(executionId: string, orgId: string, position: number, step: StoredStep): StepRow {
  return {
    executionId,
    path: step.key,
    position,
    orgId,
    key: step.key,
    kind: kindOf(step),
    actionId: step.actionId ?? null,
    output: null,
    state: null,
    status: 'pending',
    attempts: 0,
    resumes: 0,
    startedAt: null,
    finishedAt: null,
    durationMs: null,
    request: null,
    response: null,
    error: null,
    reusedFrom: null,
    wakeAt: null,
  };
}

/** What a rerun asks for (POST /executions/{id}/retry). */
export interface Rerun {
  orgId: string;
  executionId: string;
  /** The path of the step to run from; the steps before it are reused. Default: the first unfinished. */
  fromStep?: string;
  /** A new input; the original's when not given. */
  input?: Record<string, unknown>;
  /** The version to run: the original's when not given. */
  version?: number | 'latest';
  trigger: Trigger;
}

/**
 * Stores a new execution that starts again from a step of an earlier one, in `tx`. The steps
 * before that step are reused as recorded, byte for byte (no call is made for them); it and the
 * steps after it run. A failed or cancelled execution may be rerun from its first unfinished
 * step; any finished one from a step named in `fromStep`.
 */
export async function storeRerun(tx: Transaction, rerun: Rerun, evaluator: KeyEvaluator): Promise<StoredRun> {
  const { orgId, executionId, fromStep } = rerun;
  const original = await tx.execution.findFirst({ where: { orgId, id: executionId }, include: { steps: { orderBy: { position: 'asc' } } } });
  if (!original) throw notFound('execution', executionId);
  if (fromStep === undefined && original.status !== 'failed' && original.status !== 'cancelled') {
    throw conflict(
      `Execution ${executionId} is ${original.status}; only a failed or cancelled execution can be retried from where it stopped. A finished execution can be run again from a step named in fromStep.`,
    );
  }
  if (original.status === 'queued' || original.status === 'running') {
    throw conflict(`Execution ${executionId} is ${original.status}; only a finished execution can be run again.`);
  }
  const flow = await tx.flow.findFirst({ where: { orgId, id: original.flowId, deletedAt: null }, select: { version: true } });
  if (!flow) throw conflict(`Flow ${original.flowId} of execution ${executionId} was deleted; it cannot run again.`);
  const version = rerun.version === 'latest' ? flow.version : (rerun.version ?? original.flowVersion);
  const snapshot = await tx.flowVersion.findFirst({ where: { orgId, flowId: original.flowId, version }, select: { steps: true, concurrency: true } });
  if (!snapshot) throw unprocessable('/version', `flow ${original.flowId} has no version ${version}; its current version is ${flow.version}`);
  const steps = fromJsonText<StoredStep[]>(snapshot.steps);
  const recorded = new Map(original.steps.map((step) => [step.path, step]));
  const from = startOfRerun(steps, recorded, fromStep, version);
  const id = uuidv7();
  const rows = steps.map((step, position): StepRow => {
    const before = recorded.get(step.key);
    if (position < from && before) return { ...before, executionId: id, position, reusedFrom: before.reusedFrom ?? original.id };
    return pendingStep(id, orgId, position, step);
  });
  // The step runs nested in a reused step (a loop's iterations, branches) are reused with it.
  const reused = steps.slice(0, from).map((step) => step.key);
  const nested = original.steps.filter((step) => reused.some((key) => isUnder(step.path, key)));
  rows.push(...nested.map((step, n): StepRow => ({ ...step, executionId: id, position: steps.length + n, reusedFrom: step.reusedFrom ?? original.id })));
  const input = rerun.input ?? fromJsonText<Record<string, unknown>>(original.input);
  const slots = await concurrencyOf(evaluator, snapshot.concurrency, { id, orgId, flowId: original.flowId, version, input, trigger: rerun.trigger });
  const row = await tx.execution.create({
    data: {
      id,
      orgId,
      flowId: original.flowId,
      flowVersion: version,
      input: toJsonText(input),
      trigger: toJsonText(rerun.trigger),
      createdBy: memberOf(rerun.trigger),
      retryOf: original.id,
      retryFromStep: fromStep ?? null,
      concurrencyKey: slots?.key ?? null,
      concurrencyLimit: slots?.limit ?? null,
      error: slots?.failure ? toJsonText(slots.failure) : null,
      steps: { createMany: { data: rows.map(({ executionId: _execution, orgId: _org, ...step }) => step) } },
    },
  });
  return { ...row, steps: rows };
}

/** Whether the step run at `path` is nested in the one at `holder`. */
export function isUnder(path: string, holder: string): boolean {
  return path.startsWith(`${holder}.`) || path.startsWith(`${holder}[`);
}

/** The position (in `steps`) the rerun starts at; every step before it must be reusable. */
function startOfRerun(steps: StoredStep[], recorded: Map<string, { status: StepStatus }>, fromStep: string | undefined, version: number): number {
  const paths = steps.map((step) => step.key);
  const firstUnfinished = paths.findIndex((path) => !isReusable(recorded.get(path)?.status ?? 'pending'));
  if (fromStep === undefined) return firstUnfinished === -1 ? paths.length : firstUnfinished;
  const from = paths.indexOf(fromStep);
  if (from === -1) throw unprocessable('/fromStep', `version ${version} of the flow has no step "${fromStep}"; its steps are ${paths.join(', ')}`);
  const unusable = paths.slice(0, from).find((path) => !isReusable(recorded.get(path)?.status ?? 'pending'));
  if (unusable !== undefined) {
    const status = recorded.get(unusable)?.status;
    throw unprocessable(
      '/fromStep',
      `step "${unusable}" comes before "${fromStep}" and ${status ? `was ${status}` : 'did not run'} in this execution, so it cannot be reused; run again from "${unusable}" or a step before it`,
    );
  }
  return from;
}
