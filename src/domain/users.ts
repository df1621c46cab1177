import { brokenForeignKey, brokenUniqueConstraint, isMissingRow } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import type { User as UserRow } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { pageArgs, toPage } from './pagination.ts';
import { conflict, notFound, plural } from './problems.ts';

type User = components['schemas']['User'];

export function toUser(row: UserRow): User {
  return { id: row.id, orgId: row.orgId, email: row.email, name: row.name, createdAt: row.createdAt.toISOString(), updatedAt: row.updatedAt.toISOString() };
}

export const listUsers: Handler<'listUsers'> = async ({ query }, { db, reader }) => {
  const rows = await reader.list(await db.user.findMany(pageArgs(query, reader.scope)));
  return toPage(rows, query, toUser);
};

export const createUser: Handler<'createUser'> = async ({ body }, { db, tenant }) => {
  try {
    return toUser(await db.user.create({ data: { orgId: tenant.orgId, email: body.email, name: body.name ?? null } }));
  } catch (error) {
    throw duplicateEmail(error, body.email);
  }
};

export const getUser: Handler<'getUser'> = async ({ params }, { db, reader }) => {
  return toUser(await reader.one(await db.user.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('user', params.id)));
};

export const updateUser: Handler<'updateUser'> = async ({ params, body }, { db, tenant }) => {
  try {
    return toUser(await db.user.update({ where: { orgId_id: { orgId: tenant.orgId, id: params.id } }, data: body }));
  } catch (error) {
    if (isMissingRow(error)) throw notFound('user', params.id);
    throw duplicateEmail(error, body.email);
  }
};

export const deleteUser: Handler<'deleteUser'> = async ({ params }, { db, tenant }) => {
  const { orgId } = tenant;
  const { id } = params;
  try {
    await db.$transaction(async (tx) => {
      // Membership changes of one organization go one at a time, so that two concurrent
      // deletions cannot both see another member left and remove the last two.
      await tx.$executeRaw`SELECT 1 FROM organizations WHERE id = ${orgId}::uuid FOR UPDATE`;
      const member = await tx.user.findUnique({ where: { orgId_id: { orgId, id } }, select: { id: true } });
      if (!member) throw notFound('user', id);
      if ((await tx.user.count({ where: { orgId } })) === 1) {
        throw conflict(`User ${id} is the last member of organization ${orgId}; delete the organization instead.`);
      }
      await tx.user.delete({ where: { orgId_id: { orgId, id } } });
    });
  } catch (error) {
    if (brokenForeignKey(error) === undefined) throw error;
    const logs = await db.executionLog.count({ where: { orgId, userId: id } });
    throw conflict(`User ${id} is named by ${plural(logs, 'execution log')}; delete them first.`);
  }
};

function duplicateEmail(error: unknown, email: string | undefined): unknown {
  if (brokenUniqueConstraint(error) === 'users_org_id_email_key') return conflict(`A user with email ${email} is already a member of this organization.`);
  return error;
}
