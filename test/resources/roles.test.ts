// Roles, with API keys as in production: every owner-only operation refuses a member (403) and
// serves an owner; members run everything else, flows included; the last owner stays.
import t from 'tap';
import { addMember, buildTestApp, call, createTenant, type Member, testAuth } from '../helper.ts';

const { app } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const owner = await createTenant(app, 'Acme');
const member = await addMember(app, owner);

const keyIdOf = async (of: Member) => (await call(app, owner, { method: 'GET', url: `/api-keys?userId=${of.userId}` })).data.items[0].id;
const ownerKeyId = await keyIdOf(owner);
const memberKeyId = await keyIdOf(member);
const credentials = { authType: 'bearer', credentials: { token: 'secret-token' } };
const sealed = (await call(app, owner, { method: 'POST', url: '/tools', payload: { name: 'Sealed', baseUrl: 'https://api.example.com', ...credentials } }))
  .data;

interface Request {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  payload?: object;
}

// Everything only owners may do, as requests of `self` (a member, or an owner) about `other`.
const ownerOnly = (self: Member, other: Member): Record<string, Request> => ({
  'rename the organization': { method: 'PUT', url: `/organizations/${owner.orgId}`, payload: { name: 'Acme Inc' } },
  'add a member': { method: 'POST', url: '/users', payload: { email: `new-${Date.now()}@acme.test` } },
  'change another member': { method: 'PUT', url: `/users/${other.userId}`, payload: { name: 'Renamed' } },
  'change a role, even their own': { method: 'PUT', url: `/users/${self.userId}`, payload: { role: 'owner' } },
  "list another member's keys": { method: 'GET', url: `/api-keys?userId=${other.userId}` },
  "read another member's key": { method: 'GET', url: `/api-keys/${self === owner ? memberKeyId : ownerKeyId}` },
  'make a key for another member': { method: 'POST', url: '/api-keys', payload: { name: 'For you', userId: other.userId } },
  'create a tool with credentials': { method: 'POST', url: '/tools', payload: { name: 'With', baseUrl: 'https://x.example.com', ...credentials } },
  "replace a tool's credentials": { method: 'PUT', url: `/tools/${sealed.id}`, payload: { credentials: { token: 'other' } } },
  "remove a tool's credentials": { method: 'PUT', url: `/tools/${sealed.id}`, payload: { credentials: null } },
  'point credentials at another host': { method: 'PUT', url: `/tools/${sealed.id}`, payload: { baseUrl: 'https://elsewhere.example.com' } },
});

t.test('a member is refused every owner-only operation, and changes nothing', async (t) => {
  for (const [what, request] of Object.entries(ownerOnly(member, owner))) {
    const response = await call(app, member, request);
    t.equal(response.statusCode, 403, what);
    t.match(response.data, { type: '/problems/forbidden', detail: /^Only an owner of the organization may / }, what);
  }
  // The destructive ones last, after their refusal has been checked.
  const removals: Record<string, Request> = {
    'remove another member': { method: 'DELETE', url: `/users/${owner.userId}` },
    "revoke another member's key": { method: 'DELETE', url: `/api-keys/${ownerKeyId}` },
    'delete the organization': { method: 'DELETE', url: `/organizations/${owner.orgId}` },
  };
  for (const [what, request] of Object.entries(removals)) t.equal((await call(app, member, request)).statusCode, 403, what);
  t.equal((await call(app, owner, { method: 'GET', url: '/tools' })).statusCode, 200, "the owner's key still works");
  t.match((await call(app, owner, { method: 'GET', url: `/tools/${sealed.id}` })).data, { baseUrl: 'https://api.example.com', hasCredentials: true });
  t.match((await call(app, owner, { method: 'GET', url: `/organizations/${owner.orgId}` })).data, { name: 'Acme' });
});

t.test('an owner may do each of them', async (t) => {
  for (const [what, request] of Object.entries(ownerOnly(owner, member))) {
    const response = await call(app, owner, request);
    t.ok(response.statusCode >= 200 && response.statusCode < 300, `${what}: ${response.statusCode}`);
  }
});

t.test('members do everything else: their own profile and keys, tools without credentials, flows and their runs', async (t) => {
  t.equal((await call(app, member, { method: 'PUT', url: `/users/${member.userId}`, payload: { name: 'Me' } })).statusCode, 200, 'rename themselves');
  const key = await call(app, member, { method: 'POST', url: '/api-keys', payload: { name: 'Mine' } });
  t.equal(key.statusCode, 201, 'make a key for themselves');
  const mine = await call(app, member, { method: 'GET', url: '/api-keys' });
  t.ok(
    mine.data.items.every((item: { userId: string }) => item.userId === member.userId),
    'see only their own keys',
  );
  t.equal((await call(app, member, { method: 'DELETE', url: `/api-keys/${key.data.id}` })).statusCode, 204, 'revoke their own key');
  const tool = await call(app, member, { method: 'POST', url: '/tools', payload: { name: 'Plain', baseUrl: 'https://plain.example.com' } });
  t.equal(tool.statusCode, 201, 'create a tool without credentials');
  t.equal(
    (await call(app, member, { method: 'PUT', url: `/tools/${sealed.id}`, payload: { name: 'Renamed' } })).statusCode,
    200,
    'rename a tool with credentials',
  );
  const action = await call(app, member, {
    method: 'POST',
    url: '/actions',
    payload: { toolId: sealed.id, name: 'Ping', key: 'ping', method: 'GET', endpoint: '/ping' },
  });
  const flow = await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'Ping', steps: [{ key: 'ping', actionId: action.data.id }] } });
  t.equal(flow.statusCode, 201, 'build flows on a tool whose credentials they cannot see');
  const run = await call(app, member, { method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: { input: {} } });
  t.equal(run.statusCode, 202, 'run a flow');
  const signal = await call(app, member, { method: 'POST', url: `/executions/${run.data.id}/signals/approval`, payload: { payload: true } });
  t.equal(signal.statusCode, 202, 'signal a run, with the role that cancels it');
  t.equal((await call(app, member, { method: 'POST', url: `/executions/${run.data.id}/cancel` })).statusCode, 200, 'cancel a run');
  t.equal((await call(app, member, { method: 'POST', url: `/executions/${run.data.id}/retry` })).statusCode, 202, 'retry a run');
});

t.test('the last owner can be neither demoted nor removed', async (t) => {
  const solo = await createTenant(app, 'Solo');
  const colleague = await addMember(app, solo);
  const demoted = await call(app, solo, { method: 'PUT', url: `/users/${solo.userId}`, payload: { role: 'member' } });
  t.equal(demoted.statusCode, 409);
  t.match(demoted.data.detail, /last owner/);
  const removed = await call(app, solo, { method: 'DELETE', url: `/users/${solo.userId}` });
  t.equal(removed.statusCode, 409);
  t.match(removed.data.detail, /last owner/);
  t.equal((await call(app, solo, { method: 'PUT', url: `/users/${colleague.userId}`, payload: { role: 'owner' } })).data.role, 'owner');
  t.equal(
    (await call(app, solo, { method: 'PUT', url: `/users/${solo.userId}`, payload: { role: 'member' } })).data.role,
    'member',
    'once another owner exists',
  );
  t.equal((await call(app, solo, { method: 'POST', url: '/users', payload: { email: 'x@solo.test' } })).statusCode, 403, 'and then they are a member');
});

t.test('two owners demoting each other at once leave one owner', async (t) => {
  for (let round = 0; round < 5; round++) {
    const first = await createTenant(app, `Pair ${round}`);
    const second = await addMember(app, first, 'owner');
    const answers = await Promise.all([
      call(app, first, { method: 'PUT', url: `/users/${second.userId}`, payload: { role: 'member' } }),
      call(app, second, { method: 'PUT', url: `/users/${first.userId}`, payload: { role: 'member' } }),
    ]);
    const users = (await call(app, first, { method: 'GET', url: '/users' })).data.items;
    t.equal(users.filter((user: { role: string }) => user.role === 'owner').length, 1, `round ${round}: one owner left`);
    t.ok(
      answers.some((answer) => answer.statusCode === 200),
      'one demotion went through',
    );
    t.ok(
      answers.every((answer) => [200, 403, 409].includes(answer.statusCode)),
      `the other was refused: ${answers.map((a) => a.statusCode)}`,
    );
  }
});

t.test('roles hold with tenant headers too', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await createTenant(app, 'Headers');
  const member: Member = await addMember(app, owner);
  t.equal((await call(app, member, { method: 'POST', url: '/users', payload: { email: 'y@headers.test' } })).statusCode, 403);
  t.equal((await call(app, owner, { method: 'POST', url: '/users', payload: { email: 'y@headers.test' } })).statusCode, 201);
});
