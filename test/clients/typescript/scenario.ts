// A first integration, written against the TypeScript client package (npm run clients), installed
// beside it with `npm install tolstoy-client-<version>.tgz`: node scenario.ts <base URL>
import assert from 'node:assert/strict';
import { createTolstoyClient } from '@tolstoy/client';

const baseUrl = process.argv[2];
// Signing up needs no credentials; every other call sends the owner's API key, set once.
const signup = createTolstoyClient({ baseUrl });
const withKey = (apiKey: string) => createTolstoyClient({ baseUrl, apiKey });

function ok<Data>(result: { data?: Data; error?: unknown; response: Response }, step: string): Data {
  assert.ok(result.data !== undefined, `${step}: ${result.response.status} ${JSON.stringify(result.error)}`);
  console.log(`ok ${step}`);
  return result.data;
}

const organization = ok(
  await signup.POST('/organizations', { body: { name: 'TypeScript Co', owner: { email: 'owner@ts.example', name: 'Owner' } } }),
  'create an organization and its first member',
);
const client = withKey(organization.apiKey!.key);

const slack = {
  params: { header: { 'Idempotency-Key': 'ts-slack-tool' } },
  body: { name: 'Slack API', baseUrl: 'https://api.slack.com', authType: 'bearer' },
} as const;
const tool = ok(await client.POST('/tools', slack), 'create a tool');
const again = await client.POST('/tools', slack);
assert.equal(again.data?.id, tool.id);
assert.equal(again.response.headers.get('idempotent-replayed'), 'true');
console.log('ok a retried create replays the first');
const action = ok(
  await client.POST('/actions', {
    body: { toolId: tool.id, name: 'Post a message', key: 'slack.post', method: 'POST', endpoint: '/chat.postMessage' },
  }),
  'create an action',
);
const created = await client.POST('/flows', {
  body: { name: 'Announce', steps: [{ key: 'post', actionId: action.id, inputs: { channel: '#general' } }] },
});
const flow = ok(created, 'create a flow');
const read = { 'If-Match': created.response.headers.get('etag')! };
const log = ok(
  await client.POST('/execution-logs', {
    body: { flowId: flow.id, executionId: 'run-1', stepKey: 'post', status: 'completed', durationMs: 12 },
  }),
  'create an execution log',
);

for (const name of ['Second', 'Third']) await client.POST('/tools', { body: { name, baseUrl: 'https://example.com' } });
const first = ok(await client.GET('/tools', { params: { query: { limit: 2 } } }), 'list the first page');
assert.equal(first.items.length, 2);
assert.ok(first.nextCursor);
const second = ok(await client.GET('/tools', { params: { query: { limit: 2, cursor: first.nextCursor } } }), 'list the next page');
assert.deepEqual(
  second.items.map((item) => item.id),
  [tool.id],
);
assert.equal(second.nextCursor, null);

const renamed = ok(await client.PUT('/flows/{id}', { params: { path: { id: flow.id }, header: read }, body: { name: 'Announce loudly' } }), 'update a flow');
assert.equal(renamed.version, 2);
const stale = await client.PUT('/flows/{id}', { params: { path: { id: flow.id }, header: read }, body: { name: 'Overwrite' } });
assert.equal(stale.response.status, 412);
assert.equal(stale.error?.type, '/problems/precondition-failed');
console.log('ok a stale If-Match is refused');

const stranger = ok(
  await signup.POST('/organizations', { body: { name: 'Elsewhere', owner: { email: 'owner@elsewhere.example' } } }),
  'create another organization',
);
const hidden = await withKey(stranger.apiKey!.key).GET('/tools/{id}', { params: { path: { id: tool.id } } });
assert.equal(hidden.response.status, 404);
assert.equal(hidden.error?.type, '/problems/not-found');
console.log(`ok another tenant gets a typed Problem: ${hidden.error?.title}`);

ok(
  await client.DELETE('/execution-logs/{id}', { params: { path: { id: log.id } } }).then((r) => ({ ...r, data: r.response.status === 204 ? {} : undefined })),
  'delete the execution log',
);
