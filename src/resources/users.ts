import { assertOwner, type Tenant } from '../access/tenancy.ts';
import type { Handler } from '../contract/handlers.ts';
import { conflict, notFound, plural } from '../contract/problems.ts';
import type { Transaction } from '../db/client.ts';
import { brokenForeignKey, brokenUniqueConstraint, isMissingRow } from '../db/errors.ts';
import { unfinishedRuns } from '../engine/runs/removal.ts';
import type { components } from '../generated/openapi.ts';
import type { User as UserRow } from '../generated/prisma/client.ts';
import { outside } from '../http/rules/preconditions.ts';
import { pageArgs, toPage } from './pagination.ts';

type User = components['schemas']['User'];

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    orgId: row.orgId,
    email: row.email,
    name: row.name,
    role: row.role,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export const listUsers: Handler<'listUsers'> = async ({ query }, { db, reader }) => {
  const rows = await reader.list(await db.user.findMany(pageArgs(query, reader.scope)));
  return toPage(rows, query, toUser);
};

export const createUser: Handler<'createUser'> = async ({ body }, { db, tenant }) => {
  assertOwner(tenant, 'add members');
  try {
    return toUser(await db.user.create({ data: { orgId: tenant.orgId, email: body.email, name: body.name ?? null, role: body.role ?? 'member' } }));
  } catch (error) {
    throw duplicateEmail(error, body.email);
  }
};

export const getUser: Handler<'getUser'> = async ({ params }, { db, reader }) => {
  return toUser(await reader.one(await db.user.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('user', params.id)));
};

// Members may change their own email and name; everything else about members is for owners.
export const updateUser: Handler<'updateUser'> = async ({ params, body }, { db, tenant, keys }) => {
  const { orgId } = tenant;
  const { id } = params;
  if (id !== tenant.userId) assertOwner(tenant, 'change other members');
  if (body.role !== undefined) assertOwner(tenant, 'change roles');
  try {
    const row = await db.$transaction(async (tx) => {
      const member = await lockedMember(tx, orgId, id);
      if (body.role === 'member' && member.role === 'owner' && (await ownerCount(tx, orgId)) === 1) {
        throw conflict(`User ${id} is the last owner of organization ${orgId}; make another member an owner first.`);
      }
      return tx.user.update({ where: { orgId_id: { orgId, id } }, data: body });
    });
    if (body.role !== undefined) keys.forgetMember(orgId, id);
    return toUser(row);
  } catch (error) {
    if (isMissingRow(error)) throw notFound('user', id);
    throw duplicateEmail(error, body.email);
  }
};

// Members may leave; removing others is for owners.
export const deleteUser: Handler<'deleteUser'> = async ({ params }, { db, tenant, keys }) => {
  const { orgId } = tenant;
  const { id } = params;
  if (id !== tenant.userId) assertOwner(tenant, 'remove other members');
  try {
    await db.$transaction(async (tx) => {
      const member = await lockedMember(tx, orgId, id);
      if ((await tx.user.count({ where: { orgId } })) === 1) {
        throw conflict(`User ${id} is the last member of organization ${orgId}; delete the organization instead.`);
      }
      if (member.role === 'owner' && (await ownerCount(tx, orgId)) === 1) {
        throw conflict(`User ${id} is the last owner of organization ${orgId}; make another member an owner first.`);
      }
      // Their runs log every attempt in their name until they finish.
      const running = await unfinishedRuns(tx, orgId, id);
      if (running > 0) throw conflict(`User ${id} started ${plural(running, 'execution')} not yet finished; cancel them or let them finish first.`);
      await tx.user.delete({ where: { orgId_id: { orgId, id } } });
    });
    keys.forgetMember(orgId, id);
  } catch (error) {
    if (brokenForeignKey(error) === undefined) throw error;
    const logs = await outside(db).executionLog.count({ where: { orgId, userId: id } });
    throw conflict(`User ${id} is named by ${plural(logs, 'execution log')}; delete them first.`);
  }
};

/**
 * The member, once changes to the organization's members are ours alone: they go one at a time,
 * so that two concurrent removals (or demotions) cannot both see another owner left. The lock
 * (NO KEY UPDATE) leaves inserts that reference the organization free, so none can deadlock with it.
 */
async function lockedMember(tx: Transaction, orgId: string, id: string): Promise<Pick<Tenant, 'role'>> {
  await tx.$executeRaw`SELECT 1 FROM organizations WHERE id = ${orgId}::uuid FOR NO KEY UPDATE`;
  const member = await tx.user.findUnique({ where: { orgId_id: { orgId, id } }, select: { role: true } });
  if (!member) throw notFound('user', id);
  return member;
}

function ownerCount(tx: Transaction, orgId: string): Promise<number> {
  return tx.user.count({ where: { orgId, role: 'owner' } });
}

function duplicateEmail(error: unknown, email: string | undefined): unknown {
  if (brokenUniqueConstraint(error) === 'users_org_id_email_key') return conflict(`A user with email ${email} is already a member of this organization.`);
  return error;
}
