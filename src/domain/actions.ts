import { Ajv2020 } from 'ajv/dist/2020.js';
import { fromJsonText, toJsonText } from '../db/client.ts';
import { brokenForeignKey, brokenUniqueConstraint, isMissingRow } from '../db/errors.ts';
import type { components } from '../generated/openapi.ts';
import type { Action as ActionRow } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { schemaError } from './inputSchemas.ts';
import { pageArgs, toPage } from './pagination.ts';
import { outside } from './preconditions.ts';
import { conflict, LISTED, listed, notFound, type ProblemError, plural, unprocessable } from './problems.ts';

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

export const listActions: Handler<'listActions'> = async ({ query }, { db, reader }) => {
  const { toolId } = query;
  const rows = await reader.list(await db.action.findMany(pageArgs(query, { ...reader.scope, ...(toolId && { toolId }) })));
  return toPage(rows, query, toAction);
};

export const createAction: Handler<'createAction'> = async ({ body }, { db, tenant }) => {
  checkAction(body);
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

export const updateAction: Handler<'updateAction'> = async ({ params, body }, { db, tenant }) => {
  checkAction(body);
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
  if (fields.endpoint?.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw unprocessable('/endpoint', 'must not contain "." or ".." segments: an endpoint stays under the tool\'s baseUrl');
  }
  if (fields.inputSchema !== undefined && !metaSchema.validateSchema(fields.inputSchema)) {
    const [first] = metaSchema.errors ?? [];
    throw unprocessable(
      `/inputSchema${first?.instancePath ?? ''}`,
      `is not a valid JSON Schema: ${first?.message ?? 'rejected by the draft 2020-12 meta-schema'}`,
    );
  }
}

/** Refuses a schema that steps could not check their inputs against, in linear time (see inputSchemas.ts). */
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
