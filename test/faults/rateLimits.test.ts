// A tool's rate limit and its pause after a 429 hold across worker processes: three workers share
// one database and call one target, which counts what arrives. At most `requests` calls arrive in
// any window of `perMs` (+1 for the edges: a call's way from its reservation to the target varies),
// every call is made once, and after one 429 with Retry-After no call reserved after the pause was
// recorded arrives until it is over (the database's log of the tool's calls shows none was made).
import t, { type Test } from 'tap';
import { busiestWindow, startTarget, type Target } from '../engine/target.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl, type TestApp } from '../helper.ts';
import { startWorker, type WorkerProcess } from '../process.ts';

interface Scene {
  app: TestApp;
  target: Target;
  send: (options: Parameters<typeof call>[2]) => ReturnType<typeof call>;
}

/** An API without a worker, three worker processes on its database, and a target. */
async function scene(t: Test): Promise<Scene> {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const target = await startTarget();
  t.teardown(() => target.close());
  const member = await createTenant(app.app);
  const env = { DATABASE_URL: url, TOLSTOY_WORKER_CONCURRENCY: '10', TOLSTOY_ORG_CONCURRENCY: '100', TOLSTOY_TEMPLATE_TIMEOUT_MS: '5000' };
  const workers: WorkerProcess[] = await Promise.all([startWorker(env), startWorker(env), startWorker(env)]);
  t.teardown(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  const scene: Scene = { app, target, send: (options) => call(app.app, member, options) };
  await warmUp(scene);
  return scene;
}

/**
 * Calls through every worker before anything is counted: a worker's first calls take hundreds of
 * milliseconds to leave it (its HTTP client and evaluator processes started on a busy machine), so
 * calls the limit let go one after another would reach the target bunched together. Their outcome
 * is not what is tested: on a busy machine a cold evaluator may take longer than its bound.
 */
async function warmUp(scene: Scene): Promise<void> {
  const tool = (await scene.send({ method: 'POST', url: '/tools', payload: { name: 'Warm', baseUrl: scene.target.url } })).data;
  const action = (
    await scene.send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'warm', key: 'warm', method: 'POST', endpoint: '/echo/warm' } })
  ).data;
  const steps = [{ key: 'each', forEach: { items: 'input.items', concurrency: 3, steps: [{ key: 'call', actionId: action.id }] } }];
  const flow = (await scene.send({ method: 'POST', url: '/flows', payload: { name: 'Warm', steps } })).data;
  await allEnded(scene, await startRuns(scene, flow.id, 9, 3), 60_000);
}

/** A tool limited to 10 calls a second, and a flow calling `endpoint` once per item of its input, three at once. */
async function limitedLoop({ send }: Scene, baseUrl: string, endpoint: string): Promise<{ toolId: string; flowId: string }> {
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'Limited', baseUrl, rateLimit: { requests: 10, perMs: 1000 } } })).data;
  const action = (await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'call', key: 'call', method: 'POST', endpoint } })).data;
  const steps = [
    {
      key: 'each',
      forEach: { items: 'input.items', concurrency: 3, steps: [{ key: 'call', actionId: action.id, retry: { maxAttempts: 3, initialDelayMs: 10 } }] },
    },
  ];
  const flow = (await send({ method: 'POST', url: '/flows', payload: { name: 'Loop', steps } })).data;
  return { toolId: tool.id, flowId: flow.id };
}

async function startRuns({ send }: Scene, flowId: string, runs: number, items: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < runs; i++) {
    const started = await send({
      method: 'POST',
      url: `/flows/${flowId}/executions`,
      payload: { input: { items: Array.from({ length: items }, (_, n) => n) } },
    });
    ids.push(started.data.id);
  }
  return ids;
}

async function allEnded({ app }: Scene, ids: string[], ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = await app.db.execution.findMany({ where: { id: { in: ids } }, select: { id: true, status: true, error: true } });
    if (rows.every((row) => !['queued', 'running'].includes(row.status))) return rows;
    if (Date.now() > deadline) throw new Error(`runs unfinished after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function allCompleted(t: Test, scene: Scene, ids: string[], ms: number): Promise<void> {
  const rows = await allEnded(scene, ids, ms);
  t.same(
    rows.filter((row) => row.status !== 'completed'),
    [],
    `all ${ids.length} runs completed`,
  );
}

t.test('three workers keep a tool to 10 calls in any second, and make every call', async (t) => {
  const s = await scene(t);
  const { flowId } = await limitedLoop(s, s.target.url, '/echo/limited');
  // 60 calls: six runs of ten, spread over the three workers.
  const ids = await startRuns(s, flowId, 6, 10);
  await allCompleted(t, s, ids, 60_000);
  const calls = s.target.received.filter((r) => r.path === '/echo/limited');
  t.equal(calls.length, 60, 'every call arrived');
  t.equal(new Set(calls.map((r) => r.headers['idempotency-key'])).size, 60, 'each once');
  const busiest = busiestWindow(calls, 1000);
  t.ok(busiest <= 11, `at most 10 calls (+1 for the edges) in any second: ${busiest}`);
  const span = Math.max(...calls.map((r) => r.at)) - Math.min(...calls.map((r) => r.at));
  t.ok(span >= 4500, `60 calls at 10 a second take about 5 s: ${span} ms`);
});

t.test('after one 429 with Retry-After: 3 no call reserved after the pause reaches the tool for 3 s, from any run', async (t) => {
  const s = await scene(t);
  // The 15th call is answered 429, while the runs are calling at the limit's pace.
  const path = '/limitAt/15/3/tool';
  const { toolId, flowId } = await limitedLoop(s, s.target.url, path);
  const ids = await startRuns(s, flowId, 6, 10);

  // While the tool is paused, no call may be reserved: every few ms, whether the log's newest call
  // is older than the pause (compared in the database, to the microsecond).
  let pausedUntil: number | undefined;
  const looks: boolean[] = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const [row] = await s.app.db.$queryRaw<{ paused_until: Date | null; before: boolean }[]>`
      SELECT paused_until, (SELECT max(at) FROM tool_calls WHERE tool_id = ${toolId}::uuid) < paused_until - interval '3 seconds' AS before
      FROM tools WHERE id = ${toolId}::uuid`;
    if (row!.paused_until) {
      pausedUntil ??= row!.paused_until.getTime();
      if (Date.now() >= pausedUntil - 20) break;
      looks.push(row!.before);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.ok(pausedUntil, 'the tool was paused');
  await allCompleted(t, s, ids, 60_000);

  const calls = s.target.received.filter((r) => r.path === path);
  const told = calls[14]!;
  const sentAt = told.doneAt!;
  // The database's clock: the pause was recorded 3 s before it ends.
  const recordedAt = pausedUntil! - 3000;
  t.ok(recordedAt >= sentAt - 5 && recordedAt - sentAt < 1000, `the pause was recorded ${recordedAt - sentAt} ms after the 429 was sent`);
  t.ok(looks.length > 10 && looks.every(Boolean), `no call was reserved during the pause (${looks.length} looks at the log)`);

  const inFlight = calls.filter((r) => r.at <= sentAt && r !== told && (r.doneAt === undefined || r.doneAt > sentAt));
  const during = calls.filter((r) => r.at > sentAt && r.at < sentAt + 3000);
  t.comment(`in flight when the 429 was sent: ${inFlight.map((r) => r.headers['idempotency-key']).join(', ') || 'none'}`);
  t.comment(`arrived after it, reserved before the pause was recorded: ${during.map((r) => `${r.at - recordedAt} ms`).join(', ') || 'none'}`);
  // A call reserved before the pause was recorded is on its way; none arrives long after.
  t.ok(
    during.every((r) => r.at < recordedAt + 1000),
    'the only calls that arrive in the 3 s were on their way when the pause was recorded',
  );
  const after = calls.filter((r) => r.at >= sentAt + 3000);
  t.ok(after.length >= 40, `the rest came once the pause was over: ${after.length}`);
  t.equal(new Set(calls.map((r) => r.headers['idempotency-key'])).size, 60, 'every call was made');
  const retried = calls.filter((r) => r.headers['idempotency-key'] === told.headers['idempotency-key']);
  t.equal(retried.length, 2, 'the step told 429 was tried again');
  t.ok(retried[1]!.at >= pausedUntil!, 'not before the pause ended');
});
