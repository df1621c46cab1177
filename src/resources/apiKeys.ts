// API keys as a resource: a member's keys, made, listed, read and revoked. What a key looks like
// (its prefix, lookup id, secret and checksum) and its stored hash are src/access/keyFormat.ts.

import { KEY_PREFIX, newKey } from '../access/keyFormat.ts';
import { assertOwner, type Tenant } from '../access/tenancy.ts';
import type { Handler } from '../contract/handlers.ts';
import { notFound, ProblemError, unprocessable } from '../contract/problems.ts';
import type { components } from '../generated/openapi.ts';
import type { ApiKey as ApiKeyRow } from '../generated/prisma/client.ts';
import { pageArgs, toPage } from './pagination.ts';

type ApiKey = components['schemas']['ApiKey'];
type ApiKeyCreated = components['schemas']['ApiKeyCreated'];

export function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    orgId: row.orgId,
    userId: row.userId,
    name: row.name,
    prefix: KEY_PREFIX + row.lookup,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    expiresAt: row.expiresAt?.toISOString() ?? null,
  };
}

/** What it takes to store a new key of a member; the key itself is in the answer only. */
export function keyRecord(tenant: Pick<Tenant, 'orgId' | 'userId'>, name: string, expiresAt: Date | null = null) {
  const { key, lookup, hash } = newKey();
  return { key, data: { orgId: tenant.orgId, userId: tenant.userId, name, lookup, hash, expiresAt } };
}

export function toApiKeyCreated(row: ApiKeyRow, key: string): ApiKeyCreated {
  return { ...toApiKey(row), key };
}

/** Why a key's creation is not replayed: its secret is shown once, and not kept. */
export const replayRefused = (id: string) =>
  `The first request with this Idempotency-Key made API key ${id}, whose secret was shown once and is not kept. ` +
  `If that answer was lost, revoke the key (DELETE /api-keys/${id}) and create another with a new Idempotency-Key.`;

export const createApiKey: Handler<'createApiKey'> = async ({ body }, { db, tenant }) => {
  const userId = body.userId ?? tenant.userId;
  if (userId !== tenant.userId) assertOwner(tenant, "create keys for other members (a member's own keys are theirs to make)");
  const expiresAt = body.expiresAt === undefined ? null : new Date(body.expiresAt);
  if (expiresAt && expiresAt.getTime() <= Date.now()) throw unprocessable('/expiresAt', 'must be in the future');
  const member = await db.user.findUnique({ where: { orgId_id: { orgId: tenant.orgId, id: userId } }, select: { id: true } });
  if (!member) throw unprocessable('/userId', `no user ${userId} in this organization`);
  const { key, data } = keyRecord({ orgId: tenant.orgId, userId }, body.name, expiresAt);
  return toApiKeyCreated(await db.apiKey.create({ data }), key);
};

export const listApiKeys: Handler<'listApiKeys'> = async ({ query }, { db, reader }) => {
  const { userId } = reader.tenant;
  const owner = (await reader.role()) === 'owner';
  if (!owner && query.userId !== undefined && query.userId !== userId) {
    throw new ProblemError('forbidden', "Only an owner of the organization may list other members' keys.");
  }
  const of = query.userId ?? (owner ? undefined : userId);
  const rows = await db.apiKey.findMany(pageArgs(query, { orgId: reader.tenant.orgId, ...(of && { userId: of }) }));
  return toPage(rows, query, toApiKey);
};

export const getApiKey: Handler<'getApiKey'> = async ({ params }, { db, reader }) => {
  const role = await reader.role();
  const row = await db.apiKey.findUnique({ where: { orgId_id: { orgId: reader.tenant.orgId, id: params.id } } });
  if (!row) throw notFound('API key', params.id);
  if (row.userId !== reader.tenant.userId) assertOwner({ role }, "see other members' keys");
  return toApiKey(row);
};

export const deleteApiKey: Handler<'deleteApiKey'> = async ({ params }, { db, tenant, keys }) => {
  const where = { orgId_id: { orgId: tenant.orgId, id: params.id } };
  const row = await db.apiKey.findUnique({ where, select: { userId: true } });
  if (!row) throw notFound('API key', params.id);
  if (row.userId !== tenant.userId) assertOwner(tenant, "revoke other members' keys");
  const { count } = await db.apiKey.deleteMany({ where: { orgId: tenant.orgId, id: params.id } });
  if (count === 0) throw notFound('API key', params.id);
  keys.forgetKey(params.id);
};
