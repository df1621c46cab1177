// Maintenance jobs (src/engine/jobs/maintenance.ts) with two workers on one database: each keeps
// the schedule, but each occurrence of it files one job, run by one worker only. The job of
// `maintenance.idempotency-keys` forgets the keys past their 24 hours and keeps the others.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import t from 'tap';
import { Keyring } from '../../src/crypto/keyring.ts';
import { DatabaseConnection } from '../../src/db/client.ts';
import { startEngine } from '../../src/engine/engine.ts';
import { buildTestApp, createTenant, freshDatabaseUrl, TEST_ENGINE } from '../helper.ts';

const KIND = 'maintenance.idempotency-keys';
/** Retention's job runs the same way (what it removes: test/engine/retention.test.ts). */
const RETENTION = 'maintenance.retention';
/** The queue pg-boss files each occurrence of a schedule in, under its slot, before sending the job. */
const SEND_IT = '__pgboss__send-it';

t.test('two workers keep the schedule; each occurrence is one job, run by one of them', async (t) => {
  const url = await freshDatabaseUrl(t);
  const { app, db } = await buildTestApp(t, { worker: false }, url);
  const member = await createTenant(app);
  const key = (name: string, createdAt: Date) => ({
    orgId: member.orgId,
    key: name,
    operation: 'POST /flows',
    requestHash: 'hash',
    status: 201,
    body: '{}',
    createdAt,
  });
  await db.idempotencyKey.createMany({ data: [key('expired', new Date(Date.now() - 25 * 3600_000)), key('fresh', new Date(Date.now() - 3600_000))] });

  const ran: { worker: number; kind: string; result: Record<string, number> }[] = [];
  const engines = [];
  for (const worker of [1, 2]) {
    const database = new DatabaseConnection(url);
    t.teardown(() => database.close());
    const engine = await startEngine({
      database,
      directUrl: url,
      keyring: new Keyring(randomBytes(32)),
      settings: { ...TEST_ENGINE, worker: true, maintenanceCron: '* * * * * *' },
      log: pino({ level: 'silent' }),
      maintained: (kind, result) => ran.push({ worker, kind, result }),
    });
    let stopped = false;
    const stop = async () => {
      if (!stopped) await engine.stop(1000);
      stopped = true;
    };
    t.teardown(stop);
    engines.push(stop);
  }

  const queue = new pg.Client({ connectionString: url });
  await queue.connect();
  t.teardown(() => queue.end());
  const count = async (name: string, state?: string) =>
    (
      await queue.query<{ n: number }>('SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND ($2::text IS NULL OR state::text = $2)', [
        name,
        state ?? null,
      ])
    ).rows[0]!.n;
  const since = Date.now();
  while ((await count(KIND, 'completed')) === 0 || (await count(RETENTION, 'completed')) === 0) {
    if (Date.now() - since > 25_000) throw new Error(`no ${KIND} or ${RETENTION} job completed within 25 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  t.comment(`the first job completed ${Date.now() - since} ms after both workers started`);
  // Stopped (gracefully: a job in flight completes), so that what follows is counted at rest.
  await Promise.all(engines.map((stop) => stop()));

  t.same(
    (await db.idempotencyKey.findMany({ orderBy: { key: 'asc' } })).map((row) => row.key),
    ['fresh'],
    'the expired key is forgotten, the fresh one kept',
  );

  // pg-boss files each occurrence under its slot (a minute): one filing per slot, however many
  // workers keep the schedule, and each filing sent one job.
  const slots = (
    await queue.query<{ slot: string; n: number }>(
      `SELECT singleton_on::text AS slot, count(*)::int AS n FROM pgboss.job WHERE name = $1 AND data->>'name' = $2 GROUP BY singleton_on ORDER BY singleton_on`,
      [SEND_IT, KIND],
    )
  ).rows;
  t.ok(slots.length >= 1, `${slots.length} slots filed`);
  t.ok(
    slots.every((slot) => slot.n === 1),
    `one filing per slot: ${JSON.stringify(slots)}`,
  );
  const jobs = await count(KIND);
  const completed = await count(KIND, 'completed');
  t.ok(jobs <= slots.length, `no more jobs (${jobs}) than slots (${slots.length})`);
  t.equal(completed, jobs, 'every job completed');

  // Each job ran once, in one worker: as many runs as completed jobs, and the expired key forgotten once.
  const runs = ran.filter((run) => run.kind === KIND);
  t.equal(runs.length, completed, `${runs.length} runs for ${completed} completed jobs (workers ${runs.map((run) => run.worker).join(', ')})`);
  t.equal(
    runs.reduce((sum, run) => sum + (run.result.forgotten ?? 0), 0),
    1,
    'the expired key was forgotten by one run',
  );
  t.match(ran.find((run) => run.kind === RETENTION)?.result, { organizations: 1, executions: 0 }, 'retention ran, over the one organization');
});
