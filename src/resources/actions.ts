import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Handler, ServiceContext } from '../contract/handlers.ts';
import { conflict, LISTED, listed, notFound, type ProblemError, plural, unprocessable } from '../contract/problems.ts';
import { type Credentials, CredentialsError } from '../crypto/keyring.ts';
import { fromJsonText, toJsonText } from '../db/client.ts';
import { brokenForeignKey, brokenUniqueConstraint, isMissingRow } from '../db/errors.ts';
import { schemaError } from '../definitions/inputSchemas.ts';
import { climbs, credentialHeader, refusedHeader } from '../definitions/toolRequests.ts';
import type { components } from '../generated/openapi.ts';
import { type Action as ActionRow, Prisma } from '../generated/prisma/client.ts';
import { outside } from '../http/rules/preconditions.ts';
import { boundedPageSql, toBoundedPage } from './pagination.ts';

type Action = components['schemas']['Action'];
type ActionFields = Partial<components['schemas']['ActionCreate']>;

// Only checks schemas against the draft 2020-12 meta-schema; user schemas are never compiled here
// (see schemaError for why).
const metaSchema = new Ajv2020({ strict: false, validateFormats: false });

export function toAction(row: ActionRow): Action {
  return {
    id: row.id,
    orgId: row.orgId,
    toolId: row.toolId,
    name: row.name,
    key: row.key,
    description: row.description,
    method: row.method,
    endpoint: row.endpoint,
    headers: fromJsonText(row.headers),
    inputSchema: fromJsonText(row.inputSchema),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

// An action's columns under the names of Prisma's model, so that toAction reads raw rows too.
const ACTION_COLUMNS = Prisma.sql`id, org_id AS "orgId", tool_id AS "toolId", name, key, description, method::text AS method, endpoint, headers,
  input_schema AS "inputSchema", created_at AS "createdAt", updated_at AS "updatedAt"`;

// An input schema may be about as large as a body (1 MiB): a page holds at most PAGE_BYTES of them.
export const listActions: Handler<'listActions'> = async ({ query }, { db, reader }) => {
  const { toolId } = query;
  const byTool = toolId === undefined ? Prisma.empty : Prisma.sql`AND tool_id = ${toolId}::uuid`;
  const from = Prisma.sql`FROM actions WHERE org_id = ${reader.tenant.orgId}::uuid ${reader.member} ${byTool}`;
  const page = boundedPageSql(query, { columns: ACTION_COLUMNS, from, documents: ['headers', 'input_schema'] });
  return toBoundedPage(await reader.list(await db.$queryRaw<(ActionRow & { pageFollowed: boolean })[]>(page)), toAction);
};

export const createAction: Handler<'createAction'> = async ({ body }, { db, tenant, keyring }) => {
  checkAction(body);
  await checkHeaders(body.toolId, body.headers, { db, keyring, orgId: tenant.orgId });
  checkInputSchema(body.inputSchema);
  try {
    return toAction(await db.action.create({ data: { ...columns(body), orgId: tenant.orgId } }));
  } catch (error) {
    throw refusedWrite(error, body);
  }
};

export const getAction: Handler<'getAction'> = async ({ params }, { db, reader }) => {
  return toAction(await reader.one(await db.action.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('action', params.id)));
};

export const updateAction: Handler<'updateAction'> = async ({ params, body }, { db, tenant, keyring }) => {
  checkAction(body);
  if (body.headers !== undefined || body.toolId !== undefined) {
    const current = await db.action.findUnique({ where: { orgId_id: { orgId: tenant.orgId, id: params.id } }, select: { toolId: true, headers: true } });
    if (current) await checkHeaders(body.toolId ?? current.toolId, body.headers ?? fromJsonText(current.headers), { db, keyring, orgId: tenant.orgId });
  }
  checkInputSchema(body.inputSchema);
  try {
    return toAction(await db.action.update({ where: { orgId_id: { orgId: tenant.orgId, id: params.id } }, data: columns(body) }));
  } catch (error) {
    if (isMissingRow(error)) throw notFound('action', params.id);
    throw refusedWrite(error, body);
  }
};

export const deleteAction: Handler<'deleteAction'> = async ({ params }, { db, tenant }) => {
  const { orgId } = tenant;
  const { id } = params;
  try {
    await db.action.delete({ where: { orgId_id: { orgId, id } } });
  } catch (error) {
    if (isMissingRow(error)) throw notFound('action', id);
    if (brokenForeignKey(error) === undefined) throw error;
    const where = { orgId, stepRefs: { some: { actionId: id } } };
    const [count, first] = await Promise.all([
      outside(db).flow.count({ where }),
      outside(db).flow.findMany({ where, select: { id: true }, orderBy: { id: 'asc' }, take: LISTED }),
    ]);
    throw conflict(
      `Action ${id} is called by steps of ${plural(count, 'flow')} (${listed(
        first.map((f) => f.id),
        count,
      )}); change or delete them first.`,
    );
  }
};

function columns<Fields extends ActionFields>({ headers, inputSchema, ...fields }: Fields) {
  return {
    ...fields,
    ...(headers && { headers: toJsonText(headers) }),
    ...(inputSchema && { inputSchema: toJsonText(inputSchema) }),
  };
}

function checkAction(fields: ActionFields): void {
  if (fields.endpoint?.split('/').some(climbs)) {
    throw unprocessable('/endpoint', 'must not contain "." or ".." segments, even percent-encoded: an endpoint stays under the tool\'s baseUrl');
  }
  if (fields.inputSchema !== undefined && !metaSchema.validateSchema(fields.inputSchema)) {
    const [first] = metaSchema.errors ?? [];
    throw unprocessable(
      `/inputSchema${first?.instancePath ?? ''}`,
      `is not a valid JSON Schema: ${first?.message ?? 'rejected by the draft 2020-12 meta-schema'}`,
    );
  }
}

/** Refuses headers that would route the request elsewhere, or claim the header of the tool's credentials. */
async function checkHeaders(
  toolId: string,
  headers: Record<string, string> | undefined,
  { db, keyring, orgId }: Pick<ServiceContext, 'db' | 'keyring'> & { orgId: string },
): Promise<void> {
  if (headers === undefined || Object.keys(headers).length === 0) return;
  // A missing tool is answered by the write itself (422 on /toolId).
  const tool = await db.tool.findUnique({ where: { orgId_id: { orgId, id: toolId } }, select: { authType: true, credentials: true } });
  const header = tool && credentialHeader(tool.authType, tool.credentials === null ? null : opened(tool.credentials, keyring, { orgId, toolId }));
  for (const name of Object.keys(headers)) {
    const refusal = refusedHeader(name, header ?? undefined);
    if (refusal) throw unprocessable(`/headers/${name.replaceAll('~', '~0').replaceAll('/', '~1')}`, `the header ${name} ${refusal}`);
  }
}

/** The tool's credentials, or null when they cannot be opened (the run will say why). */
function opened(sealed: string, keyring: ServiceContext['keyring'], owner: { orgId: string; toolId: string }): Credentials | null {
  try {
    return keyring.open(sealed, owner);
  } catch (error) {
    if (error instanceof CredentialsError) return null;
    throw error;
  }
}

/** Refuses a schema that steps could not check their inputs against, in linear time (see src/definitions/inputSchemas.ts). */
function checkInputSchema(schema: ActionFields['inputSchema']): void {
  if (schema === undefined) return;
  const error = schemaError(schema);
  if (error) throw unprocessable(`/inputSchema${error.pointer}`, error.message);
}

function refusedWrite(error: unknown, fields: ActionFields): ProblemError | unknown {
  if (brokenForeignKey(error) === 'actions_org_id_tool_id_fkey') return unprocessable('/toolId', `no tool ${fields.toolId} in this organization`);
  if (brokenUniqueConstraint(error) === 'actions_org_id_key_key') return conflict(`An action with key ${fields.key} already exists in this organization.`);
  return error;
}
