// Retention (src/engine/runs/retention.ts): each organization's period, set by its owners, and the
// job that removes what the period has outlived. Real runs, webhooks, subscriptions and logs are
// made now; the job is then told a later `now` (a fake clock), so nothing waits for days.
import t from 'tap';
import { openQueue } from '../../src/engine/jobs/queue.ts';
import { idFloor, pruneExpired } from '../../src/engine/runs/retention.ts';
import { addMember, buildTestApp, call, createTenant, type Member, testAuth } from '../helper.ts';
import { world } from './world.ts';

const DAY = 24 * 3600_000;
// API keys, so that roles and organizations are told apart as in production.
const w = await world(t, {}, await buildTestApp(t, { worker: true }, undefined, testAuth('keys')));
const { app, db } = w;
const other = await createTenant(app, 'Globex');

const later = (days: number) => new Date(Date.now() + days * DAY);

/** A finished run of a one-step transform flow in `member`'s organization. */
async function finishedRun(member: Member, flowId: string): Promise<string> {
  const started = await call(app, member, { method: 'POST', url: `/flows/${flowId}/executions`, payload: { input: {} }, headers: { prefer: 'wait=30' } });
  if (started.data.status !== 'completed') throw new Error(`the run did not complete: ${started.body}`);
  return started.data.id;
}

async function transformFlow(member: Member): Promise<string> {
  const created = await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'Kept', steps: [{ key: 'shape', transform: { ok: true } }] } });
  return created.data.id;
}

/** What is left of each kind of history of an organization. */
async function history(orgId: string) {
  const [executions, steps, engineLogs, writtenLogs, triggerDeliveries, eventDeliveries] = await Promise.all([
    db.execution.count({ where: { orgId } }),
    db.executionStep.count({ where: { orgId } }),
    db.executionLog.count({ where: { orgId, writtenByEngine: true } }),
    db.executionLog.count({ where: { orgId, writtenByEngine: false } }),
    db.triggerDelivery.count({ where: { orgId } }),
    db.eventDelivery.count({ where: { orgId } }),
  ]);
  return { executions, steps, engineLogs, writtenLogs, triggerDeliveries, eventDeliveries };
}

t.test('the period: 30 days unless set, set by owners only, from 1 to 400 days', async (t) => {
  const got = await w.send({ method: 'GET', url: `/organizations/${w.member.orgId}` });
  t.same(got.data.retention, { executionsDays: 30 });

  const member = await addMember(app, w.member, 'member');
  const refused = await call(app, member, {
    method: 'PATCH',
    url: `/organizations/${w.member.orgId}`,
    payload: { retention: { executionsDays: 7 } },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(refused.statusCode, 403, 'a member may not change it');

  for (const executionsDays of [0, 401, 1.5]) {
    const bad = await w.send({ method: 'PUT', url: `/organizations/${w.member.orgId}`, payload: { retention: { executionsDays } } });
    t.equal(bad.statusCode, 400, `${executionsDays} days is refused`);
    t.equal(bad.data.errors[0].pointer, '/retention/executionsDays');
  }
  const unknown = await w.send({ method: 'PUT', url: `/organizations/${w.member.orgId}`, payload: { retention: { days: 3 } } });
  t.equal(unknown.statusCode, 400, 'an unknown field of retention is refused');
  const empty = await w.send({ method: 'PUT', url: `/organizations/${w.member.orgId}`, payload: { retention: {} } });
  t.equal(empty.statusCode, 400, 'retention without executionsDays is refused (found by schemathesis)');
  t.equal(empty.data.errors[0].pointer, '/retention/executionsDays');

  const foreign = await w.send({ method: 'PUT', url: `/organizations/${other.orgId}`, payload: { retention: { executionsDays: 1 } } });
  t.equal(foreign.statusCode, 404, "another organization's is not found");
  t.equal((await db.organization.findUniqueOrThrow({ where: { id: other.orgId } })).retentionExecutionsDays, 30, 'and left as it was');

  const patched = await w.send({
    method: 'PATCH',
    url: `/organizations/${w.member.orgId}`,
    payload: { retention: { executionsDays: 7 } },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(patched.statusCode, 200);
  t.same(patched.data.retention, { executionsDays: 7 });
  const renamed = await w.send({ method: 'PUT', url: `/organizations/${w.member.orgId}`, payload: { name: 'Renamed' } });
  t.same(renamed.data.retention, { executionsDays: 7 }, 'a PUT without it leaves it as it is');
});

t.test('the job removes what the period has outlived, in each organization by its own period', async (t) => {
  // Organization A keeps 7 days (set above); B keeps the default 30.
  const a = w.member;
  const actionId = await w.action();
  const flowA = (await w.flow({ steps: [{ key: 'call', actionId }] })).id;
  const done = [await w.run(flowA), await w.run(flowA)].map((run) => run.id);
  // A retry that finished 10 days after the run it retried: it outlives it.
  const retry = (
    await db.execution.create({
      data: { orgId: a.orgId, flowId: flowA, flowVersion: 1, status: 'completed', retryOf: done[0], startedAt: new Date(), finishedAt: later(10) },
    })
  ).id;

  const hook = await w.send({ method: 'POST', url: '/triggers', payload: { flowId: flowA, name: 'Hook', type: 'webhook' } });
  const delivered = await call(app, undefined, { method: 'POST', url: `/hooks/${hook.data.webhook.token}`, payload: {} });
  t.equal(delivered.statusCode, 202);
  await w.finished(delivered.data.executionId);
  await w.send({ method: 'POST', url: '/subscriptions', payload: { url: 'https://hooks.example.com/in', events: ['execution.completed'] } });
  await w.run(flowA);
  const written = await w.send({
    method: 'POST',
    url: '/execution-logs',
    payload: { flowId: flowA, executionId: 'by-hand', stepKey: 's', status: 'completed' },
  });
  t.equal(written.statusCode, 201);
  // A run that has not finished is never removed, however old.
  const unfinished = await db.execution.create({
    data: { orgId: a.orgId, flowId: flowA, flowVersion: 1, status: 'queued' },
  });

  const flowB = await transformFlow(other);
  await finishedRun(other, flowB);

  const before = await history(a.orgId);
  t.match(before, { executions: 6, triggerDeliveries: 1, eventDeliveries: 1, writtenLogs: 1 }, 'A has a history of every kind');
  t.ok(before.steps > 0 && before.engineLogs > 0);
  const beforeB = await history(other.orgId);

  const soon = await pruneExpired(db, { now: later(6) });
  t.match(soon, { organizations: 2, turns: 2, executions: 0, logs: 0, triggerDeliveries: 0, eventDeliveries: 0 }, 'nothing is older than 7 days after 6');

  const retryHistory = {
    steps: await db.executionStep.count({ where: { executionId: retry } }),
    engineLogs: await db.executionLog.count({ where: { executionId: retry } }),
  };
  const pruned = await pruneExpired(db, { now: later(8), batch: 2, pauseMs: 0 });
  t.same(
    await history(a.orgId),
    { executions: 2, ...retryHistory, writtenLogs: 0, triggerDeliveries: 0, eventDeliveries: 0 },
    'A keeps the retry and the unfinished run, with their steps and logs only',
  );
  t.same(
    (await db.execution.findMany({ where: { orgId: a.orgId }, orderBy: { id: 'asc' } })).map((row) => row.id),
    [retry, unfinished.id].sort(),
  );
  t.equal((await db.execution.findUniqueOrThrow({ where: { id: retry } })).retryOf, null, 'the retry no longer names the removed run');
  t.match(pruned, { executions: 4, triggerDeliveries: 1, eventDeliveries: 1 });
  t.equal(pruned.logs, before.engineLogs - retryHistory.engineLogs + 1, "every engine log of a removed run, and the member's log");
  t.same(await history(other.orgId), beforeB, 'B, keeping 30 days, keeps everything');

  await pruneExpired(db, { now: later(31) });
  t.match(await history(other.orgId), { executions: 0, steps: 0, engineLogs: 0 }, 'B after 31 days');
  t.equal(await db.execution.count({ where: { id: unfinished.id } }), 1, 'the unfinished run is still kept');
});

t.test('a run with a deadline stops beginning batches when it has passed', async (t) => {
  const flowB = await transformFlow(other);
  for (let n = 0; n < 3; n++) await finishedRun(other, flowB);
  const stopped = await pruneExpired(db, { now: later(31), batch: 1, pauseMs: 500, until: Date.now() + 200 });
  t.equal(stopped.executions, 1, 'one batch began before the deadline, none after it');
  const rest = await pruneExpired(db, { now: later(31), batch: 1, pauseMs: 0 });
  t.equal(stopped.executions + rest.executions, 3, 'the next run removes the rest');
});

t.test('organizations take turns: a large backlog is removed a turn at a time, between the others', async (t) => {
  const flowA = await transformFlow(w.member);
  const flowB = await transformFlow(other);
  for (let n = 0; n < 6; n++) await finishedRun(w.member, flowA);
  for (let n = 0; n < 2; n++) await finishedRun(other, flowB);
  const pruned = await pruneExpired(db, { now: later(31), batch: 1, batchesPerTurn: 2, pauseMs: 0 });
  t.match(pruned, { organizations: 2, executions: 8 });
  // A: 2, 2, 2, then none left; B: 2 (its turn spent), then none left.
  t.equal(pruned.turns, 6, 'six turns: the larger backlog did not take one turn of its own');
  t.equal(await db.execution.count({ where: { status: 'completed' } }), 0);
});

t.test('the id bound: a UUIDv7 made before a time is below its floor, one made at or after it is not', async (t) => {
  const time = new Date('2026-12-06T10:00:00.123Z');
  t.equal(idFloor(time), '01a24acb-cd7b-0000-0000-000000000000');
  const row = await db.$queryRaw<{ before: boolean; after: boolean }[]>`
    SELECT uuidv7(${new Date(time.getTime() - 1)}::timestamptz - now()) < ${idFloor(time)}::uuid AS before,
           uuidv7(${time}::timestamptz - now()) < ${idFloor(time)}::uuid AS after`;
  t.same(row[0], { before: true, after: false });
});

t.test("pg-boss's finished jobs are deleted by its supervision once their time is up", async (t) => {
  const url = w.database.url;
  const boss = await openQueue({ url, working: false });
  t.teardown(() => boss.stop({ graceful: false }));
  const job = async (completedHoursAgo: number) => {
    // Not due for an hour, so that no worker takes it; then made a job that finished long ago.
    const id = (await boss.send('executions', { executionId: 'retention-test' }, { startAfter: 3600 }))!;
    await db.$executeRawUnsafe(
      `UPDATE pgboss.job SET state = 'completed', completed_on = now() - make_interval(hours => $2) WHERE id = $1::uuid`,
      id,
      completedHoursAgo,
    );
    return id;
  };
  const old = await job(25);
  const recent = await job(1);
  // As when MAINTENANCE_SECONDS have passed since the queue was last swept.
  await db.$executeRawUnsafe(`UPDATE pgboss.queue SET maintain_on = NULL WHERE name = 'executions'`);
  await boss.supervise('executions');
  t.equal(await boss.getJobById('executions', old), null, 'a job completed 25 hours ago is gone');
  t.equal((await boss.getJobById('executions', recent))?.state, 'completed', 'one completed an hour ago is kept');
});
