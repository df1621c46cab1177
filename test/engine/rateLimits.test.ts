// A tool's rate limit and its pause after a 429: the contract of `rateLimit` and `pausedUntil`, the
// sliding log counted in PostgreSQL, steps that wait for their turn without spending an attempt or
// holding a worker slot, the pause that every run of the organization keeps, and its bound.
// Several worker processes sharing one limit: test/faults/rateLimits.test.ts.
import t from 'tap';
import { reserveCall } from '../../src/engine/toolLimits.ts';
import { call, createTenant } from '../helper.ts';
import { busiestWindow } from './target.ts';
import { world } from './world.ts';

// Two slots: runs waiting for their turn must leave them to others.
const w = await world(t, { concurrency: 2, orgConcurrency: 2 });

async function tool(rateLimit?: unknown, send = w.send): Promise<string> {
  const created = await send({
    method: 'POST',
    url: '/tools',
    payload: { name: 'Limited', baseUrl: w.target.url, ...(rateLimit !== undefined && { rateLimit }) },
  });
  if (created.statusCode !== 201) throw new Error(`creating a tool failed: ${created.body}`);
  return created.data.id;
}

async function start(flowId: string, input: Record<string, unknown> = {}): Promise<string> {
  return (await w.send({ method: 'POST', url: `/flows/${flowId}/executions`, payload: { input } })).data.id;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('a tool has no rate limit unless given one; it is read, changed and removed like its other fields', async (t) => {
  const plain = await w.send({ method: 'GET', url: `/tools/${await tool()}` });
  t.match(plain.data, { rateLimit: null, pausedUntil: null });
  const id = await tool({ requests: 10, perMs: 1000 });
  t.same((await w.send({ method: 'GET', url: `/tools/${id}` })).data.rateLimit, { requests: 10, perMs: 1000 });
  const put = await w.send({ method: 'PUT', url: `/tools/${id}`, payload: { rateLimit: { requests: 5, perMs: 2000 } } });
  t.same(put.data.rateLimit, { requests: 5, perMs: 2000 });
  const patched = await w.send({
    method: 'PATCH',
    url: `/tools/${id}`,
    payload: { rateLimit: null },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(patched.statusCode, 200);
  t.equal(patched.data.rateLimit, null);
  const pausedUntil = await w.send({ method: 'PUT', url: `/tools/${id}`, payload: { pausedUntil: '2030-01-01T00:00:00Z' } });
  t.equal(pausedUntil.statusCode, 400, 'pausedUntil is read-only');
});

t.test('a rate limit out of bounds answers 400 naming the field', async (t) => {
  const cases: [unknown, string][] = [
    [{ requests: 0, perMs: 1000 }, '/rateLimit/requests'],
    [{ requests: 10001, perMs: 1000 }, '/rateLimit/requests'],
    [{ requests: 10, perMs: 5 }, '/rateLimit/perMs'],
    [{ requests: 10, perMs: 86_400_001 }, '/rateLimit/perMs'],
    [{ requests: 1.5, perMs: 1000 }, '/rateLimit/requests'],
    [{ requests: 10 }, '/rateLimit'],
    [{ requests: 10, perMs: 1000, burst: 3 }, '/rateLimit/burst'],
  ];
  for (const [rateLimit, pointer] of cases) {
    const created = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Bad', baseUrl: w.target.url, rateLimit } });
    t.equal(created.statusCode, 400, JSON.stringify(rateLimit));
    t.match(created.headers['content-type'], /^application\/problem\+json/);
    t.ok(
      created.data.errors.some((error: { pointer: string }) => error.pointer === pointer),
      `${JSON.stringify(rateLimit)} names ${pointer}: ${JSON.stringify(created.data.errors)}`,
    );
  }
});

t.test('the sliding log lets at most `requests` calls through in any window, by the database clock', async (t) => {
  const id = await tool({ requests: 3, perMs: 1000 });
  const first = await Promise.all(Array.from({ length: 10 }, () => reserveCall(w.db, id)));
  t.equal(first.filter((wait) => wait === 0).length, 3, 'ten at once: three may go');
  const waits = first.filter((wait) => wait > 0);
  // The window is held a tenth longer (at most 250 ms): calls reach the tool a little late, some later than others.
  // Refused together, they are handed turns in line, a third of the window apart (test/security/flowControl.test.ts).
  const sorted = [...waits].sort((a, b) => a - b);
  t.ok(
    sorted.every((wait, place) => wait >= 1000 && wait <= 1100 + (place * 1100) / 3),
    `the others are told to wait for the window and its margin, each a third of it after the one before: ${sorted}`,
  );
  await new Promise((resolve) => setTimeout(resolve, sorted[0]));
  t.equal(await reserveCall(w.db, id), 0, 'once the window passed, one more may go');

  const slow = await tool({ requests: 1, perMs: 60_000 });
  t.equal(await reserveCall(w.db, slow), 0);
  const wait = await reserveCall(w.db, slow);
  t.ok(wait > 59_000 && wait <= 60_250, `the next waits for the window: ${wait} ms`);
  await w.send({ method: 'PUT', url: `/tools/${slow}`, payload: { name: 'Renamed' } });
  t.ok((await reserveCall(w.db, slow)) > 59_000, 'a change of something else keeps the count');
  await w.send({ method: 'PUT', url: `/tools/${slow}`, payload: { rateLimit: { requests: 1, perMs: 50_000 } } });
  t.equal(await reserveCall(w.db, slow), 0, 'a changed limit starts its count afresh');

  const large = await tool({ requests: 10_000, perMs: 1000 });
  for (let i = 0; i < 3; i++) await reserveCall(w.db, large);
  t.equal(await w.db.toolCall.count({ where: { toolId: large } }), 3, 'the log holds a row per call made, not one per call allowed');

  const free = await tool();
  t.same(await Promise.all(Array.from({ length: 20 }, () => reserveCall(w.db, free))), Array(20).fill(0), 'an unlimited tool never waits');
});

t.test("a loop's calls keep to the limit, each step spending one attempt", async (t) => {
  // Slow enough that the target, on this process's busy event loop, sees calls when they were sent.
  const id = await tool({ requests: 2, perMs: 1000 });
  const action = await w.action({ toolId: id, endpoint: '/echo/loop' });
  const flow = await w.flow({
    steps: [{ key: 'each', forEach: { items: 'input.items', concurrency: 8, steps: [{ key: 'call', actionId: action }] } }],
  });
  const execution = await w.finished(await start(flow.id, { items: Array.from({ length: 8 }, (_, i) => i) }));
  t.equal(execution.status, 'completed');
  const calls = w.target.received.filter((r) => r.headers['idempotency-key']?.startsWith(`${execution.id}:`));
  t.equal(calls.length, 8, 'every call made, once');
  t.ok(busiestWindow(calls, 1000) <= 3, `at most 2 (+1 for the edges) in any second: ${busiestWindow(calls, 1000)}`);
  const span = Math.max(...calls.map((c) => c.at)) - Math.min(...calls.map((c) => c.at));
  t.ok(span >= 2900, `8 calls at 2 a second take at least 3 s: ${span} ms`);
  const steps = await w.db.executionStep.findMany({ where: { executionId: execution.id, kind: 'action' } });
  t.same(
    steps.map((step) => step.attempts),
    Array(8).fill(1),
    'waiting for a turn spent no attempt',
  );
});

t.test("after a 429 with Retry-After no run of the organization calls the tool until then; another organization's calls go on", async (t) => {
  const id = await tool();
  const limited = await w.action({ toolId: id, endpoint: '/limitAt/1/2/pause' });
  const echo = await w.action({ toolId: id, endpoint: '/echo/pause' });
  const told = await w.flow({ steps: [{ key: 'told', actionId: limited, retry: { maxAttempts: 2, initialDelayMs: 10 } }] });
  const other = await w.flow({ steps: [{ key: 'other', actionId: echo }] });
  const toldId = await start(told.id);
  const pausedUntil = await until('the pause', async () => (await w.send({ method: 'GET', url: `/tools/${id}` })).data.pausedUntil ?? undefined);
  const sent429 = w.target.received.find((r) => r.path === '/limitAt/1/2/pause')!;
  const pause = new Date(pausedUntil).getTime() - sent429.doneAt!;
  t.ok(pause >= 2000 && pause < 2500, `paused for Retry-After (2 s) from the answer: ${pause} ms`);
  const otherId = await start(other.id);

  // Another organization's tool at the same address is not paused.
  const stranger = await createTenant(w.app);
  const send = (options: Parameters<typeof call>[2]) => call(w.app, stranger, options);
  const strangerTool = await tool(undefined, send);
  const strangerAction = (
    await send({ method: 'POST', url: '/actions', payload: { toolId: strangerTool, name: 's', key: 's', method: 'POST', endpoint: '/echo/stranger' } })
  ).data.id;
  const strangerFlow = (await send({ method: 'POST', url: '/flows', payload: { name: 'S', steps: [{ key: 's', actionId: strangerAction }] } })).data;
  const strangers = (await send({ method: 'POST', url: `/flows/${strangerFlow.id}/executions`, payload: {}, headers: { prefer: 'wait=10' } })).data;
  t.equal(strangers.status, 'completed');
  const strangerCall = w.target.received.find((r) => r.headers['idempotency-key'] === `${strangers.id}:s`)!;
  t.ok(strangerCall.at < new Date(pausedUntil).getTime(), "another organization's call went during the pause");

  const [toldRun, otherRun] = [await w.finished(toldId), await w.finished(otherId)];
  t.match(toldRun, { status: 'completed', steps: [{ attempts: 2 }] });
  t.match(otherRun, { status: 'completed', steps: [{ attempts: 1 }] });
  const after = w.target.received.filter((r) => [`${toldId}:told`, `${otherId}:other`].includes(r.headers['idempotency-key']!) && r !== sent429);
  t.equal(after.length, 2);
  t.ok(
    after.every((r) => r.at >= new Date(pausedUntil).getTime()),
    'the retry and the other run called once the pause was over',
  );
});

t.test('a Retry-After past an hour pauses the tool an hour; a step waiting for its turn is cancelled like any other', async (t) => {
  const id = await tool();
  const limited = await w.action({ toolId: id, endpoint: '/limitAt/1/86400/long' });
  const echo = await w.action({ toolId: id, endpoint: '/echo/long' });
  const told = await w.run((await w.flow({ steps: [{ key: 'told', actionId: limited }] })).id);
  t.match(told, { status: 'failed', steps: [{ attempts: 1, response: { status: 429 } }] }, 'a step without retries fails as before');
  const pausedUntil = new Date((await w.send({ method: 'GET', url: `/tools/${id}` })).data.pausedUntil).getTime();
  const hour = pausedUntil - Date.now();
  t.ok(hour > 3_590_000 && hour <= 3_600_000, `paused for an hour, not a day: ${hour} ms`);

  const waiting = await start((await w.flow({ steps: [{ key: 'waits', actionId: echo }] })).id);
  const step = await until('the step waiting for its turn', async () => {
    const execution = (await w.send({ method: 'GET', url: `/executions/${waiting}` })).data;
    return execution.steps[0]?.status === 'waiting' ? execution.steps[0] : undefined;
  });
  t.equal(step.attempts, 0, 'no attempt spent');
  t.ok(Math.abs(new Date(step.wakeAt).getTime() - pausedUntil) < 1000, 'it wakes when the pause ends');
  const cancelled = await w.send({ method: 'POST', url: `/executions/${waiting}/cancel` });
  t.equal(cancelled.statusCode, 200);
  t.match(await w.finished(waiting), { status: 'cancelled', steps: [{ status: 'cancelled', attempts: 0 }] });
  t.notOk(
    w.target.received.some((r) => r.headers['idempotency-key'] === `${waiting}:waits`),
    'it never called',
  );
});

t.test('runs waiting for their turn hold no worker slot', async (t) => {
  const id = await tool({ requests: 1, perMs: 60_000 });
  const slow = await w.flow({ steps: [{ key: 'slow', actionId: await w.action({ toolId: id, endpoint: '/echo/slots' }) }] });
  const runs = await Promise.all(Array.from({ length: 8 }, () => start(slow.id)));
  await until('seven runs waiting for their turn', async () => {
    const waiting = await w.db.executionStep.count({ where: { executionId: { in: runs }, status: 'waiting', attempts: 0 } });
    return waiting === 7 ? true : undefined;
  });
  const free = await w.flow({ steps: [{ key: 'free', actionId: await w.action() }] });
  const began = Date.now();
  const execution = await w.run(free.id);
  t.equal(execution.status, 'completed', 'another flow completes on the two slots while seven runs wait');
  t.ok(Date.now() - began < 10_000, `in ${Date.now() - began} ms`);
  t.equal(w.target.received.filter((r) => r.path === '/echo/slots').length, 1, 'one call to the limited tool in its minute');
  for (const run of runs) await w.send({ method: 'POST', url: `/executions/${run}/cancel` });
});
