import { unauthorized } from '../access/callers.ts';
import { assertOwner } from '../access/tenancy.ts';
import type { Handler, OrganizationContext } from '../contract/handlers.ts';
import { conflict, notFound, ProblemError, plural, unprocessable } from '../contract/problems.ts';
import { isMissingRow } from '../db/errors.ts';
import { removeRunsOf, unfinishedRuns } from '../engine/runs/removal.ts';
import type { components } from '../generated/openapi.ts';
import type { Organization as OrganizationRow } from '../generated/prisma/client.ts';
import { keyRecord, toApiKeyCreated } from './apiKeys.ts';
import { pageArgs, toPage } from './pagination.ts';
import { toUser } from './users.ts';

type Organization = components['schemas']['Organization'];
type OrganizationFields = components['schemas']['OrganizationUpdate'];

export function toOrganization(row: OrganizationRow): Organization {
  return {
    id: row.id,
    name: row.name,
    retention: { executionsDays: row.retentionExecutionsDays },
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** The columns of an organization's fields as a request names them (a field not sent is left as it is). */
function organizationData({ name, retention }: OrganizationFields) {
  return { name, retentionExecutionsDays: retention?.executionsDays };
}

// Who sees which organizations: an API key, its own only; the operator token, all of them; and
// anyone, all of them, where tenant headers are trusted (authentication lets no one else in).

/** The organizations the caller may see, as a Prisma filter. */
function visibleTo({ caller }: OrganizationContext): { id?: string } {
  return caller.kind === 'key' ? { id: caller.tenant.orgId } : {};
}

/** Refuses a caller who may not see organization `id` (as if it did not exist), or may not change it. */
function checkAccess(context: OrganizationContext, id: string, change?: string): void {
  const { id: visible } = visibleTo(context);
  if (visible !== undefined && visible !== id) throw notFound('organization', id);
  if (change && context.caller.kind === 'key') assertOwner(context.caller.tenant, change);
}

export const listOrganizations: Handler<'listOrganizations'> = async ({ query }, context) => {
  const rows = await context.db.organization.findMany(pageArgs(query, visibleTo(context)));
  return toPage(rows, query, toOrganization);
};

// Sign-up: open to anyone (TOLSTOY_SIGNUP=open), or to the operator only. The owner becomes the
// first member and gets the first API key, in the same transaction.
export const createOrganization: Handler<'createOrganization'> = async ({ body }, { db, caller, auth }) => {
  if (!auth.signup && caller.kind !== 'operator') {
    if (caller.kind === 'anonymous') throw unauthorized('Sign-up is closed: organizations are created with the operator token.');
    throw new ProblemError('forbidden', 'Sign-up is closed: organizations are created with the operator token.');
  }
  const { owner, ...fields } = body;
  const organization = { ...organizationData(fields), name: fields.name };
  if (!owner) {
    if (auth.mode === 'keys') throw unprocessable('/owner', 'is required: its owner is the only way into an organization');
    return toOrganization(await db.organization.create({ data: organization }));
  }
  return db.$transaction(async (tx) => {
    const row = await tx.organization.create({
      data: { ...organization, users: { create: { email: owner.email, name: owner.name ?? null, role: 'owner' } } },
      include: { users: true },
    });
    const first = row.users[0]!;
    const { key, data } = keyRecord({ orgId: row.id, userId: first.id }, 'First key');
    const apiKey = toApiKeyCreated(await tx.apiKey.create({ data }), key);
    return { ...toOrganization(row), owner: toUser(first), apiKey };
  });
};

export const getOrganization: Handler<'getOrganization'> = async ({ params }, context) => {
  checkAccess(context, params.id);
  const row = await context.db.organization.findUnique({ where: { id: params.id } });
  if (!row) throw notFound('organization', params.id);
  return toOrganization(row);
};

export const updateOrganization: Handler<'updateOrganization'> = async ({ params, body }, context) => {
  checkAccess(context, params.id, 'change the organization');
  const { db } = context;
  try {
    return toOrganization(await db.organization.update({ where: { id: params.id }, data: organizationData(body) }));
  } catch (error) {
    if (isMissingRow(error)) throw notFound('organization', params.id);
    throw error;
  }
};

export const deleteOrganization: Handler<'deleteOrganization'> = async ({ params }, context) => {
  checkAccess(context, params.id, 'delete the organization');
  const { db, keys } = context;
  const { id } = params;
  await db.$transaction(async (tx) => {
    // The row lock holds off writes that reference the organization until this one is decided.
    const [organization] = await tx.$queryRaw<unknown[]>`SELECT 1 FROM organizations WHERE id = ${id}::uuid FOR UPDATE`;
    if (!organization) throw notFound('organization', id);
    const [tools, actions, flows, running] = await Promise.all([
      tx.tool.count({ where: { orgId: id } }),
      tx.action.count({ where: { orgId: id } }),
      tx.flow.count({ where: { orgId: id, deletedAt: null } }),
      unfinishedRuns(tx, id),
    ]);
    const owned = Object.entries({ tool: tools, action: actions, flow: flows, 'queued or running execution': running }).filter(([, count]) => count > 0);
    if (owned.length > 0)
      throw conflict(`Organization ${id} still has ${owned.map(([noun, count]) => plural(count, noun)).join(', ')}; delete or cancel them first.`);
    // Its history goes with it: subscriptions, executions and their logs, deleted flows and their
    // versions; its members and idempotency keys cascade.
    // Subscriptions first (their deliveries cascade), so that removing its runs reports nothing.
    await tx.subscription.deleteMany({ where: { orgId: id } });
    await removeRunsOf(tx, id);
    await tx.trigger.deleteMany({ where: { orgId: id } });
    await tx.flow.deleteMany({ where: { orgId: id } });
    await tx.organization.delete({ where: { id } });
  });
  keys.forgetOrganization(id);
};
