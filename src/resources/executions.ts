// Executions: runs of a flow version. The engine's run owner (src/engine/runs) stores, queues,
// cancels and reruns them; this module answers the API: what a run looks like, starting one and
// waiting for it (`Prefer: wait`), and reading them.

import { v7 as uuidv7 } from 'uuid';
import type { ServiceContext } from '../contract/handlers.ts';
import { Answer, type Handler } from '../contract/handlers.ts';
import { conflict, invalidFields, notFound } from '../contract/problems.ts';
import { fromJsonText, type Transaction } from '../db/client.ts';
import { EXECUTION_COLUMNS, type StoredRun } from '../engine/runs/start.ts';
import { isFinished } from '../engine/runs/statuses.ts';
import type { components } from '../generated/openapi.ts';
import { type Execution as ExecutionRow, Prisma, type ExecutionStep as StepRow } from '../generated/prisma/client.ts';
import { idempotently } from '../http/rules/idempotency.ts';
import { waitOf } from '../http/rules/prefer.ts';
import { boundedPageSql, toBoundedPage } from './pagination.ts';

export type Execution = components['schemas']['Execution'];
type ExecutionStep = components['schemas']['ExecutionStep'];
type Trigger = components['schemas']['Trigger'];

/** Step runs an execution's answer lists; the execution logs page through every attempt of them all. */
export const STEPS_SHOWN = 1000;

export function toExecution(row: ExecutionRow, steps?: StepRow[], stepCount?: number): Execution {
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
    retryFromStep: row.retryFromStep,
    trigger: fromJsonText<Trigger>(row.trigger),
    parent: row.parentId === null ? null : { executionId: row.parentId, step: row.parentStep ?? '' },
    createdBy: row.createdBy,
    ...((row.concurrencyLimit ?? null) !== null && { concurrencyKey: row.concurrencyKey }),
    createdAt: row.createdAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    updatedAt: row.updatedAt.toISOString(),
    ...(steps && { stepCount: stepCount ?? steps.length, steps: steps.slice(0, STEPS_SHOWN).map(toExecutionStep) }),
  };
}

function toExecutionStep(row: StepRow): ExecutionStep {
  const response = row.response === null ? null : fromJsonText<{ body: unknown }>(row.response);
  const state = row.state === null ? {} : fromJsonText<{ case?: number | 'default'; childId?: string }>(row.state);
  return {
    path: row.path,
    key: row.key,
    kind: row.kind as ExecutionStep['kind'],
    actionId: row.actionId,
    output: row.kind === 'action' ? (row.status === 'completed' ? (response?.body ?? null) : null) : row.output === null ? null : fromJsonText(row.output),
    ...(state.case !== undefined && { case: state.case }),
    ...(state.childId !== undefined && { childExecutionId: state.childId }),
    status: row.status,
    attempts: row.attempts,
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    durationMs: row.durationMs,
    request: row.request === null ? null : fromJsonText(row.request),
    response: response as ExecutionStep['response'],
    error: row.error === null ? null : fromJsonText(row.error),
    reusedFrom: row.reusedFrom,
    wakeAt: row.wakeAt?.toISOString() ?? null,
  };
}

/**
 * Starts a run with `store` in a transaction (once per Idempotency-Key), then answers it, or,
 * with `Prefer: wait=N`, waits up to N seconds for it to finish: 200 when it did, 202 otherwise.
 */
async function startAndAnswer(
  context: Pick<ServiceContext, 'db' | 'keyring' | 'runs'>,
  idempotency: { orgId: string; key: string | undefined; operation: string; request: unknown },
  prefer: string | undefined,
  store: (tx: Transaction) => Promise<StoredRun>,
): Promise<Answer<Execution>> {
  const { db, keyring, runs } = context;
  const queue = async (tx: Transaction) => {
    const run = await store(tx);
    return { status: 202, body: toExecution(run, run.steps), headers: {} };
  };
  const { key, orgId, operation, request } = idempotency;
  const first =
    key === undefined ? { ...(await db.$transaction(queue)), replayed: false } : await idempotently({ db, keyring }, { orgId, key, operation, request }, queue);
  if (!first.replayed) runs.started(first.body.id);
  const headers: Record<string, string> = first.replayed ? { 'idempotent-replayed': 'true' } : {};
  const wait = waitOf(prefer);
  if (wait === undefined) return new Answer(first.status, first.body, headers);
  headers['preference-applied'] = `wait=${wait}`;
  let execution = first.body;
  if (!isFinished(execution.status)) {
    // Listening from the commit on (no other task runs in between), so no change is missed; a
    // replay's run may have finished long ago, so it is read first.
    const stop = new AbortController();
    const finished = wait > 0 ? runs.finished(execution.id, wait * 1000, stop.signal) : undefined;
    try {
      if (first.replayed) execution = await currentWithSteps(db, execution.id);
      // Finished or not, the run as it is when the wait ends (it may have begun, or gone on).
      if (!isFinished(execution.status)) {
        await finished;
        execution = await currentWithSteps(db, execution.id);
      }
    } finally {
      stop.abort();
    }
  }
  return new Answer(isFinished(execution.status) ? 200 : 202, execution, headers);
}

export const startExecution: Handler<'startExecution'> = async ({ params, headers, body }, context) => {
  const { tenant, runs } = context;
  const idempotency = { orgId: tenant.orgId, key: headers['idempotency-key'], operation: 'startExecution', request: { userId: tenant.userId, params, body } };
  return startAndAnswer(context, idempotency, headers.prefer, (tx) =>
    runs.start(tx, { orgId: tenant.orgId, flowId: params.id, version: body.version, input: body.input ?? {}, trigger: { type: 'api', userId: tenant.userId } }),
  );
};

export const retryExecution: Handler<'retryExecution'> = async ({ params, headers, body }, context) => {
  const { tenant, runs } = context;
  const idempotency = {
    orgId: tenant.orgId,
    key: headers['idempotency-key'],
    operation: 'retryExecution',
    request: { userId: tenant.userId, params, body },
  };
  const { fromStep, input, version } = body ?? ({} as NonNullable<typeof body>);
  return startAndAnswer(context, idempotency, headers.prefer, (tx) =>
    runs.rerun(tx, { orgId: tenant.orgId, executionId: params.id, fromStep, input, version, trigger: { type: 'api', userId: tenant.userId } }),
  );
};

/** The execution with its first step runs and their count, in one query (a row per step run). */
async function currentWithSteps(db: Transaction, id: string): Promise<Execution> {
  const rows = await db.$queryRaw<(ExecutionRow & { step: StepRow | null; stepCount: number })[]>`
    SELECT ${EXECUTION_COLUMNS}, (SELECT count(*)::int FROM execution_steps c WHERE c.execution_id = e.id) AS "stepCount",
      CASE WHEN s.execution_id IS NULL THEN NULL ELSE json_build_object(
      'path', s.path, 'key', s.key, 'kind', s.kind, 'actionId', s.action_id, 'status', s.status, 'attempts', s.attempts, 'startedAt', s.started_at, 'finishedAt', s.finished_at,
      'durationMs', s.duration_ms, 'request', s.request, 'response', s.response, 'output', s.output, 'state', s.state, 'error', s.error, 'reusedFrom', s.reused_from,
      'wakeAt', s.wake_at) END AS step
    FROM executions e LEFT JOIN LATERAL (
      SELECT * FROM execution_steps s WHERE s.execution_id = e.id ORDER BY s.position LIMIT ${STEPS_SHOWN}
    ) s ON true WHERE e.id = ${id}::uuid ORDER BY s.position`;
  const [first] = rows;
  if (!first) throw notFound('execution', id);
  const steps = rows.flatMap(({ step }) =>
    step === null ? [] : [{ ...step, startedAt: timestamp(step.startedAt), finishedAt: timestamp(step.finishedAt), wakeAt: timestamp(step.wakeAt) } as StepRow],
  );
  return toExecution(first, steps, first.stepCount);
}

/** A timestamp as json_build_object writes it, as the Date it is. */
function timestamp(value: Date | string | null): Date | null {
  return value === null ? null : new Date(value);
}

export const listExecutions: Handler<'listExecutions'> = async ({ query }, { db, reader }) => {
  const { flowId, status, parentId, createdAfter, createdBefore } = query;
  const filters = [
    flowId === undefined ? Prisma.empty : Prisma.sql`AND e.flow_id = ${flowId}::uuid`,
    parentId === undefined ? Prisma.empty : Prisma.sql`AND e.parent_id = ${parentId}::uuid`,
    status === undefined ? Prisma.empty : Prisma.sql`AND e.status = ${status}::execution_state`,
    createdAfter === undefined ? Prisma.empty : Prisma.sql`AND e.created_at > ${new Date(createdAfter)}`,
    createdBefore === undefined ? Prisma.empty : Prisma.sql`AND e.created_at < ${new Date(createdBefore)}`,
  ];
  const from = Prisma.sql`FROM executions e WHERE e.org_id = ${reader.tenant.orgId}::uuid ${reader.member} ${Prisma.join(filters, ' ')}`;
  const page = boundedPageSql(query, { columns: EXECUTION_COLUMNS, from, documents: ['e.input', 'e.output', 'e.error'] });
  return toBoundedPage(await reader.list(await db.$queryRaw<(ExecutionRow & { pageFollowed: boolean })[]>(page)), (row) => toExecution(row));
};

export const getExecution: Handler<'getExecution'> = async ({ params, headers }, { db, reader, runs }) => {
  const read = async () => {
    const row = await db.execution.findFirst({
      where: { id: params.id, ...reader.scope },
      include: { steps: { orderBy: { position: 'asc' }, take: STEPS_SHOWN }, _count: { select: { steps: true } } },
    });
    return reader.one(row, () => notFound('execution', params.id));
  };
  const wait = waitOf(headers.prefer);
  if (wait === undefined) return toExecution(...withStepsOf(await read()));
  // Listening before reading: a run that finishes in between is heard, not missed.
  const stop = new AbortController();
  const finished = wait > 0 ? runs.finished(params.id, wait * 1000, stop.signal) : undefined;
  try {
    let row = await read();
    // Finished or not, the run as it is when the wait ends, not as it was when it began.
    if (!isFinished(row.status) && finished) {
      await finished;
      row = await read();
    }
    return new Answer(200, toExecution(...withStepsOf(row)), { 'preference-applied': `wait=${wait}` });
  } finally {
    stop.abort();
  }
};

function withStepsOf(row: ExecutionRow & { steps: StepRow[]; _count: { steps: number } }): [ExecutionRow, StepRow[], number] {
  return [row, row.steps, row._count.steps];
}

export const cancelExecution: Handler<'cancelExecution'> = async ({ params }, { db, tenant, runs }) => {
  const { orgId, userId } = tenant;
  if (!(await runs.cancel(db, { orgId, executionId: params.id, by: userId }))) {
    const found = await db.execution.findFirst({ where: { orgId, id: params.id }, select: { status: true } });
    if (!found) throw notFound('execution', params.id);
    throw conflict(
      `Execution ${params.id} has already ${found.status === 'cancelled' ? 'been cancelled' : found.status}; only a queued or running execution can be cancelled.`,
    );
  }
  runs.cancelled(params.id);
  return currentWithSteps(db, params.id);
};

/** Signals a run holds not yet taken, at most: a run that takes none cannot be made to store more. */
export const SIGNALS_PENDING_LIMIT = 1000;
/** The largest signal payload, as JSON. */
export const SIGNAL_PAYLOAD_LIMIT_BYTES = 65_536;

export const signalExecution: Handler<'signalExecution'> = async ({ params, body }, { db, tenant, runs }) => {
  const payload = (body as { payload?: unknown } | undefined)?.payload ?? null;
  if (Buffer.byteLength(JSON.stringify(payload)) > SIGNAL_PAYLOAD_LIMIT_BYTES) {
    throw invalidFields('unprocessable-content', [
      { in: 'body', pointer: '/payload', message: `is more than ${SIGNAL_PAYLOAD_LIMIT_BYTES} bytes as JSON; a signal carries at most 64 KiB` },
    ]);
  }
  const signal = { id: uuidv7(), orgId: tenant.orgId, executionId: params.id, name: params.name, payload };
  const createdAt = await db.$transaction(async (tx) => {
    // The run's row lock orders the signal against its worker parking it, or finishing it.
    const [run] = await tx.$queryRaw<{ status: string; pending: number; now: Date }[]>`
      SELECT status::text, now() AS now, (SELECT count(*)::int FROM execution_signals g WHERE g.execution_id = e.id AND g.taken_by IS NULL) AS pending
      FROM executions e WHERE org_id = ${tenant.orgId}::uuid AND id = ${params.id}::uuid FOR UPDATE`;
    if (!run) throw notFound('execution', params.id);
    if (isFinished(run.status)) throw conflict(`Execution ${params.id} is ${run.status}; only a queued or running execution takes signals.`);
    if (run.pending >= SIGNALS_PENDING_LIMIT) {
      throw conflict(
        `Execution ${params.id} holds ${SIGNALS_PENDING_LIMIT} signals that no step has taken, its limit; send more once its waitFor steps take some.`,
      );
    }
    await runs.signal(tx, signal);
    return run.now;
  });
  return new Answer(202, { ...signal, takenBy: null, createdAt: createdAt.toISOString() }, {});
};
