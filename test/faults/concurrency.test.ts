// A worker killed (kill -9) while its run holds the only slot of a flow (concurrency limit 1):
// the other runs keep waiting, queued, while the run is resumed by another worker; its slot is
// not leaked, so they run after it, one at a time, and every run completes.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { peakInFlight, startTarget } from '../engine/target.ts';
import { buildTestApp, call, createTenant, freshDatabaseUrl } from '../helper.ts';
import { startWorker } from '../process.ts';

const KEY = randomBytes(32).toString('base64');

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('a worker killed while its run holds a slot: the run is resumed elsewhere, and the slot is not leaked', async (t) => {
  const url = await freshDatabaseUrl(t);
  const app = await buildTestApp(t, { worker: false }, url);
  const target = await startTarget();
  t.teardown(() => target.close());
  const member = await createTenant(app.app);
  const send = (options: Parameters<typeof call>[2]) => call(app.app, member, options);
  const tool = (await send({ method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: target.url } })).data;
  const action = (
    await send({ method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 's', key: 'slow', method: 'POST', endpoint: '/slow/1500/held' } })
  ).data;
  const flow = (
    await send({ method: 'POST', url: '/flows', payload: { name: 'One at a time', steps: [{ key: 'call', actionId: action.id }], concurrency: { limit: 1 } } })
  ).data;
  const env = { DATABASE_URL: url, TOLSTOY_ENCRYPTION_KEY: KEY, TOLSTOY_WORKER_CONCURRENCY: '5' };
  const first = await startWorker(env);
  t.teardown(() => first.process.kill('SIGKILL'));

  const ids: string[] = [];
  for (let n = 0; n < 3; n++) ids.push((await send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: { input: { n } } })).data.id);
  const callsOf = (id: string) => target.received.filter((entry) => entry.headers['idempotency-key']?.startsWith(`${id}:`));
  await until('the first run calls', () => callsOf(ids[0]!).length === 1);
  first.process.kill('SIGKILL');
  await first.exited;
  const killedAt = Date.now();

  const second = await startWorker(env);
  t.teardown(() => second.process.kill('SIGKILL'));
  const status = async (id: string) => (await send({ method: 'GET', url: `/executions/${id}` })).data.status;
  t.same([await status(ids[1]!), await status(ids[2]!)], ['queued', 'queued'], 'the others wait while the killed worker’s run holds the slot');
  for (const id of ids) await until(`run ${id} finished`, async () => !['queued', 'running'].includes(await status(id)), 90_000);

  t.same(await Promise.all(ids.map(status)), ['completed', 'completed', 'completed'], 'every run completes');
  const calls = target.received.filter((entry) => entry.path === '/slow/1500/held');
  t.equal(callsOf(ids[0]!).length, 2, 'the held run was resumed: its call in flight at the kill was sent again');
  t.ok(callsOf(ids[0]!)[1]!.at > killedAt, 'by the other worker');
  t.equal(peakInFlight(calls.filter((entry) => !entry.aborted)), 1, 'one run in flight at a time');
  const firstOf = (id: string) => callsOf(id)[0]!.at;
  t.ok(firstOf(ids[1]!) >= callsOf(ids[0]!)[1]!.doneAt!, 'the second run started only once the resumed run ended');
  t.ok(firstOf(ids[2]!) > firstOf(ids[1]!), 'and the third after it');
  const [held] = await app.db.$queryRawUnsafe<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM executions WHERE flow_id = $1::uuid AND status IN ('queued', 'running')`,
    flow.id,
  );
  t.equal(held!.n, 0, 'no slot is held at the end');
});
