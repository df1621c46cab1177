// Optimistic concurrency: a strong ETag on every single resource; If-Match on PUT, PATCH and
// DELETE (412 when stale, nothing changed); PATCH as a JSON merge patch (RFC 7396).
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { operations } from '../contract.ts';
import { addMember, buildTestApp, call, createTenant, type Member } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);
const send = (member: Member | undefined, method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  call(app, member, {
    method: method as 'GET',
    url,
    ...(payload !== undefined && { payload: JSON.stringify(payload) }),
    headers: { ...(payload !== undefined && { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' }), ...headers },
  });

const tool = (await send(acme, 'POST', '/tools', { name: 'Slack', baseUrl: 'https://slack.com/api', description: 'Chat' })).data;
const action = (await send(acme, 'POST', '/actions', { toolId: tool.id, name: 'Post', key: 'post', method: 'POST', endpoint: '/chat' })).data;
const flow = (await send(acme, 'POST', '/flows', { name: 'Announce', steps: [{ key: 'a', actionId: action.id }] })).data;

t.test('every PUT, PATCH and DELETE takes If-Match and may answer 412; every PUT has its PATCH', async (t) => {
  const writes = operations.filter((o) => ['put', 'patch', 'delete'].includes(o.method));
  for (const { operationId, operation } of writes) {
    t.ok(JSON.stringify(operation.parameters ?? []).includes('/IfMatch'), `${operationId} takes If-Match`);
    t.ok('412' in operation.responses, `${operationId} may answer 412`);
  }
  const puts = writes.filter((o) => o.method === 'put').map((o) => o.path);
  t.same(
    writes.filter((o) => o.method === 'patch').map((o) => o.path),
    puts,
  );
});

t.test('a single resource has a strong ETag, the same wherever it is answered, that changes with it', async (t) => {
  const read = await send(acme, 'GET', `/tools/${tool.id}`);
  t.match(read.headers.etag, /^"[A-Za-z0-9_-]{27}"$/);
  t.equal((await send(acme, 'GET', `/tools/${tool.id}`)).headers.etag, read.headers.etag, 'stable');
  const created = await send(acme, 'POST', '/tools', { name: 'Other', baseUrl: 'https://example.com' });
  t.equal(created.headers.etag, (await send(acme, 'GET', `/tools/${created.data.id}`)).headers.etag, 'the create answers the tag a read does');
  const updated = await send(acme, 'PUT', `/tools/${created.data.id}`, { name: 'Renamed' });
  t.not(updated.headers.etag, created.headers.etag, 'a change changes it');
  t.equal(updated.headers.etag, (await send(acme, 'GET', `/tools/${created.data.id}`)).headers.etag);
  t.equal((await send(acme, 'GET', '/tools')).headers.etag, undefined, 'a list has none');
  for (const url of [`/flows/${flow.id}`, `/flows/${flow.id}/versions/1`, `/actions/${action.id}`, `/users/${acme.userId}`, `/organizations/${acme.orgId}`]) {
    t.match((await send(acme, 'GET', url)).headers.etag, /^"/, url);
  }
});

t.test('If-Match: the current tag (or *) lets the write through; a stale or weak one is refused with 412, changing nothing', async (t) => {
  const { etag } = (await send(acme, 'GET', `/flows/${flow.id}`)).headers as { etag: string };
  const stale = await send(acme, 'PUT', `/flows/${flow.id}`, { name: 'Stale' }, { 'if-match': '"not-the-tag"' });
  t.equal(stale.statusCode, 412);
  t.match(stale.data, { type: '/problems/precondition-failed', title: 'Precondition failed', status: 412 });
  t.match(stale.data.detail, `its ETag is now ${etag}`);
  t.equal((await send(acme, 'GET', `/flows/${flow.id}`)).data.name, 'Announce', 'nothing changed');
  t.equal((await send(acme, 'PUT', `/flows/${flow.id}`, { name: 'Weak' }, { 'if-match': `W/${etag}` })).statusCode, 412, 'a weak tag never matches');

  const fresh = await send(acme, 'PUT', `/flows/${flow.id}`, { name: 'Announce 2' }, { 'if-match': `"other", ${etag}` });
  t.equal(fresh.statusCode, 200, 'a list naming the current tag');
  t.equal(
    (await send(acme, 'PUT', `/flows/${flow.id}`, { name: 'Announce 3' }, { 'if-match': etag })).statusCode,
    412,
    'the tag read before that change is stale now',
  );
  t.equal((await send(acme, 'PUT', `/flows/${flow.id}`, { name: 'Announce 3' }, { 'if-match': fresh.headers.etag as string })).statusCode, 200);
  t.equal((await send(acme, 'PUT', `/flows/${flow.id}`, { name: 'Announce' }, { 'if-match': '*' })).statusCode, 200, '* matches any');
});

t.test('two writers with the same tag: exactly one wins, the other gets 412', async (t) => {
  const { etag } = (await send(acme, 'GET', `/tools/${tool.id}`)).headers as { etag: string };
  const answers = await Promise.all(
    ['Ana', 'Ben', 'Cy', 'Di'].map((name) => send(acme, 'PUT', `/tools/${tool.id}`, { description: `Edited by ${name}` }, { 'if-match': etag })),
  );
  t.same(answers.map((a) => a.statusCode).sort(), [200, 412, 412, 412]);
  const winner = answers.find((a) => a.statusCode === 200)!;
  t.equal((await send(acme, 'GET', `/tools/${tool.id}`)).data.description, winner.data.description);
});

t.test('DELETE with a stale tag keeps the resource; with the current one deletes it', async (t) => {
  const doomed = (await send(acme, 'POST', '/tools', { name: 'Doomed', baseUrl: 'https://example.com' })).data;
  const { etag } = (await send(acme, 'GET', `/tools/${doomed.id}`)).headers as { etag: string };
  t.equal((await send(acme, 'DELETE', `/tools/${doomed.id}`, undefined, { 'if-match': '"stale"' })).statusCode, 412);
  t.equal((await send(acme, 'GET', `/tools/${doomed.id}`)).statusCode, 200, 'still there');
  t.equal((await send(acme, 'DELETE', `/tools/${doomed.id}`, undefined, { 'if-match': etag })).statusCode, 204);
  t.equal((await send(acme, 'DELETE', `/tools/${doomed.id}`, undefined, { 'if-match': etag })).statusCode, 404, 'a missing resource is 404, tag or not');
});

t.test('every resource refuses a stale PUT, PATCH and DELETE', async (t) => {
  const member = await addMember(app, acme);
  const key = (await send(acme, 'POST', '/api-keys', { name: 'Spare' })).data;
  const log = (await send(acme, 'POST', '/execution-logs', { flowId: flow.id, executionId: 'run-1', stepKey: 'a', status: 'completed' })).data;
  const resources = [
    { url: `/organizations/${acme.orgId}`, change: { name: 'Acme 2' } },
    { url: `/users/${member.userId}`, change: { name: 'Someone' } },
    { url: `/api-keys/${key.id}` },
    { url: `/tools/${tool.id}`, change: { name: 'Slack 2' } },
    { url: `/actions/${action.id}`, change: { name: 'Post 2' } },
    { url: `/flows/${flow.id}`, change: { name: 'Flow 2' } },
    { url: `/execution-logs/${log.id}`, change: { durationMs: 5 } },
  ];
  for (const { url, change } of resources) {
    const before = await send(acme, 'GET', url);
    const stale = { 'if-match': '"stale"' };
    if (change) {
      t.equal((await send(acme, 'PUT', url, change, stale)).statusCode, 412, `PUT ${url}`);
      t.equal((await send(acme, 'PATCH', url, change, stale)).statusCode, 412, `PATCH ${url}`);
    }
    t.equal((await send(acme, 'DELETE', url, undefined, stale)).statusCode, 412, `DELETE ${url}`);
    t.equal((await send(acme, 'GET', url)).headers.etag, before.headers.etag, `${url} unchanged`);
  }
});

t.test('PATCH is a JSON merge patch: set, clear with null, merge objects, replace lists', async (t) => {
  const other = (await send(acme, 'POST', '/actions', { toolId: tool.id, name: 'Other', key: 'other', method: 'GET', endpoint: '/other' })).data;
  const patched = (await send(acme, 'POST', '/flows', { name: 'Patchable', description: 'To clear', steps: [{ key: 'a', actionId: action.id }] })).data;
  const answer = await send(acme, 'PATCH', `/flows/${patched.id}`, { description: null, steps: [{ key: 'b', actionId: other.id }] });
  t.equal(answer.statusCode, 200);
  t.match(answer.data, { name: 'Patchable', description: null, version: 2, steps: [{ key: 'b', actionId: other.id }] });
  t.equal(answer.data.steps.length, 1, 'the list replaced whole');
  t.equal(answer.headers.etag, (await send(acme, 'GET', `/flows/${patched.id}`)).headers.etag);

  const log = (
    await send(acme, 'POST', '/execution-logs', {
      flowId: flow.id,
      executionId: `run-${randomUUID()}`,
      stepKey: 'a',
      status: 'completed',
      inputs: { keep: 1, drop: 2, nested: { a: 1, b: 2 } },
    })
  ).data;
  const patch = JSON.parse('{"inputs":{"drop":null,"nested":{"b":null,"c":3},"__proto__":{"plain":true},"added":[1]}}');
  const merged = await send(acme, 'PATCH', `/execution-logs/${log.id}`, patch);
  t.equal(merged.statusCode, 200, merged.body);
  t.same(
    merged.data.inputs,
    JSON.parse('{"keep":1,"nested":{"a":1,"c":3},"__proto__":{"plain":true},"added":[1]}'),
    'objects merged key by key; __proto__ kept as data',
  );
  t.equal(merged.data.status, 'completed', 'fields not named keep their value');
});

t.test('PATCH is refused in any other form: another media type, an unknown or read-only field, an empty patch', async (t) => {
  const json = await call(app, acme, { method: 'PATCH', url: `/tools/${tool.id}`, payload: { name: 'X' } });
  t.equal(json.statusCode, 415);
  t.match(json.data.detail, 'application/merge-patch+json');
  t.equal((await send(acme, 'PATCH', `/tools/${tool.id}`, { hasCredentials: true })).statusCode, 400);
  t.equal((await send(acme, 'PATCH', `/tools/${tool.id}`, {})).statusCode, 400);
  const put = await call(app, acme, {
    method: 'PUT',
    url: `/tools/${tool.id}`,
    payload: JSON.stringify({ name: 'X' }),
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  t.equal(put.statusCode, 415, 'nor does PUT take a merge patch');
});

t.test('PATCH keeps the rules of PUT: tenancy, roles, references', async (t) => {
  const stranger = await createTenant(app, 'Stranger');
  t.equal((await send(stranger, 'PATCH', `/tools/${tool.id}`, { name: 'Mine' })).statusCode, 404, "another tenant's resource is not found");
  const member = await addMember(app, acme);
  t.equal(
    (await send(member, 'PATCH', `/tools/${tool.id}`, { authType: 'bearer', credentials: { token: 't' } })).statusCode,
    403,
    'credentials are for owners, as with PUT',
  );
  t.equal((await send(acme, 'PATCH', `/actions/${action.id}`, { toolId: randomUUID() })).statusCode, 422, 'a missing reference');
});

t.test('a conditional DELETE that others still reference answers the same 409 as an unconditional one', async (t) => {
  const member = await addMember(app, acme);
  await send(member, 'POST', '/execution-logs', { flowId: flow.id, executionId: `run-${randomUUID()}`, stepKey: 'a', status: 'queued' });
  const referenced = [
    { url: `/tools/${tool.id}`, detail: /still has \d+ actions? \(post/ },
    { url: `/actions/${action.id}`, detail: /is called by steps of 1 flow/ },
    { url: `/users/${member.userId}`, detail: /is named by 1 execution log/ },
  ];
  for (const { url, detail } of referenced) {
    const { etag } = (await send(acme, 'GET', url)).headers as { etag: string };
    for (const ifMatch of ['*', etag]) {
      const refused = await send(acme, 'DELETE', url, undefined, { 'if-match': ifMatch });
      t.equal(refused.statusCode, 409, `${url} with If-Match: ${ifMatch}`);
      t.match(refused.data.detail, detail);
    }
    t.equal((await send(acme, 'DELETE', url)).statusCode, 409, `${url} without`);
    t.equal((await send(acme, 'GET', url)).statusCode, 200, 'still there');
  }
});
