// The floor for a Node service: the benchmark's endpoints on Fastify and node-postgres, with
// hand-written SQL, the same tenant check and the same responses as Tolstoy. Benchmark only.
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const app = Fastify();

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const tenantHeaders = {
  type: 'object',
  required: ['x-org-id', 'x-user-id'],
  properties: { 'x-org-id': { type: 'string', pattern: UUID }, 'x-user-id': { type: 'string', pattern: UUID } },
};
const idParams = { type: 'object', properties: { id: { type: 'string', pattern: UUID } } };
const page = { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, cursor: { type: 'string', pattern: '^v1[A-Za-z0-9_-]{22}$' } };

interface Tenant {
  orgId: string;
  userId: string;
}

function problem(reply: FastifyReply, request: FastifyRequest, status: number, kind: string, title: string, detail: string) {
  return reply
    .code(status)
    .type('application/problem+json; charset=utf-8')
    .send(JSON.stringify({ type: `/problems/${kind}`, title, status, detail, instance: request.url.split('?')[0] }));
}

async function tenantOf(request: FastifyRequest, reply: FastifyReply): Promise<Tenant | undefined> {
  const orgId = request.headers['x-org-id'] as string;
  const userId = request.headers['x-user-id'] as string;
  const { rowCount } = await pool.query('SELECT 1 FROM users WHERE org_id = $1 AND id = $2', [orgId, userId]);
  if (rowCount === 0) {
    problem(reply, request, 403, 'forbidden', 'Forbidden', `User ${userId} is not a member of organization ${orgId}.`);
    return undefined;
  }
  return { orgId, userId };
}

const decodeCursor = (cursor: string) => {
  const hex = Buffer.from(cursor.slice(2), 'base64url').toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
const encodeCursor = (id: string) => `v1${Buffer.from(id.replaceAll('-', ''), 'hex').toString('base64url')}`;

const FLOW_COLUMNS = 'f.id, f.org_id, f.name, f.description, f.version, f.steps, f.output, f.created_at, f.updated_at';

const flow = (row: any) => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  description: row.description,
  version: row.version,
  steps: JSON.parse(row.steps),
  output: row.output === null ? null : JSON.parse(row.output),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

function pageOf<Row extends { id: string }>(rows: Row[], limit: number, map: (row: Row) => unknown) {
  const items = rows.slice(0, limit);
  return { items: items.map(map), nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id) : null };
}

const json = (reply: FastifyReply, body: unknown, status = 200) => reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));

app.get('/flows/:id', { schema: { headers: tenantHeaders, params: idParams } }, async (request, reply) => {
  const tenant = await tenantOf(request, reply);
  if (!tenant) return reply;
  const { id } = request.params as { id: string };
  const { rows } = await pool.query(`SELECT ${FLOW_COLUMNS} FROM flows f WHERE f.org_id = $1 AND f.id = $2 AND f.deleted_at IS NULL`, [tenant.orgId, id]);
  if (rows.length === 0) return problem(reply, request, 404, 'not-found', 'Not found', `No flow ${id} in this organization.`);
  return json(reply, flow(rows[0]));
});

app.get('/flows', { schema: { headers: tenantHeaders, querystring: { type: 'object', properties: page } } }, async (request, reply) => {
  const tenant = await tenantOf(request, reply);
  if (!tenant) return reply;
  const { limit, cursor } = request.query as { limit: number; cursor?: string };
  const { rows } = cursor
    ? await pool.query(`SELECT ${FLOW_COLUMNS} FROM flows f WHERE f.org_id = $1 AND f.id < $2 AND f.deleted_at IS NULL ORDER BY f.id DESC LIMIT $3`, [
        tenant.orgId,
        decodeCursor(cursor),
        limit + 1,
      ])
    : await pool.query(`SELECT ${FLOW_COLUMNS} FROM flows f WHERE f.org_id = $1 AND f.deleted_at IS NULL ORDER BY f.id DESC LIMIT $2`, [
        tenant.orgId,
        limit + 1,
      ]);
  return json(reply, pageOf(rows, limit, flow));
});

app.put(
  '/flows/:id',
  {
    schema: {
      headers: tenantHeaders,
      params: idParams,
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } },
    },
  },
  async (request, reply) => {
    const tenant = await tenantOf(request, reply);
    if (!tenant) return reply;
    const { id } = request.params as { id: string };
    const { name } = request.body as { name: string };
    const { rows } = await pool.query(
      // The update and the version it adds, in one statement.
      `WITH f AS (UPDATE flows SET name = $3, version = version + 1, updated_at = now() WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING *),
        v AS (INSERT INTO flow_versions (id, org_id, flow_id, version, name, description, steps, output) SELECT uuidv7(), org_id, id, version, name, description, steps, output FROM f)
        SELECT ${FLOW_COLUMNS} FROM f`,
      [tenant.orgId, id, name],
    );
    if (rows.length === 0) return problem(reply, request, 404, 'not-found', 'Not found', `No flow ${id} in this organization.`);
    return json(reply, flow(rows[0]));
  },
);

const toolBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'baseUrl'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    baseUrl: { type: 'string', maxLength: 2048, pattern: '^https?://' },
    authType: { type: 'string', enum: ['none', 'apiKey', 'bearer', 'basic', 'oauth2'], default: 'none' },
    description: { type: ['string', 'null'], maxLength: 2000 },
  },
};

app.post('/tools', { schema: { headers: tenantHeaders, body: toolBody } }, async (request, reply) => {
  const tenant = await tenantOf(request, reply);
  if (!tenant) return reply;
  const { name, baseUrl, authType, description } = request.body as { name: string; baseUrl: string; authType: string; description?: string | null };
  const { rows } = await pool.query(
    'INSERT INTO tools (id, org_id, name, description, base_url, auth_type, updated_at) VALUES (uuidv7(), $1, $2, $3, $4, $5, now()) RETURNING *',
    [tenant.orgId, name, description ?? null, baseUrl, authType],
  );
  const tool = rows[0];
  reply.header('location', `/tools/${tool.id}`);
  return json(
    reply,
    {
      id: tool.id,
      orgId: tool.org_id,
      name: tool.name,
      description: tool.description,
      baseUrl: tool.base_url,
      authType: tool.auth_type,
      hasCredentials: tool.credentials !== null,
      createdAt: tool.created_at.toISOString(),
      updatedAt: tool.updated_at.toISOString(),
    },
    201,
  );
});

app.get(
  '/execution-logs',
  { schema: { headers: tenantHeaders, querystring: { type: 'object', properties: { ...page, flowId: { type: 'string', pattern: UUID } } } } },
  async (request, reply) => {
    const tenant = await tenantOf(request, reply);
    if (!tenant) return reply;
    const { limit, cursor, flowId } = request.query as { limit: number; cursor?: string; flowId?: string };
    const conditions = ['org_id = $1'];
    const values: unknown[] = [tenant.orgId];
    if (flowId) conditions.push(`flow_id = $${values.push(flowId)}`);
    if (cursor) conditions.push(`id < $${values.push(decodeCursor(cursor))}`);
    const { rows } = await pool.query(
      `SELECT * FROM execution_logs WHERE ${conditions.join(' AND ')} ORDER BY id DESC LIMIT $${values.push(limit + 1)}`,
      values,
    );
    return json(
      reply,
      pageOf(rows, limit, (row: any) => ({
        id: row.id,
        orgId: row.org_id,
        flowId: row.flow_id,
        userId: row.user_id,
        executionId: row.execution_id,
        stepKey: row.step_key,
        status: row.status,
        inputs: JSON.parse(row.inputs),
        outputs: row.outputs === null ? null : JSON.parse(row.outputs),
        error: row.error === null ? null : JSON.parse(row.error),
        durationMs: row.duration_ms,
        createdAt: row.created_at.toISOString(),
        updatedAt: row.updated_at.toISOString(),
      })),
    );
  },
);

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
for (const signal of ['SIGTERM', 'SIGINT'])
  process.on(
    signal,
    () =>
      void app
        .close()
        .then(() => pool.end())
        .then(() => process.exit(0)),
  );
