import type { Flow as FlowModel, Prisma } from '../generated/prisma/client.ts';
import type { components } from '../generated/openapi.ts';
import type { Handler } from '../contract/operations.ts';
import { fromJsonText, toJsonText, type Database } from '../db/client.ts';
import { brokenForeignKey, isMissingRow } from '../db/errors.ts';
import { pageArgs, toPage } from '../pagination.ts';
import { conflict, notFound, plural, ProblemError, type FieldError } from '../problems.ts';

type Flow = components['schemas']['Flow'];
type StepInput = components['schemas']['FlowStep'];

const WITH_STEPS = { steps: { orderBy: { position: 'asc' } } } as const;
type FlowRow = FlowModel & { steps: { key: string; actionId: string; inputs: string }[] };

export function toFlow(row: FlowRow): Flow {
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    description: row.description,
    version: row.version,
    steps: row.steps.map((step) => ({ key: step.key, actionId: step.actionId, inputs: fromJsonText(step.inputs) })),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export const listFlows: Handler<'listFlows'> = async ({ query }, { db, tenant }) => {
  const rows = await db.flow.findMany({ ...pageArgs(query, { orgId: tenant.orgId }), include: WITH_STEPS });
  return toPage(rows, query, toFlow);
};

export const createFlow: Handler<'createFlow'> = async ({ body }, { db, tenant }) => {
  const { steps = [], ...fields } = body;
  await checkSteps(db, tenant.orgId, steps);
  try {
    return await db.$transaction(async (tx) => {
      const flow = await tx.flow.create({ data: { ...fields, orgId: tenant.orgId } });
      return toFlow({ ...flow, steps: await writeSteps(tx, flow, steps) });
    });
  } catch (error) {
    throw refusedSteps(error);
  }
};

export const getFlow: Handler<'getFlow'> = async ({ params }, { db, tenant }) => {
  const row = await db.flow.findUnique({ where: { orgId_id: { orgId: tenant.orgId, id: params.id } }, include: WITH_STEPS });
  if (!row) throw notFound('flow', params.id);
  return toFlow(row);
};

export const updateFlow: Handler<'updateFlow'> = async ({ params, body }, { db, tenant }) => {
  const { steps, ...fields } = body;
  const { orgId } = tenant;
  if (steps) await checkSteps(db, orgId, steps);
  try {
    return await db.$transaction(async (tx) => {
      // Updating the flow row first locks it, so concurrent updates apply one after the other.
      const flow = await tx.flow.update({ where: { orgId_id: { orgId, id: params.id } }, data: { ...fields, version: { increment: 1 } } });
      if (!steps) return toFlow({ ...flow, steps: await tx.flowStep.findMany({ where: { flowId: flow.id }, orderBy: { position: 'asc' } }) });
      await tx.flowStep.deleteMany({ where: { flowId: flow.id } });
      return toFlow({ ...flow, steps: await writeSteps(tx, flow, steps) });
    });
  } catch (error) {
    if (isMissingRow(error)) throw notFound('flow', params.id);
    throw refusedSteps(error);
  }
};

export const deleteFlow: Handler<'deleteFlow'> = async ({ params }, { db, tenant }) => {
  const { orgId } = tenant;
  const { id } = params;
  try {
    await db.flow.delete({ where: { orgId_id: { orgId, id } } });
  } catch (error) {
    if (isMissingRow(error)) throw notFound('flow', id);
    if (brokenForeignKey(error) === undefined) throw error;
    const logs = await db.executionLog.count({ where: { orgId, flowId: id } });
    throw conflict(`Flow ${id} has ${plural(logs, 'execution log')}; delete them first.`);
  }
};

async function writeSteps(tx: Prisma.TransactionClient, flow: { orgId: string; id: string }, steps: StepInput[]) {
  const rows = steps.map((step, position) => ({ orgId: flow.orgId, flowId: flow.id, position, key: step.key, actionId: step.actionId, inputs: toJsonText(step.inputs ?? {}) }));
  if (rows.length > 0) await tx.flowStep.createMany({ data: rows });
  return rows;
}

/** Step keys must be unique within the flow, and every step must call an action of this organization. */
async function checkSteps(db: Database, orgId: string, steps: StepInput[]): Promise<void> {
  const errors: FieldError[] = [];
  const firstWithKey = new Map<string, number>();
  steps.forEach((step, index) => {
    const earlier = firstWithKey.get(step.key);
    if (earlier === undefined) firstWithKey.set(step.key, index);
    else errors.push({ in: 'body', pointer: `/steps/${index}/key`, message: `repeats the key "${step.key}" of step ${earlier}` });
  });
  const actionIds = [...new Set(steps.map((step) => step.actionId))];
  const found = new Set((await db.action.findMany({ where: { orgId, id: { in: actionIds } }, select: { id: true } })).map((action) => action.id));
  steps.forEach((step, index) => {
    if (!found.has(step.actionId)) errors.push({ in: 'body', pointer: `/steps/${index}/actionId`, message: `no action ${step.actionId} in this organization` });
  });
  if (errors.length > 0) {
    throw new ProblemError('unprocessable-content', errors.map((error) => `body${error.pointer}: ${error.message}`).join('; '), errors);
  }
}

// An action deleted between the check above and the write.
function refusedSteps(error: unknown): unknown {
  if (brokenForeignKey(error) === 'flow_steps_org_id_action_id_fkey') {
    return new ProblemError('unprocessable-content', 'An action that a step calls was deleted meanwhile; check the steps and retry.');
  }
  return error;
}
