import { brokenForeignKey, isMissingRow } from '../db/errors.ts';
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
  const [organization, tools, actions, flows, executionLogs] = await db.$transaction([
    db.organization.findUnique({ where: { id }, select: { id: true } }),
    db.tool.count({ where: { orgId: id } }),
    db.action.count({ where: { orgId: id } }),
    db.flow.count({ where: { orgId: id } }),
    db.executionLog.count({ where: { orgId: id } }),
  ]);
  if (!organization) throw notFound('organization', id);
  const owned = Object.entries({ tool: tools, action: actions, flow: flows, 'execution log': executionLogs }).filter(([, count]) => count > 0);
  if (owned.length > 0) throw conflict(`Organization ${id} still has ${owned.map(([noun, count]) => plural(count, noun)).join(', ')}; delete them first.`);
  try {
    // Its members go with it (users cascade); everything else must be deleted first.
    await db.organization.delete({ where: { id } });
  } catch (error) {
    if (isMissingRow(error)) throw notFound('organization', id);
    if (brokenForeignKey(error) !== undefined) throw conflict(`Organization ${id} gained resources while it was being deleted; delete them first.`);
    throw error;
  }
};
