// Waits hold no worker: a step waiting for its next attempt is a timer in the queue, and its
// worker slot goes to other runs meanwhile.
import t from 'tap';
import { world } from './world.ts';

const w = await world(t, { concurrency: 2, orgConcurrency: 2 });

async function start(flowId: string): Promise<string> {
  const started = await w.send({ method: 'POST', url: `/flows/${flowId}/executions`, payload: {} });
  if (started.statusCode !== 202) throw new Error(`starting a run failed: ${started.body}`);
  return started.data.id;
}

t.test('200 runs each waiting 5 s on a worker with 2 slots all finish in about 5 s, not 500', async (t) => {
  // 503 with Retry-After: 5 the first time each run calls, then an answer (a 429 would pause the
  // tool for every run: rateLimits.test.ts).
  const limited = await w.action({ endpoint: '/unavailable/5' });
  const flow = await w.flow({ steps: [{ key: 'limited', actionId: limited, retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 } }] });
  const began = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) ids.push(await start(flow.id));
  // One query for all of them: 200 clients polling each run would load the API more than the runs do.
  while ((await w.db.execution.count({ where: { id: { in: ids }, status: { in: ['queued', 'running'] } } })) > 0) {
    if (Date.now() - began > 120_000) throw new Error('runs unfinished after 120 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const seconds = (Date.now() - began) / 1000;
  const runs = await Promise.all(ids.map(async (id) => (await w.send({ method: 'GET', url: `/executions/${id}` })).data));
  t.ok(
    runs.every((run) => run.status === 'completed' && run.steps[0].attempts === 2),
    'every run completed on its second attempt',
  );
  const waits = runs.map((run) => {
    const calls = w.target.received.filter((call) => call.headers['idempotency-key'] === `${run.id}:limited`);
    return (calls[1]!.at - calls[0]!.at) / 1000;
  });
  t.ok(
    waits.every((wait) => wait >= 4.9),
    `each run waited what Retry-After asked for (shortest ${Math.min(...waits)} s)`,
  );
  // Holding a slot while waiting, 2 slots would take 100 × 5 s.
  t.ok(seconds < 30, `all 200 finished in ${seconds} s`);
  t.comment(`200 runs, each waiting 5 s, 2 slots: all finished ${seconds} s after the first start`);
});

t.test('while runs wait, an ordinary run takes a free slot at once', async (t) => {
  const limited = await w.action({ endpoint: '/unavailable/10' });
  const waiting = await w.flow({ steps: [{ key: 'limited', actionId: limited, retry: { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 20 } }] });
  const ids = [await start(waiting.id), await start(waiting.id), await start(waiting.id)];
  for (const id of ids) {
    await until(async () => (await w.send({ method: 'GET', url: `/executions/${id}` })).data.steps[0].status === 'waiting');
  }
  const waited = await w.send({ method: 'GET', url: `/executions/${ids[0]}` });
  t.match(waited.data.steps[0], { status: 'waiting', attempts: 1, wakeAt: String }, 'a waiting step says until when');
  const echo = await w.action();
  const ordinary = await w.flow({ steps: [{ key: 'echo', actionId: echo }] });
  const began = Date.now();
  const run = await w.run(ordinary.id);
  t.equal(run.status, 'completed');
  t.ok(Date.now() - began < 3000, `the ordinary run finished in ${Date.now() - began} ms, not after the 10 s wait`);
  for (const id of ids) await w.send({ method: 'POST', url: `/executions/${id}/cancel` });
  const cancelled = await w.send({ method: 'GET', url: `/executions/${ids[1]}` });
  t.match(cancelled.data, { status: 'cancelled', steps: [{ status: 'cancelled', wakeAt: null }] }, 'a waiting run can be cancelled');
});

async function until(condition: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
