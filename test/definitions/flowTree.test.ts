// A flow's steps as a tree, checked when it is written (src/definitions/flowChecks.ts): what the
// contract's schema cannot say (keys unique in the whole flow, how deep steps nest, how many there
// are, fields only an action step takes, the actions and sub-flows steps name) is refused with 422
// naming the step by its pointer in the written body; what it can say is refused with 400, the
// nested step named alike. Each step of the tree has its reference row.
import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app, db } = await buildTestApp(t);
const acme = await createTenant(app);
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Users', baseUrl: 'https://api.example.com' } })).data;
const newAction = async (key: string, endpoint = `/${key}`) =>
  (await call(app, acme, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: key, key, method: 'POST', endpoint } })).data.id as string;
const post = await newAction('post');
const getUser = await newAction('get-user', '/users/{id}');

const save = (steps: unknown[], output?: unknown) =>
  call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Tree', steps, ...(output === undefined ? {} : { output }) } });
const transform = (key: string) => ({ key, transform: { key } });
const forEach = (key: string, steps: unknown[]) => ({ key, forEach: { items: 'input.list', steps } });

t.test('a key is unique in the whole flow: a repeat anywhere in the tree is refused, naming both steps', async (t) => {
  const response = await save([
    transform('x'),
    { key: 'p', parallel: { branches: { crm: [transform('x')], mail: [transform('y')], chat: [transform('y')] } } },
    { key: 's', switch: { cases: [{ if: 'true', steps: [transform('p')] }] } },
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/1/parallel/branches/crm/0/key', message: 'repeats the key "x" of the step at /steps/0' },
    { in: 'body', pointer: '/steps/1/parallel/branches/chat/0/key', message: 'repeats the key "y" of the step at /steps/1/parallel/branches/mail/0' },
    { in: 'body', pointer: '/steps/2/switch/cases/0/steps/0/key', message: 'repeats the key "p" of the step at /steps/1' },
  ]);
});

t.test('a key that begins with another key and a dot is refused: their step runs’ paths would read either way', async (t) => {
  const refused = await save([
    { key: 'p', parallel: { branches: { x: [transform('y')] } } },
    { key: 'p.x', switch: { cases: [{ if: 'true', steps: [transform('z')] }] } },
  ]);
  t.equal(refused.statusCode, 422);
  t.same(refused.data.errors, [
    {
      in: 'body',
      pointer: '/steps/1/key',
      message: 'begins with the key "p" and a dot, so the paths of their step runs could be read either way; rename one of them',
    },
  ]);
  t.equal((await save([transform('a.b'), transform('a-b.c')])).statusCode, 201, 'keys with dots that begin with no other key are fine');
});

t.test('steps nest at most 4 deep: the first step too deep is named', async (t) => {
  const nested = (depth: number): unknown => (depth === 1 ? transform('leaf') : forEach(`loop${depth}`, [nested(depth - 1)]));
  t.equal((await save([nested(4)])).statusCode, 201, '4 deep is accepted');
  const response = await save([nested(6)]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/0/forEach/steps/0/forEach/steps/0/forEach/steps/0/forEach/steps/0', message: 'is nested 5 deep; steps nest at most 4 deep' },
  ]);
});

t.test('a flow holds at most 500 steps, nested ones included', async (t) => {
  const branches = (sizes: number[]) =>
    Object.fromEntries(sizes.map((size, branch) => [`b${branch}`, Array.from({ length: size }, (_, index) => transform(`s${branch}-${index}`))]));
  const full = await save([{ key: 'p', parallel: { branches: branches([100, 100, 100, 100, 99]) } }]);
  t.equal(full.statusCode, 201, '500 steps are accepted');
  t.equal(await db.flowStep.count({ where: { flowId: full.data.id } }), 500, 'each with its reference row');
  const over = await save([{ key: 'p', parallel: { branches: branches([100, 100, 100, 100, 100]) } }]);
  t.equal(over.statusCode, 422);
  t.same(over.data.errors, [{ in: 'body', pointer: '/steps', message: 'hold more than 500 steps, nested ones included; a flow holds at most 500' }]);
  // Thousands of nested steps, each wrong: counted before the validator reads them (its work grows with their square).
  const wrong = Array.from({ length: 100 }, (_, loop) => ({
    key: `l${loop}`,
    forEach: { items: '[]', steps: Array.from({ length: 100 }, () => ({ nokind: true })) },
  }));
  const flood = await save(wrong);
  t.equal(flood.statusCode, 422);
  t.same(flood.data.errors, [{ in: 'body', pointer: '/steps', message: 'hold more than 500 steps, nested ones included; a flow holds at most 500' }]);
});

t.test('inputs, timeoutMs and retry apply to action steps only', async (t) => {
  const response = await save([
    { key: 'a', transform: 1, inputs: {}, timeoutMs: 1000, retry: { maxAttempts: 2 } },
    forEach('l', [{ key: 'b', sleep: { ms: 10 }, timeoutMs: 5000 }]),
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/0/inputs', message: 'applies to action steps only' },
    { in: 'body', pointer: '/steps/0/timeoutMs', message: 'applies to action steps only' },
    { in: 'body', pointer: '/steps/0/retry', message: 'applies to action steps only' },
    { in: 'body', pointer: '/steps/1/forEach/steps/0/timeoutMs', message: 'applies to action steps only' },
  ]);
});

t.test("a nested action step must call one of the organization's actions, with its endpoint's inputs", async (t) => {
  const response = await save([
    { key: 'p', parallel: { branches: { crm: [{ key: 'a', actionId: MISSING_ID }] } } },
    forEach('l', [{ key: 'b', actionId: getUser, inputs: { name: 'x' } }]),
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/0/parallel/branches/crm/0/actionId', message: `no action ${MISSING_ID} in this organization` },
    { in: 'body', pointer: '/steps/1/forEach/steps/0/inputs', message: `has no input "id", which the endpoint /users/{id} of action ${getUser} needs` },
  ]);
  const computed = await save([forEach('l', [{ key: 'b', actionId: getUser, inputs: { $eval: 'item' } }])]);
  t.equal(computed.statusCode, 201);
  t.same(
    computed.data.warnings.map((warning: { pointer: string }) => warning.pointer),
    ['/steps/0/forEach/steps/0/inputs'],
    'computed inputs are warned of where they are',
  );
});

t.test('a sub-flow step must name a live flow of the organization', async (t) => {
  const child = (await save([transform('only')])).data;
  const gone = (await save([transform('only')])).data;
  t.equal((await call(app, acme, { method: 'DELETE', url: `/flows/${gone.id}` })).statusCode, 204);
  const stranger = await createTenant(app, 'Stranger');
  const theirs = (await call(app, stranger, { method: 'POST', url: '/flows', payload: { name: 'Theirs' } })).data;
  const response = await save([
    { key: 'a', flow: { flowId: child.id } },
    { key: 'b', flow: { flowId: gone.id } },
    { key: 'c', flow: { flowId: theirs.id } },
    forEach('l', [{ key: 'd', flow: { flowId: MISSING_ID, input: { n: { $eval: 'index' } } } }]),
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/1/flow/flowId', message: `no flow ${gone.id} in this organization` },
    { in: 'body', pointer: '/steps/2/flow/flowId', message: `no flow ${theirs.id} in this organization` },
    { in: 'body', pointer: '/steps/3/forEach/steps/0/flow/flowId', message: `no flow ${MISSING_ID} in this organization` },
  ]);
  const parent = await save([{ key: 'a', flow: { flowId: child.id, version: 1, input: { id: { $eval: 'input.id' } } } }]);
  t.equal(parent.statusCode, 201);
  const itself = await call(app, acme, {
    method: 'PUT',
    url: `/flows/${parent.data.id}`,
    payload: { steps: [{ key: 'again', flow: { flowId: parent.data.id } }] },
  });
  t.equal(itself.statusCode, 200, 'a flow may run itself (runs nest at most 5 deep)');
});

t.test('every step of the tree has a reference row, in order: keys stay unique and called actions stay', async (t) => {
  const steps = [
    { key: 'first', actionId: post },
    {
      key: 'p',
      parallel: {
        branches: {
          crm: [forEach('l', [{ key: 'call', actionId: getUser, inputs: { id: { $eval: 'item' } } }, transform('t')])],
          mail: [{ key: 'wait', waitFor: { signal: 'approval' } }],
        },
      },
    },
  ];
  const flow = (await save(steps)).data;
  const rows = async () =>
    (await db.flowStep.findMany({ where: { flowId: flow.id }, orderBy: { position: 'asc' } })).map(({ position, key, actionId }) => ({
      position,
      key,
      actionId,
    }));
  t.same(await rows(), [
    { position: 0, key: 'first', actionId: post },
    { position: 1, key: 'p', actionId: null },
    { position: 2, key: 'l', actionId: null },
    { position: 3, key: 'call', actionId: getUser },
    { position: 4, key: 't', actionId: null },
    { position: 5, key: 'wait', actionId: null },
  ]);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/actions/${getUser}` })).statusCode, 409, 'a nested step calls it');
  const updated = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { steps: [forEach('l', [transform('t')])] } });
  t.equal(updated.statusCode, 200);
  t.same(await rows(), [
    { position: 0, key: 'l', actionId: null },
    { position: 1, key: 't', actionId: null },
  ]);
});

t.test('nested steps are stored with every option, as they run', async (t) => {
  const response = await save([
    {
      key: 's',
      switch: { cases: [{ if: 'input.vip', steps: [forEach('l', [{ key: 'a', actionId: post, inputs: { n: { $eval: 'index' } } }])] }] },
    },
    { key: 'nap', sleep: { until: 'input.at' } },
  ]);
  t.equal(response.statusCode, 201);
  const defaults = { if: null, continueOnError: false };
  const action = {
    ...defaults,
    key: 'a',
    actionId: post,
    inputs: { n: { $eval: 'index' } },
    timeoutMs: 30000,
    retry: { maxAttempts: 1, initialDelayMs: 1000, maxDelayMs: 30000 },
  };
  t.same(response.data.steps, [
    {
      ...defaults,
      key: 's',
      switch: {
        cases: [{ if: 'input.vip', steps: [{ ...defaults, key: 'l', forEach: { items: 'input.list', concurrency: 1, steps: [action] } }] }],
        default: [],
      },
    },
    { ...defaults, key: 'nap', sleep: { until: 'input.at' } },
  ]);
  t.same((await call(app, acme, { method: 'GET', url: `/flows/${response.data.id}` })).data.steps, response.data.steps);
});

t.test("what the contract's schema says of nested steps answers 400, naming the nested field", async (t) => {
  const kinds = 'must have exactly one of actionId, transform, switch, forEach, parallel, sleep, waitFor, flow';
  const fields = 'key, actionId, inputs, if, timeoutMs, retry, continueOnError, transform, switch, forEach, parallel, sleep, waitFor, flow';
  const cases: [string, unknown[], string, string][] = [
    ['a step with no kind', [forEach('l', [{ key: 'a' }])], '/steps/0/forEach/steps/0', kinds],
    [
      'a step with two kinds',
      [{ key: 'p', parallel: { branches: { crm: [{ key: 'a', actionId: post, transform: 1 }] } } }],
      '/steps/0/parallel/branches/crm/0',
      kinds,
    ],
    ['a switch and an action at once', [{ key: 'a', actionId: post, switch: { cases: [{ if: 'true', steps: [transform('b')] }] } }], '/steps/0', kinds],
    [
      'a loop of no concurrency',
      [{ key: 'l', forEach: { items: 'input.list', concurrency: 0, steps: [transform('a')] } }],
      '/steps/0/forEach/concurrency',
      'must be at least 1',
    ],
    ['a switch of no cases', [forEach('l', [{ key: 's', switch: { cases: [] } }])], '/steps/0/forEach/steps/0/switch/cases', 'must not be empty'],
    [
      'an unknown field of a nested step',
      [forEach('l', [{ key: 'a', transform: 1, retries: 3 }])],
      '/steps/0/forEach/steps/0/retries',
      `is not a known field; the fields are ${fields}`,
    ],
    ['a sleep both ways', [{ key: 'z', sleep: { ms: 1, until: 'input.at' } }], '/steps/0/sleep', 'must set at most one field; the fields are ms, until'],
  ];
  for (const [label, steps, pointer, message] of cases) {
    const response = await save(steps);
    t.equal(response.statusCode, 400, label);
    t.same(response.data.errors, [{ in: 'body', pointer, message }], label);
  }
});
