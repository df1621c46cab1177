// Execution logs: the engine's are the audit trail of every run, read-only for everyone (409);
// members may add logs of their own, which name their writer from the caller (never from the
// body), and which only owners may delete.
import { assertOwner } from '../access/tenancy.ts';
import type { Handler } from '../contract/handlers.ts';
import { conflict, notFound, type ProblemError, unprocessable } from '../contract/problems.ts';
import { type Database, fromJsonText, toJsonText } from '../db/client.ts';
import { brokenForeignKey } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import { type ExecutionLog as ExecutionLogRow, Prisma } from '../generated/prisma/client.ts';
import { boundedPageSql, toBoundedPage } from './pagination.ts';

type ExecutionLog = components['schemas']['ExecutionLog'];
type ExecutionLogFields = components['schemas']['ExecutionLogUpdate'];

export function toExecutionLog(row: ExecutionLogRow): ExecutionLog {
  return {
    id: row.id,
    orgId: row.orgId,
    flowId: row.flowId,
    userId: row.userId,
    writtenBy: row.writtenByEngine ? 'engine' : 'member',
    executionId: row.executionId,
    stepKey: row.stepKey,
    status: row.status,
    inputs: fromJsonText(row.inputs),
    outputs: row.outputs === null ? null : fromJsonText(row.outputs),
    error: row.error === null ? null : fromJsonText(row.error),
    durationMs: row.durationMs,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

// An execution log's columns under the names of Prisma's model, so that toExecutionLog reads raw rows too.
const LOG_COLUMNS = Prisma.sql`id, org_id AS "orgId", flow_id AS "flowId", user_id AS "userId", execution_id AS "executionId", step_key AS "stepKey",
  status::text AS status, inputs, outputs, error, duration_ms AS "durationMs", written_by_engine AS "writtenByEngine", created_at AS "createdAt", updated_at AS "updatedAt"`;

// One raw statement, as the hottest reads are (see flows.ts); a page holds at most PAGE_BYTES of documents.
export const listExecutionLogs: Handler<'listExecutionLogs'> = async ({ query }, { db, reader }) => {
  const { flowId, executionId, status } = query;
  const filters = [
    flowId === undefined ? Prisma.empty : Prisma.sql`AND flow_id = ${flowId}::uuid`,
    executionId === undefined ? Prisma.empty : Prisma.sql`AND execution_id = ${executionId}`,
    status === undefined ? Prisma.empty : Prisma.sql`AND status = ${status}::execution_status`,
  ];
  const from = Prisma.sql`FROM execution_logs WHERE org_id = ${reader.tenant.orgId}::uuid ${reader.member} ${Prisma.join(filters, ' ')}`;
  const page = boundedPageSql(query, { columns: LOG_COLUMNS, from, documents: ['inputs', 'outputs', 'error'] });
  const rows = await reader.list(await db.$queryRaw<(ExecutionLogRow & { pageFollowed: boolean })[]>(page));
  return toBoundedPage(rows, toExecutionLog);
};

export const createExecutionLog: Handler<'createExecutionLog'> = async ({ body }, { db, tenant }) => {
  try {
    const data = { ...columns(body), orgId: tenant.orgId, userId: tenant.userId, writtenByEngine: false };
    return toExecutionLog(await db.executionLog.create({ data }));
  } catch (error) {
    throw danglingReference(error, body);
  }
};

export const getExecutionLog: Handler<'getExecutionLog'> = async ({ params }, { db, reader }) => {
  return toExecutionLog(
    await reader.one(await db.executionLog.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('execution log', params.id)),
  );
};

// The caller becomes the writer of the log it changes.
export const updateExecutionLog: Handler<'updateExecutionLog'> = async ({ params, body }, { db, tenant }) => {
  try {
    const where = { id: params.id, orgId: tenant.orgId, writtenByEngine: false };
    const [row] = await db.executionLog.updateManyAndReturn({ where, data: { ...columns(body), userId: tenant.userId } });
    // No row: the log is missing or the engine's, or (a race) was deleted meanwhile.
    if (!row) throw (await refusal(db, tenant.orgId, params.id)) ?? notFound('execution log', params.id);
    return toExecutionLog(row);
  } catch (error) {
    throw danglingReference(error, body);
  }
};

// Only owners delete logs, and only those written by hand.
export const deleteExecutionLog: Handler<'deleteExecutionLog'> = async ({ params }, { db, tenant }) => {
  const refused = await refusal(db, tenant.orgId, params.id);
  if (refused) throw refused;
  assertOwner(tenant, 'delete execution logs');
  const { count } = await db.executionLog.deleteMany({ where: { id: params.id, orgId: tenant.orgId, writtenByEngine: false } });
  if (count === 0) throw notFound('execution log', params.id);
};

/** Why log `id` may not be written, if it may not: it is missing (404), or the engine's (409). */
async function refusal(db: Database, orgId: string, id: string): Promise<ProblemError | undefined> {
  const log = await db.executionLog.findFirst({ where: { id, orgId }, select: { writtenByEngine: true } });
  if (!log) return notFound('execution log', id);
  if (log.writtenByEngine) return conflict(`Execution log ${id} was written by the engine: the audit trail of a run is read-only.`);
  return undefined;
}

function columns<Fields extends ExecutionLogFields>({ inputs, outputs, error, ...fields }: Fields) {
  return {
    ...fields,
    ...(inputs && { inputs: toJsonText(inputs) }),
    ...(outputs !== undefined && { outputs: outputs && toJsonText(outputs) }),
    ...(error !== undefined && { error: error && toJsonText(error) }),
  };
}

function danglingReference(error: unknown, fields: ExecutionLogFields): unknown {
  switch (brokenForeignKey(error)) {
    case 'execution_logs_org_id_flow_id_fkey':
      return unprocessable('/flowId', `no flow ${fields.flowId} in this organization`);
    // The caller, the log's writer, was removed from the organization meanwhile.
    case 'execution_logs_org_id_user_id_fkey':
      return conflict('You were removed from the organization while this request was being handled.');
    default:
      return error;
  }
}
