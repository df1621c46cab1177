import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app, db } = await buildTestApp(t);
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

t.test('credentials are write-only, sealed at rest, and must fit the authType', async (t) => {
  const secret = `s3cret-${Date.now()}`;
  const shapes = {
    apiKey: { name: 'X-Api-Key', value: secret },
    bearer: { token: secret },
    basic: { username: 'ada', password: secret },
    oauth2: { tokenUrl: 'https://auth.example.com/token', clientId: 'tolstoy', clientSecret: secret, scope: 'read' },
  };
  for (const [authType, credentials] of Object.entries(shapes)) {
    const created = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: authType, baseUrl: 'https://x.io', authType, credentials } });
    t.equal(created.statusCode, 201, authType);
    t.equal(created.data.hasCredentials, true);
    t.notOk(created.body.includes(secret), `${authType}: never answered`);
    t.notOk('credentials' in created.data);
    const read = await call(app, acme, { method: 'GET', url: `/tools/${created.data.id}` });
    t.notOk(read.body.includes(secret), `${authType}: never read back`);
    const stored = await db.tool.findUnique({ where: { id: created.data.id } });
    t.match(stored?.credentials, /^v1\.[0-9a-f]{8}\./, 'sealed');
    t.notOk(stored?.credentials?.includes(secret), 'not in plain text');
  }
  const mismatched = await call(app, acme, {
    method: 'POST',
    url: '/tools',
    payload: { name: 'M', baseUrl: 'https://x.io', authType: 'bearer', credentials: shapes.basic },
  });
  t.equal(mismatched.statusCode, 422);
  t.match(mismatched.data.errors, [{ pointer: '/credentials', message: "are basic credentials, but the tool's authType is bearer" }]);
  const none = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'N', baseUrl: 'https://x.io', credentials: shapes.bearer } });
  t.equal(none.statusCode, 422, 'a tool whose authType is none takes none');
  const malformed = await call(app, acme, {
    method: 'POST',
    url: '/tools',
    payload: { name: 'B', baseUrl: 'https://x.io', authType: 'bearer', credentials: { token: '' } },
  });
  t.equal(malformed.statusCode, 400);
});

t.test('credentials are replaced, removed, and kept only for the authType they were given for', async (t) => {
  const tool = (
    await call(app, acme, {
      method: 'POST',
      url: '/tools',
      payload: { name: 'Rotating', baseUrl: 'https://x.io', authType: 'bearer', credentials: { token: 'one' } },
    })
  ).data;
  const sealed = async () => (await db.tool.findUnique({ where: { id: tool.id } }))?.credentials;
  const first = await sealed();
  const replaced = await call(app, acme, { method: 'PUT', url: `/tools/${tool.id}`, payload: { credentials: { token: 'two' } } });
  t.equal(replaced.data.hasCredentials, true);
  t.not(await sealed(), first, 'sealed anew');
  const renamed = await call(app, acme, { method: 'PUT', url: `/tools/${tool.id}`, payload: { name: 'Renamed' } });
  t.equal(renamed.data.hasCredentials, true, 'untouched by other changes');
  const switched = await call(app, acme, { method: 'PUT', url: `/tools/${tool.id}`, payload: { authType: 'basic' } });
  t.equal(switched.statusCode, 422, 'bearer credentials do not fit basic');
  t.match(switched.data.errors, [{ pointer: '/credentials', message: /send credentials for basic \(or null to remove them\)/ }]);
  const moved = await call(app, acme, {
    method: 'PUT',
    url: `/tools/${tool.id}`,
    payload: { authType: 'basic', credentials: { username: 'u', password: 'p' } },
  });
  t.match(moved.data, { authType: 'basic', hasCredentials: true });
  const removed = await call(app, acme, { method: 'PUT', url: `/tools/${tool.id}`, payload: { credentials: null } });
  t.equal(removed.data.hasCredentials, false);
  t.equal(await sealed(), null);
});
