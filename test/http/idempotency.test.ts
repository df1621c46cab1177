// Idempotency-Key on every POST of a tenant: a retried request changes nothing and answers what
// the first did (status, headers, body); another request with the key is refused (422); one sent
// while the first is still being handled is refused (409); a failed request kept nothing.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { operations } from '../contract.ts';
import { world } from '../engine/world.ts';
import { addMember, createTenant, MISSING_ID } from '../helper.ts';

const w = await world(t);
const send = (url: string, payload: unknown, key: string, as = w.member) =>
  w.app.inject({ method: 'POST', url, payload: payload as object, headers: { ...as.headers, 'idempotency-key': key } }).then((r) => ({ ...r, data: r.json() }));
const count = async (url: string) => (await w.send({ method: 'GET', url: `${url}${url.includes('?') ? '&' : '?'}limit=100` })).data.items.length;

const flow = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
// Logs typed in by hand, of a flow that never runs.
const logged = await w.flow({ steps: [] });
const failing = await w.flow({ steps: [{ key: 'a', actionId: await w.action({ endpoint: '/status/500' }) }] });
const failed = await w.run(failing.id);
const failedToo = await w.run(failing.id);
const queuedFlow = await w.flow({ steps: [{ key: 'h', actionId: await w.action({ endpoint: '/hang/i', method: 'GET' }) }] });
const hanging = (await w.send({ method: 'POST', url: `/flows/${queuedFlow.id}/executions`, payload: {} })).data;
const hook = (await w.send({ method: 'POST', url: '/triggers', payload: { flowId: flow.id, name: 'Hook', type: 'webhook' } })).data;
const deliver = async () => (await w.app.inject({ method: 'POST', url: `/hooks/${hook.webhook.token}`, payload: { n: randomUUID() } })).json();
const [delivered, deliveredToo] = [await deliver(), await deliver()];

// Each POST that takes a key, a body for it, and the list whose length tells whether it made something.
const posts = [
  { operationId: 'createUser', url: '/users', body: () => ({ email: `${randomUUID()}@example.com` }), list: '/users' },
  { operationId: 'createTool', url: '/tools', body: () => ({ name: `Tool ${randomUUID()}`, baseUrl: 'https://api.example.com' }), list: '/tools' },
  {
    operationId: 'createAction',
    url: '/actions',
    body: () => ({ toolId: w.toolId, name: 'A', key: `a-${randomUUID()}`, method: 'GET', endpoint: '/x' }),
    list: '/actions',
  },
  { operationId: 'createFlow', url: '/flows', body: () => ({ name: `Flow ${randomUUID()}`, steps: [] }), list: '/flows' },
  { operationId: 'startExecution', url: `/flows/${flow.id}/executions`, body: () => ({ input: { n: randomUUID() } }), list: `/executions?flowId=${flow.id}` },
  {
    operationId: 'createExecutionLog',
    url: '/execution-logs',
    body: () => ({ flowId: logged.id, executionId: randomUUID(), stepKey: 'a', status: 'completed' }),
    list: `/execution-logs?flowId=${logged.id}`,
  },
  // Its request differs by path: the execution retried.
  {
    operationId: 'retryExecution',
    url: `/executions/${failed.id}/retry`,
    body: () => ({}),
    list: `/executions?flowId=${failing.id}`,
    other: `/executions/${failedToo.id}/retry`,
  },
  {
    operationId: 'createTrigger',
    url: '/triggers',
    body: () => ({ flowId: flow.id, name: `Trigger ${randomUUID()}`, type: 'webhook' }),
    list: `/triggers?flowId=${flow.id}`,
  },
  // Its request differs by path: the delivery replayed.
  {
    operationId: 'replayTriggerDelivery',
    url: `/triggers/${hook.id}/deliveries/${delivered.deliveryId}/replay`,
    body: () => ({}),
    list: `/executions?flowId=${flow.id}`,
    other: `/triggers/${hook.id}/deliveries/${deliveredToo.deliveryId}/replay`,
  },
];

t.test('every POST of a tenant declares the key, and is tested here', async (t) => {
  const declared = operations
    .filter((operation) => operation.method === 'post' && JSON.stringify(operation.operation.parameters ?? []).includes('/IdempotencyKey'))
    .map((operation) => operation.operationId)
    .sort();
  // A webhook's sender is no tenant: its deliveries are de-duplicated by their own ids.
  const tenantPosts = operations
    .filter((operation) => operation.method === 'post' && !['createOrganization', 'receiveWebhook'].includes(operation.operationId))
    .map((o) => o.operationId);
  t.same(declared, tenantPosts.sort(), 'all but sign-up and webhooks');
  const ownTests = ['cancelExecution', 'signalExecution', 'createApiKey', 'createSubscription', 'rotateSubscriptionSecret', 'redeliverSubscriptionDelivery'];
  t.same(declared, [...posts.map((post) => post.operationId), ...ownTests].sort());
});

for (const post of posts) {
  t.test(`${post.operationId}: a retry replays the first answer and makes nothing new`, async (t) => {
    const key = randomUUID();
    const body = post.body();
    const before = await count(post.list);
    const first = await send(post.url, body, key);
    t.ok([201, 202].includes(first.statusCode), `${first.statusCode} ${first.body}`);
    t.equal(first.headers['idempotent-replayed'], undefined);
    const again = await send(post.url, body, key);
    t.equal(again.statusCode, first.statusCode, 'the same status');
    t.equal(again.headers['idempotent-replayed'], 'true');
    t.equal(again.headers.location, first.headers.location, 'the same Location');
    t.same(again.data, first.data, 'the same body, as it was then');
    t.equal(await count(post.list), before + 1, 'one made');

    const other = await send(post.other ?? post.url, post.body(), key);
    t.equal(other.statusCode, 422, 'the key with another body');
    t.match(other.data.detail, /was used for a different request/);
  });
}

t.test('cancelExecution: a retried cancel answers the first 200 again, not a 409', async (t) => {
  const key = randomUUID();
  const first = await send(`/executions/${hanging.id}/cancel`, undefined, key);
  t.equal(first.statusCode, 200);
  const again = await send(`/executions/${hanging.id}/cancel`, undefined, key);
  t.equal(again.statusCode, 200);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.same(again.data, first.data);
  t.equal((await send(`/executions/${hanging.id}/cancel`, undefined, randomUUID())).statusCode, 409, 'without the key, a second cancel is refused');
});

t.test('signalExecution: a retried signal answers the first 202 again and keeps one signal', async (t) => {
  const parked = await w.flow({ steps: [{ key: 'gate', waitFor: { signal: 'never', timeoutMs: 60_000 } }] });
  const waiting = (await w.send({ method: 'POST', url: `/flows/${parked.id}/executions`, payload: {} })).data;
  const url = `/executions/${waiting.id}/signals/approval`;
  const key = randomUUID();
  const first = await send(url, { payload: { approved: true } }, key);
  t.equal(first.statusCode, 202, first.body);
  t.equal(first.headers['idempotent-replayed'], undefined);
  const again = await send(url, { payload: { approved: true } }, key);
  t.equal(again.statusCode, 202);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.same(again.data, first.data, 'the same signal, as it was then');
  t.same(
    (await w.db.executionSignal.findMany({ where: { executionId: waiting.id } })).map((signal) => signal.id),
    [first.data.id],
    'one signal kept',
  );
  const other = await send(url, { payload: { approved: false } }, key);
  t.equal(other.statusCode, 422, 'the key with another payload');
  t.match(other.data.detail, /was used for a different request/);
  const renamed = await send(`/executions/${waiting.id}/signals/rejection`, { payload: { approved: true } }, key);
  t.equal(renamed.statusCode, 422, 'the key with another signal name');
});

t.test('createApiKey: a retry makes no second key, and says the secret is not kept', async (t) => {
  const key = randomUUID();
  const before = await count('/api-keys');
  const first = await send('/api-keys', { name: 'CI' }, key);
  t.equal(first.statusCode, 201);
  const again = await send('/api-keys', { name: 'CI' }, key);
  t.equal(again.statusCode, 409);
  t.match(again.data.detail, new RegExp(`made API key ${first.data.id}, whose secret was shown once and is not kept.*DELETE /api-keys/${first.data.id}`));
  t.notOk(again.body.includes(first.data.key), 'the secret is not in it');
  t.equal(await count('/api-keys'), before + 1);
  const stored = await w.db.idempotencyKey.findFirst({ where: { key } });
  t.notOk(stored?.body.includes(first.data.key.slice(4)), 'nor stored');
});

t.test('the key is the member’s: another member with it is refused, not answered', async (t) => {
  const colleague = await addMember(w.app, w.member);
  const key = randomUUID();
  const body = { name: `Tool ${key}`, baseUrl: 'https://api.example.com' };
  t.equal((await send('/tools', body, key)).statusCode, 201);
  const theirs = await send('/tools', body, key, colleague);
  t.equal(theirs.statusCode, 422);
});

t.test('keys are per organization', async (t) => {
  const key = randomUUID();
  const other = await createTenant(w.app, 'Other');
  const body = { name: 'Same', baseUrl: 'https://api.example.com' };
  const mine = await send('/tools', body, key);
  const theirs = await send('/tools', body, key, other);
  t.equal(mine.statusCode, 201);
  t.equal(theirs.statusCode, 201, 'a first request in the other organization');
  t.not(theirs.data.id, mine.data.id);
});

t.test('concurrent requests with one key make one thing; the others are told to retry', async (t) => {
  const key = randomUUID();
  const body = { name: `Tool ${key}`, baseUrl: 'https://api.example.com' };
  const before = await count('/tools');
  const answers = await Promise.all(Array.from({ length: 8 }, () => send('/tools', body, key)));
  const statuses = answers.map((answer) => answer.statusCode);
  t.ok(
    statuses.every((status) => status === 201 || status === 409),
    statuses.join(','),
  );
  t.equal(answers.filter((answer) => answer.statusCode === 201 && answer.headers['idempotent-replayed'] === undefined).length, 1, 'one made it');
  t.equal(new Set(answers.filter((answer) => answer.statusCode === 201).map((answer) => answer.data.id)).size, 1);
  t.equal(await count('/tools'), before + 1);
});

t.test('a request that failed kept nothing: the key can be used again', async (t) => {
  const key = randomUUID();
  const taken = { email: `${key}@example.com` };
  const original = await send('/users', taken, randomUUID());
  t.equal((await send('/users', taken, key)).statusCode, 409, 'the email is taken');
  t.equal((await send('/flows', { name: 'F', steps: [{ key: 'a', actionId: MISSING_ID }] }, key)).statusCode, 422, 'another request, failing too');
  t.equal((await w.send({ method: 'DELETE', url: `/users/${original.data.id}` })).statusCode, 204);
  const retried = await send('/users', taken, key);
  t.equal(retried.statusCode, 201);
  t.equal(retried.headers['idempotent-replayed'], undefined, 'made now');
});

t.test('createSubscription: a retry makes no second subscription, and answers without the secret shown once', async (t) => {
  const key = randomUUID();
  const body = { url: 'https://hooks.example.com/in', events: ['execution.failed'] };
  const before = await count('/subscriptions');
  const first = await send('/subscriptions', body, key);
  t.equal(first.statusCode, 201);
  t.match(first.data.secret, /^whsec_/);
  const again = await send('/subscriptions', body, key);
  t.equal(again.statusCode, 201);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.headers.location, first.headers.location);
  const { secret: _shownOnce, ...rest } = first.data;
  t.same(again.data, rest, 'the same answer, but the secret');
  t.equal(await count('/subscriptions'), before + 1, 'one made');
  t.equal((await send('/subscriptions', { ...body, events: ['execution.completed'] }, key)).statusCode, 422, 'the key with another body');
});

t.test('rotateSubscriptionSecret: a retry rotates nothing more, and says the secret is not kept', async (t) => {
  const subscription = (await w.send({ method: 'POST', url: '/subscriptions', payload: { url: 'https://hooks.example.com/in', events: ['execution.failed'] } }))
    .data;
  const key = randomUUID();
  const first = await send(`/subscriptions/${subscription.id}/rotate-secret`, undefined, key);
  t.equal(first.statusCode, 200);
  const stored = (await w.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } })).secret;
  const again = await send(`/subscriptions/${subscription.id}/rotate-secret`, undefined, key);
  t.equal(again.statusCode, 409);
  t.match(again.data.detail, new RegExp(`rotated the secret of subscription ${subscription.id}, which was shown once and is not kept`));
  t.equal((await w.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } })).secret, stored, 'rotated once');
});

t.test('redeliverSubscriptionDelivery: a retry answers the first 202 again', async (t) => {
  const subscription = (
    await w.send({ method: 'POST', url: '/subscriptions', payload: { url: 'https://hooks.example.com/in', events: ['execution.completed'] } })
  ).data;
  await w.run(flow.id);
  const [delivery] = (await w.send({ method: 'GET', url: `/subscriptions/${subscription.id}/deliveries` })).data.items;
  const url = `/subscriptions/${subscription.id}/deliveries/${delivery.id}/redeliver`;
  const key = randomUUID();
  const first = await send(url, undefined, key);
  t.equal(first.statusCode, 202);
  await w.db.eventDelivery.update({ where: { id: delivery.id }, data: { status: 'delivered', nextAttemptAt: null, deliveredAt: new Date() } });
  const again = await send(url, undefined, key);
  t.equal(again.statusCode, 202);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.same(again.data, first.data, 'the first answer');
  t.equal((await w.db.eventDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).status, 'delivered', 'and nothing sent again');
});
