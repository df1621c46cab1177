// Event subscriptions through the API, on a real database: the resource's life, its secret shown
// once and stored sealed, rotation, what owners alone may do, what another organization never
// sees, the fields refused, the bound per organization, and an organization deleted with its
// subscriptions.
import t from 'tap';
import { addMember, buildTestApp, call, createTenant, MISSING_ID } from '../helper.ts';

const { app, db, keyring } = await buildTestApp(t);
const owner = await createTenant(app);
const WHSEC = /^whsec_[A-Za-z0-9+/]{32}$/;

async function subscribe(fields: Record<string, unknown> = {}, member = owner, headers: Record<string, string> = {}) {
  return call(app, member, {
    method: 'POST',
    url: '/subscriptions',
    payload: { url: 'https://hooks.example.com/tolstoy', events: ['execution.completed'], ...fields },
    headers,
  });
}

async function flowOf(member = owner) {
  return (await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'F' } })).data;
}

t.test('create, get, list, update, patch and delete', async (t) => {
  const flow = await flowOf();
  const created = await subscribe({ events: ['execution.failed', 'execution.completed'], flowId: flow.id, description: 'Pager' });
  t.equal(created.statusCode, 201);
  const { secret, ...shown } = created.data;
  t.match(shown, {
    url: 'https://hooks.example.com/tolstoy',
    description: 'Pager',
    events: ['execution.failed', 'execution.completed'],
    flowId: flow.id,
    enabled: true,
    disabledReason: null,
    previousSecretExpiresAt: null,
  });
  t.equal(created.headers.location, `/subscriptions/${created.data.id}`);
  const got = await call(app, owner, { method: 'GET', url: `/subscriptions/${created.data.id}` });
  t.same(got.data, shown, 'the same, without the secret');
  const listed = await call(app, owner, { method: 'GET', url: '/subscriptions' });
  t.same(
    listed.data.items.find((item: { id: string }) => item.id === created.data.id),
    shown,
  );

  const stale = await call(app, owner, {
    method: 'PUT',
    url: `/subscriptions/${created.data.id}`,
    payload: { enabled: false },
    headers: { 'if-match': '"nope"' },
  });
  t.equal(stale.statusCode, 412);
  const put = await call(app, owner, {
    method: 'PUT',
    url: `/subscriptions/${created.data.id}`,
    payload: { enabled: false, description: null, flowId: null },
    headers: { 'if-match': got.headers.etag as string },
  });
  t.equal(put.statusCode, 200);
  t.match(put.data, { enabled: false, description: null, flowId: null, events: ['execution.failed', 'execution.completed'] });
  const patched = await call(app, owner, {
    method: 'PATCH',
    url: `/subscriptions/${created.data.id}`,
    payload: { events: ['trigger.rejected'], url: 'http://receiver.example.com:8080/in?team=a' },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(patched.statusCode, 200);
  t.match(patched.data, { events: ['trigger.rejected'], url: 'http://receiver.example.com:8080/in?team=a', enabled: false });

  const deleted = await call(app, owner, { method: 'DELETE', url: `/subscriptions/${created.data.id}` });
  t.equal(deleted.statusCode, 204);
  t.equal((await call(app, owner, { method: 'GET', url: `/subscriptions/${created.data.id}` })).statusCode, 404);
});

t.test('the secret is shown once, and stored sealed', async (t) => {
  const created = await subscribe();
  const { id, secret } = created.data;
  t.match(secret, WHSEC);
  const row = await db.subscription.findUniqueOrThrow({ where: { id } });
  t.notOk(row.secret.includes(secret), 'the row holds no plaintext secret');
  t.notOk(row.secret.includes(secret.slice('whsec_'.length)), 'nor its key');
  t.equal(keyring.openSubscriptionSecret(row.secret, { orgId: owner.orgId, subscriptionId: id }), secret, 'it opens to the secret shown');
  t.throws(() => keyring.openSubscriptionSecret(row.secret, { orgId: owner.orgId, subscriptionId: MISSING_ID }), 'bound to its subscription');
  t.notOk('secret' in (await call(app, owner, { method: 'GET', url: `/subscriptions/${id}` })).data);
  t.notOk(JSON.stringify((await call(app, owner, { method: 'GET', url: '/subscriptions?limit=100' })).data).includes('whsec_'));

  const key = { 'idempotency-key': 'create-once' };
  const first = await subscribe({}, owner, key);
  const replayed = await subscribe({}, owner, key);
  t.equal(replayed.headers['idempotent-replayed'], 'true');
  t.equal(replayed.data.id, first.data.id);
  t.notOk('secret' in replayed.data, 'a replay does not show the secret again');
  await call(app, owner, { method: 'DELETE', url: `/subscriptions/${id}` });
  await call(app, owner, { method: 'DELETE', url: `/subscriptions/${first.data.id}` });
});

t.test('rotation: a new secret shown once; the old one signs for 24 hours; rotating again drops the one before', async (t) => {
  const created = await subscribe();
  const { id } = created.data;
  const owned = { orgId: owner.orgId, subscriptionId: id };
  const before = Date.now();
  const rotated = await call(app, owner, { method: 'POST', url: `/subscriptions/${id}/rotate-secret` });
  t.equal(rotated.statusCode, 200);
  t.match(rotated.data.secret, WHSEC);
  t.not(rotated.data.secret, created.data.secret);
  const expires = Date.parse(rotated.data.previousSecretExpiresAt);
  t.ok(Math.abs(expires - before - 24 * 3600_000) < 60_000, `the overlap ends in 24 hours (${rotated.data.previousSecretExpiresAt})`);
  let row = await db.subscription.findUniqueOrThrow({ where: { id } });
  t.equal(keyring.openSubscriptionSecret(row.secret, owned), rotated.data.secret);
  t.equal(keyring.openSubscriptionSecret(row.previousSecret!, owned), created.data.secret);
  t.same((await call(app, owner, { method: 'GET', url: `/subscriptions/${id}` })).data.previousSecretExpiresAt, rotated.data.previousSecretExpiresAt);

  const again = await call(app, owner, { method: 'POST', url: `/subscriptions/${id}/rotate-secret` });
  row = await db.subscription.findUniqueOrThrow({ where: { id } });
  t.equal(keyring.openSubscriptionSecret(row.secret, owned), again.data.secret);
  t.equal(keyring.openSubscriptionSecret(row.previousSecret!, owned), rotated.data.secret, 'the previous secret is the one just replaced');

  await db.subscription.update({ where: { id }, data: { previousSecretUntil: new Date(Date.now() - 1000) } });
  t.equal((await call(app, owner, { method: 'GET', url: `/subscriptions/${id}` })).data.previousSecretExpiresAt, null, 'no overlap once it ended');

  const key = { 'idempotency-key': 'rotate-once' };
  t.equal((await call(app, owner, { method: 'POST', url: `/subscriptions/${id}/rotate-secret`, headers: key })).statusCode, 200);
  const replay = await call(app, owner, { method: 'POST', url: `/subscriptions/${id}/rotate-secret`, headers: key });
  t.equal(replay.statusCode, 409, 'a replay cannot show the secret again');
  t.match(replay.data.detail, /rotate again/);
  await call(app, owner, { method: 'DELETE', url: `/subscriptions/${id}` });
});

t.test('enabling a subscription the platform disabled clears why, and its failing period', async (t) => {
  const { id } = (await subscribe()).data;
  await db.subscription.update({ where: { id }, data: { enabled: false, disabledReason: 'Every attempt failed for 5 days.', failingSince: new Date() } });
  t.equal((await call(app, owner, { method: 'GET', url: `/subscriptions/${id}` })).data.disabledReason, 'Every attempt failed for 5 days.');
  const renamed = await call(app, owner, { method: 'PUT', url: `/subscriptions/${id}`, payload: { description: 'still off' } });
  t.equal(renamed.data.disabledReason, 'Every attempt failed for 5 days.', 'other changes keep it');
  const enabled = await call(app, owner, { method: 'PUT', url: `/subscriptions/${id}`, payload: { enabled: true } });
  t.match(enabled.data, { enabled: true, disabledReason: null });
  t.equal((await db.subscription.findUniqueOrThrow({ where: { id } })).failingSince, null);
  await call(app, owner, { method: 'DELETE', url: `/subscriptions/${id}` });
});

t.test('only owners manage subscriptions', async (t) => {
  const { id } = (await subscribe()).data;
  const member = await addMember(app, owner, 'member');
  const attempts = [
    { method: 'GET', url: '/subscriptions' },
    { method: 'POST', url: '/subscriptions', payload: { url: 'https://a.example.com', events: ['execution.failed'] } },
    { method: 'GET', url: `/subscriptions/${id}` },
    { method: 'PUT', url: `/subscriptions/${id}`, payload: { enabled: false } },
    { method: 'DELETE', url: `/subscriptions/${id}` },
    { method: 'POST', url: `/subscriptions/${id}/rotate-secret` },
    { method: 'GET', url: `/subscriptions/${id}/deliveries` },
    { method: 'POST', url: `/subscriptions/${id}/deliveries/${MISSING_ID}/redeliver` },
  ] as const;
  for (const attempt of attempts) {
    const refused = await call(app, member, attempt);
    t.equal(refused.statusCode, 403, `${attempt.method} ${attempt.url}`);
    t.match(refused.data.detail, /Only an owner of the organization may manage event subscriptions/);
  }
  const other = await addMember(app, owner, 'owner');
  t.equal((await call(app, other, { method: 'GET', url: `/subscriptions/${id}` })).statusCode, 200, 'any owner');
  await call(app, owner, { method: 'DELETE', url: `/subscriptions/${id}` });
});

t.test("another organization's subscriptions are not there", async (t) => {
  const { id } = (await subscribe()).data;
  const stranger = await createTenant(app, 'Other');
  const attempts = [
    { method: 'GET', url: `/subscriptions/${id}` },
    { method: 'PUT', url: `/subscriptions/${id}`, payload: { enabled: false } },
    { method: 'PATCH', url: `/subscriptions/${id}`, payload: { enabled: false }, headers: { 'content-type': 'application/merge-patch+json' } },
    { method: 'DELETE', url: `/subscriptions/${id}` },
    { method: 'POST', url: `/subscriptions/${id}/rotate-secret` },
    { method: 'GET', url: `/subscriptions/${id}/deliveries` },
  ] as const;
  for (const attempt of attempts) t.equal((await call(app, stranger, attempt)).statusCode, 404, `${attempt.method} ${attempt.url}`);
  t.same((await call(app, stranger, { method: 'GET', url: '/subscriptions' })).data.items, []);
  t.equal((await db.subscription.findUniqueOrThrow({ where: { id } })).enabled, true, 'and unchanged');
  await call(app, owner, { method: 'DELETE', url: `/subscriptions/${id}` });
});

t.test('fields refused, each named', async (t) => {
  const refusals: [Record<string, unknown>, number, string][] = [
    [{ url: 'ftp://files.example.com/in' }, 400, '/url'],
    [{ url: 'https://user:pass@hooks.example.com/in' }, 400, '/url'],
    [{ url: 'https://hooks.example.com/in#part' }, 400, '/url'],
    [{ url: `https://hooks.example.com/${'a'.repeat(2048)}` }, 400, '/url'],
    [{ url: 'https://hooks.example.com:99999/in' }, 422, '/url'],
    [{ events: [] }, 400, '/events'],
    [{ events: ['execution.failed', 'execution.failed'] }, 400, '/events'],
    [{ events: ['execution.paused'] }, 400, '/events/0'],
    [{ flowId: MISSING_ID }, 422, '/flowId'],
    [{ secret: 'whsec_mine' }, 400, '/secret'],
  ];
  for (const [fields, status, pointer] of refusals) {
    const refused = await subscribe(fields);
    t.equal(refused.statusCode, status, JSON.stringify(fields).slice(0, 80));
    t.equal(refused.data.errors[0].pointer, pointer);
  }
  const stranger = await createTenant(app, 'Other');
  const theirs = await flowOf(stranger);
  const foreign = await subscribe({ flowId: theirs.id });
  t.equal(foreign.statusCode, 422);
  t.equal(foreign.data.errors[0].message, `names no flow of this organization: ${theirs.id}`, 'as for a flow that does not exist');
  const deletedFlow = await flowOf();
  await call(app, owner, { method: 'DELETE', url: `/flows/${deletedFlow.id}` });
  t.equal((await subscribe({ flowId: deletedFlow.id })).statusCode, 422, 'a deleted flow is not live');
  const { id } = (await subscribe()).data;
  const update = await call(app, owner, { method: 'PUT', url: `/subscriptions/${id}`, payload: { flowId: theirs.id } });
  t.equal(update.statusCode, 422);
  t.equal(update.data.errors[0].pointer, '/flowId');
  const empty = await call(app, owner, { method: 'PUT', url: `/subscriptions/${id}`, payload: {} });
  t.equal(empty.statusCode, 400);
  await call(app, owner, { method: 'DELETE', url: `/subscriptions/${id}` });
});

t.test('an organization has at most 20 subscriptions, also when created at once', async (t) => {
  const tenant = await createTenant(app, 'Busy');
  const answers = await Promise.all(Array.from({ length: 25 }, () => subscribe({}, tenant)));
  t.equal(answers.filter((answer) => answer.statusCode === 201).length, 20);
  const refused = answers.filter((answer) => answer.statusCode === 409);
  t.equal(refused.length, 5);
  t.match(refused[0]!.data.detail, /has 20 subscriptions, the most it may have \(20\); delete one first/);
  t.equal(await db.subscription.count({ where: { orgId: tenant.orgId } }), 20);
});

t.test('an organization is deleted with its subscriptions and their deliveries', async (t) => {
  const tenant = await createTenant(app, 'Leaving');
  const flow = await flowOf(tenant);
  const { id } = (await subscribe({ flowId: flow.id, events: ['execution.cancelled'] }, tenant)).data;
  const run = await call(app, tenant, { method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} });
  await call(app, tenant, { method: 'POST', url: `/executions/${run.data.id}/cancel` });
  t.equal(await db.eventDelivery.count({ where: { subscriptionId: id } }), 1, 'the cancellation was stored for it');
  await call(app, tenant, { method: 'DELETE', url: `/flows/${flow.id}` });
  const deleted = await call(app, undefined, { method: 'DELETE', url: `/organizations/${tenant.orgId}` });
  t.equal(deleted.statusCode, 204);
  t.equal(await db.subscription.count({ where: { orgId: tenant.orgId } }), 0);
  t.equal(await db.eventDelivery.count({ where: { orgId: tenant.orgId } }), 0);
});
