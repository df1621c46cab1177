// Retention's job killed (kill -9) half-way through a backlog: each batch is one transaction, so
// what is left is whole (every remaining run keeps its steps and logs, no log outlives its run, no
// retry names a removed run), and the next run removes the rest.
import { spawn } from 'node:child_process';
import pg from 'pg';
import t from 'tap';
import { createDatabase } from '../../src/db/client.ts';
import { pruneExpired } from '../../src/engine/runs/retention.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl } from '../helper.ts';

const RUNS = 3000;

t.test('a pruning process killed half-way leaves no half-removed run', async (t) => {
  const url = await freshDatabaseUrl(t);
  const { app } = await buildTestApp(t, { worker: false }, url);
  const member = await createTenant(app);
  const flow = (await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'Old', steps: [{ key: 'a', transform: 1 }] } })).data;
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  t.teardown(() => sql.end());
  // A history 40 to 60 days old (ids made at those times), every run with 3 steps and 3 engine
  // logs, and every tenth a retry of the run before it.
  await sql.query(
    `WITH made AS (
       SELECT n, now() - interval '60 days' + n * interval '10 minutes' AS at FROM generate_series(1, $3::int) n
     ), runs AS (
       INSERT INTO executions (id, org_id, flow_id, flow_version, status, created_at, started_at, finished_at, updated_at)
       SELECT uuidv7(at - now()), $1::uuid, $2::uuid, 1, 'completed', at, at, at, at FROM made RETURNING id, created_at
     ), steps AS (
       INSERT INTO execution_steps (execution_id, path, position, org_id, key, kind, status)
       SELECT r.id, 's' || p, p, $1::uuid, 's' || p, 'transform', 'completed' FROM runs r, generate_series(1, 3) p
     )
     INSERT INTO execution_logs (id, org_id, flow_id, execution_id, step_key, status, created_at, updated_at)
     SELECT uuidv7(r.created_at - now()), $1::uuid, $2::uuid, r.id::text, 's' || p, 'completed', r.created_at, r.created_at
     FROM runs r, generate_series(1, 3) p`,
    [member.orgId, flow.id, RUNS],
  );
  await sql.query(`
    UPDATE executions e SET retry_of = (SELECT id FROM executions b WHERE b.id < e.id ORDER BY b.id DESC LIMIT 1)
    WHERE e.id IN (SELECT id FROM executions ORDER BY id OFFSET 1) AND ('x' || substr(md5(e.id::text), 1, 2))::bit(8)::int % 10 = 0`);
  const count = async (query: string) => (await sql.query<{ n: number }>(query)).rows[0]!.n;
  const runs = () => count('SELECT count(*)::int AS n FROM executions');
  const retries = await count('SELECT count(*)::int AS n FROM executions WHERE retry_of IS NOT NULL');
  t.ok(retries > RUNS / 20, `${retries} runs are retries of the run before them`);

  const pruner = spawn(process.execPath, ['test/faults/pruner.ts', url], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => pruner.on('exit', resolve));
  const since = Date.now();
  while ((await runs()) > RUNS * 0.6) {
    if (Date.now() - since > 60_000) throw new Error('the pruner removed too little within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  pruner.kill('SIGKILL');
  await exited;
  const left = await runs();
  t.ok(left > 0 && left < RUNS, `killed half-way: ${left} of ${RUNS} runs left`);
  t.equal(
    await count('SELECT count(*)::int AS n FROM executions e WHERE (SELECT count(*) FROM execution_steps s WHERE s.execution_id = e.id) <> 3'),
    0,
    'every run left has its 3 steps',
  );
  t.equal(
    await count(
      'SELECT count(*)::int AS n FROM executions e WHERE (SELECT count(*) FROM execution_logs l WHERE l.org_id = e.org_id AND l.execution_id = e.id::text) <> 3',
    ),
    0,
    'and its 3 logs',
  );
  t.equal(
    await count('SELECT count(*)::int AS n FROM execution_logs l WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE e.id::text = l.execution_id)'),
    0,
    'no log outlives its run',
  );
  t.equal(
    await count('SELECT count(*)::int AS n FROM execution_steps s WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = s.execution_id)'),
    0,
    'no step either',
  );

  const db = createDatabase(url);
  t.teardown(() => db.$disconnect());
  const rest = await pruneExpired(db, { pauseMs: 0 });
  t.equal(rest.executions, left, 'the next run removes the rest');
  t.equal(await runs(), 0);
  t.equal(await count('SELECT count(*)::int AS n FROM execution_logs'), 0);
});
