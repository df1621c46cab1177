import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import t from 'tap';
import { applyMigrations, MIGRATIONS_DIR, readMigrations } from '../../src/db/migrations.ts';
import { databaseUrl, freshDatabaseUrl } from '../helper.ts';
import { actualShape, expectedShape } from './shape.ts';

async function emptyDatabase(t: Parameters<typeof freshDatabaseUrl>[0]): Promise<string> {
  // A database cloned from template0 has no tables at all.
  const url = await freshDatabaseUrl(t);
  const name = `empty_${Date.now()}_${Math.random().toString(36).slice(2)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE template0`);
  await admin.end();
  t.teardown(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.end();
  });
  return databaseUrl(url, name);
}

async function query(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

t.test('the migrated database matches schema.prisma (no drift)', async (t) => {
  const url = await emptyDatabase(t);
  await applyMigrations(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  t.teardown(() => client.end());
  const expected = await expectedShape(await readFile(new URL('../../prisma/schema.prisma', import.meta.url), 'utf8'));
  t.same(await actualShape(client), expected);
});

t.test("migrations are applied once, with Prisma's bookkeeping", async (t) => {
  const url = await emptyDatabase(t);
  const migrations = await readMigrations();
  const first = await applyMigrations(url);
  t.same(
    first.applied,
    migrations.map((m) => m.name),
  );
  const rows = await query(
    url,
    'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs FROM _prisma_migrations ORDER BY started_at',
  );
  t.same(
    rows.map((r) => [r.migration_name, r.checksum, r.finished_at instanceof Date, r.rolled_back_at, r.applied_steps_count, r.logs]),
    await Promise.all(
      migrations.map(async (m) => [
        m.name,
        createHash('sha256')
          .update(await readFile(join(MIGRATIONS_DIR, m.name, 'migration.sql')))
          .digest('hex'),
        true,
        null,
        1,
        null,
      ]),
    ),
  );
  t.same(await applyMigrations(url), { applied: [], modified: [] }, 'a second run applies nothing');
});

t.test('concurrent runs apply each migration once', async (t) => {
  const url = await emptyDatabase(t);
  const reports = await Promise.all([applyMigrations(url), applyMigrations(url), applyMigrations(url)]);
  t.equal(reports.flatMap((r) => r.applied).length, (await readMigrations()).length);
  t.equal((await query(url, 'SELECT count(*)::int AS n FROM _prisma_migrations'))[0].n, (await readMigrations()).length);
});

t.test('a migration changed after it was applied is reported', async (t) => {
  const url = await emptyDatabase(t);
  await applyMigrations(url);
  await query(url, "UPDATE _prisma_migrations SET checksum = 'changed'");
  t.same(
    (await applyMigrations(url)).modified,
    (await readMigrations()).map((m) => m.name),
  );
});

t.test('a failing migration leaves nothing behind', async (t) => {
  const url = await emptyDatabase(t);
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-migrations-'));
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  await mkdir(join(dir, '29990101000000_broken'));
  await writeFile(join(dir, '29990101000000_broken', 'migration.sql'), 'CREATE TABLE "half" ("id" INT);\nALTER TABLE "nope" ADD COLUMN "x" INT;\n');
  await t.rejects(applyMigrations(url, dir), /Migration 29990101000000_broken failed and was rolled back: relation "nope" does not exist/);
  t.same(await query(url, "SELECT to_regclass('public.half') AS half"), [{ half: null }], 'its first statement was rolled back');
  const names = (await query(url, 'SELECT migration_name FROM _prisma_migrations')).map((r) => r.migration_name);
  t.notOk(names.includes('29990101000000_broken'), 'and it is not recorded');
  t.ok(names.length > 0, 'the migrations before it stay applied');
});

t.test('a failed migration recorded by Prisma blocks further runs until resolved', async (t) => {
  const url = await emptyDatabase(t);
  await applyMigrations(url);
  await query(url, "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES ('x', 'y', '29990101000000_failed', now())");
  await t.rejects(applyMigrations(url), /29990101000000_failed failed earlier and was never resolved/);
});

t.test('flows written before executions get step defaults and a first version, their inputs kept to the byte', async (t) => {
  const url = await emptyDatabase(t);
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-migrations-'));
  const before = (await readMigrations()).filter((m) => m.name < '20261125120000');
  for (const migration of before) {
    await mkdir(join(dir, migration.name));
    await writeFile(join(dir, migration.name, 'migration.sql'), migration.script);
  }
  await applyMigrations(url, dir);
  const inputs = '{"z":1,"a":{"__proto__":2.50,"b":[true,null]},"text":"caf\\u00e9"}';
  await query(
    url,
    `WITH o AS (INSERT INTO organizations (id, name, updated_at) VALUES (gen_random_uuid(), 'Old', now()) RETURNING id),
          tl AS (INSERT INTO tools (id, org_id, name, base_url, updated_at) SELECT gen_random_uuid(), id, 'T', 'https://x.io', now() FROM o RETURNING id, org_id),
          a AS (INSERT INTO actions (id, org_id, tool_id, name, key, method, endpoint, updated_at) SELECT gen_random_uuid(), org_id, id, 'A', 'a', 'GET', '/a', now() FROM tl RETURNING id, org_id)
     INSERT INTO flows (id, org_id, name, version, steps, updated_at)
     SELECT gen_random_uuid(), org_id, 'Old flow', 3, '[{"key":"one","actionId":"' || id || '","inputs":' || $1 || '}]', now() FROM a`,
    [inputs],
  );
  await applyMigrations(url);
  const [flow] = await query(url, 'SELECT id, steps, version FROM flows');
  const [step] = JSON.parse(flow.steps);
  t.match(step, { key: 'one', if: null, timeoutMs: 30000, retry: { maxAttempts: 1, initialDelayMs: 1000, maxDelayMs: 30000 }, continueOnError: false });
  t.ok(flow.steps.includes(`"inputs":${inputs},`), 'the inputs are the same text');
  const versions = await query(url, 'SELECT version, steps, name FROM flow_versions WHERE flow_id = $1', [flow.id]);
  t.same(versions, [{ version: 3, steps: flow.steps, name: 'Old flow' }], 'the current version is kept as a snapshot');
});

t.test("each organization's first member becomes its owner; the others stay members", async (t) => {
  const url = await emptyDatabase(t);
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-migrations-'));
  for (const migration of (await readMigrations()).filter((m) => m.name < '20261125140000')) {
    await mkdir(join(dir, migration.name));
    await writeFile(join(dir, migration.name, 'migration.sql'), migration.script);
  }
  await applyMigrations(url, dir);
  // Ids grow with time (UUIDv7), so the smallest id is the first member.
  await query(
    url,
    `WITH o AS (INSERT INTO organizations (id, name, updated_at) VALUES
                  ('01a20000-0000-7000-8000-00000000000a', 'A', now()), ('01a20000-0000-7000-8000-00000000000b', 'B', now()),
                  ('01a20000-0000-7000-8000-00000000000c', 'Empty', now()) RETURNING id)
     INSERT INTO users (id, org_id, email, updated_at) VALUES
       ('01a20000-0000-7000-8000-000000000002', '01a20000-0000-7000-8000-00000000000a', 'second@a.test', now()),
       ('01a20000-0000-7000-8000-000000000001', '01a20000-0000-7000-8000-00000000000a', 'first@a.test', now()),
       ('01a20000-0000-7000-8000-000000000003', '01a20000-0000-7000-8000-00000000000b', 'only@b.test', now())`,
  );
  await applyMigrations(url);
  t.same(await query(url, 'SELECT email, role::text FROM users ORDER BY id'), [
    { email: 'first@a.test', role: 'owner' },
    { email: 'second@a.test', role: 'member' },
    { email: 'only@b.test', role: 'owner' },
  ]);
  t.same(await query(url, 'SELECT count(*)::int AS keys FROM api_keys'), [{ keys: 0 }], 'no key is made for anyone');
});

t.test("logs already kept are the engine's when they name a run of their organization, and written by hand otherwise", async (t) => {
  const url = await emptyDatabase(t);
  const dir = await mkdtemp(join(tmpdir(), 'tolstoy-migrations-'));
  for (const migration of (await readMigrations()).filter((m) => m.name < '20261205100000')) {
    await mkdir(join(dir, migration.name));
    await writeFile(join(dir, migration.name, 'migration.sql'), migration.script);
  }
  await applyMigrations(url, dir);
  const [org, user, flow, run] = ['0a', '01', 'f0', 'e0'].map((end) => `01a20000-0000-7000-8000-0000000000${end}`);
  await query(
    url,
    `WITH o AS (INSERT INTO organizations (id, name, updated_at) VALUES ('${org}', 'A', now())),
          u AS (INSERT INTO users (id, org_id, email, role, updated_at) VALUES ('${user}', '${org}', 'a@a.test', 'owner', now())),
          f AS (INSERT INTO flows (id, org_id, name, updated_at) VALUES ('${flow}', '${org}', 'F', now())),
          v AS (INSERT INTO flow_versions (id, org_id, flow_id, version, name, steps) VALUES (gen_random_uuid(), '${org}', '${flow}', 1, 'F', '[]'))
     INSERT INTO executions (id, org_id, flow_id, flow_version, created_by, updated_at) VALUES ('${run}', '${org}', '${flow}', 1, '${user}', now())`,
  );
  await query(
    url,
    `INSERT INTO execution_logs (id, org_id, flow_id, user_id, execution_id, step_key, status, updated_at) VALUES
       ('01a20000-0000-7000-8000-000000000101', '${org}', '${flow}', '${user}', '${run}', 'a', 'completed', now()),
       ('01a20000-0000-7000-8000-000000000102', '${org}', '${flow}', '${user}', 'notes-1', 'a', 'completed', now())`,
  );
  await applyMigrations(url);
  t.same(await query(url, 'SELECT execution_id, written_by_engine FROM execution_logs ORDER BY id'), [
    { execution_id: run, written_by_engine: true },
    { execution_id: 'notes-1', written_by_engine: false },
  ]);
});
