// Attacks by one tenant's run on the workers and the database that every tenant shares, and what
// each must get:
// - loops nested in loops and parallel branches, each at the largest concurrency (50): their
//   concurrencies multiply (10 × 20 + 3 × 50 calls at once here, 10 × 50 × 50 possible), and every
//   call's answer (up to 1 MiB) is held before the budget counts it. One run has at most 50 step
//   runs in flight, the largest concurrency of one loop; the others begin as those end.
// - another organization calling the same API as a run that holds many calls to it in flight: the
//   worker's connections to one origin (64) are shared by every organization, so Globex's one call
//   waited for Acme's. It must not wait for another organization's calls: Globex's run ends within
//   2 s while Acme's calls of 4 s are in flight.
// - a signal sent to a run with 500 waitFor steps waiting (loops in loops): every news made the turn
//   look at every waiting step, one transaction each (502 transactions, 5 s, for one signal; a
//   quadratic cost in signals and waiting steps). Only the steps the news is for look: a handful
//   of transactions for one signal.
// - signals of a name no waiting step takes, sent to a parked run: each queued a job that took
//   the run up (loading all its step runs) for nothing. Such a signal is kept without a job.
// - runs that wait (for a signal, a sub-flow's run, a sleep; 20 of them and their 20 children) on a
//   worker with 2 slots: none holds a slot, so another organization's run ends at once (holds).
import t from 'tap';
import { peakInFlight } from '../engine/target.ts';
import { world } from '../engine/world.ts';
import { call, createTenant } from '../helper.ts';

const w = await world(t);

async function until<T>(what: string, read: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what} never happened`);
}

async function waitingSteps(executionId: string): Promise<number> {
  const [row] = await w.db.$queryRaw<{ count: number }[]>`
    SELECT count(*)::int AS count FROM execution_steps WHERE execution_id = ${executionId}::uuid AND status = 'waiting'`;
  return row!.count;
}

t.test('one run has at most 50 step runs in flight, however its loops nest', async (t) => {
  const slow = await w.action({ endpoint: '/slow/500' });
  const loop = (key: string, items: number, steps: unknown[]) => ({ key, forEach: { items: `range(0, ${items})`, concurrency: items, steps } });
  const flow = await w.flow({
    steps: [
      {
        key: 'both',
        parallel: {
          branches: Object.fromEntries(['a', 'b', 'c'].map((name) => [name, [loop(`wide_${name}`, 50, [{ key: `call_${name}`, actionId: slow }])]])),
        },
      },
      loop('outer', 10, [loop('inner', 20, [{ key: 'call', actionId: slow }])]),
    ],
  });
  const before = w.target.received.length;
  const done = await w.run(flow.id);
  t.equal(done.status, 'completed');
  const calls = w.target.received.slice(before);
  t.equal(calls.length, 350, 'every item called once');
  t.ok(peakInFlight(calls) <= 50, `${peakInFlight(calls)} calls were in flight at once`);
});

t.test('another organization’s calls to the same API do not wait for Acme’s', async (t) => {
  const slow = await w.action({ endpoint: '/slow/4000' });
  const hog = await w.flow({ steps: [{ key: 'each', forEach: { items: 'range(0, 50)', concurrency: 50, steps: [{ key: 'call', actionId: slow }] } }] });
  const globex = await createTenant(w.app, 'Globex');
  const asGlobex = (options: Parameters<typeof call>[2]) => call(w.app, globex, options);
  const tool = await asGlobex({ method: 'POST', url: '/tools', payload: { name: 'The same API', baseUrl: w.target.url } });
  const ping = await asGlobex({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'Ping', key: 'ping', method: 'POST', endpoint: '/echo/ping' },
  });
  const flow = await asGlobex({ method: 'POST', url: '/flows', payload: { name: 'Ping', steps: [{ key: 'ping', actionId: ping.data.id }] } });
  const before = w.target.received.length;
  const hogs = [];
  for (let i = 0; i < 2; i++) hogs.push((await w.send({ method: 'POST', url: `/flows/${hog.id}/executions`, payload: {} })).data.id);
  await until('Acme’s calls', async () => (w.target.received.length - before >= 64 ? true : undefined));
  const started = Date.now();
  const done = await asGlobex({ method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: {}, headers: { prefer: 'wait=30' } });
  const took = Date.now() - started;
  t.equal(done.data.status, 'completed');
  t.ok(took < 2000, `Globex's one call took ${took} ms`);
  for (const id of hogs) await w.send({ method: 'POST', url: `/executions/${id}/cancel` });
});

t.test('a signal costs a handful of transactions, however many steps wait', async (t) => {
  const flow = await w.flow({
    steps: [
      {
        key: 'outer',
        forEach: {
          items: 'range(0, 10)',
          concurrency: 10,
          steps: [{ key: 'inner', forEach: { items: 'range(0, 50)', concurrency: 50, steps: [{ key: 'wait', waitFor: { signal: 'go' } }] } }],
        },
      },
    ],
  });
  const id = (await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  await until('500 waiting steps', async () => ((await waitingSteps(id)) === 500 ? true : undefined));
  await new Promise((resolve) => setTimeout(resolve, 500));
  // Every transaction of this process's database client: the API's and the worker's.
  const db = w.db as unknown as { $transaction: (...args: unknown[]) => unknown };
  const transaction = db.$transaction.bind(db);
  let transactions = 0;
  db.$transaction = (...args) => {
    transactions++;
    return transaction(...args);
  };
  t.teardown(() => {
    db.$transaction = transaction;
  });
  const started = Date.now();
  t.equal((await w.send({ method: 'POST', url: `/executions/${id}/signals/go`, payload: { payload: 1 } })).statusCode, 202);
  await until('the signal’s take', async () => ((await waitingSteps(id)) === 499 ? true : undefined));
  const took = Date.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.ok(transactions <= 20, `one signal cost ${transactions} transactions and ${took} ms`);
  await w.send({ method: 'POST', url: `/executions/${id}/cancel` });
});

t.test('a signal no waiting step takes does not take the parked run up', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'wait', waitFor: { signal: 'go' } }] });
  const id = (await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id;
  await until('the parked run', async () => {
    const [row] = await w.db.$queryRaw<{ parked: boolean }[]>`SELECT lease IS NULL AND status = 'running' AS parked FROM executions WHERE id = ${id}::uuid`;
    return row?.parked ? true : undefined;
  });
  const jobs = async () => {
    const [row] = await w.db.$queryRaw<{ count: number }[]>`SELECT count(*)::int AS count FROM pgboss.job WHERE data->>'executionId' = ${id}`;
    return row!.count;
  };
  const before = await jobs();
  for (let i = 0; i < 50; i++) t.equal((await w.send({ method: 'POST', url: `/executions/${id}/signals/other`, payload: { payload: i } })).statusCode, 202);
  t.equal((await jobs()) - before, 0, 'no job was queued for signals no step waits for');
  t.equal((await w.send({ method: 'POST', url: `/executions/${id}/signals/go`, payload: { payload: 'now' } })).statusCode, 202);
  t.match(await w.finished(id), { status: 'completed', output: 'now' }, 'a signal a step waits for still wakes it');
});

t.test('runs waiting for signals and sub-flows hold no slot from another organization', async (t) => {
  const small = await world(t, { concurrency: 2, orgConcurrency: 2 });
  const child = await small.flow({ name: 'Child', steps: [{ key: 'hold', waitFor: { signal: 'never', timeoutMs: 600_000 } }] });
  const waiting = await small.flow({
    steps: [
      {
        key: 'all',
        parallel: {
          branches: {
            signal: [{ key: 'approval', waitFor: { signal: 'never', timeoutMs: 600_000 } }],
            child: [{ key: 'call', flow: { flowId: child.id } }],
            time: [{ key: 'nap', sleep: { ms: 600_000 } }],
          },
        },
      },
    ],
  });
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push((await small.send({ method: 'POST', url: `/flows/${waiting.id}/executions`, payload: {} })).data.id);
  await until('every run and child waiting', async () => {
    const [row] = await small.db.$queryRaw<{ count: number }[]>`SELECT count(*)::int AS count FROM execution_steps WHERE status = 'waiting'`;
    return row!.count === 20 * 4 ? true : undefined;
  });
  const globex = await createTenant(small.app, 'Globex');
  const asGlobex = (options: Parameters<typeof call>[2]) => call(small.app, globex, options);
  const flow = await asGlobex({ method: 'POST', url: '/flows', payload: { name: 'Quick', steps: [{ key: 'one', transform: 1 }] } });
  const started = Date.now();
  const done = await asGlobex({ method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: {}, headers: { prefer: 'wait=30' } });
  t.equal(done.data.status, 'completed');
  t.ok(Date.now() - started < 2000, `Globex's run took ${Date.now() - started} ms`);
  for (const id of ids) await small.send({ method: 'POST', url: `/executions/${id}/cancel` });
});
