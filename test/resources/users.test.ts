import t from 'tap';
import { addMember, buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);

t.test('a member adds, reads, updates and removes a user', async (t) => {
  const created = await call(app, acme, { method: 'POST', url: '/users', payload: { email: 'user@example.com' } });
  t.equal(created.statusCode, 201);
  t.match(created.data, { email: 'user@example.com', name: null, orgId: acme.orgId, role: 'member' });
  t.equal(created.headers.location, `/users/${created.data.id}`);
  const renamed = await call(app, acme, { method: 'PUT', url: `/users/${created.data.id}`, payload: { name: 'Ursula' } });
  t.match(renamed.data, { email: 'user@example.com', name: 'Ursula' });
  const cleared = await call(app, acme, { method: 'PUT', url: `/users/${created.data.id}`, payload: { name: null } });
  t.equal(cleared.data.name, null, 'null clears a nullable field');
  t.equal((await call(app, acme, { method: 'GET', url: `/users/${created.data.id}` })).data.email, 'user@example.com');
  t.equal((await call(app, acme, { method: 'DELETE', url: `/users/${created.data.id}` })).statusCode, 204);
  t.equal((await call(app, acme, { method: 'GET', url: `/users/${created.data.id}` })).statusCode, 404);
});

t.test('emails are unique within an organization, whatever their case', async (t) => {
  await call(app, acme, { method: 'POST', url: '/users', payload: { email: 'Dup@Example.com' } });
  const again = await call(app, acme, { method: 'POST', url: '/users', payload: { email: 'dup@example.com' } });
  t.equal(again.statusCode, 409);
  t.match(again.data.detail, /dup@example\.com is already a member/);
  const other = await createTenant(app, 'Other');
  t.equal(
    (await call(app, other, { method: 'POST', url: '/users', payload: { email: 'dup@example.com' } })).statusCode,
    201,
    'another organization may use it',
  );
  const second = await call(app, acme, { method: 'POST', url: '/users', payload: { email: 'second@example.com' } });
  const clash = await call(app, acme, { method: 'PUT', url: `/users/${second.data.id}`, payload: { email: 'DUP@example.com' } });
  t.equal(clash.statusCode, 409);
});

t.test('an email must look like one', async (t) => {
  const response = await call(app, acme, { method: 'POST', url: '/users', payload: { email: 'not an email' } });
  t.equal(response.statusCode, 400);
  t.equal(response.data.errors[0].pointer, '/email');
});

t.test('the last member cannot be removed', async (t) => {
  const solo = await createTenant(app, 'Solo');
  const response = await call(app, solo, { method: 'DELETE', url: `/users/${solo.userId}` });
  t.equal(response.statusCode, 409);
  t.match(response.data.detail, /last member/);
});

t.test('a member may leave, and so may an owner while another owner remains', async (t) => {
  const team = await createTenant(app, 'Team');
  const member = await call(app, team, { method: 'POST', url: '/users', payload: { email: 'member@example.com' } });
  const owner = await call(app, team, { method: 'POST', url: '/users', payload: { email: 'owner2@example.com', role: 'owner' } });
  t.equal(member.data.role, 'member', 'members are members unless made owners');
  t.equal(owner.data.role, 'owner');
  const asMember = { ...team, headers: { ...team.headers, 'x-user-id': member.data.id } };
  t.equal((await call(app, asMember, { method: 'DELETE', url: `/users/${member.data.id}` })).statusCode, 204, 'the member left');
  t.equal((await call(app, team, { method: 'DELETE', url: `/users/${team.userId}` })).statusCode, 204, 'the first owner left');
  const asOwner = { ...team, headers: { ...team.headers, 'x-user-id': owner.data.id } };
  t.same(
    (await call(app, asOwner, { method: 'GET', url: '/users' })).data.items.map((user: { id: string }) => user.id),
    [owner.data.id],
  );
  t.equal((await call(app, team, { method: 'GET', url: '/users' })).statusCode, 403, 'the removed user is no member any more');
});

t.test('a user named by execution logs is not removed', async (t) => {
  const team = await createTenant(app, 'Logged');
  const other = await addMember(app, team);
  const flow = await call(app, team, { method: 'POST', url: '/flows', payload: { name: 'F' } });
  await call(app, other, {
    method: 'POST',
    url: '/execution-logs',
    payload: { flowId: flow.data.id, executionId: 'run-1', stepKey: 's', status: 'completed' },
  });
  const refused = await call(app, team, { method: 'DELETE', url: `/users/${other.userId}` });
  t.equal(refused.statusCode, 409);
  t.match(refused.data.detail, /named by 1 execution log;/);
});

t.test('missing users answer 404', async (t) => {
  t.equal((await call(app, acme, { method: 'GET', url: `/users/${MISSING_ID}` })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'PUT', url: `/users/${MISSING_ID}`, payload: { name: 'x' } })).statusCode, 404);
  t.equal((await call(app, acme, { method: 'DELETE', url: `/users/${MISSING_ID}` })).statusCode, 404);
});
