import { fromJsonText, toJsonText } from '../db/client.ts';
import { brokenForeignKey } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import { type ExecutionLog as ExecutionLogRow, Prisma } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { pageWithinBytesSql, toBoundedPage } from './pageBytes.ts';
import { notFound, unprocessable } from './problems.ts';

type ExecutionLog = components['schemas']['ExecutionLog'];
type ExecutionLogFields = components['schemas']['ExecutionLogUpdate'];

export function toExecutionLog(row: ExecutionLogRow): ExecutionLog {
  return {
    id: row.id,
    orgId: row.orgId,
    flowId: row.flowId,
    userId: row.userId,
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
  status::text AS status, inputs, outputs, error, duration_ms AS "durationMs", created_at AS "createdAt", updated_at AS "updatedAt"`;

// One raw statement, as the hottest reads are (see flows.ts).
export const listExecutionLogs: Handler<'listExecutionLogs'> = async ({ query }, { db, reader }) => {
  const { flowId, executionId, status } = query;
  const filters = [
    flowId === undefined ? Prisma.empty : Prisma.sql`AND flow_id = ${flowId}::uuid`,
    executionId === undefined ? Prisma.empty : Prisma.sql`AND execution_id = ${executionId}`,
    status === undefined ? Prisma.empty : Prisma.sql`AND status = ${status}::execution_status`,
  ];
  const where = Prisma.sql`org_id = ${reader.tenant.orgId}::uuid ${reader.member} ${Prisma.join(filters, ' ')}`;
  const rows = await reader.list(
    await db.$queryRaw<(ExecutionLogRow & { candidates: number })[]>(pageWithinBytesSql('execution_logs', LOG_COLUMNS, where, query)),
  );
  return toBoundedPage(rows, rows[0]?.candidates ?? 0, query, toExecutionLog);
};

export const createExecutionLog: Handler<'createExecutionLog'> = async ({ body }, { db, tenant }) => {
  const fields = { ...body, userId: body.userId ?? tenant.userId };
  try {
    return toExecutionLog(await db.executionLog.create({ data: { ...columns(fields), orgId: tenant.orgId } }));
  } catch (error) {
    throw danglingReference(error, fields);
  }
};

export const getExecutionLog: Handler<'getExecutionLog'> = async ({ params }, { db, reader }) => {
  return toExecutionLog(
    await reader.one(await db.executionLog.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('execution log', params.id)),
  );
};

export const updateExecutionLog: Handler<'updateExecutionLog'> = async ({ params, body }, { db, tenant }) => {
  try {
    const [row] = await db.executionLog.updateManyAndReturn({ where: { id: params.id, orgId: tenant.orgId }, data: columns(body) });
    if (!row) throw notFound('execution log', params.id);
    return toExecutionLog(row);
  } catch (error) {
    throw danglingReference(error, body);
  }
};

export const deleteExecutionLog: Handler<'deleteExecutionLog'> = async ({ params }, { db, tenant }) => {
  const { count } = await db.executionLog.deleteMany({ where: { id: params.id, orgId: tenant.orgId } });
  if (count === 0) throw notFound('execution log', params.id);
};

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
    case 'execution_logs_org_id_user_id_fkey':
      return unprocessable('/userId', `no member ${fields.userId} in this organization`);
    default:
      return error;
  }
}
