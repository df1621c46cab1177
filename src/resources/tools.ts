import { v7 as uuidv7 } from 'uuid';
import { assertOwner } from '../access/tenancy.ts';
import type { Handler } from '../contract/handlers.ts';
import { conflict, LISTED, listed, notFound, plural, unprocessable } from '../contract/problems.ts';
import type { Transaction } from '../db/client.ts';
import { brokenForeignKey, isMissingRow } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import { Prisma, type Tool as ToolRow } from '../generated/prisma/client.ts';
import { outside } from '../http/rules/preconditions.ts';
import { pageArgs, toPage } from './pagination.ts';
import { checkCredentialsFit } from './toolCredentials.ts';

type Tool = components['schemas']['Tool'];

export function toTool(row: ToolRow): Tool {
  return {
    id: row.id,
    orgId: row.orgId,
    name: row.name,
    description: row.description,
    baseUrl: row.baseUrl,
    authType: row.authType,
    hasCredentials: row.credentials !== null,
    rateLimit: row.rateLimitRequests === null || row.rateLimitPerMs === null ? null : { requests: row.rateLimitRequests, perMs: row.rateLimitPerMs },
    pausedUntil: row.pausedUntil?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export const listTools: Handler<'listTools'> = async ({ query }, { db, reader }) => {
  const rows = await reader.list(await db.tool.findMany(pageArgs(query, reader.scope)));
  return toPage(rows, query, toTool);
};

// A tool's columns under the names of Prisma's model, so that toTool reads raw rows too.
const TOOL_COLUMNS = Prisma.sql`id, org_id AS "orgId", name, description, base_url AS "baseUrl", auth_type::text AS "authType", credentials,
  rate_limit_requests AS "rateLimitRequests", rate_limit_per_ms AS "rateLimitPerMs", paused_until AS "pausedUntil", created_at AS "createdAt", updated_at AS "updatedAt"`;

export const createTool: Handler<'createTool'> = async ({ body }, { db, tenant, keyring }) => {
  const { credentials, name, description = null, baseUrl, authType = 'none', rateLimit = null } = body;
  if (credentials !== undefined) assertOwner(tenant, 'set tool credentials');
  checkCredentialsFit(authType, credentials);
  // The id is made here: the sealed credentials are bound to it.
  const id = uuidv7();
  const sealed = credentials ? keyring.seal(credentials, { orgId: tenant.orgId, toolId: id }) : null;
  // One statement, as the hottest writes are (see flows.ts).
  const [row] = await db.$queryRaw<ToolRow[]>`
    INSERT INTO tools (id, org_id, name, description, base_url, auth_type, credentials, rate_limit_requests, rate_limit_per_ms, updated_at)
    VALUES (${id}::uuid, ${tenant.orgId}::uuid, ${name}, ${description}, ${baseUrl}, ${authType}::auth_type, ${sealed},
      ${rateLimit?.requests ?? null}::int, ${rateLimit?.perMs ?? null}::int, now())
    RETURNING ${TOOL_COLUMNS}`;
  return toTool(row!);
};

export const getTool: Handler<'getTool'> = async ({ params }, { db, reader }) => {
  return toTool(await reader.one(await db.tool.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('tool', params.id)));
};

export const updateTool: Handler<'updateTool'> = async ({ params, body }, { db, tenant, keyring }) => {
  const { orgId } = tenant;
  const { credentials, rateLimit, ...fields } = body;
  const where = { orgId_id: { orgId, id: params.id } };
  if (credentials !== undefined) assertOwner(tenant, 'set tool credentials');
  try {
    // The rule on credentials is checked against the row as it is when written: locked, so that a
    // member's new baseUrl cannot slip in between the owner's read and write of credentials.
    const row = await db.$transaction(async (tx) => {
      const current = await lockedTool(tx, orgId, params.id);
      // Stored credentials go wherever the base URL points: moving them is for owners too.
      if (current.credentials !== null && fields.baseUrl !== undefined && fields.baseUrl !== current.baseUrl) {
        assertOwner(tenant, 'change the base URL of a tool that has credentials');
      }
      const authType = fields.authType ?? current.authType;
      checkCredentialsFit(authType, credentials);
      // Stored credentials fit only the auth type they were given for.
      if (authType !== current.authType && current.credentials !== null && credentials === undefined) {
        throw unprocessable('/credentials', `send credentials for ${authType} (or null to remove them): the stored ones are for ${current.authType}`);
      }
      const sealed = credentials === undefined ? {} : { credentials: credentials && keyring.seal(credentials, { orgId, toolId: params.id }) };
      const limit = rateLimit === undefined ? {} : await newRateLimit(tx, params.id, current, rateLimit);
      return tx.tool.update({ where, data: { ...fields, ...sealed, ...limit } });
    });
    return toTool(row);
  } catch (error) {
    if (isMissingRow(error)) throw notFound('tool', params.id);
    throw error;
  }
};

type LockedTool = Pick<ToolRow, 'authType' | 'baseUrl' | 'credentials' | 'rateLimitRequests' | 'rateLimitPerMs'>;

/** The tool's row, locked until the transaction ends (NO KEY UPDATE: actions may still reference it; calls wait to be counted). */
async function lockedTool(tx: Transaction, orgId: string, id: string): Promise<LockedTool> {
  const [tool] = await tx.$queryRaw<LockedTool[]>`
    SELECT auth_type::text AS "authType", base_url AS "baseUrl", credentials, rate_limit_requests AS "rateLimitRequests", rate_limit_per_ms AS "rateLimitPerMs"
    FROM tools WHERE org_id = ${orgId}::uuid AND id = ${id}::uuid FOR NO KEY UPDATE`;
  if (!tool) throw notFound('tool', id);
  return tool;
}

/** The columns of a new rate limit; a changed limit starts its count afresh (its log of calls is emptied). */
async function newRateLimit(tx: Transaction, toolId: string, current: LockedTool, rateLimit: Tool['rateLimit']) {
  const requests = rateLimit?.requests ?? null;
  const perMs = rateLimit?.perMs ?? null;
  const changed = requests !== current.rateLimitRequests || perMs !== current.rateLimitPerMs;
  if (changed) await tx.$executeRaw`DELETE FROM tool_calls WHERE tool_id = ${toolId}::uuid`;
  // A changed limit starts its count, and its line of refused calls, afresh.
  return { rateLimitRequests: requests, rateLimitPerMs: perMs, ...(changed && { nextTurnAt: null }) };
}

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
      outside(db).action.count({ where }),
      outside(db).action.findMany({ where, select: { key: true }, orderBy: { id: 'asc' }, take: LISTED }),
    ]);
    throw conflict(
      `Tool ${id} still has ${plural(count, 'action')} (${listed(
        first.map((a) => a.key),
        count,
      )}); delete them first.`,
    );
  }
};
