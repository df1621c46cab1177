import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app, db } = await buildTestApp(t);
const acme = await createTenant(app);
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } })).data;
const newAction = async (key: string) =>
  (await call(app, acme, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: key, key, method: 'POST', endpoint: `/${key}` } })).data;
const post = await newAction('post');
const react = await newAction('react');

t.test('a flow starts at version 1 with its steps in order', async (t) => {
  const created = await call(app, acme, {
    method: 'POST',
    url: '/flows',
    payload: {
      name: 'Announce',
      description: 'Tell the team',
      steps: [
        { key: 'b', actionId: react.id, inputs: { emoji: ':tada:' } },
        { key: 'a', actionId: post.id },
      ],
    },
  });
  t.equal(created.statusCode, 201);
  t.match(created.data, { name: 'Announce', description: 'Tell the team', version: 1, output: null });
  const defaults = { if: null, timeoutMs: 30000, retry: { maxAttempts: 1, initialDelayMs: 1000, maxDelayMs: 30000 }, continueOnError: false };
  t.same(created.data.steps, [
    { key: 'b', actionId: react.id, inputs: { emoji: ':tada:' }, ...defaults },
    { key: 'a', actionId: post.id, inputs: {}, ...defaults },
  ]);
  t.same((await call(app, acme, { method: 'GET', url: `/flows/${created.data.id}` })).data, created.data);
});

t.test('every update adds one to the version; steps are replaced whole', async (t) => {
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'V', steps: [{ key: 'a', actionId: post.id }] } })).data;
  const renamed = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'V2' } });
  t.match(renamed.data, { name: 'V2', version: 2, steps: [{ key: 'a', actionId: post.id }] });
  const restepped = await call(app, acme, {
    method: 'PUT',
    url: `/flows/${flow.id}`,
    payload: {
      steps: [
        { key: 'x', actionId: react.id },
        { key: 'y', actionId: post.id },
      ],
    },
  });
  t.match(restepped.data, { name: 'V2', version: 3 });
  t.same(
    restepped.data.steps.map((s: { key: string }) => s.key),
    ['x', 'y'],
  );
  const emptied = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { steps: [], description: null } });
  t.match(emptied.data, { version: 4, steps: [], description: null });
});

t.test('steps whose keys change places, and fewer of them, replace the old ones and their references', async (t) => {
  const steps = (keys: string[]) => keys.map((key, i) => ({ key, actionId: i % 2 ? post.id : react.id }));
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Shuffled', steps: steps(['a', 'b', 'c']) } })).data;
  const swapped = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { steps: steps(['c', 'a']) } });
  t.equal(swapped.statusCode, 200);
  t.same(
    swapped.data.steps.map((step: { key: string }) => step.key),
    ['c', 'a'],
  );
  const references = await db.flowStep.findMany({ where: { flowId: flow.id }, orderBy: { position: 'asc' } });
  t.same(
    references.map(({ position, key, actionId }) => ({ position, key, actionId })),
    [
      { position: 0, key: 'c', actionId: react.id },
      { position: 1, key: 'a', actionId: post.id },
    ],
    'the database references exactly the new steps',
  );
  const renamed = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'Renamed' } });
  t.same(renamed.data.steps, swapped.data.steps, 'a rename keeps the steps');
  t.equal(await db.flowStep.count({ where: { flowId: flow.id } }), 2, 'and their references');
});

t.test('concurrent updates each count', async (t) => {
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Busy' } })).data;
  await Promise.all(Array.from({ length: 8 }, (_, i) => call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: `Busy ${i}` } })));
  t.equal((await call(app, acme, { method: 'GET', url: `/flows/${flow.id}` })).data.version, 9);
});

t.test('step keys are unique and actions must exist in the organization', async (t) => {
  const response = await call(app, acme, {
    method: 'POST',
    url: '/flows',
    payload: {
      name: 'Bad',
      steps: [
        { key: 'a', actionId: post.id },
        { key: 'a', actionId: MISSING_ID },
      ],
    },
  });
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/1/key', message: 'repeats the key "a" of the step at /steps/0' },
    { in: 'body', pointer: '/steps/1/actionId', message: `no action ${MISSING_ID} in this organization` },
  ]);
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Good', steps: [{ key: 'a', actionId: post.id }] } })).data;
  const refused = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'Renamed', steps: [{ key: 'a', actionId: MISSING_ID }] } });
  t.equal(refused.statusCode, 422);
  t.match((await call(app, acme, { method: 'GET', url: `/flows/${flow.id}` })).data, { name: 'Good', version: 1 }, 'a refused update changes nothing');
});

t.test('a step has the documented fields, nothing else', async (t) => {
  const response = await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'X', steps: [{ key: 'a', actionId: post.id, retries: 3 }] } });
  t.equal(response.statusCode, 400);
  t.same(response.data.errors, [
    {
      in: 'body',
      pointer: '/steps/0/retries',
      message:
        'is not a known field; the fields are key, actionId, inputs, if, timeoutMs, retry, continueOnError, transform, switch, forEach, parallel, sleep, waitFor, flow',
    },
  ]);
});

t.test('inputs keep any JSON, including characters PostgreSQL text cannot hold', async (t) => {
  const inputs = { text: 'nul \u0000 and emoji 🎉', nested: { list: [1, 2.5, true, null, 'x'] } };
  const created = await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Json', steps: [{ key: 'a', actionId: post.id, inputs }] } });
  t.equal(created.statusCode, 201);
  t.same((await call(app, acme, { method: 'GET', url: `/flows/${created.data.id}` })).data.steps[0].inputs, inputs);
});

t.test('a deleted flow is gone from the API, frees its actions, and keeps its history', async (t) => {
  const action = await newAction('only-here');
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Ran', steps: [{ key: 'a', actionId: action.id }] } })).data;
  const log = await call(app, acme, {
    method: 'POST',
    url: '/execution-logs',
    payload: { flowId: flow.id, executionId: 'r1', stepKey: 'a', status: 'completed' },
  });
  t.equal((await call(app, acme, { method: 'DELETE', url: `/actions/${action.id}` })).statusCode, 409, 'the live flow calls it');
  t.equal((await call(app, acme, { method: 'DELETE', url: `/flows/${flow.id}` })).statusCode, 204);
  t.equal((await call(app, acme, { method: 'GET', url: `/flows/${flow.id}` })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'Back' } })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/flows/${flow.id}` })).statusCode, 404, 'deleted once');
  t.equal((await call(app, acme, { method: 'GET', url: `/flows/${flow.id}/versions` })).statusCode, 404);
  t.notOk(
    (await call(app, acme, { method: 'GET', url: '/flows?limit=100' })).data.items.some((item: { id: string }) => item.id === flow.id),
    'not listed',
  );
  t.equal((await call(app, acme, { method: 'GET', url: `/execution-logs/${log.data.id}` })).statusCode, 200, 'its logs stay');
  t.equal((await call(app, acme, { method: 'GET', url: `/execution-logs?flowId=${flow.id}` })).data.items.length, 1);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/actions/${action.id}` })).statusCode, 204, 'its actions are free');
  t.equal((await call(app, acme, { method: 'DELETE', url: `/actions/${react.id}` })).statusCode, 409, 'a live flow still calls react');
});

t.test('every version is kept, newest first, and never changes', async (t) => {
  const flow = (
    await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Versions', steps: [{ key: 'a', actionId: post.id, inputs: { n: 1 } }] } })
  ).data;
  await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { steps: [{ key: 'b', actionId: react.id, timeoutMs: 5000 }] } });
  await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'Renamed', output: { result: { $eval: 'steps.b.output' } } } });
  const list = await call(app, acme, { method: 'GET', url: `/flows/${flow.id}/versions` });
  t.equal(list.statusCode, 200);
  t.same(
    list.data.items.map((v: { version: number; name: string }) => [v.version, v.name]),
    [
      [3, 'Renamed'],
      [2, 'Versions'],
      [1, 'Versions'],
    ],
  );
  const first = await call(app, acme, { method: 'GET', url: `/flows/${flow.id}/versions/1` });
  t.match(first.data, { flowId: flow.id, version: 1, steps: [{ key: 'a', inputs: { n: 1 } }], output: null });
  const third = await call(app, acme, { method: 'GET', url: `/flows/${flow.id}/versions/3` });
  t.match(third.data, { version: 3, steps: [{ key: 'b', timeoutMs: 5000 }], output: { result: { $eval: 'steps.b.output' } } });
  const current = (await call(app, acme, { method: 'GET', url: `/flows/${flow.id}` })).data;
  t.same(
    { name: third.data.name, steps: third.data.steps, output: third.data.output },
    { name: current.name, steps: current.steps, output: current.output },
    'the newest version is the flow',
  );
  t.equal((await call(app, acme, { method: 'GET', url: `/flows/${flow.id}/versions/4` })).statusCode, 404);
  const page = await call(app, acme, { method: 'GET', url: `/flows/${flow.id}/versions?limit=2` });
  const next = await call(app, acme, { method: 'GET', url: `/flows/${flow.id}/versions?limit=2&cursor=${page.data.nextCursor}` });
  t.same(
    next.data.items.map((v: { version: number }) => v.version),
    [1],
  );
});

t.test('step options are kept as given, with a default for each one left out', async (t) => {
  const step = { key: 'a', actionId: post.id, if: 'input.send', timeoutMs: 1500, retry: { maxAttempts: 4 }, continueOnError: true };
  const created = await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Options', steps: [step] } });
  t.same(created.data.steps[0], { ...step, inputs: {}, retry: { maxAttempts: 4, initialDelayMs: 1000, maxDelayMs: 30000 } });
  for (const [field, value] of [
    ['timeoutMs', 0],
    ['timeoutMs', 300001],
    ['retry', { maxAttempts: 11 }],
    ['retry', { tries: 2 }],
    ['continueOnError', 'yes'],
    ['if', ''],
  ] as const) {
    const refused = await call(app, acme, {
      method: 'POST',
      url: '/flows',
      payload: { name: 'Bad', steps: [{ key: 'a', actionId: post.id, [field]: value }] },
    });
    t.equal(refused.statusCode, 400, `${field}: ${JSON.stringify(value)}`);
  }
});

t.test('a template or condition that does not parse is refused when the flow is written, naming where', async (t) => {
  const response = await call(app, acme, {
    method: 'POST',
    url: '/flows',
    payload: {
      name: 'Broken',
      steps: [
        { key: 'a', actionId: post.id, inputs: { text: 'Hi ${input.name' } },
        { key: 'b', actionId: post.id, if: 'input.x ===' },
      ],
      output: { result: { $eval: 'steps.a.output +' } },
    },
  });
  t.equal(response.statusCode, 422);
  t.match(response.data.errors, [
    { pointer: '/steps/0/inputs/text', message: /is never closed/ },
    { pointer: '/steps/1/if', message: /does not parse/ },
    { pointer: '/output/result/$eval', message: /is incomplete/ },
  ]);
  const nowhere = await call(app, acme, {
    method: 'POST',
    url: '/flows',
    payload: { name: 'Nowhere', steps: [{ key: 'a', actionId: post.id, inputs: { text: { $eval: 'steps.nowhere.output' } } }] },
  });
  t.equal(nowhere.statusCode, 422, 'a step that is not there is refused too (test/definitions/flowChecks.test.ts has the rest)');
});

t.test('flows are listed newest first', async (t) => {
  const ids: string[] = [];
  for (const name of ['one', 'two', 'three']) ids.push((await call(app, acme, { method: 'POST', url: '/flows', payload: { name } })).data.id);
  const listed = await call(app, acme, { method: 'GET', url: '/flows?limit=3' });
  t.same(
    listed.data.items.map((f: { id: string }) => f.id),
    ids.reverse(),
  );
});

t.test('missing flows answer 404', async (t) => {
  t.equal((await call(app, acme, { method: 'GET', url: `/flows/${MISSING_ID}` })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'PUT', url: `/flows/${MISSING_ID}`, payload: { name: 'x' } })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/flows/${MISSING_ID}` })).statusCode, 404);
});
