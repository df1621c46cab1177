// Running flows end to end against a real target server: what each step sends, receives and
// records, how inputs are templated, conditions, outputs, and the execution logs written.
import t from 'tap';
import { world } from './world.ts';

const w = await world(t);

t.test('a two-step run passes data from step 1 to step 2, and records what each sent and received', async (t) => {
  const lookup = await w.action({ method: 'GET', endpoint: '/echo/users/{id}' });
  const notify = await w.action({ endpoint: '/echo/notify', headers: { 'X-Channel': 'ops' } });
  const flow = await w.flow({
    steps: [
      { key: 'lookup', actionId: lookup, inputs: { id: { $eval: 'input.userId' }, fields: ['name', 'email'] } },
      { key: 'notify', actionId: notify, inputs: { text: 'Found ${steps.lookup.output.path}', query: { $eval: 'steps.lookup.output.query' } } },
    ],
  });
  const execution = await w.run(flow.id, { input: { userId: 'u/42' } });
  t.match(execution, {
    status: 'completed',
    flowId: flow.id,
    flowVersion: 1,
    input: { userId: 'u/42' },
    error: null,
    retryOf: null,
    createdBy: w.member.userId,
  });
  t.ok(execution.startedAt && execution.finishedAt, 'timestamps');
  const [first, second] = execution.steps;
  t.match(first, { key: 'lookup', actionId: lookup, status: 'completed', attempts: 1, error: null, reusedFrom: null });
  t.equal(first.request.method, 'GET');
  t.equal(first.request.url, `${w.target.url}/echo/users/u%2F42?fields=name&fields=email`, 'placeholders filled and encoded; the rest in the query string');
  t.equal(first.request.body, null);
  t.equal(first.request.headers['idempotency-key'], `${execution.id}:lookup`);
  t.match(first.response, {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: { path: '/echo/users/u%2F42', query: { fields: ['name', 'email'] } },
  });
  t.ok(first.durationMs >= 0 && first.startedAt && first.finishedAt);
  t.match(second.request, { method: 'POST', url: `${w.target.url}/echo/notify`, headers: { 'x-channel': 'ops', 'content-type': 'application/json' } });
  t.same(second.request.body, { text: 'Found /echo/users/u%2F42', query: { fields: ['name', 'email'] } }, 'a whole-value reference keeps its type');
  t.same(execution.output, second.response.body, "the output is the last step's");
  const sent = w.target.received.filter((r) => r.headers['idempotency-key']?.startsWith(execution.id));
  t.equal(sent.length, 2, 'each step called once');
  t.same(sent[1]!.body, second.request.body, 'what was recorded is what was sent');
});

t.test('templates keep types, interpolate strings, and name what they miss', async (t) => {
  const echo = await w.action();
  const typed = await w.flow({
    steps: [
      {
        key: 'types',
        actionId: echo,
        inputs: {
          number: { $eval: 'input.n' },
          list: { $eval: 'input.list' },
          object: { $eval: 'input.nested' },
          bool: { $eval: 'input.n > 1' },
          text: 'n=${input.n}, id=${execution.id}',
          mapped: { $map: { $eval: 'input.list' }, 'each(x)': { $eval: 'x * 2' } },
          chosen: { $if: 'input.n > 10', then: 'big', else: 'small' },
          version: { $eval: 'execution.flowVersion' },
        },
      },
    ],
  });
  const execution = await w.run(typed.id, { input: { n: 3, list: [1, 2], nested: { a: [true, null] } } });
  t.equal(execution.status, 'completed');
  t.same(execution.steps[0].request.body, {
    number: 3,
    list: [1, 2],
    object: { a: [true, null] },
    bool: true,
    text: `n=3, id=${execution.id}`,
    mapped: [2, 4],
    chosen: 'small',
    version: 1,
  });

  const missing = await w.flow({
    steps: [
      { key: 'first', actionId: echo },
      { key: 'second', actionId: echo, inputs: { value: { $eval: 'steps.first.output.frist' } } },
    ],
  });
  const failed = await w.run(missing.id);
  t.match(failed, { status: 'failed', error: { code: 'step-failed', step: 'second', message: /Step second failed: inputs\.value: no property "frist"/ } });
  t.match(failed.steps[1], { status: 'failed', attempts: 1, request: null, response: null, error: { code: 'template-error' } });
  t.equal(w.target.received.filter((r) => r.headers['idempotency-key'] === `${failed.id}:second`).length, 0, 'a step whose inputs fail calls nothing');
});

t.test('inputs are checked against the action inputSchema before anything is called', async (t) => {
  const strict = await w.action({ inputSchema: { type: 'object', required: ['email'], properties: { email: { type: 'string', format: 'email' } } } });
  const flow = await w.flow({ steps: [{ key: 'send', actionId: strict, inputs: { email: { $eval: 'input.email' } } }] });
  const bad = await w.run(flow.id, { input: { email: 'not an email' } });
  t.match(bad.steps[0], { status: 'failed', error: { code: 'invalid-inputs', message: /\/email must match format "email"/ } });
  t.equal(w.target.received.filter((r) => r.headers['idempotency-key'] === `${bad.id}:send`).length, 0, 'nothing was called');
  const good = await w.run(flow.id, { input: { email: 'ada@example.com' } });
  t.equal(good.status, 'completed');
});

t.test('a step whose condition is false is skipped; its output is null', async (t) => {
  const echo = await w.action();
  const flow = await w.flow({
    steps: [
      { key: 'maybe', actionId: echo, if: 'input.send', inputs: { a: 1 } },
      { key: 'after', actionId: echo, inputs: { skipped: { $eval: 'steps.maybe.output' }, status: { $eval: 'steps.maybe.status' } } },
    ],
  });
  const skipped = await w.run(flow.id, { input: { send: false } });
  t.match(skipped.steps, [
    { key: 'maybe', status: 'skipped', attempts: 0, request: null },
    { key: 'after', status: 'completed' },
  ]);
  t.same(skipped.steps[1].request.body, { skipped: null, status: 'skipped' });
  const ran = await w.run(flow.id, { input: { send: true } });
  t.match(ran.steps, [{ key: 'maybe', status: 'completed' }, { key: 'after' }]);
  t.same(ran.steps[1].request.body.status, 'completed');
});

t.test('the output template, when the flow has one, makes the output', async (t) => {
  const echo = await w.action();
  const flow = await w.flow({
    steps: [{ key: 'a', actionId: echo, inputs: { v: 7 } }],
    output: { value: { $eval: 'steps.a.output.body.v' }, from: 'template' },
  });
  t.same((await w.run(flow.id)).output, { value: 7, from: 'template' });
});

t.test('answers that are not JSON are kept as text', async (t) => {
  const text = await w.action({ method: 'GET', endpoint: '/text' });
  const flow = await w.flow({ steps: [{ key: 'text', actionId: text }] });
  const execution = await w.run(flow.id);
  t.equal(execution.steps[0].response.body, 'plain words');
  t.equal(execution.output, 'plain words');
});

t.test('every attempt of every step is in the execution logs', async (t) => {
  const echo = await w.action();
  const flaky = await w.action({ endpoint: '/flaky/1/log' });
  const flow = await w.flow({
    steps: [
      { key: 'one', actionId: echo, inputs: { n: 1 } },
      { key: 'two', actionId: flaky, retry: { maxAttempts: 2, initialDelayMs: 10 } },
      { key: 'three', actionId: echo, if: 'false' },
    ],
  });
  const execution = await w.run(flow.id);
  const logs = await w.send({ method: 'GET', url: `/execution-logs?executionId=${execution.id}` });
  const byStep = logs.data.items.map((log: any) => [log.stepKey, log.status]).reverse();
  t.same(byStep, [
    ['one', 'completed'],
    ['two', 'failed'],
    ['two', 'completed'],
    ['three', 'skipped'],
  ]);
  const one = logs.data.items.find((log: any) => log.stepKey === 'one');
  t.match(one, { flowId: flow.id, userId: w.member.userId, inputs: { n: 1 }, outputs: { status: 200 }, error: null });
  t.ok(one.durationMs >= 0);
  const failedAttempt = logs.data.items.find((log: any) => log.stepKey === 'two' && log.status === 'failed');
  t.match(failedAttempt, { outputs: { status: 503 }, error: { code: 'http-status', message: 'The action answered 503.' } });
  t.equal((await w.send({ method: 'GET', url: `/execution-logs?flowId=${flow.id}` })).data.items.length, 4, 'the flowId filter finds them');
});

t.test('Prefer: wait answers 200 with the finished run, or 202 when it takes longer', async (t) => {
  const echo = await w.action();
  const slow = await w.action({ endpoint: '/slow/2500/wait' });
  const quick = await w.flow({ steps: [{ key: 'a', actionId: echo }] });
  const done = await w.send({ method: 'POST', url: `/flows/${quick.id}/executions`, payload: {}, headers: { prefer: 'wait=10' } });
  t.equal(done.statusCode, 200);
  t.equal(done.headers['preference-applied'], 'wait=10');
  t.equal(done.headers.location, `/executions/${done.data.id}`);
  t.match(done.data, { status: 'completed', steps: [{ status: 'completed' }] });

  const long = await w.flow({ steps: [{ key: 'a', actionId: slow }] });
  const waited = await w.send({ method: 'POST', url: `/flows/${long.id}/executions`, payload: {}, headers: { prefer: 'respond-async, wait=1' } });
  t.equal(waited.statusCode, 202);
  t.equal(waited.headers['preference-applied'], 'wait=1');
  t.match(waited.data, { status: 'running' });
  t.equal((await w.finished(waited.data.id)).status, 'completed');

  const queued = await w.send({ method: 'POST', url: `/flows/${quick.id}/executions`, payload: {} });
  t.equal(queued.statusCode, 202, 'without Prefer: 202 at once');
  t.equal(queued.headers['preference-applied'], undefined);
  t.match(queued.data, { status: 'queued', steps: [{ status: 'pending', attempts: 0 }] });
  const capped = await w.send({ method: 'POST', url: `/flows/${quick.id}/executions`, payload: {}, headers: { prefer: 'wait=600' } });
  t.equal(capped.headers['preference-applied'], 'wait=30', 'waits are capped at 30 s');
});
