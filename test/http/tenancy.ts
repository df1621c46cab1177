// The tenant-isolation matrix: for every tenant-scoped operation of the contract, a member of
// another organization gets 404 (or 403/422) and never sees, changes or deletes the resource.
// It runs once with tenant headers (tenancy.test.ts) and once with API keys (tenancy-keys.test.ts).
import t from 'tap';
import type { AuthMode } from '../../src/config/settings.ts';
import { encodeCursor } from '../../src/resources/pagination.ts';
import { operations } from '../contract.ts';
import { bearer, buildTestApp, call, createTenant, type Member, MISSING_ID, testAuth } from '../helper.ts';

export async function tenancyMatrix(mode: AuthMode): Promise<void> {
  const { app, db } = await buildTestApp(t, {}, undefined, testAuth(mode));
  const acme = await createTenant(app, 'Acme');
  const globex = await createTenant(app, 'Globex');

  // Acme owns one resource of every kind.
  const colleague = (await call(app, acme, { method: 'POST', url: '/users', payload: { email: 'colleague@acme.test' } })).data;
  const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Slack', baseUrl: 'https://api.slack.com' } })).data;
  const action = (
    await call(app, acme, {
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.id, name: 'Post', key: 'slack.post', method: 'POST', endpoint: '/chat.postMessage' },
    })
  ).data;
  const flow = (await call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Announce', steps: [{ key: 'post', actionId: action.id }] } })).data;
  const log = (
    await call(app, acme, {
      method: 'POST',
      url: '/execution-logs',
      payload: { flowId: flow.id, executionId: 'run-1', stepKey: 'post', status: 'completed' },
    })
  ).data;

  // A run of Acme's flow; no worker runs in this test, so it stays queued.
  const execution = (await call(app, acme, { method: 'POST', url: `/flows/${flow.id}/executions`, payload: { input: { secret: 'acme' } } })).data;

  const apiKey = (await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'CI' } })).data;
  // A subscription to refused deliveries, which the refused delivery below reports.
  const subscription = (
    await call(app, acme, { method: 'POST', url: '/subscriptions', payload: { url: 'https://hooks.acme.test/in', events: ['trigger.rejected'] } })
  ).data;
  // A signed webhook and a delivery it refused: a delivery to replay that started no run.
  const trigger = (
    await call(app, acme, {
      method: 'POST',
      url: '/triggers',
      payload: { flowId: flow.id, name: 'Hook', type: 'webhook', webhook: { signature: { scheme: 'hmac-sha256', secret: 'acme-secret' } } },
    })
  ).data;
  await app.inject({ method: 'POST', url: `/hooks/${trigger.webhook.token}`, payload: {}, headers: { 'x-signature': 'forged' } });
  const [delivery] = (await call(app, acme, { method: 'GET', url: `/triggers/${trigger.id}/deliveries` })).data.items;
  const [event] = (await call(app, acme, { method: 'GET', url: `/subscriptions/${subscription.id}/deliveries` })).data.items;

  const owned: Record<string, { id: string }> = {
    users: colleague,
    'api-keys': apiKey,
    tools: tool,
    actions: action,
    flows: flow,
    'execution-logs': log,
    executions: execution,
    triggers: trigger,
    subscriptions: subscription,
  };

  // A body each update would accept, were the resource the caller's own.
  const updates: Record<string, object> = {
    users: { name: 'Mallory' },
    tools: { baseUrl: 'https://evil.example.com' },
    actions: { endpoint: '/steal' },
    flows: { name: 'Hijacked', steps: [] },
    'execution-logs': { status: 'cancelled' },
    triggers: { enabled: false },
    subscriptions: { url: 'https://evil.example.com/steal' },
  };

  // Creations that name Acme's resources from Globex: each must be refused as a dangling reference.
  const foreignReferences: Record<string, { payload: object; pointer: string }[]> = {
    users: [],
    'api-keys': [{ payload: { name: 'K', userId: acme.userId }, pointer: '/userId' }],
    tools: [],
    actions: [{ payload: { toolId: tool.id, name: 'X', key: 'x', method: 'GET', endpoint: '/' }, pointer: '/toolId' }],
    flows: [{ payload: { name: 'X', steps: [{ key: 'a', actionId: action.id }] }, pointer: '/steps/0/actionId' }],
    'execution-logs': [{ payload: { flowId: flow.id, executionId: 'r', stepKey: 's', status: 'queued' }, pointer: '/flowId' }],
    triggers: [{ payload: { flowId: flow.id, name: 'X', type: 'webhook' }, pointer: '/flowId' }],
    subscriptions: [{ payload: { url: 'https://x.example.com', events: ['execution.failed'], flowId: flow.id }, pointer: '/flowId' }],
  };

  // Minimal valid creations, to show an orgId in a body is never taken.
  const creations: Record<string, object> = {
    users: { email: 'new@globex.test' },
    'api-keys': { name: 'K' },
    tools: { name: 'T', baseUrl: 'https://x.io' },
    actions: { toolId: MISSING_ID, name: 'A', key: 'a', method: 'GET', endpoint: '/' },
    flows: { name: 'F' },
    'execution-logs': { flowId: MISSING_ID, executionId: 'r', stepKey: 's', status: 'queued' },
    triggers: { flowId: MISSING_ID, name: 'T', type: 'webhook' },
    subscriptions: { url: 'https://x.example.com', events: ['execution.failed'] },
  };

  /** A body the operation would accept, were the resource the caller's own. */
  function payloadOf(path: string, method: string): object | undefined {
    if (path === '/flows/{id}/executions') return { input: {} };
    if (path === '/executions/{id}/signals/{name}') return { payload: { approved: true } };
    if (method === 'put' || method === 'patch') return updates[collectionOf(path)];
    if (method === 'post' && !path.includes('{id}')) return creations[collectionOf(path)];
    return undefined;
  }

  const urlOf = (path: string, id: string) =>
    path
      .replace('{id}', id)
      .replace('{version}', '1')
      .replace('{deliveryId}', path.startsWith('/subscriptions') ? event.id : delivery.id)
      .replace('{name}', 'approval');
  // A PATCH sends its body as a JSON merge patch.
  const typeOf = (method: string): Record<string, string> => (method === 'patch' ? { 'content-type': 'application/merge-patch+json' } : {});

  // The operations that act inside one organization: the spec's default security, tenant headers among its ways in.
  const scoped = operations.filter(({ operation }) => operation.security === undefined);
  const collectionOf = (path: string) => path.split('/')[1]!;

  // What Acme's resources are; a key's last use changes as Acme uses it, so it is left out.
  async function snapshot() {
    return Promise.all(
      Object.entries(owned).map(async ([collection, { id }]) => {
        const { lastUsedAt, ...data } = (await call(app, acme, { method: 'GET', url: `/${collection}/${id}` })).data;
        return data;
      }),
    );
  }
  const before = await snapshot();

  t.test('every tenant-scoped operation is in the matrix', async (t) => {
    t.equal(scoped.length, 59);
    for (const { path } of scoped) t.ok(collectionOf(path) in owned, path);
  });

  t.test("another organization's resource answers 404, exactly as a missing one", async (t) => {
    for (const { path, method } of scoped.filter(({ path }) => path.includes('{id}'))) {
      const collection = collectionOf(path);
      const payload = payloadOf(path, method);
      const request = { method: method.toUpperCase() as 'GET', headers: typeOf(method), payload };
      const foreign = await call(app, globex, { ...request, url: urlOf(path, owned[collection]!.id) });
      const missing = await call(app, globex, { ...request, url: urlOf(path, MISSING_ID) });
      t.equal(foreign.statusCode, 404, `${method} ${path}`);
      t.equal(foreign.data.title, missing.data.title, `${method} ${path}: same answer as a missing one`);
      t.equal(foreign.data.detail.replace(owned[collection]!.id, '<id>'), missing.data.detail.replace(MISSING_ID, '<id>'), `${method} ${path}: same detail`);
    }
  });

  t.test("lists never include another organization's resources", async (t) => {
    // A forged cursor (the largest id: every row comes before it) narrows a list, never widens it.
    for (const query of ['limit=100', `limit=100&cursor=${encodeCursor('ffffffff-ffff-7fff-bfff-ffffffffffff')}`]) {
      for (const { path } of scoped.filter(({ path, method }) => method === 'get' && !path.includes('{id}'))) {
        const listed = await call(app, globex, { method: 'GET', url: `${path}?${query}` });
        t.equal(listed.statusCode, 200, path);
        t.ok(
          listed.data.items.every((item: { orgId: string }) => item.orgId === globex.orgId),
          `${path}?${query}: only Globex's items`,
        );
      }
    }
    const filtered = await call(app, globex, { method: 'GET', url: `/execution-logs?flowId=${flow.id}&executionId=run-1` });
    t.same(filtered.data.items, [], "filtering by Acme's flow finds nothing");
    const actions = await call(app, globex, { method: 'GET', url: `/actions?toolId=${tool.id}` });
    t.same(actions.data.items, [], "filtering by Acme's tool finds nothing");
    const runs = await call(app, globex, { method: 'GET', url: `/executions?flowId=${flow.id}&status=queued` });
    t.same(runs.data.items, [], "filtering by Acme's flow finds none of its runs");
  });

  t.test("references to another organization's resources are refused as missing ones", async (t) => {
    for (const { path } of scoped.filter(({ method, path }) => method === 'post' && !path.includes('{id}'))) {
      for (const { payload, pointer } of foreignReferences[collectionOf(path)]!) {
        const response = await call(app, globex, { method: 'POST', url: path, payload });
        t.equal(response.statusCode, 422, `${path} ${pointer}`);
        t.equal(response.data.errors[0].pointer, pointer);
      }
    }
    const log = (await call(app, globex, { method: 'POST', url: '/flows', payload: { name: 'Mine' } })).data;
    const ownLog = (
      await call(app, globex, { method: 'POST', url: '/execution-logs', payload: { flowId: log.id, executionId: 'r', stepKey: 's', status: 'queued' } })
    ).data;
    t.equal((await call(app, globex, { method: 'PUT', url: `/execution-logs/${ownLog.id}`, payload: { flowId: flow.id } })).statusCode, 422);
  });

  t.test('an orgId in a body is never taken', async (t) => {
    const creates = scoped.filter(
      (op) => op.method === 'post' && (!op.path.includes('{id}') || op.path.endsWith('/executions') || op.path.endsWith('/signals/{name}')),
    );
    for (const { path } of creates) {
      const url = urlOf(path, owned[collectionOf(path)]!.id);
      const response = await call(app, globex, { method: 'POST', url, payload: { ...payloadOf(path, 'post'), orgId: acme.orgId } });
      t.equal(response.statusCode, 400, path);
      t.match(response.data.errors, [{ pointer: '/orgId', message: 'is not a known field' }]);
    }
  });

  // With tenant headers, the headers name someone who is not a member; with keys, the headers sent
  // beside a key name someone else than the key does.
  const impostors: [string, Member][] =
    mode === 'headers'
      ? [
          ["Acme's org with Globex's user", { ...globex, headers: { 'x-org-id': acme.orgId, 'x-user-id': globex.userId } }],
          ["Globex's org with Acme's user", { ...globex, headers: { 'x-org-id': globex.orgId, 'x-user-id': acme.userId } }],
          ['an organization that does not exist', { ...globex, headers: { 'x-org-id': MISSING_ID, 'x-user-id': acme.userId } }],
        ]
      : [
          ["Globex's key with Acme's org", { ...globex, headers: { ...bearer(globex.key), 'x-org-id': acme.orgId } }],
          ["Globex's key with Acme's user", { ...globex, headers: { ...bearer(globex.key), 'x-user-id': acme.userId } }],
          ["Globex's key with all of Acme's ids", { ...globex, headers: { ...bearer(globex.key), 'x-org-id': acme.orgId, 'x-user-id': acme.userId } }],
        ];

  t.test('acting for a user of another organization answers 403', async (t) => {
    for (const [who, impostor] of impostors) {
      for (const { path, method } of scoped) {
        const collection = collectionOf(path);
        const url = urlOf(path, owned[collection]!.id);
        const payload = payloadOf(path, method);
        const response = await call(app, impostor, { method: method.toUpperCase() as 'GET', url, headers: typeOf(method), payload });
        t.equal(response.statusCode, 403, `${who}: ${method} ${path}`);
      }
    }
  });

  t.test('missing or malformed credentials answer 401', async (t) => {
    const headers: Record<string, string>[] = [{}, { 'x-org-id': acme.orgId }, { 'x-user-id': acme.userId }, { 'x-org-id': 'acme', 'x-user-id': acme.userId }];
    // With keys, even the right tenant headers are no way in.
    if (mode === 'keys') headers.push({ 'x-org-id': acme.orgId, 'x-user-id': acme.userId });
    for (const sent of headers) {
      for (const { path, method } of scoped) {
        const url = urlOf(path, owned[collectionOf(path)]!.id);
        const response = await call(app, undefined, {
          method: method.toUpperCase() as 'GET',
          url,
          headers: { ...sent, ...typeOf(method) },
          payload: payloadOf(path, method),
        });
        t.equal(response.statusCode, 401, `${JSON.stringify(sent)}: ${method} ${path}`);
        t.equal(response.headers['www-authenticate'], 'Bearer realm="tolstoy"');
      }
    }
  });

  t.test("after all of that, Acme's resources are as they were", async (t) => {
    t.same(await snapshot(), before);
    const runs = await call(app, acme, { method: 'GET', url: `/executions?flowId=${flow.id}` });
    t.same(
      runs.data.items.map((item: { id: string; status: string }) => [item.id, item.status]),
      [[execution.id, 'queued']],
      'no run was started, cancelled or retried for Acme',
    );
    t.equal(await db.executionSignal.count({ where: { executionId: execution.id } }), 0, "no signal was kept for Acme's run");
    t.equal((await call(app, acme, { method: 'GET', url: '/users' })).data.items.length, 2);
  });
}
