// Flows and their versions. Every create and update stores an immutable snapshot (a version),
// which is what executions run. Deleting a flow removes it from the API and frees the actions it
// called, but keeps its versions, executions and execution logs: a run in progress finishes on
// its snapshot, and the audit trail stays.
import { type Database, fromJsonText, toJsonText } from '../db/client.ts';
import { brokenForeignKey, isMissingRow } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import type { Flow as FlowRow, FlowVersion as FlowVersionRow } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { pageArgs, toPage } from './pagination.ts';
import { type FieldError, invalidFields, notFound, ProblemError } from './problems.ts';
import { conditionSyntaxError, syntaxError } from './templates.ts';

type Flow = components['schemas']['Flow'];
type FlowVersion = components['schemas']['FlowVersion'];
export type StoredStep = components['schemas']['StoredFlowStep'];
type StepInput = components['schemas']['FlowStep'];
type FlowFields = Partial<components['schemas']['FlowCreate']>;

export const STEP_DEFAULTS = { timeoutMs: 30_000, retry: { maxAttempts: 1, initialDelayMs: 1000, maxDelayMs: 30_000 }, continueOnError: false };

export function toFlow(row: FlowRow): Flow {
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    description: row.description,
    version: row.version,
    steps: fromJsonText(row.steps),
    output: row.output === null ? null : fromJsonText(row.output),
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
    createdAt: row.createdAt.toISOString(),
  };
}

const live = { deletedAt: null };

export const listFlows: Handler<'listFlows'> = async ({ query }, { db, reader }) => {
  const rows = await reader.list(await db.flow.findMany(pageArgs(query, { ...reader.scope, ...live })));
  return toPage(rows, query, toFlow);
};

export const createFlow: Handler<'createFlow'> = async ({ body }, { db, tenant }) => {
  const { steps = [], output, ...fields } = body;
  await checkFlow(db, tenant.orgId, { steps, output });
  const columns = { ...fields, ...documentColumns(steps, output) };
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
    return toFlow(row);
  } catch (error) {
    throw refusedSteps(error);
  }
};

export const getFlow: Handler<'getFlow'> = async ({ params }, { db, reader }) => {
  return toFlow(await reader.one(await db.flow.findFirst({ where: { id: params.id, ...reader.scope, ...live } }), () => notFound('flow', params.id)));
};

export const updateFlow: Handler<'updateFlow'> = async ({ params, body }, { db, tenant }) => {
  const { steps, output, ...fields } = body;
  await checkFlow(db, tenant.orgId, { steps, output });
  const { orgId } = tenant;
  try {
    return toFlow(
      await db.$transaction(async (tx) => {
        const data = {
          ...fields,
          ...(steps && { steps: toJsonText(steps.map(storedStep)), stepRefs: { deleteMany: {}, ...stepRefs(steps) } }),
          ...(output !== undefined && { output: output === null ? null : toJsonText(output) }),
          version: { increment: 1 },
        };
        // The update locks the flow's row: concurrent updates take their version numbers in turn.
        const row = await tx.flow.update({ where: { orgId_id: { orgId, id: params.id }, ...live }, data });
        await tx.flowVersion.create({ data: { orgId, flowId: row.id, version: row.version, ...versionColumns(row) } });
        return row;
      }),
    );
  } catch (error) {
    if (isMissingRow(error)) throw notFound('flow', params.id);
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
  });
};

export const listFlowVersions: Handler<'listFlowVersions'> = async ({ params, query }, { db, reader }) => {
  const flow = await reader.one(await db.flow.findFirst({ where: { id: params.id, ...reader.scope, ...live }, select: { id: true } }), () =>
    notFound('flow', params.id),
  );
  const rows = await db.flowVersion.findMany(pageArgs(query, { orgId: reader.tenant.orgId, flowId: flow.id }));
  return toPage(rows, query, toFlowVersion);
};

export const getFlowVersion: Handler<'getFlowVersion'> = async ({ params }, { db, reader }) => {
  const where = { orgId: reader.tenant.orgId, flowId: params.id, version: params.version, flow: { ...live, organization: reader.scope.organization } };
  const row = await reader.one(
    await db.flowVersion.findFirst({ where }),
    () => new ProblemError('not-found', `No version ${params.version} of flow ${params.id} in this organization.`),
  );
  return toFlowVersion(row);
};

/** A step as stored and run: every option with its value. */
export function storedStep(step: StepInput): StoredStep {
  return {
    key: step.key,
    actionId: step.actionId,
    inputs: step.inputs ?? {},
    if: step.if ?? null,
    timeoutMs: step.timeoutMs ?? STEP_DEFAULTS.timeoutMs,
    retry: { ...STEP_DEFAULTS.retry, ...step.retry },
    continueOnError: step.continueOnError ?? STEP_DEFAULTS.continueOnError,
  };
}

function documentColumns(steps: StepInput[], output: FlowFields['output']) {
  return { steps: toJsonText(steps.map(storedStep)), output: output ? toJsonText(output) : null };
}

function versionColumns(row: { name: string; description?: string | null; steps: string; output?: string | null }) {
  return { name: row.name, description: row.description ?? null, steps: row.steps, output: row.output ?? null };
}

/** A reference row per step, for the database's integrity checks (see schema.prisma). */
function stepRefs(steps: StepInput[]) {
  const refs = steps.map((step, position) => ({ position, key: step.key, actionId: step.actionId }));
  return refs.length > 0 ? { createMany: { data: refs } } : {};
}

/**
 * Step keys must be unique within the flow, every step must call an action of this
 * organization, and every template must at least parse (what it refers to is checked when it runs).
 */
async function checkFlow(db: Database, orgId: string, { steps = [], output }: Pick<FlowFields, 'steps' | 'output'>): Promise<void> {
  const errors: FieldError[] = [];
  const firstWithKey = new Map<string, number>();
  steps.forEach((step, index) => {
    const earlier = firstWithKey.get(step.key);
    if (earlier === undefined) firstWithKey.set(step.key, index);
    else errors.push({ in: 'body', pointer: `/steps/${index}/key`, message: `repeats the key "${step.key}" of step ${earlier}` });
    const inputs = syntaxError(step.inputs ?? {}, 'inputs');
    if (inputs) errors.push({ in: 'body', pointer: `/steps/${index}/inputs`, message: `is not a valid template: ${inputs}` });
    const condition = step.if ? conditionSyntaxError(step.if) : undefined;
    if (condition) errors.push({ in: 'body', pointer: `/steps/${index}/if`, message: `is not a valid expression: ${condition}` });
  });
  const outputError = output ? syntaxError(output, 'output') : undefined;
  if (outputError) errors.push({ in: 'body', pointer: '/output', message: `is not a valid template: ${outputError}` });
  const actionIds = [...new Set(steps.map((step) => step.actionId))];
  const found = new Set(
    actionIds.length === 0 ? [] : (await db.action.findMany({ where: { orgId, id: { in: actionIds } }, select: { id: true } })).map((action) => action.id),
  );
  steps.forEach((step, index) => {
    if (!found.has(step.actionId)) errors.push({ in: 'body', pointer: `/steps/${index}/actionId`, message: `no action ${step.actionId} in this organization` });
  });
  if (errors.length > 0) throw invalidFields('unprocessable-content', errors);
}

// An action deleted between the check above and the write.
function refusedSteps(error: unknown): unknown {
  if (brokenForeignKey(error) === 'flow_steps_org_id_action_id_fkey') {
    return new ProblemError('unprocessable-content', 'An action that a step calls was deleted meanwhile; check the steps and retry.');
  }
  return error;
}
