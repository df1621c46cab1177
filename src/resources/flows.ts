// Flows and their versions. Every create and update stores an immutable snapshot (a version),
// which is what executions run. Deleting a flow removes it from the API and frees the actions it
// called, but keeps its versions, executions and execution logs: a run in progress finishes on
// its snapshot, and the audit trail stays.
import { v7 as uuidv7 } from 'uuid';
import type { Handler } from '../contract/handlers.ts';
import { type FieldError, invalidFields, notFound, ProblemError, unprocessable } from '../contract/problems.ts';
import { type Database, fromJsonText, toJsonText } from '../db/client.ts';
import { brokenForeignKey } from '../db/errors.ts';
import { concurrencyProblems, type FlowConcurrency } from '../definitions/concurrency.ts';
import { type FlowDocument, type FlowProblems, flowProblems, type Referents, type Step } from '../definitions/flowChecks.ts';
import { everyStep, MAX_FLOW_STEPS, type StepInput, type StoredStep, storedStep } from '../definitions/steps.ts';
import type { components } from '../generated/openapi.ts';
import { type Flow as FlowRow, type FlowVersion as FlowVersionRow, Prisma } from '../generated/prisma/client.ts';
import { boundedPageSql, toBoundedPage } from './pagination.ts';

// The engine and its tests still import a step's stored shape from here (its home is definitions/steps.ts).
export type { StoredStep };

type Flow = components['schemas']['Flow'];
type FlowVersion = components['schemas']['FlowVersion'];
type FlowFields = Partial<components['schemas']['FlowCreate']>;

export function toFlow(row: FlowRow): Flow {
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    description: row.description,
    version: row.version,
    steps: fromJsonText(row.steps),
    output: row.output === null ? null : fromJsonText(row.output),
    onFailure: onFailureOf(row),
    concurrency: concurrencyOf(row.concurrency),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function toFlowVersion(row: FlowVersionRow): FlowVersion {
  return {
    id: row.id,
    orgId: row.orgId,
    flowId: row.flowId,
    version: row.version,
    name: row.name,
    description: row.description,
    steps: fromJsonText(row.steps),
    output: row.output === null ? null : fromJsonText(row.output),
    onFailure: onFailureOf(row),
    concurrency: concurrencyOf(row.concurrency),
    createdAt: row.createdAt.toISOString(),
  };
}

function onFailureOf(row: { onFailureFlowId: string | null }): Flow['onFailure'] {
  return row.onFailureFlowId === null ? null : { flowId: row.onFailureFlowId };
}

function concurrencyOf(text: string | null): FlowConcurrency | null {
  return text === null ? null : fromJsonText<FlowConcurrency>(text);
}

function concurrencyText(concurrency: FlowConcurrency | null | undefined): string | null {
  return concurrency ? toJsonText(concurrency) : null;
}

const live = { deletedAt: null };

// A flow's columns under the names of Prisma's model, so that toFlow reads raw rows too. The
// hottest reads and writes are single raw statements: Prisma's model queries cost several times
// their SQL (bench/RESULTS.md).
const FLOW_COLUMNS = Prisma.sql`id, org_id AS "orgId", name, description, version, steps, output, on_failure_flow_id AS "onFailureFlowId", concurrency, created_at AS "createdAt", updated_at AS "updatedAt", deleted_at AS "deletedAt"`;

export const listFlows: Handler<'listFlows'> = async ({ query }, { db, reader }) => {
  const from = Prisma.sql`FROM flows WHERE org_id = ${reader.tenant.orgId}::uuid ${reader.member} AND deleted_at IS NULL`;
  const page = boundedPageSql(query, { columns: FLOW_COLUMNS, from, documents: ['steps', 'output'] });
  return toBoundedPage(await reader.list(await db.$queryRaw<(FlowRow & { pageFollowed: boolean })[]>(page)), toFlow);
};

export const createFlow: Handler<'createFlow'> = async ({ body }, { db, tenant }) => {
  const { steps = [], output, onFailure, concurrency, ...fields } = body;
  const { warnings } = await checkFlow(db, tenant.orgId, { steps, output: output ?? null, given: ['steps', 'output'] }, concurrency);
  await checkErrorFlow(db, tenant.orgId, onFailure);
  const columns = { ...fields, ...documentColumns(steps, output), onFailureFlowId: onFailure?.flowId ?? null, concurrency: concurrencyText(concurrency) };
  try {
    // One nested write, which Prisma runs in a transaction: the flow, its first version, the references.
    const row = await db.flow.create({
      data: {
        ...columns,
        orgId: tenant.orgId,
        stepRefs: stepRefs(steps),
        versions: { create: { version: 1, ...versionColumns(columns) } },
      },
    });
    return withWarnings(toFlow(row), warnings);
  } catch (error) {
    throw refusedSteps(error);
  }
};

export const getFlow: Handler<'getFlow'> = async ({ params }, { db, reader }) => {
  const [row] = await db.$queryRaw<FlowRow[]>`
    SELECT ${FLOW_COLUMNS} FROM flows WHERE org_id = ${reader.tenant.orgId}::uuid ${reader.member} AND id = ${params.id}::uuid AND deleted_at IS NULL`;
  return toFlow(await reader.one(row ?? null, () => notFound('flow', params.id)));
};

/**
 * The flow's new fields and version and the version's snapshot in one statement. The row lock of
 * that update orders concurrent updates, which take their version numbers in turn. When the steps
 * change, the same transaction then replaces their reference rows: in statements of their own,
 * whose snapshots (taken once the lock is held) see the rows of the update committed just before.
 */
export const updateFlow: Handler<'updateFlow'> = async ({ params, body }, { db, tenant }) => {
  const { steps, output } = body;
  const { orgId } = tenant;
  const { warnings } = await checkFlow(db, orgId, await documentAfter(db, orgId, params.id, body), body.concurrency);
  await checkErrorFlow(db, orgId, body.onFailure);
  const set = (field: keyof typeof body, value: unknown) =>
    Object.hasOwn(body, field) ? Prisma.sql`${Prisma.raw(field)} = ${value}` : Prisma.sql`${Prisma.raw(field)} = ${Prisma.raw(field)}`;
  const update = async (tx: Database): Promise<FlowRow | undefined> => {
    const [row] = await tx.$queryRaw<FlowRow[]>`
      WITH f AS (
        UPDATE flows SET ${set('name', body.name)}, ${set('description', body.description ?? null)},
          ${set('steps', steps && toJsonText(steps.map(storedStep)))}, ${set('output', output ? toJsonText(output) : null)},
          ${Object.hasOwn(body, 'onFailure') ? Prisma.sql`on_failure_flow_id = ${body.onFailure?.flowId ?? null}::uuid` : Prisma.sql`on_failure_flow_id = on_failure_flow_id`},
          ${set('concurrency', concurrencyText(body.concurrency))}, version = version + 1, updated_at = now()
        WHERE org_id = ${orgId}::uuid AND id = ${params.id}::uuid AND deleted_at IS NULL
        RETURNING *
      ), snapshot AS (
        INSERT INTO flow_versions (id, org_id, flow_id, version, name, description, steps, output, on_failure_flow_id, concurrency)
        SELECT ${uuidv7()}::uuid, org_id, id, version, name, description, steps, output, on_failure_flow_id, concurrency FROM f
      )
      SELECT ${FLOW_COLUMNS} FROM f`;
    return row;
  };
  try {
    const row =
      steps === undefined
        ? await update(db)
        : await db.$transaction(async (tx) => {
            const updated = await update(tx as Database);
            if (!updated) return undefined;
            await tx.flowStep.deleteMany({ where: { flowId: updated.id } });
            await tx.flowStep.createMany({ data: stepRows(steps).map((row) => ({ ...row, flowId: updated.id, orgId })) });
            return updated;
          });
    if (!row) throw notFound('flow', params.id);
    return withWarnings(toFlow(row), warnings);
  } catch (error) {
    throw refusedSteps(error);
  }
};

export const deleteFlow: Handler<'deleteFlow'> = async ({ params }, { db, tenant }) => {
  const { orgId } = tenant;
  const { id } = params;
  await db.$transaction(async (tx) => {
    const { count } = await tx.flow.updateMany({ where: { orgId, id, ...live }, data: { deletedAt: new Date() } });
    if (count === 0) throw notFound('flow', id);
    // Its actions may be deleted from now on; its versions keep naming them for the record.
    await tx.flowStep.deleteMany({ where: { flowId: id } });
    // Nothing starts it any more; the runs its triggers started stay.
    await tx.trigger.deleteMany({ where: { orgId, flowId: id } });
  });
};

/** An error flow must be a live flow of the organization (the flow itself included). */
async function checkErrorFlow(db: Database, orgId: string, onFailure: FlowFields['onFailure']): Promise<void> {
  if (!onFailure) return;
  const [flow] = await db.$queryRaw<unknown[]>`
    SELECT 1 FROM flows WHERE org_id = ${orgId}::uuid AND id = ${onFailure.flowId}::uuid AND deleted_at IS NULL`;
  if (!flow) throw unprocessable('/onFailure/flowId', `names no flow of this organization: ${onFailure.flowId}`);
}

// A version's columns under the names of Prisma's model.
const VERSION_COLUMNS = Prisma.sql`id, org_id AS "orgId", flow_id AS "flowId", version, name, description, steps, output, on_failure_flow_id AS "onFailureFlowId", concurrency, created_at AS "createdAt"`;

export const listFlowVersions: Handler<'listFlowVersions'> = async ({ params, query }, { db, reader }) => {
  const flow = await reader.one(await db.flow.findFirst({ where: { id: params.id, ...reader.scope, ...live }, select: { id: true } }), () =>
    notFound('flow', params.id),
  );
  const from = Prisma.sql`FROM flow_versions WHERE org_id = ${reader.tenant.orgId}::uuid AND flow_id = ${flow.id}::uuid`;
  const page = boundedPageSql(query, { columns: VERSION_COLUMNS, from, documents: ['steps', 'output'] });
  return toBoundedPage(await db.$queryRaw<(FlowVersionRow & { pageFollowed: boolean })[]>(page), toFlowVersion);
};

export const getFlowVersion: Handler<'getFlowVersion'> = async ({ params }, { db, reader }) => {
  const where = { orgId: reader.tenant.orgId, flowId: params.id, version: params.version, flow: { ...live, organization: reader.scope.organization } };
  const row = await reader.one(
    await db.flowVersion.findFirst({ where }),
    () => new ProblemError('not-found', `No version ${params.version} of flow ${params.id} in this organization.`),
  );
  return toFlowVersion(row);
};

function documentColumns(steps: StepInput[], output: FlowFields['output']) {
  return { steps: toJsonText(steps.map(storedStep)), output: output ? toJsonText(output) : null };
}

function versionColumns(row: {
  name: string;
  description?: string | null;
  steps: string;
  output?: string | null;
  onFailureFlowId: string | null;
  concurrency: string | null;
}) {
  return {
    name: row.name,
    description: row.description ?? null,
    steps: row.steps,
    output: row.output ?? null,
    onFailureFlowId: row.onFailureFlowId,
    concurrency: row.concurrency,
  };
}

/**
 * A reference row per step of the whole tree, nested ones included, for the database's integrity
 * checks (see schema.prisma): keys unique in the flow, and the actions that steps call kept.
 */
function stepRows(steps: StepInput[]) {
  return [...everyStep(steps)].map(({ step }, position) => ({ position, key: step.key, actionId: step.actionId ?? null }));
}

function stepRefs(steps: StepInput[]) {
  const rows = stepRows(steps);
  return rows.length > 0 ? { createMany: { data: rows } } : {};
}

/**
 * Every action step must call an action of this organization, every sub-flow step run one of its
 * flows, and the steps and their templates must make sense (src/definitions/flowChecks.ts): what
 * fails every run of the flow is refused; what may, is warned of.
 */
async function checkFlow(db: Database, orgId: string, flow: FlowDocument, concurrency: FlowConcurrency | null | undefined): Promise<FlowProblems> {
  const steps = flow.given.includes('steps') ? [...everyStep(flow.steps)].map(({ step }) => step) : [];
  // A flow of too many steps is refused for that alone, before what they name is looked up.
  const referents = steps.length > MAX_FLOW_STEPS ? { endpoints: new Map(), flows: new Set<string>() } : await referentsOf(db, orgId, steps);
  const problems = flowProblems(flow, referents);
  problems.errors.push(...concurrencyProblems(concurrency));
  if (problems.errors.length > 0) throw invalidFields('unprocessable-content', problems.errors);
  return problems;
}

/** The actions and flows of the organization that the steps name. */
async function referentsOf(db: Database, orgId: string, steps: Step[]): Promise<Referents> {
  const actionIds = [...new Set(steps.flatMap((step) => (step.actionId ? [step.actionId] : [])))];
  const flowIds = [...new Set(steps.flatMap((step) => (step.flow ? [step.flow.flowId] : [])))];
  const [actions, flows] = await Promise.all([
    actionIds.length === 0 ? [] : db.action.findMany({ where: { orgId, id: { in: actionIds } }, select: { id: true, endpoint: true } }),
    flowIds.length === 0 ? [] : db.flow.findMany({ where: { orgId, id: { in: flowIds }, ...live }, select: { id: true } }),
  ]);
  return { endpoints: new Map(actions.map((action) => [action.id, action.endpoint])), flows: new Set(flows.map((row) => row.id)) };
}

/**
 * The steps and output a flow will have after an update. The stored ones stand in for those the
 * update leaves out, since each refers to the other; a flow that does not exist has none (its update answers 404).
 */
async function documentAfter(db: Database, orgId: string, id: string, update: FlowFields): Promise<FlowDocument> {
  const given = { steps: update.steps, output: update.output };
  if (given.steps === undefined && given.output === undefined) return { steps: [], output: null, given: [] };
  const stored =
    given.steps !== undefined && given.output !== undefined
      ? null
      : await db.flow.findFirst({ where: { orgId, id, ...live }, select: { steps: true, output: true } });
  return {
    steps: given.steps ?? (stored ? fromJsonText<StoredStep[]>(stored.steps) : []),
    output: given.output !== undefined ? given.output : stored?.output ? fromJsonText(stored.output) : null,
    given: (['steps', 'output'] as const).filter((field) => given[field] !== undefined),
  };
}

/** Warnings describe the write that found them: only its answer has them. */
function withWarnings(flow: Flow, warnings: FieldError[]): Flow {
  return warnings.length === 0 ? flow : { ...flow, warnings };
}

// An action deleted between the check above and the write.
function refusedSteps(error: unknown): unknown {
  if (brokenForeignKey(error) === 'flow_steps_org_id_action_id_fkey') {
    return new ProblemError('unprocessable-content', 'An action that a step calls was deleted meanwhile; check the steps and retry.');
  }
  return error;
}
