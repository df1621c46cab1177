import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from './helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);

t.test('a tool is created, read, listed, updated and deleted', async (t) => {
  const created = await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack API', baseUrl: 'https://api.slack.com', authType: 'bearer' } });
  t.equal(created.statusCode, 201);
  t.match(created.data, { name: 'Slack API', baseUrl: 'https://api.slack.com', authType: 'bearer', description: null, orgId: acme.orgId });
  t.equal(created.headers.location, `/tools/${created.data.id}`);
  const read = await call(app, acme, { method: 'GET', url: `/tools/${created.data.id}` });
  t.same(read.data, created.data);
  const updated = await call(app, acme, { method: 'PUT', url: `/tools/${created.data.id}`, payload: { authType: 'oauth2' } });
  t.equal(updated.statusCode, 200);
  t.match(updated.data, { name: 'Slack API', authType: 'oauth2' });
  const deleted = await call(app, acme, { method: 'DELETE', url: `/tools/${created.data.id}` });
  t.equal(deleted.statusCode, 204);
  t.equal(deleted.body, '');
  t.equal((await call(app, acme, { method: 'GET', url: `/tools/${created.data.id}` })).statusCode, 404);
});
