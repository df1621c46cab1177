// The floor for a Node service: the benchmark's endpoints on Fastify and node-postgres, written
// as a careful engineer would by hand: named prepared statements, the API key checked inside each
// statement (one round trip per request; a second only when nothing matched, to tell 401 from
// 404), the same responses and the same one-line access log as Tolstoy. Benchmark only.
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import pg from 'pg';
import { accessLog, keyOf, UNAUTHORIZED } from '../peers.ts';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const app = Fastify({ logger: false });
accessLog(app, 'Floor');

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const idParams = { type: 'object', properties: { id: { type: 'string', pattern: UUID } } };
const page = { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, cursor: { type: 'string', pattern: '^v1[A-Za-z0-9_-]{22}$' } };

// The caller's organization, for a key that exists and has not expired ($1 lookup, $2 hash).
const KEY = `k AS (SELECT org_id FROM api_keys WHERE lookup = $1 AND hash = $2 AND (expires_at IS NULL OR expires_at > now()))`;

function problem(reply: FastifyReply, request: FastifyRequest, body: { type: string; title: string; status: number; detail: string }) {
  if (body.status === 401) reply.header('www-authenticate', 'Bearer realm="tolstoy"');
  return reply
    .code(body.status)
    .type('application/problem+json; charset=utf-8')
    .send(JSON.stringify({ ...body, instance: request.url.split('?')[0] }));
}

const unauthorized = (reply: FastifyReply, request: FastifyRequest) => problem(reply, request, UNAUTHORIZED);
const notFound = (reply: FastifyReply, request: FastifyRequest, what: string, id: string) =>
  problem(reply, request, { type: '/problems/not-found', title: 'Not found', status: 404, detail: `No ${what} ${id} in this organization.` });

/** A named (prepared) statement run with the key's lookup and hash as its first two parameters. */
function query(name: string, text: string, key: { lookup: string; hash: string }, values: unknown[]) {
  return pool.query({ name, text, values: [key.lookup, key.hash, ...values] });
}

const decodeCursor = (cursor: string) => {
  const hex = Buffer.from(cursor.slice(2), 'base64url').toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
const encodeCursor = (id: string) => `v1${Buffer.from(id.replaceAll('-', ''), 'hex').toString('base64url')}`;

const FLOW_COLUMNS = 'f.id, f.org_id, f.name, f.description, f.version, f.steps, f.output, f.on_failure_flow_id, f.concurrency, f.created_at, f.updated_at';

const flow = (row: any) => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  description: row.description,
  version: row.version,
  steps: JSON.parse(row.steps),
  output: row.output === null ? null : JSON.parse(row.output),
  onFailure: row.on_failure_flow_id === null ? null : { flowId: row.on_failure_flow_id },
  concurrency: row.concurrency === null ? null : JSON.parse(row.concurrency),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

/** A page of rows; a statement that found no key answered no row at all, and an empty page one row of nulls. */
function pageOf<Row extends { id: string | null }>(rows: Row[], limit: number, map: (row: Row) => unknown) {
  const items = rows.filter((row) => row.id !== null).slice(0, limit);
  return { items: items.map(map), nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.id!) : null };
}

const json = (reply: FastifyReply, body: unknown, status = 200) => reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(body));

app.get('/flows/:id', { schema: { params: idParams } }, async (request, reply) => {
  const key = keyOf(request.headers.authorization);
  if (!key) return unauthorized(reply, request);
  const { id } = request.params as { id: string };
  const { rows } = await query(
    'get_flow',
    `WITH ${KEY} SELECT ${FLOW_COLUMNS} FROM k LEFT JOIN flows f ON f.org_id = k.org_id AND f.id = $3 AND f.deleted_at IS NULL`,
    key,
    [id],
  );
  if (rows.length === 0) return unauthorized(reply, request);
  if (rows[0].id === null) return notFound(reply, request, 'flow', id);
  return json(reply, flow(rows[0]));
});

app.get('/flows', { schema: { querystring: { type: 'object', properties: page } } }, async (request, reply) => {
  const key = keyOf(request.headers.authorization);
  if (!key) return unauthorized(reply, request);
  const { limit, cursor } = request.query as { limit: number; cursor?: string };
  const { rows } = cursor
    ? await query(
        'list_flows_after',
        `WITH ${KEY} SELECT ${FLOW_COLUMNS} FROM k LEFT JOIN LATERAL (
           SELECT * FROM flows WHERE org_id = k.org_id AND id < $3 AND deleted_at IS NULL ORDER BY id DESC LIMIT $4) f ON true`,
        key,
        [decodeCursor(cursor), limit + 1],
      )
    : await query(
        'list_flows',
        `WITH ${KEY} SELECT ${FLOW_COLUMNS} FROM k LEFT JOIN LATERAL (
           SELECT * FROM flows WHERE org_id = k.org_id AND deleted_at IS NULL ORDER BY id DESC LIMIT $3) f ON true`,
        key,
        [limit + 1],
      );
  if (rows.length === 0) return unauthorized(reply, request);
  return json(reply, pageOf(rows, limit, flow));
});

app.put(
  '/flows/:id',
  {
    schema: {
      params: idParams,
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } },
    },
  },
  async (request, reply) => {
    const key = keyOf(request.headers.authorization);
    if (!key) return unauthorized(reply, request);
    const { id } = request.params as { id: string };
    const { name } = request.body as { name: string };
    const { rows } = await query(
      'update_flow',
      // The update and the version it adds, in one statement.
      `WITH ${KEY},
         f AS (UPDATE flows SET name = $4, version = version + 1, updated_at = now() FROM k
               WHERE flows.org_id = k.org_id AND flows.id = $3 AND flows.deleted_at IS NULL RETURNING flows.*),
         v AS (INSERT INTO flow_versions (id, org_id, flow_id, version, name, description, steps, output)
               SELECT uuidv7(), org_id, id, version, name, description, steps, output FROM f)
       SELECT (SELECT org_id FROM k) AS key_org, ${FLOW_COLUMNS} FROM (SELECT 1) AS one LEFT JOIN f ON true`,
      key,
      [id, name],
    );
    if (rows[0].key_org === null) return unauthorized(reply, request);
    if (rows[0].id === null) return notFound(reply, request, 'flow', id);
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

app.post('/tools', { schema: { body: toolBody } }, async (request, reply) => {
  const key = keyOf(request.headers.authorization);
  if (!key) return unauthorized(reply, request);
  const { name, baseUrl, authType, description } = request.body as { name: string; baseUrl: string; authType: string; description?: string | null };
  const { rows } = await query(
    'create_tool',
    `WITH ${KEY} INSERT INTO tools (id, org_id, name, description, base_url, auth_type, updated_at)
     SELECT uuidv7(), org_id, $3, $4, $5, $6, now() FROM k RETURNING *`,
    key,
    [name, description ?? null, baseUrl, authType],
  );
  if (rows.length === 0) return unauthorized(reply, request);
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
      rateLimit: tool.rate_limit_requests === null ? null : { requests: tool.rate_limit_requests, perMs: tool.rate_limit_per_ms },
      pausedUntil: tool.paused_until?.toISOString() ?? null,
      createdAt: tool.created_at.toISOString(),
      updatedAt: tool.updated_at.toISOString(),
    },
    201,
  );
});

const LOG_COLUMNS =
  'l.id, l.org_id, l.flow_id, l.user_id, l.written_by_engine, l.execution_id, l.step_key, l.status, l.inputs, l.outputs, l.error, l.duration_ms, l.created_at, l.updated_at';

app.get(
  '/execution-logs',
  { schema: { querystring: { type: 'object', properties: { ...page, flowId: { type: 'string', pattern: UUID } } } } },
  async (request, reply) => {
    const key = keyOf(request.headers.authorization);
    if (!key) return unauthorized(reply, request);
    const { limit, cursor, flowId } = request.query as { limit: number; cursor?: string; flowId?: string };
    // One statement per combination of filters, each prepared once.
    const conditions = ['org_id = k.org_id'];
    const values: unknown[] = [];
    if (flowId) conditions.push(`flow_id = $${values.push(flowId) + 2}`);
    if (cursor) conditions.push(`id < $${values.push(decodeCursor(cursor)) + 2}`);
    const { rows } = await query(
      `list_logs${flowId ? '_flow' : ''}${cursor ? '_after' : ''}`,
      `WITH ${KEY} SELECT ${LOG_COLUMNS} FROM k LEFT JOIN LATERAL (
         SELECT * FROM execution_logs WHERE ${conditions.join(' AND ')} ORDER BY id DESC LIMIT $${values.push(limit + 1) + 2}) l ON true`,
      key,
      values,
    );
    if (rows.length === 0) return unauthorized(reply, request);
    return json(
      reply,
      pageOf(rows, limit, (row: any) => ({
        id: row.id,
        orgId: row.org_id,
        flowId: row.flow_id,
        userId: row.user_id,
        writtenBy: row.written_by_engine ? 'engine' : 'member',
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
