import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);
const slack = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } })).data;
const github = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'GitHub', baseUrl: 'https://api.github.com' } })).data;

const postMessage = {
  toolId: slack.id,
  name: 'Post a message',
  key: 'slack.post_message',
  method: 'POST',
  endpoint: '/chat.postMessage',
  headers: { 'Content-Type': 'application/json' },
  inputSchema: { type: 'object', required: ['channel'], properties: { channel: { type: 'string' } } },
};

t.test('an action is created, read, updated and deleted', async (t) => {
  const created = await call(app, acme, { method: 'POST', url: '/actions', payload: postMessage });
  t.equal(created.statusCode, 201);
  t.match(created.data, { ...postMessage, description: null, orgId: acme.orgId });
  t.same((await call(app, acme, { method: 'GET', url: `/actions/${created.data.id}` })).data, created.data);
  const moved = await call(app, acme, { method: 'PUT', url: `/actions/${created.data.id}`, payload: { endpoint: '/chat.postEphemeral', headers: {} } });
  t.match(moved.data, { endpoint: '/chat.postEphemeral', headers: {}, key: 'slack.post_message' });
  t.equal((await call(app, acme, { method: 'DELETE', url: `/actions/${created.data.id}` })).statusCode, 204);
  t.equal((await call(app, acme, { method: 'GET', url: `/actions/${created.data.id}` })).statusCode, 404);
});

t.test('headers and inputSchema default to empty objects', async (t) => {
  const created = await call(app, acme, {
    method: 'POST',
    url: '/actions',
    payload: { toolId: slack.id, name: 'List', key: 'slack.list', method: 'GET', endpoint: '/conversations.list' },
  });
  t.match(created.data, { headers: {}, inputSchema: {} });
});

t.test('keys are unique within the organization', async (t) => {
  const payload = { toolId: slack.id, name: 'A', key: 'dup.key', method: 'GET', endpoint: '/a' };
  t.equal((await call(app, acme, { method: 'POST', url: '/actions', payload })).statusCode, 201);
  const again = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...payload, toolId: github.id } });
  t.equal(again.statusCode, 409);
  t.match(again.data.detail, /key dup\.key already exists/);
  const other = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...payload, key: 'other.key' } });
  t.equal((await call(app, acme, { method: 'PUT', url: `/actions/${other.data.id}`, payload: { key: 'dup.key' } })).statusCode, 409);
});

t.test('toolId must name a tool of the organization', async (t) => {
  const response = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.missing', toolId: MISSING_ID } });
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [{ in: 'body', pointer: '/toolId', message: `no tool ${MISSING_ID} in this organization` }]);
  const action = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.move' } });
  const moved = await call(app, acme, { method: 'PUT', url: `/actions/${action.data.id}`, payload: { toolId: github.id } });
  t.equal(moved.data.toolId, github.id);
  t.equal((await call(app, acme, { method: 'PUT', url: `/actions/${action.data.id}`, payload: { toolId: MISSING_ID } })).statusCode, 422);
});

t.test('inputSchema must be a JSON Schema', async (t) => {
  const response = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.schema', inputSchema: { type: 'objekt' } } });
  t.equal(response.statusCode, 422);
  t.match(response.data.errors[0], { in: 'body', pointer: /^\/inputSchema/, message: /not a valid JSON Schema/ });
});

t.test('inputSchema must compile: patterns in RE2 syntax, references within the schema', async (t) => {
  const backreference = { type: 'object', properties: { code: { type: 'string', pattern: '^(\\d)\\1$' } } };
  const created = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.re2', inputSchema: backreference } });
  t.equal(created.statusCode, 422);
  t.match(created.data.errors, [{ in: 'body', pointer: '/inputSchema/properties/code/pattern', message: /RE2 syntax: no backreferences or lookarounds/ }]);
  const remote = await call(app, acme, {
    method: 'POST',
    url: '/actions',
    payload: { ...postMessage, key: 'x.ref', inputSchema: { $ref: 'https://example.com/s.json' } },
  });
  t.match(remote.data.errors, [{ pointer: '/inputSchema/$ref', message: /must refer to a place in this schema/ }]);
  const action = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.re2.ok' } });
  const lookahead = { type: 'object', patternProperties: { '^(?!x-)': { type: 'string' } } };
  const updated = await call(app, acme, { method: 'PUT', url: `/actions/${action.data.id}`, payload: { inputSchema: lookahead } });
  t.equal(updated.statusCode, 422);
  t.match(updated.data.errors, [{ pointer: '/inputSchema/patternProperties/^(?!x-)' }]);
});

t.test('an endpoint is a path under the tool', async (t) => {
  for (const endpoint of ['chat.postMessage', '//evil.example.com/x', '/a b', 'https://x.io/a']) {
    const response = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.ep', endpoint } });
    t.equal(response.statusCode, 400, endpoint);
  }
  for (const endpoint of ['/../admin', '/a/./b', '/a/..']) {
    const response = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.ep', endpoint } });
    t.equal(response.statusCode, 422, endpoint);
    t.equal(response.data.errors[0].pointer, '/endpoint');
  }
  const templated = await call(app, acme, {
    method: 'POST',
    url: '/actions',
    payload: { ...postMessage, key: 'x.tpl', endpoint: '/repos/{owner}/{repo}/issues' },
  });
  t.equal(templated.statusCode, 201);
});

t.test('header names are tokens and values have no line breaks', async (t) => {
  const badName = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.h1', headers: { 'Bad Name': 'x' } } });
  t.equal(badName.statusCode, 400);
  const injected = await call(app, acme, {
    method: 'POST',
    url: '/actions',
    payload: { ...postMessage, key: 'x.h2', headers: { 'X-A': 'a\r\nX-Injected: 1' } },
  });
  t.equal(injected.statusCode, 400);
});

t.test('actions are listed, and filtered by tool', async (t) => {
  const mine = await call(app, acme, {
    method: 'POST',
    url: '/actions',
    payload: { toolId: github.id, name: 'Repos', key: 'gh.repos', method: 'GET', endpoint: '/repos' },
  });
  const byTool = await call(app, acme, { method: 'GET', url: `/actions?toolId=${github.id}&limit=100` });
  t.ok(byTool.data.items.length >= 1);
  t.ok(byTool.data.items.every((a: { toolId: string }) => a.toolId === github.id));
  t.ok(byTool.data.items.some((a: { id: string }) => a.id === mine.data.id));
  const none = await call(app, acme, { method: 'GET', url: `/actions?toolId=${MISSING_ID}` });
  t.same(none.data, { items: [], nextCursor: null });
});

t.test('an action that a flow calls is not deleted', async (t) => {
  const action = await call(app, acme, { method: 'POST', url: '/actions', payload: { ...postMessage, key: 'x.used' } });
  const flow = await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Uses it', steps: [{ key: 'post', actionId: action.data.id }] } });
  const refused = await call(app, acme, { method: 'DELETE', url: `/actions/${action.data.id}` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, new RegExp(`called by steps of 1 flow \\(${flow.data.id}\\)`));
});

t.test('missing actions answer 404', async (t) => {
  t.equal((await call(app, acme, { method: 'GET', url: `/actions/${MISSING_ID}` })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'PUT', url: `/actions/${MISSING_ID}`, payload: { name: 'x' } })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/actions/${MISSING_ID}` })).statusCode, 404);
});
