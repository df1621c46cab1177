import { brokenForeignKey, isMissingRow } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import type { Tool as ToolRow } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { pageArgs, toPage } from './pagination.ts';
import { conflict, LISTED, listed, notFound, plural } from './problems.ts';

type Tool = components['schemas']['Tool'];

export function toTool(row: ToolRow): Tool {
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    description: row.description,
    baseUrl: row.baseUrl,
    authType: row.authType,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export const listTools: Handler<'listTools'> = async ({ query }, { db, reader }) => {
  const rows = await reader.list(await db.tool.findMany(pageArgs(query, reader.scope)));
  return toPage(rows, query, toTool);
};

export const createTool: Handler<'createTool'> = async ({ body }, { db, tenant }) => {
  return toTool(await db.tool.create({ data: { ...body, orgId: tenant.orgId } }));
};

export const getTool: Handler<'getTool'> = async ({ params }, { db, reader }) => {
  return toTool(await reader.one(await db.tool.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('tool', params.id)));
};

export const updateTool: Handler<'updateTool'> = async ({ params, body }, { db, tenant }) => {
  try {
    return toTool(await db.tool.update({ where: { orgId_id: { orgId: tenant.orgId, id: params.id } }, data: body }));
  } catch (error) {
    if (isMissingRow(error)) throw notFound('tool', params.id);
    throw error;
  }
};

export const deleteTool: Handler<'deleteTool'> = async ({ params }, { db, tenant }) => {
  const { orgId } = tenant;
  const { id } = params;
  try {
    await db.tool.delete({ where: { orgId_id: { orgId, id } } });
  } catch (error) {
    if (isMissingRow(error)) throw notFound('tool', id);
    if (brokenForeignKey(error) === undefined) throw error;
    const where = { orgId, toolId: id };
    const [count, first] = await Promise.all([
      db.action.count({ where }),
      db.action.findMany({ where, select: { key: true }, orderBy: { id: 'asc' }, take: LISTED }),
    ]);
    throw conflict(
      `Tool ${id} still has ${plural(count, 'action')} (${listed(
        first.map((a) => a.key),
        count,
      )}); delete them first.`,
    );
  }
};
