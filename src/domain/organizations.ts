import { isMissingRow } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import type { Organization as OrganizationRow } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { pageArgs, toPage } from './pagination.ts';
import { conflict, notFound, plural } from './problems.ts';
import { toUser } from './users.ts';

type Organization = components['schemas']['Organization'];

export function toOrganization(row: OrganizationRow): Organization {
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString(), updatedAt: row.updatedAt.toISOString() };
}

export const listOrganizations: Handler<'listOrganizations'> = async ({ query }, { db }) => {
  const rows = await db.organization.findMany(pageArgs(query));
  return toPage(rows, query, toOrganization);
};

export const createOrganization: Handler<'createOrganization'> = async ({ body }, { db }) => {
  const { owner, ...organization } = body;
  const row = await db.organization.create({
    data: { ...organization, ...(owner && { users: { create: { email: owner.email, name: owner.name ?? null } } }) },
    include: { users: true },
  });
  const [first] = row.users;
  return { ...toOrganization(row), ...(first && { owner: toUser(first) }) };
};

export const getOrganization: Handler<'getOrganization'> = async ({ params }, { db }) => {
  const row = await db.organization.findUnique({ where: { id: params.id } });
  if (!row) throw notFound('organization', params.id);
  return toOrganization(row);
};

export const updateOrganization: Handler<'updateOrganization'> = async ({ params, body }, { db }) => {
  try {
    return toOrganization(await db.organization.update({ where: { id: params.id }, data: body }));
  } catch (error) {
    if (isMissingRow(error)) throw notFound('organization', params.id);
    throw error;
  }
};

export const deleteOrganization: Handler<'deleteOrganization'> = async ({ params }, { db }) => {
  const { id } = params;
  await db.$transaction(async (tx) => {
    // The row lock holds off writes that reference the organization until this one is decided.
    const [organization] = await tx.$queryRaw<unknown[]>`SELECT 1 FROM organizations WHERE id = ${id}::uuid FOR UPDATE`;
    if (!organization) throw notFound('organization', id);
    const [tools, actions, flows, running] = await Promise.all([
      tx.tool.count({ where: { orgId: id } }),
      tx.action.count({ where: { orgId: id } }),
      tx.flow.count({ where: { orgId: id, deletedAt: null } }),
      tx.execution.count({ where: { orgId: id, status: { in: ['queued', 'running'] } } }),
    ]);
    const owned = Object.entries({ tool: tools, action: actions, flow: flows, 'queued or running execution': running }).filter(([, count]) => count > 0);
    if (owned.length > 0)
      throw conflict(`Organization ${id} still has ${owned.map(([noun, count]) => plural(count, noun)).join(', ')}; delete or cancel them first.`);
    // Its history goes with it: executions and their logs, deleted flows and their versions; its
    // members and idempotency keys cascade.
    await tx.executionLog.deleteMany({ where: { orgId: id } });
    await tx.execution.updateMany({ where: { orgId: id, retryOf: { not: null } }, data: { retryOf: null } });
    await tx.execution.deleteMany({ where: { orgId: id } });
    await tx.flow.deleteMany({ where: { orgId: id } });
    await tx.organization.delete({ where: { id } });
  });
};
