// Attacks on fairness between organizations, and what each must get:
// - an organization queues runs without end (starting, or retrying failed ones): past
//   TOLSTOY_ORG_QUEUE_LIMIT queued runs it gets 429 problem+json with Retry-After naming the
//   setting, nothing more is stored or queued, and other organizations still start runs.
// - organizations fill the queue while two worker processes fetch runs at the same moment: no
//   organization ever has more than TOLSTOY_ORG_CONCURRENCY calls in flight at once, counted by
//   the target server per organization, and each gets as many as the limit; so too one
//   organization alone, whose waiting runs outnumber the free slots of both workers.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { world } from '../engine/world.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl } from '../helper.ts';
import { startWorker } from '../process.ts';

// Made here, not in a subtest: the test PostgreSQL of a file run alone lives as long as what made it first.
const workersDatabase = await freshDatabaseUrl(t);
const aloneDatabase = await freshDatabaseUrl(t);

t.test('an organization cannot queue more runs than TOLSTOY_ORG_QUEUE_LIMIT', async (t) => {
  // No worker: every run started stays queued.
  const app = await buildTestApp(t, { worker: false, orgQueueLimit: 3 });
  const w = await world(t, {}, app);
  const flow = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
  const start = () => w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  const started = [await start(), await start(), await start()];
  t.same(
    started.map((response) => response.statusCode),
    [202, 202, 202],
  );

  const refused = await start();
  t.equal(refused.statusCode, 429);
  t.match(refused.headers['content-type'], /^application\/problem\+json/);
  t.equal(refused.headers['retry-after'], '5');
  t.match(refused.data, { status: 429, detail: /3 runs queued.*TOLSTOY_ORG_QUEUE_LIMIT/ });
  t.equal(await app.db.execution.count({ where: { orgId: w.member.orgId } }), 3, 'the refused run was not stored');

  // A retry queues a run too: refused while the queue is full, accepted once there is room.
  const cancelled = await w.send({ method: 'POST', url: `/executions/${started[0]!.data.id}/cancel` });
  t.equal(cancelled.data.status, 'cancelled');
  t.equal((await start()).statusCode, 202, 'the cancelled run left room for one');
  const retried = await w.send({ method: 'POST', url: `/executions/${started[0]!.data.id}/retry` });
  t.equal(retried.statusCode, 429);
  t.match(retried.data, { detail: /TOLSTOY_ORG_QUEUE_LIMIT/ });
  t.equal(retried.headers['retry-after'], '5');

  // Another organization is not held back by the first one's queue.
  const other = await createTenant(app.app);
  const tool = await call(app.app, other, { method: 'POST', url: '/tools', payload: { name: 'Target', baseUrl: w.target.url } });
  const action = await call(app.app, other, {
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'echo', key: 'echo', method: 'POST', endpoint: '/echo/x' },
  });
  const otherFlow = await call(app.app, other, { method: 'POST', url: '/flows', payload: { name: 'Flow', steps: [{ key: 'a', actionId: action.data.id }] } });
  const otherStart = await call(app.app, other, { method: 'POST', url: `/flows/${otherFlow.data.id}/executions`, payload: {} });
  t.equal(otherStart.statusCode, 202);
});

/** A server that holds each call `ms` and counts the calls in flight of each organization (the first path segment). */
async function countingTarget(t: Test, ms: number) {
  const inFlight = new Map<string, number>();
  const most = new Map<string, number>();
  const server = createServer((request, response) => {
    const org = (request.url ?? '/').split('/')[1]!;
    const now = (inFlight.get(org) ?? 0) + 1;
    inFlight.set(org, now);
    most.set(org, Math.max(most.get(org) ?? 0, now));
    request.resume();
    setTimeout(() => {
      inFlight.set(org, inFlight.get(org)! - 1);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    }, ms);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, most };
}

interface Load {
  /** TOLSTOY_WORKER_CONCURRENCY of each of the two worker processes. */
  concurrency: number;
  /** TOLSTOY_ORG_CONCURRENCY. */
  orgConcurrency: number;
  orgs: string[];
  runsEach: number;
  /** The keys of each flow's steps, each calling the target. */
  steps: string[];
}

/**
 * Two worker processes on `url`, and organizations that each start `runsEach` runs of a flow whose
 * steps the counting target holds 300 ms: every run completes, and each organization had at most
 * TOLSTOY_ORG_CONCURRENCY calls in flight at once, and that many at some point.
 */
async function twoWorkers(t: Test, url: string, { concurrency, orgConcurrency, orgs, runsEach, steps }: Load) {
  const app = await buildTestApp(t, { worker: false }, url);
  const target = await countingTarget(t, 300);
  const env = { DATABASE_URL: url, TOLSTOY_WORKER_CONCURRENCY: String(concurrency), TOLSTOY_ORG_CONCURRENCY: String(orgConcurrency) };
  const workers = [await startWorker(env), await startWorker(env)];
  t.teardown(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  const runs: string[] = [];
  const starts = orgs.map(async (name) => {
    const member = await createTenant(app.app, name);
    const send = (options: Parameters<typeof call>[2]) => call(app.app, member, options);
    const tool = await send({ method: 'POST', url: '/tools', payload: { name, baseUrl: `${target.url}/${name}` } });
    const action = await send({
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.data.id, name: 'hold', key: 'hold', method: 'GET', endpoint: '/hold' },
    });
    const flow = await send({ method: 'POST', url: '/flows', payload: { name, steps: steps.map((key) => ({ key, actionId: action.data.id })) } });
    for (let i = 0; i < runsEach; i++) runs.push((await send({ method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: {} })).data.id);
  });
  await Promise.all(starts);
  const deadline = Date.now() + 90_000;
  while ((await app.db.execution.count({ where: { id: { in: runs }, status: { in: ['queued', 'running'] } } })) > 0) {
    if (Date.now() > deadline) throw new Error('the runs did not finish within 90 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const unfinished = await app.db.execution.findMany({
    where: { id: { in: runs }, status: { not: 'completed' } },
    select: { id: true, status: true, error: true },
  });
  t.same(unfinished, [], `every run of ${runs.length} completed`);
  for (const org of orgs) {
    const most = target.most.get(org) ?? 0;
    t.ok(most <= orgConcurrency, `${org}: at most ${most} calls at once (limit ${orgConcurrency})`);
    t.equal(most, orgConcurrency, `${org} reached its limit: the limit, not a lack of runs, held it back`);
  }
}

t.test('two worker processes never run more of one organization at once than TOLSTOY_ORG_CONCURRENCY', (t) =>
  twoWorkers(t, workersDatabase, { concurrency: 10, orgConcurrency: 4, orgs: ['first', 'second', 'third'], runsEach: 25, steps: ['a', 'b'] }),
);

t.test('one organization alone, with more free slots across two workers than its limit, stays within TOLSTOY_ORG_CONCURRENCY', (t) =>
  // 8 slots free across the two workers, 20 runs of one organization waiting, a limit of 2.
  twoWorkers(t, aloneDatabase, { concurrency: 4, orgConcurrency: 2, orgs: ['alone'], runsEach: 20, steps: ['a'] }),
);
