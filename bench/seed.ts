// The benchmark's data, written with plain SQL into a migrated database: organizations with
// members, tools, actions, flows of five steps, and execution logs. Returns what the load needs
// to address it: tenants, their flows (with logs) and a cursor into a later page of flows.
import pg from 'pg';
import { newKey } from '../src/access/keyFormat.ts';
import { encodeCursor } from '../src/resources/pagination.ts';

export interface Scale {
  organizations: number;
  members: number;
  tools: number;
  flows: number;
  logsPerFlow: number;
}

export const FULL: Scale = { organizations: 20, members: 5, tools: 50, flows: 500, logsPerFlow: 10 };
export const SMOKE: Scale = { organizations: 3, members: 2, tools: 5, flows: 30, logsPerFlow: 2 };

export interface Tenant {
  orgId: string;
  userId: string;
  /** The API key of that member, with which every request of the tenant is made. */
  key: string;
  /** Flows of this tenant, newest first. */
  flowIds: string[];
  /** The cursor of the fifth page of flows (limit 20). */
  laterPage: string;
}

export interface Fixture {
  tenants: Tenant[];
  /** A flow of another tenant for each tenant, to ask for by mistake. */
  foreignFlow: (tenant: Tenant) => string;
}

export async function seed(url: string, scale: Scale): Promise<Fixture> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query(`INSERT INTO organizations (id, name, updated_at) SELECT uuidv7(), 'Bench ' || n, now() FROM generate_series(1, $1) n`, [
      scale.organizations,
    ]);
    await client.query(
      `INSERT INTO users (id, org_id, email, name, updated_at) SELECT uuidv7(), o.id, 'member' || n || '@' || o.id || '.bench', 'Member ' || n, now() FROM organizations o, generate_series(1, $1) n`,
      [scale.members],
    );
    await client.query(
      `INSERT INTO tools (id, org_id, name, base_url, auth_type, updated_at) SELECT uuidv7(), o.id, 'Tool ' || n, 'https://api' || n || '.example.com', 'bearer', now() FROM organizations o, generate_series(1, $1) n`,
      [scale.tools],
    );
    // Two actions per tool.
    await client.query(`
      INSERT INTO actions (id, org_id, tool_id, name, key, method, endpoint, headers, input_schema, updated_at)
      SELECT uuidv7(), t.org_id, t.id, 'Action ' || n, 'tool' || t.id || '.action' || n, 'POST', '/v1/things/' || n,
             '{"Content-Type":"application/json"}', '{"type":"object","properties":{"text":{"type":"string"}}}', now()
      FROM tools t, generate_series(1, 2) n`);
    await client.query(
      `INSERT INTO flows (id, org_id, name, description, version, updated_at) SELECT uuidv7(), o.id, 'Flow ' || n, 'Benchmark flow ' || n, 1, now() FROM organizations o, generate_series(1, $1) n`,
      [scale.flows],
    );
    await client.query(`
      INSERT INTO flow_steps (flow_id, position, org_id, key, action_id)
      SELECT f.id, p, f.org_id, 'step' || p, a.id
      FROM flows f CROSS JOIN generate_series(0, 4) p
      JOIN LATERAL (SELECT id FROM actions WHERE org_id = f.org_id ORDER BY id OFFSET p LIMIT 1) a ON true`);
    await client.query(`
      UPDATE flows f SET steps = (
        SELECT json_agg(json_build_object('key', s.key, 'if', null, 'continueOnError', false, 'actionId', s.action_id,
          'inputs', json_build_object('text', 'step ' || s.position || ' of ' || f.name, 'retries', 2),
          'timeoutMs', 30000, 'retry', json_build_object('maxAttempts', 1, 'initialDelayMs', 1000, 'maxDelayMs', 30000)) ORDER BY s.position)::text
        FROM flow_steps s WHERE s.flow_id = f.id)`);
    // Each flow's first version, as a create through the API would store it.
    await client.query(`
      INSERT INTO flow_versions (id, org_id, flow_id, version, name, description, steps, created_at)
      SELECT uuidv7(), org_id, id, version, name, description, steps, created_at FROM flows`);
    await client.query(
      `
      INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, inputs, outputs, duration_ms, updated_at)
      SELECT uuidv7(), f.org_id, f.id, u.id, 'run-' || n, 'step' || (n % 5), (ARRAY['completed','failed','running'])[1 + n % 3]::execution_status,
             '{"text":"hello"}', '{"ok":true}', 10 + n, now()
      FROM flows f CROSS JOIN generate_series(1, $1) n
      JOIN LATERAL (SELECT id FROM users WHERE org_id = f.org_id ORDER BY id LIMIT 1) u ON true`,
      [scale.logsPerFlow],
    );
    await client.query('COMMIT');
    await client.query('ANALYZE');
    const tenants: Tenant[] = [];
    for (const { id: orgId } of (await client.query('SELECT id FROM organizations ORDER BY id')).rows) {
      const userId = (await client.query('SELECT id FROM users WHERE org_id = $1 ORDER BY id LIMIT 1', [orgId])).rows[0].id;
      const { key, lookup, hash } = newKey();
      await client.query("INSERT INTO api_keys (id, org_id, user_id, name, lookup, hash) VALUES (uuidv7(), $1, $2, 'Benchmark', $3, $4)", [
        orgId,
        userId,
        lookup,
        hash,
      ]);
      const flowIds = (await client.query('SELECT id FROM flows WHERE org_id = $1 ORDER BY id DESC', [orgId])).rows.map((row) => row.id as string);
      const laterPage = encodeCursor(flowIds[Math.min(flowIds.length - 1, 4 * 20 - 1)]!);
      tenants.push({ orgId, userId, key, flowIds, laterPage });
    }
    return { tenants, foreignFlow: (tenant) => tenants[(tenants.indexOf(tenant) + 1) % tenants.length]!.flowIds[0]! };
  } finally {
    await client.end();
  }
}
