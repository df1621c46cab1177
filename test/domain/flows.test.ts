import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app } = await buildTestApp(t);
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
  t.match(created.data, { name: 'Announce', description: 'Tell the team', version: 1 });
  t.same(created.data.steps, [
    { key: 'b', actionId: react.id, inputs: { emoji: ':tada:' } },
    { key: 'a', actionId: post.id, inputs: {} },
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
    { in: 'body', pointer: '/steps/1/key', message: 'repeats the key "a" of step 0' },
    { in: 'body', pointer: '/steps/1/actionId', message: `no action ${MISSING_ID} in this organization` },
  ]);
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Good', steps: [{ key: 'a', actionId: post.id }] } })).data;
  const refused = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'Renamed', steps: [{ key: 'a', actionId: MISSING_ID }] } });
  t.equal(refused.statusCode, 422);
  t.match((await call(app, acme, { method: 'GET', url: `/flows/${flow.id}` })).data, { name: 'Good', version: 1 }, 'a refused update changes nothing');
});

t.test('a step is a key, an action and inputs, nothing else', async (t) => {
  const response = await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'X', steps: [{ key: 'a', actionId: post.id, retries: 3 }] } });
  t.equal(response.statusCode, 400);
  t.same(response.data.errors, [{ in: 'body', pointer: '/steps/0/retries', message: 'is not a known field' }]);
});

t.test('inputs keep any JSON, including characters PostgreSQL text cannot hold', async (t) => {
  const inputs = { text: 'nul \u0000 and emoji 🎉', nested: { list: [1, 2.5, true, null, 'x'] } };
  const created = await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Json', steps: [{ key: 'a', actionId: post.id, inputs }] } });
  t.equal(created.statusCode, 201);
  t.same((await call(app, acme, { method: 'GET', url: `/flows/${created.data.id}` })).data.steps[0].inputs, inputs);
});

t.test('a flow with execution logs is not deleted; one without is', async (t) => {
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Ran', steps: [{ key: 'a', actionId: post.id }] } })).data;
  await call(app, acme, { method: 'POST', url: '/execution-logs', payload: { flowId: flow.id, executionId: 'r1', stepKey: 'a', status: 'completed' } });
  const refused = await call(app, acme, { method: 'DELETE', url: `/flows/${flow.id}` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /has 1 execution log;/);
  const unused = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Unused', steps: [{ key: 'a', actionId: post.id }] } })).data;
  t.equal((await call(app, acme, { method: 'DELETE', url: `/flows/${unused.id}` })).statusCode, 204);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/actions/${react.id}` })).statusCode, 409, 'an earlier flow still calls react');
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
