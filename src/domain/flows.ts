import { type Database, fromJsonText, toJsonText } from '../db/client.ts';
import { brokenForeignKey, isMissingRow } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import type { Flow as FlowRow } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { pageArgs, toPage } from './pagination.ts';
import { conflict, type FieldError, invalidFields, notFound, ProblemError, plural } from './problems.ts';

type Flow = components['schemas']['Flow'];
type Step = Flow['steps'][number];
type StepInput = components['schemas']['FlowStep'];

export function toFlow(row: FlowRow): Flow {
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    description: row.description,
    version: row.version,
    steps: fromJsonText(row.steps),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export const listFlows: Handler<'listFlows'> = async ({ query }, { db, reader }) => {
  const rows = await reader.list(await db.flow.findMany(pageArgs(query, reader.scope)));
  return toPage(rows, query, toFlow);
};

export const createFlow: Handler<'createFlow'> = async ({ body }, { db, tenant }) => {
  const { steps = [], ...fields } = body;
  await checkSteps(db, tenant.orgId, steps);
  try {
    // One nested write, which Prisma runs in a transaction: the flow, its document, the references.
    return toFlow(await db.flow.create({ data: { ...fields, orgId: tenant.orgId, ...stepColumns(steps) } }));
  } catch (error) {
    throw refusedSteps(error);
  }
};

export const getFlow: Handler<'getFlow'> = async ({ params }, { db, reader }) => {
  return toFlow(await reader.one(await db.flow.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('flow', params.id)));
};

export const updateFlow: Handler<'updateFlow'> = async ({ params, body }, { db, tenant }) => {
  const { steps, ...fields } = body;
  if (steps) await checkSteps(db, tenant.orgId, steps);
  try {
    const data = { ...fields, ...(steps && stepColumns(steps, { replacing: true })), version: { increment: 1 } };
    const row = await db.flow.update({ where: { orgId_id: { orgId: tenant.orgId, id: params.id } }, data });
    return toFlow(row);
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

/** The steps document, and a reference row per step for the database's integrity checks. */
function stepColumns(steps: StepInput[], { replacing = false } = {}) {
  const document: Step[] = steps.map((step) => ({ key: step.key, actionId: step.actionId, inputs: step.inputs ?? {} }));
  const refs = document.map((step, position) => ({ position, key: step.key, actionId: step.actionId }));
  return {
    steps: toJsonText(document),
    stepRefs: { ...(replacing && { deleteMany: {} }), ...(refs.length > 0 && { createMany: { data: refs } }) },
  };
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
  const found = new Set(
    actionIds.length === 0 ? [] : (await db.action.findMany({ where: { orgId, id: { in: actionIds } }, select: { id: true } })).map((action) => action.id),
  );
  steps.forEach((step, index) => {
    if (!found.has(step.actionId)) errors.push({ in: 'body', pointer: `/steps/${index}/actionId`, message: `no action ${step.actionId} in this organization` });
  });
  if (errors.length > 0) {
    throw invalidFields('unprocessable-content', errors);
  }
}

// An action deleted between the check above and the write.
function refusedSteps(error: unknown): unknown {
  if (brokenForeignKey(error) === 'flow_steps_org_id_action_id_fkey') {
    return new ProblemError('unprocessable-content', 'An action that a step calls was deleted meanwhile; check the steps and retry.');
  }
  return error;
}
