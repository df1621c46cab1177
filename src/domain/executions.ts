// Executions: runs of a flow version. Starting one stores it with its steps and queues it in one
// transaction; the engine (src/engine) runs it and records every step through src/domain/runRecord.ts.
import { v7 as uuidv7 } from 'uuid';
import { Answer, type Handler } from '../contract/handlers.ts';
import { conflict, notFound, unprocessable } from '../contract/problems.ts';
import { fromJsonText, toJsonText } from '../db/client.ts';
import type { components } from '../generated/openapi.ts';
import { type Execution as ExecutionRow, Prisma, type ExecutionStep as StepRow } from '../generated/prisma/client.ts';
import { idempotently } from '../http/rules/idempotency.ts';
import type { StoredStep } from '../resources/flows.ts';
import { boundedPageSql, toBoundedPage } from '../resources/pagination.ts';
import type { Transaction } from './runs.ts';

export type Execution = components['schemas']['Execution'];
type ExecutionStep = components['schemas']['ExecutionStep'];

/** The longest `Prefer: wait` honoured, in seconds. */
export const MAX_WAIT_SECONDS = 30;
export const FINISHED = ['completed', 'failed', 'cancelled'] as const;

export function toExecution(row: ExecutionRow, steps?: StepRow[]): Execution {
  return {
    id: row.id,
    orgId: row.orgId,
    flowId: row.flowId,
    flowVersion: row.flowVersion,
    status: row.status,
    input: fromJsonText(row.input),
    output: row.output === null ? null : fromJsonText(row.output),
    error: row.error === null ? null : fromJsonText(row.error),
    retryOf: row.retryOf,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    updatedAt: row.updatedAt.toISOString(),
    ...(steps && { steps: steps.map(toExecutionStep) }),
  };
}

function toExecutionStep(row: StepRow): ExecutionStep {
  return {
    key: row.key,
    actionId: row.actionId,
    status: row.status,
    attempts: row.attempts,
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    durationMs: row.durationMs,
    request: row.request === null ? null : fromJsonText(row.request),
    response: row.response === null ? null : fromJsonText(row.response),
    error: row.error === null ? null : fromJsonText(row.error),
    reusedFrom: row.reusedFrom,
  };
}

const withSteps = { steps: { orderBy: { position: 'asc' as const } } };

function isFinished(status: string): boolean {
  return (FINISHED as readonly string[]).includes(status);
}

export const startExecution: Handler<'startExecution'> = async ({ params, headers, body }, { db, keyring, tenant, runs }) => {
  const queue = async (tx: Transaction) => {
    const execution = await storeExecution(tx, {
      orgId: tenant.orgId,
      flowId: params.id,
      version: body.version,
      input: body.input ?? {},
      createdBy: tenant.userId,
    });
    await runs.enqueue(tx, execution);
    return { status: 202, body: execution, headers: {} };
  };
  const key = headers['idempotency-key'];
  const first =
    key === undefined
      ? { ...(await db.$transaction(queue)), replayed: false }
      : await idempotently({ db, keyring }, { orgId: tenant.orgId, key, operation: 'startExecution', request: { userId: tenant.userId, params, body } }, queue);
  if (!first.replayed) runs.queued(first.body.id);
  const answerHeaders: Record<string, string> = first.replayed ? { 'idempotent-replayed': 'true' } : {};
  const wait = waitOf(headers.prefer);
  if (wait === undefined) return new Answer(first.status, first.body, answerHeaders);
  answerHeaders['preference-applied'] = `wait=${wait}`;
  let execution = first.body;
  if (!isFinished(execution.status)) {
    if (wait > 0) await runs.finished(execution.id, wait * 1000);
    execution = await currentWithSteps(db, execution.id);
  }
  return new Answer(isFinished(execution.status) ? 200 : 202, execution, answerHeaders);
};

// An execution's columns under the names of Prisma's model, so that toExecution reads raw rows too.
const EXECUTION_COLUMNS = Prisma.sql`e.id, e.org_id AS "orgId", e.flow_id AS "flowId", e.flow_version AS "flowVersion", e.status::text AS status,
  e.input, e.output, e.error, e.retry_of AS "retryOf", e.created_by AS "createdBy", e.created_at AS "createdAt", e.started_at AS "startedAt",
  e.finished_at AS "finishedAt", e.updated_at AS "updatedAt"`;

/** The execution with its steps, in one query (a row per step). */
async function currentWithSteps(db: Transaction, id: string): Promise<Execution> {
  const rows = await db.$queryRaw<(ExecutionRow & { step: StepRow | null })[]>`
    SELECT ${EXECUTION_COLUMNS}, CASE WHEN s.execution_id IS NULL THEN NULL ELSE json_build_object(
      'key', s.key, 'actionId', s.action_id, 'status', s.status, 'attempts', s.attempts, 'startedAt', s.started_at, 'finishedAt', s.finished_at,
      'durationMs', s.duration_ms, 'request', s.request, 'response', s.response, 'error', s.error, 'reusedFrom', s.reused_from) END AS step
    FROM executions e LEFT JOIN execution_steps s ON s.execution_id = e.id WHERE e.id = ${id}::uuid ORDER BY s.position`;
  const [first] = rows;
  if (!first) throw notFound('execution', id);
  const steps = rows.flatMap(({ step }) =>
    step === null ? [] : [{ ...step, startedAt: timestamp(step.startedAt), finishedAt: timestamp(step.finishedAt) } as StepRow],
  );
  return toExecution(first, steps);
}

/** A timestamp as json_build_object writes it, as the Date it is. */
function timestamp(value: Date | string | null): Date | null {
  return value === null ? null : new Date(value);
}

/** `Prefer: wait=N` (RFC 7240), N capped at MAX_WAIT_SECONDS; undefined when not asked for. */
export function waitOf(prefer: string | undefined): number | undefined {
  const match = prefer === undefined ? null : /(?:^|[,;\s])wait\s*=\s*"?(\d+)"?/i.exec(prefer);
  return match ? Math.min(Number(match[1]), MAX_WAIT_SECONDS) : undefined;
}

interface NewExecution {
  orgId: string;
  flowId: string;
  version?: number;
  input: Record<string, unknown>;
  createdBy: string;
}

/**
 * Stores a queued execution of the flow's current (or given) version, with a pending row per
 * step, in one statement.
 */
async function storeExecution(tx: Transaction, { orgId, flowId, version, input, createdBy }: NewExecution): Promise<Execution> {
  const id = uuidv7();
  const [row] = await tx.$queryRaw<(ExecutionRow & { currentVersion: number | null; steps: string | null })[]>`
    WITH flow AS (
      SELECT version FROM flows WHERE org_id = ${orgId}::uuid AND id = ${flowId}::uuid AND deleted_at IS NULL
    ), snapshot AS (
      SELECT version, steps FROM flow_versions
      WHERE org_id = ${orgId}::uuid AND flow_id = ${flowId}::uuid AND version = COALESCE(${version ?? null}::int, (SELECT version FROM flow))
        AND EXISTS (SELECT 1 FROM flow)
    ), e AS (
      INSERT INTO executions (id, org_id, flow_id, flow_version, input, created_by, updated_at)
      SELECT ${id}::uuid, ${orgId}::uuid, ${flowId}::uuid, version, ${toJsonText(input)}, ${createdBy}::uuid, now() FROM snapshot
      RETURNING *
    ), pending AS (
      INSERT INTO execution_steps (execution_id, position, org_id, key, action_id)
      SELECT ${id}::uuid, step.position - 1, ${orgId}::uuid, step.value->>'key', (step.value->>'actionId')::uuid
      FROM snapshot, json_array_elements(snapshot.steps::json) WITH ORDINALITY AS step(value, position)
    )
    SELECT (SELECT version FROM flow) AS "currentVersion", (SELECT steps FROM snapshot), ${EXECUTION_COLUMNS}
    FROM (SELECT 1) AS one LEFT JOIN e ON true`;
  if (row?.currentVersion == null) throw notFound('flow', flowId);
  if (row.id === null) throw unprocessable('/version', `flow ${flowId} has no version ${version}; its current version is ${row.currentVersion}`);
  const steps = fromJsonText<StoredStep[]>(row.steps!).map((step) => pendingStep(step.key, step.actionId));
  return toExecution(row, steps);
}

function pendingStep(key: string, actionId: string): StepRow {
  return {
    executionId: '',
    position: 0,
    orgId: '',
    key,
    actionId,
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
  };
}

export const listExecutions: Handler<'listExecutions'> = async ({ query }, { db, reader }) => {
  const { flowId, status, createdAfter, createdBefore } = query;
  const filters = [
    flowId === undefined ? Prisma.empty : Prisma.sql`AND e.flow_id = ${flowId}::uuid`,
    status === undefined ? Prisma.empty : Prisma.sql`AND e.status = ${status}::execution_state`,
    createdAfter === undefined ? Prisma.empty : Prisma.sql`AND e.created_at > ${new Date(createdAfter)}`,
    createdBefore === undefined ? Prisma.empty : Prisma.sql`AND e.created_at < ${new Date(createdBefore)}`,
  ];
  const from = Prisma.sql`FROM executions e WHERE e.org_id = ${reader.tenant.orgId}::uuid ${reader.member} ${Prisma.join(filters, ' ')}`;
  const page = boundedPageSql(query, { columns: EXECUTION_COLUMNS, from, documents: ['e.input', 'e.output', 'e.error'] });
  return toBoundedPage(await reader.list(await db.$queryRaw<(ExecutionRow & { pageFollowed: boolean })[]>(page)), (row) => toExecution(row));
};

export const getExecution: Handler<'getExecution'> = async ({ params }, { db, reader }) => {
  const row = await reader.one(await db.execution.findFirst({ where: { id: params.id, ...reader.scope }, include: withSteps }), () =>
    notFound('execution', params.id),
  );
  return toExecution(row, row.steps);
};

export const cancelExecution: Handler<'cancelExecution'> = async ({ params }, { db, tenant, runs }) => {
  const { orgId, userId } = tenant;
  const error = toJsonText({ code: 'cancelled', message: `Cancelled by ${userId}.` });
  const cancelled = await db.$transaction(async (tx) => {
    // The row lock orders this against the worker's own writes, which check the state first.
    const [row] = await tx.$queryRaw<{ id: string }[]>`
      UPDATE executions SET status = 'cancelled', error = ${error}, finished_at = now(), updated_at = now(), lease = NULL
      WHERE org_id = ${orgId}::uuid AND id = ${params.id}::uuid AND status IN ('queued', 'running') RETURNING id`;
    if (!row) return false;
    // The attempt in flight ends here, and is logged as cancelled like any other attempt.
    await tx.$executeRaw`
      WITH ended AS (
        -- The worker may have started the step after this transaction began (now()), on its own clock.
        UPDATE execution_steps SET status = 'cancelled', finished_at = greatest(now(), started_at),
          duration_ms = CASE WHEN status = 'running' THEN greatest(0, extract(epoch FROM now() - started_at) * 1000)::int END,
          error = CASE WHEN status = 'running' THEN ${toJsonText({ code: 'cancelled', message: 'The execution was cancelled during this step.' })} END
        WHERE execution_id = ${params.id}::uuid AND status IN ('pending', 'running')
        RETURNING key, status, duration_ms, error, (SELECT status FROM execution_steps s WHERE s.execution_id = execution_steps.execution_id AND s.position = execution_steps.position) AS was
      )
      INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, error, duration_ms, updated_at)
      SELECT gen_random_uuid(), e.org_id, e.flow_id, e.created_by, e.id::text, ended.key, 'cancelled', '{}', ended.error, ended.duration_ms, now()
      FROM ended JOIN executions e ON e.id = ${params.id}::uuid WHERE ended.was = 'running'`;
    return true;
  });
  if (!cancelled) {
    const found = await db.execution.findFirst({ where: { orgId, id: params.id }, select: { status: true } });
    if (!found) throw notFound('execution', params.id);
    throw conflict(
      `Execution ${params.id} has already ${found.status === 'cancelled' ? 'been cancelled' : found.status}; only a queued or running execution can be cancelled.`,
    );
  }
  runs.cancelled(params.id);
  return currentWithSteps(db, params.id);
};

export const retryExecution: Handler<'retryExecution'> = async ({ params }, { db, tenant, runs }) => {
  const { orgId, userId } = tenant;
  const original = await db.execution.findFirst({ where: { orgId, id: params.id }, include: withSteps });
  if (!original) throw notFound('execution', params.id);
  if (original.status !== 'failed' && original.status !== 'cancelled') {
    throw conflict(`Execution ${params.id} is ${original.status}; only a failed or cancelled execution can be retried.`);
  }
  const flow = await db.flow.findFirst({ where: { orgId, id: original.flowId, deletedAt: null }, select: { id: true } });
  if (!flow) throw conflict(`Flow ${original.flowId} of execution ${params.id} was deleted; it cannot run again.`);
  // The steps before the first that did not finish are reused; it and the ones after run again.
  const firstUnfinished = original.steps.findIndex((step) => step.status !== 'completed' && step.status !== 'skipped');
  const reused = firstUnfinished === -1 ? original.steps : original.steps.slice(0, firstUnfinished);
  const execution = await db.$transaction(async (tx) => {
    const row = await tx.execution.create({
      data: {
        orgId,
        flowId: original.flowId,
        flowVersion: original.flowVersion,
        input: original.input,
        createdBy: userId,
        retryOf: original.id,
        steps: {
          createMany: {
            data: original.steps.map((step, position) =>
              position < reused.length
                ? { ...reusedStep(step), position, reusedFrom: step.reusedFrom ?? original.id }
                : { position, key: step.key, actionId: step.actionId },
            ),
          },
        },
      },
      include: withSteps,
    });
    await runs.enqueue(tx, row);
    return toExecution(row, row.steps);
  });
  runs.queued(execution.id);
  return new Answer(202, execution);
};

function reusedStep(step: StepRow) {
  const { executionId: _execution, position: _position, orgId: _org, ...rest } = step;
  return rest;
}
