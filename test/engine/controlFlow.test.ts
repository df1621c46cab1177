// Every kind of step against a real target: transform, switch, forEach, parallel, sleep, and
// their composition with if, retry and continueOnError, nested in one another.
import t from 'tap';
import { peakInFlight } from './target.ts';
import { world } from './world.ts';

const w = await world(t);
const echo = await w.action();
const slow = await w.action({ endpoint: '/slow/200/item' });
const failing = await w.action({ endpoint: '/status/500' });
const byKey = (execution: { steps: { path: string }[] }) => new Map(execution.steps.map((step) => [step.path, step as Record<string, unknown>]));

t.test('transform: its output is the rendered template; its if, its failure and continueOnError', async (t) => {
  const flow = await w.flow({
    steps: [
      { key: 'sum', transform: { total: { $eval: 'input.a + input.b' }, label: 'total of ${input.a}' } },
      { key: 'never', transform: 1, if: 'input.a > 100' },
      { key: 'broken', transform: { $eval: 'input.missing.field' }, continueOnError: true },
      {
        key: 'after',
        transform: { sum: { $eval: 'steps.sum.output.total' }, skipped: { $eval: 'steps.never.status' }, broken: { $eval: 'steps.broken.status' } },
      },
    ],
  });
  const execution = await w.run(flow.id, { input: { a: 2, b: 3 } });
  t.equal(execution.status, 'completed');
  const steps = byKey(execution);
  t.match(steps.get('sum'), { kind: 'transform', status: 'completed', output: { total: 5, label: 'total of 2' }, actionId: null, request: null });
  t.match(steps.get('never'), { status: 'skipped', output: null });
  t.match(steps.get('broken'), { status: 'failed', error: { code: 'template-error', message: /input\.missing|missing/ } });
  t.same(execution.output, { sum: 5, skipped: 'skipped', broken: 'failed' });
  const logs = await w.send({ method: 'GET', url: `/execution-logs?executionId=${execution.id}` });
  t.equal(logs.statusCode, 200, 'the logs of other kinds of step are answered as their schema says');
  t.match(
    logs.data.items.find((log: { stepKey: string }) => log.stepKey === 'sum'),
    { status: 'completed', outputs: { output: { total: 5, label: 'total of 2' } } },
    'a transform’s log keeps its output under "output"',
  );
  const stopped = await w.run(
    (
      await w.flow({
        steps: [
          { key: 'bad', transform: { $eval: 'input.nothing.here' } },
          { key: 'next', transform: 1 },
        ],
      })
    ).id,
  );
  t.match(stopped, { status: 'failed', error: { code: 'step-failed', step: 'bad' }, steps: [{ status: 'failed' }, { status: 'not_run' }] });
});

t.test('switch: the first case that holds runs, its index seen as steps.<key>.case; default otherwise', async (t) => {
  const flow = await w.flow({
    steps: [
      {
        key: 'route',
        switch: {
          cases: [
            { if: "input.plan == 'pro'", steps: [{ key: 'pro', transform: 'pro plan' }] },
            { if: "input.plan == 'free'", steps: [{ key: 'free', actionId: echo, inputs: { plan: { $eval: 'input.plan' } } }] },
          ],
          default: [{ key: 'other', transform: { $eval: 'input.plan' } }],
        },
      },
      { key: 'seen', transform: { case: { $eval: 'steps.route.case' }, output: { $eval: 'steps.route.output' } } },
    ],
  });
  const pro = await w.run(flow.id, { input: { plan: 'pro' } });
  t.same(pro.output, { case: 0, output: 'pro plan' });
  t.match(byKey(pro).get('route'), { kind: 'switch', status: 'completed', case: 0, output: 'pro plan' });
  t.match(byKey(pro).get('route.pro'), { status: 'completed' });
  t.notOk(byKey(pro).has('route.free'), 'the other cases never ran');
  const free = await w.run(flow.id, { input: { plan: 'free' } });
  t.match(free.output, { case: 1, output: { body: { plan: 'free' } } });
  const team = await w.run(flow.id, { input: { plan: 'team' } });
  t.same(team.output, { case: 'default', output: 'team' });
  const none = await w.run((await w.flow({ steps: [{ key: 's', switch: { cases: [{ if: 'false', steps: [{ key: 'x', transform: 1 }] }] } }] })).id);
  t.match(none, { status: 'completed', output: null, steps: [{ path: 's', case: 'default', output: null }] });
});

t.test('switch: a failing step in its branch fails it, unless continueOnError; a bad case condition names it', async (t) => {
  const steps = (continueOnError: boolean) => [
    { key: 'sw', continueOnError, switch: { cases: [{ if: 'true', steps: [{ key: 'boom', actionId: failing }] }] } },
    { key: 'then', transform: { $eval: 'steps.sw.status' } },
  ];
  const failed = await w.run((await w.flow({ steps: steps(false) })).id);
  t.match(failed, { status: 'failed', error: { step: 'sw', message: /step sw\.boom failed: The action answered 500/ } });
  t.match(byKey(failed).get('then'), { status: 'not_run' });
  const tolerated = await w.run((await w.flow({ steps: steps(true) })).id);
  t.match(tolerated, { status: 'completed', output: 'failed' });
  const bad = await w.run(
    (
      await w.flow({
        steps: [
          {
            key: 'sw2',
            switch: {
              cases: [
                { if: 'true', steps: [{ key: 'a', transform: 1 }] },
                { if: 'input.x.y', steps: [{ key: 'b', transform: 2 }] },
              ],
            },
          },
        ],
      })
    ).id,
  );
  t.match(bad, { status: 'completed', output: 1 }, 'a later case is not read once one holds');
  const unreadable = await w.run((await w.flow({ steps: [{ key: 'sw3', switch: { cases: [{ if: 'input.x.y', steps: [{ key: 'c', transform: 1 }] }] } }] })).id);
  t.match(unreadable, { status: 'failed', steps: [{ path: 'sw3', status: 'failed', error: { code: 'template-error', message: /switch\.cases\[0\]\.if/ } }] });
});

t.test('forEach: one run of its steps per item, item and index seen, output in item order', async (t) => {
  const flow = await w.flow({
    steps: [
      {
        key: 'each',
        forEach: {
          items: 'input.names',
          concurrency: 2,
          steps: [
            { key: 'greet', actionId: echo, inputs: { name: { $eval: 'item' }, at: { $eval: 'index' } } },
            { key: 'shape', transform: { name: { $eval: 'steps.greet.output.body.name' }, at: { $eval: 'index' } } },
          ],
        },
      },
    ],
  });
  const execution = await w.run(flow.id, { input: { names: ['ada', 'bo', 'cy', 'di', 'ed'] } });
  t.equal(execution.status, 'completed');
  t.same(
    execution.output,
    ['ada', 'bo', 'cy', 'di', 'ed'].map((name, at) => ({ name, at })),
  );
  const steps = byKey(execution);
  t.match(steps.get('each'), { kind: 'forEach', status: 'completed' });
  t.match(steps.get('each[3].greet'), { key: 'greet', status: 'completed', request: { headers: { 'idempotency-key': `${execution.id}:each[3].greet` } } });
  t.equal(execution.stepCount, 11);
  const empty = await w.run(flow.id, { input: { names: [] } });
  t.match(empty, { status: 'completed', output: [] });
  const notArray = await w.run(flow.id, { input: { names: 'ada' } });
  t.match(notArray, { status: 'failed', steps: [{ path: 'each', status: 'failed', error: { message: 'forEach.items: gives a string, not an array' } }] });
});

t.test('forEach: never more than `concurrency` items in flight, counted at the target', async (t) => {
  const flow = await w.flow({
    steps: [{ key: 'loop', forEach: { items: 'input.items', concurrency: 3, steps: [{ key: 'call', actionId: slow, inputs: { i: { $eval: 'item' } } }] } }],
  });
  const execution = await w.run(flow.id, { input: { items: Array.from({ length: 12 }, (_, i) => i) } });
  t.equal(execution.status, 'completed');
  const calls = w.target.received.filter((call) => call.headers['idempotency-key']?.startsWith(`${execution.id}:loop[`));
  t.equal(calls.length, 12, 'each item called once');
  t.equal(peakInFlight(calls), 3, 'three at once, never more');
  t.same(
    calls
      .map((call) => (call.body as { i: number }).i)
      .slice(0, 3)
      .sort(),
    [0, 1, 2],
    'the lowest items begin first',
  );
});

t.test('forEach: a failing item fails the loop and begins no later item; continueOnError on the loop goes on', async (t) => {
  const steps = (continueOnError: boolean) => [
    {
      key: 'items',
      continueOnError,
      forEach: {
        items: 'input.items',
        steps: [
          { key: 'maybe', actionId: echo, inputs: { i: { $eval: 'item' } } },
          { key: 'check', transform: { $eval: 'item < 2 && 1 || input.missing.x' } },
        ],
      },
    },
    { key: 'after', transform: { $eval: 'steps.items.status' } },
  ];
  const failed = await w.run((await w.flow({ steps: steps(false) })).id, { input: { items: [0, 1, 2, 3, 4] } });
  t.match(failed, { status: 'failed', error: { step: 'items', message: /step items\[2\]\.check failed/ } });
  const sent = w.target.received.filter((call) => call.headers['idempotency-key']?.startsWith(`${failed.id}:items[`));
  t.same(
    sent.map((call) => (call.body as { i: number }).i),
    [0, 1, 2],
    'no item begun after the one that failed',
  );
  const tolerated = await w.run((await w.flow({ steps: steps(true) })).id, { input: { items: [0, 1, 2, 3] } });
  t.match(tolerated, { status: 'completed', output: 'failed' });
});

t.test('forEach: retry applies to the steps inside, each item with its own Idempotency-Key', async (t) => {
  const flaky = await w.action({ endpoint: '/flaky/1/each' });
  const flow = await w.flow({
    steps: [
      {
        key: 'retried',
        forEach: { items: '[1, 2, 3]', concurrency: 3, steps: [{ key: 'call', actionId: flaky, retry: { maxAttempts: 2, initialDelayMs: 10 } }] },
      },
    ],
  });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'completed');
  for (const index of [0, 1, 2]) {
    const path = `retried[${index}].call`;
    t.match(byKey(execution).get(path), { status: 'completed', attempts: 2 });
    t.equal(w.target.received.filter((call) => call.headers['idempotency-key'] === `${execution.id}:${path}`).length, 2);
  }
});

t.test('parallel: branches run at once; its output holds each branch’s last; a failing branch fails it', async (t) => {
  const flow = await w.flow({
    steps: [
      {
        key: 'both',
        parallel: {
          branches: {
            crm: [
              { key: 'lookup', actionId: slow, inputs: { who: 'crm' } },
              { key: 'crmName', transform: { $eval: 'steps.lookup.output.body.who' } },
            ],
            billing: [{ key: 'invoice', actionId: slow, inputs: { who: 'billing' } }],
          },
        },
      },
      { key: 'merged', transform: { crm: { $eval: 'steps.both.output.crm' }, billing: { $eval: 'steps.both.output.billing.body.who' } } },
    ],
  });
  const execution = await w.run(flow.id);
  t.same(execution.output, { crm: 'crm', billing: 'billing' });
  const calls = w.target.received.filter((call) => call.headers['idempotency-key']?.startsWith(`${execution.id}:both.`));
  t.same(calls.map((call) => call.headers['idempotency-key']).sort(), [`${execution.id}:both.billing.invoice`, `${execution.id}:both.crm.lookup`]);
  t.equal(peakInFlight(calls), 2, 'both branches were in flight at once');
  const broken = await w.flow({
    steps: [
      {
        key: 'par',
        parallel: {
          branches: {
            good: [{ key: 'ok', actionId: slow }],
            bad: [
              { key: 'ko', actionId: failing },
              { key: 'never', transform: 1 },
            ],
          },
        },
      },
    ],
  });
  const failed = await w.run(broken.id);
  t.match(failed, { status: 'failed', error: { step: 'par', message: /step par\.bad\.ko failed/ } });
  t.match(byKey(failed).get('par.good.ok'), { status: 'completed' }, 'the branch in flight finished');
  t.notOk(byKey(failed).has('par.bad.never'));
});

t.test('nesting: a forEach inside a parallel branch, a switch inside a forEach', async (t) => {
  const flow = await w.flow({
    steps: [
      {
        key: 'p',
        parallel: {
          branches: {
            a: [{ key: 'loop', forEach: { items: '[1, 2, 3]', concurrency: 2, steps: [{ key: 'double', transform: { $eval: 'item * 2' } }] } }],
            b: [
              {
                key: 'route',
                forEach: {
                  items: "['x', 'y']",
                  steps: [
                    {
                      key: 'which',
                      switch: {
                        cases: [{ if: "item == 'x'", steps: [{ key: 'isX', transform: 'X' }] }],
                        default: [{ key: 'notX', transform: { $eval: 'index' } }],
                      },
                    },
                  ],
                },
              },
            ],
          },
        },
      },
    ],
  });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'completed');
  t.same(execution.output, { a: [2, 4, 6], b: ['X', 1] });
  const paths = execution.steps.map((step: { path: string }) => step.path);
  for (const path of ['p.a.loop[2].double', 'p.b.route[0].which.isX', 'p.b.route[1].which.notX']) t.ok(paths.includes(path), path);
});

t.test('sleep: waits without a worker, then completes; a time past does not wait; a bad time fails', async (t) => {
  const flow = await w.flow({
    steps: [
      { key: 'nap', sleep: { ms: 600 } },
      { key: 'woke', transform: 'awake' },
    ],
  });
  const started = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  let sleeping: { steps: { path: string; status: string; wakeAt: string | null }[] } | undefined;
  for (let i = 0; i < 40 && !sleeping; i++) {
    const seen = (await w.send({ method: 'GET', url: `/executions/${started.data.id}` })).data;
    if (seen.steps[0].status === 'waiting') sleeping = seen;
    else await new Promise((resolve) => setTimeout(resolve, 25));
  }
  t.match(sleeping?.steps[0], { path: 'nap', status: 'waiting', wakeAt: String }, 'the sleep is seen waiting, with when it wakes');
  const done = await w.finished(started.data.id);
  t.match(done, { status: 'completed', output: 'awake', steps: [{ status: 'completed', output: null }, { status: 'completed' }] });
  t.ok(new Date(done.steps[1].startedAt).getTime() - new Date(done.steps[0].startedAt).getTime() >= 600, 'the next step began after the sleep');
  const past = await w.run((await w.flow({ steps: [{ key: 'past', sleep: { until: 'input.at' } }] })).id, { input: { at: '2020-01-01T00:00:00Z' } });
  t.match(past, { status: 'completed', steps: [{ status: 'completed' }] });
  const bad = await w.run((await w.flow({ steps: [{ key: 'bad', sleep: { until: 'input.at' } }] })).id, { input: { at: 'tomorrow' } });
  t.match(bad, {
    status: 'failed',
    steps: [{ error: { message: 'sleep.until: gives "tomorrow", not an ISO 8601 time with its offset (such as 2026-12-24T09:00:00Z)' } }],
  });
});

t.test('an execution with more than 1,000 step runs lists the first 1,000 and counts them all', async (t) => {
  const flow = await w.flow({
    steps: [{ key: 'many', forEach: { items: 'range(0, 1100)', concurrency: 20, steps: [{ key: 'n', transform: { $eval: 'item' } }] } }],
  });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'completed');
  t.equal(execution.stepCount, 1101);
  t.equal(execution.steps.length, 1000);
  t.equal(execution.output.length, 1100);
  t.equal(execution.output[1099], 1099);
});
