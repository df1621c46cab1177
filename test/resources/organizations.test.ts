import t from 'tap';
import { buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app, db } = await buildTestApp(t);

t.test('an organization is created with its owner, who can act for it at once', async (t) => {
  const created = await call(app, undefined, {
    method: 'POST',
    url: '/organizations',
    payload: { name: 'My Organization', owner: { email: 'owner@example.com', name: 'Olga Owner' } },
  });
  t.equal(created.statusCode, 201);
  t.equal(created.headers.location, `/organizations/${created.data.id}`);
  t.match(created.data, { name: 'My Organization', owner: { email: 'owner@example.com', name: 'Olga Owner', orgId: created.data.id } });
  const users = await call(app, undefined, { method: 'GET', url: '/users', headers: { 'x-org-id': created.data.id, 'x-user-id': created.data.owner.id } });
  t.equal(users.statusCode, 200);
  t.same(
    users.data.items.map((u: { id: string }) => u.id),
    [created.data.owner.id],
  );
});

t.test('an organization created without an owner has no member', async (t) => {
  const created = await call(app, undefined, { method: 'POST', url: '/organizations', payload: { name: 'My Organization' } });
  t.equal(created.statusCode, 201);
  t.notOk('owner' in created.data);
  t.equal(await db.user.count({ where: { orgId: created.data.id } }), 0);
});

t.test('an organization is read, renamed and listed', async (t) => {
  const { orgId } = await createTenant(app, 'Before');
  const read = await call(app, undefined, { method: 'GET', url: `/organizations/${orgId}` });
  t.match(read.data, { id: orgId, name: 'Before' });
  const renamed = await call(app, undefined, { method: 'PUT', url: `/organizations/${orgId}`, payload: { name: 'After' } });
  t.equal(renamed.statusCode, 200);
  t.equal(renamed.data.name, 'After');
  t.ok(renamed.data.updatedAt >= read.data.updatedAt);
  const listed = await call(app, undefined, { method: 'GET', url: '/organizations?limit=100' });
  t.ok(listed.data.items.some((o: { id: string; name: string }) => o.id === orgId && o.name === 'After'));
});

t.test('a missing organization answers 404', async (t) => {
  for (const method of ['GET', 'DELETE'] as const) {
    const response = await call(app, undefined, { method, url: `/organizations/${MISSING_ID}` });
    t.equal(response.statusCode, 404, method);
    t.equal(response.data.type, '/problems/not-found');
  }
  const put = await call(app, undefined, { method: 'PUT', url: `/organizations/${MISSING_ID}`, payload: { name: 'x' } });
  t.equal(put.statusCode, 404);
});

t.test('an update must name at least one field, and only known ones', async (t) => {
  const { orgId } = await createTenant(app);
  const empty = await call(app, undefined, { method: 'PUT', url: `/organizations/${orgId}`, payload: {} });
  t.equal(empty.statusCode, 400);
  t.same(empty.data.errors, [{ in: 'body', pointer: '', message: 'must set at least one field; the fields are name, retention' }]);
  const unknown = await call(app, undefined, { method: 'PUT', url: `/organizations/${orgId}`, payload: { name: 'x', owner: { email: 'a@b.io' } } });
  t.equal(unknown.statusCode, 400);
  t.same(unknown.data.errors, [{ in: 'body', pointer: '/owner', message: 'is not a known field; the fields are name, retention' }]);
});

t.test('an organization that still owns resources is not deleted', async (t) => {
  const member = await createTenant(app);
  const tool = await call(app, member, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } });
  const refused = await call(app, undefined, { method: 'DELETE', url: `/organizations/${member.orgId}` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /still has 1 tool;/);
  t.ok(await db.organization.findUnique({ where: { id: member.orgId } }));
  await call(app, member, { method: 'DELETE', url: `/tools/${tool.data.id}` });
  const deleted = await call(app, undefined, { method: 'DELETE', url: `/organizations/${member.orgId}` });
  t.equal(deleted.statusCode, 204);
  t.equal(await db.user.count({ where: { orgId: member.orgId } }), 0, 'its members went with it');
});

t.test('an organization goes with its history, but not while a run of it is queued or running', async (t) => {
  const member = await createTenant(app);
  const tool = (await call(app, member, { method: 'POST', url: '/tools', payload: { name: 'T', baseUrl: 'https://t.example.com' } })).data;
  const action = (
    await call(app, member, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'A', key: 'a', method: 'GET', endpoint: '/a' } })
  ).data;
  const flow = (await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'a', actionId: action.id }] } })).data;
  const execution = (await call(app, member, { method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data;
  await call(app, member, { method: 'POST', url: '/execution-logs', payload: { flowId: flow.id, executionId: 'by-hand', stepKey: 'a', status: 'completed' } });
  const refused = await call(app, undefined, { method: 'DELETE', url: `/organizations/${member.orgId}` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /still has 1 tool, 1 action, 1 flow, 1 queued or running execution;/);
  await call(app, member, { method: 'POST', url: `/executions/${execution.id}/cancel` });
  for (const path of [`/flows/${flow.id}`, `/actions/${action.id}`, `/tools/${tool.id}`]) await call(app, member, { method: 'DELETE', url: path });
  const deleted = await call(app, undefined, { method: 'DELETE', url: `/organizations/${member.orgId}` });
  t.equal(deleted.statusCode, 204);
  const where = { where: { orgId: member.orgId } };
  t.same(
    await Promise.all([
      db.execution.count(where),
      db.executionStep.count(where),
      db.executionLog.count(where),
      db.flow.count(where),
      db.flowVersion.count(where),
    ]),
    [0, 0, 0, 0, 0],
    'its executions, logs, deleted flows and versions went with it',
  );
});

t.test('the first page of organizations and the cursor to the next', async (t) => {
  for (let i = 0; i < 3; i++) await createTenant(app, `Paged ${i}`);
  const first = await call(app, undefined, { method: 'GET', url: '/organizations?limit=2' });
  t.equal(first.data.items.length, 2);
  t.type(first.data.nextCursor, 'string');
  const second = await call(app, undefined, { method: 'GET', url: `/organizations?limit=2&cursor=${first.data.nextCursor}` });
  t.notOk(
    second.data.items.some((o: { id: string }) => first.data.items.some((f: { id: string }) => f.id === o.id)),
    'pages do not overlap',
  );
});
