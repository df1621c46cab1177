import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);

t.test('a tool is created, read, updated and deleted', async (t) => {
  const created = await call(app, acme, {
    method: 'POST',
    url: '/tools',
    payload: { name: 'Slack API', baseUrl: 'https://api.slack.com', authType: 'bearer' },
  });
  t.equal(created.statusCode, 201);
  t.match(created.data, { name: 'Slack API', baseUrl: 'https://api.slack.com', authType: 'bearer', description: null, orgId: acme.orgId });
  t.equal(created.headers.location, `/tools/${created.data.id}`);
  t.same((await call(app, acme, { method: 'GET', url: `/tools/${created.data.id}` })).data, created.data);
  const updated = await call(app, acme, { method: 'PUT', url: `/tools/${created.data.id}`, payload: { authType: 'oauth2', description: 'Team chat' } });
  t.equal(updated.statusCode, 200);
  t.match(updated.data, { name: 'Slack API', authType: 'oauth2', description: 'Team chat', baseUrl: 'https://api.slack.com' });
  const deleted = await call(app, acme, { method: 'DELETE', url: `/tools/${created.data.id}` });
  t.equal(deleted.statusCode, 204);
  t.equal(deleted.body, '');
  t.equal((await call(app, acme, { method: 'GET', url: `/tools/${created.data.id}` })).statusCode, 404);
});

t.test('authType defaults to none', async (t) => {
  const created = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Open API', baseUrl: 'http://example.com/v1' } });
  t.equal(created.data.authType, 'none');
});

t.test('baseUrl is an absolute http(s) URL without credentials, query or fragment', async (t) => {
  for (const baseUrl of [
    'ftp://example.com',
    '/relative',
    'https://user:pw@example.com',
    'https://example.com/?q=1',
    'https://example.com/#top',
    'example.com',
    'https://exa mple.com',
  ]) {
    const response = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl } });
    t.equal(response.statusCode, 400, baseUrl);
    t.equal(response.data.errors[0].pointer, '/baseUrl', baseUrl);
  }
  for (const baseUrl of ['https://api.example.com', 'http://localhost:8080/api/v2', 'https://[::1]:9000']) {
    t.equal((await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl } })).statusCode, 201, baseUrl);
  }
});

t.test('authType must be one the contract names', async (t) => {
  const response = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: 'https://x.io', authType: 'kerberos' } });
  t.equal(response.statusCode, 400);
  t.match(response.data.errors, [{ pointer: '/authType' }]);
});

t.test('a tool with actions is not deleted', async (t) => {
  const tool = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'GitHub', baseUrl: 'https://api.github.com' } });
  await call(app, acme, {
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'Issues', key: 'gh.issues', method: 'GET', endpoint: '/issues' },
  });
  const refused = await call(app, acme, { method: 'DELETE', url: `/tools/${tool.data.id}` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /still has 1 action \(gh\.issues\)/);
  t.equal((await call(app, acme, { method: 'GET', url: `/tools/${tool.data.id}` })).statusCode, 200);
});

t.test('missing tools answer 404', async (t) => {
  t.equal((await call(app, acme, { method: 'GET', url: `/tools/${MISSING_ID}` })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'PUT', url: `/tools/${MISSING_ID}`, payload: { name: 'x' } })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/tools/${MISSING_ID}` })).statusCode, 404);
});
