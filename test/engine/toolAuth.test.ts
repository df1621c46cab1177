// Tool credentials in use: each authType puts them where it should, they are never shown (in the
// execution, its logs or the tool), OAuth tokens are cached, and sealed credentials open only for
// the tool they were sealed for.
import t, { type Test } from 'tap';
import { scrubbed } from '../../src/engine/toolAuth.ts';
import { world } from './world.ts';

const w = await world(t);
const SECRET = `secret-${Date.now()}`;

async function runWith(authType: string, credentials: object, endpoint = '/echo/auth') {
  const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: authType, baseUrl: w.target.url, authType, credentials } });
  const action = await w.send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: tool.data.id, name: 'a', key: `auth-${tool.data.id}`, method: 'GET', endpoint },
  });
  const flow = await w.flow({ steps: [{ key: 'call', actionId: action.data.id, inputs: { q: 1 } }] });
  const execution = await w.run(flow.id);
  const received = w.target.received.filter((r) => r.headers['idempotency-key'] === `${execution.id}:call`);
  return { tool: tool.data, execution, received };
}

async function neverShown(t: Test, executionId: string, toolId: string, secrets: string[]) {
  const shown = [
    (await w.send({ method: 'GET', url: `/executions/${executionId}` })).body,
    (await w.send({ method: 'GET', url: `/execution-logs?executionId=${executionId}` })).body,
    (await w.send({ method: 'GET', url: `/tools/${toolId}` })).body,
  ].join('\n');
  for (const secret of secrets) t.notOk(shown.includes(secret), `${secret.slice(0, 12)}… is shown nowhere`);
}

t.test('an API key goes in the header (or query parameter) it names', async (t) => {
  const header = await runWith('apiKey', { name: 'X-Api-Key', value: SECRET });
  t.equal(header.received[0]!.headers['x-api-key'], SECRET);
  t.equal(header.execution.steps[0].request.headers['x-api-key'], '[REDACTED]');
  await neverShown(t, header.execution.id, header.tool.id, [SECRET]);
  const query = await runWith('apiKey', { name: 'api_key', value: SECRET, in: 'query' });
  t.same(query.received[0]!.query, { q: '1', api_key: SECRET });
  t.equal(query.execution.steps[0].request.url, `${w.target.url}/echo/auth?q=1&api_key=%5BREDACTED%5D`);
  await neverShown(t, query.execution.id, query.tool.id, [SECRET]);
});

t.test('bearer and basic credentials go in Authorization', async (t) => {
  const bearer = await runWith('bearer', { token: SECRET });
  t.equal(bearer.received[0]!.headers.authorization, `Bearer ${SECRET}`);
  t.equal(bearer.execution.steps[0].request.headers.authorization, '[REDACTED]');
  await neverShown(t, bearer.execution.id, bearer.tool.id, [SECRET]);
  const basic = await runWith('basic', { username: 'ada', password: SECRET });
  const encoded = Buffer.from(`ada:${SECRET}`).toString('base64');
  t.equal(basic.received[0]!.headers.authorization, `Basic ${encoded}`);
  await neverShown(t, basic.execution.id, basic.tool.id, [SECRET, encoded]);
});

t.test('OAuth 2.0 client credentials: a token is fetched, cached, and sent as a bearer token', async (t) => {
  const credentials = { tokenUrl: `${w.target.url}/oauth/token`, clientId: 'tolstoy', clientSecret: 's3cret', scope: 'read' };
  const tokensBefore = w.target.tokensIssued();
  const first = await runWith('oauth2', credentials);
  t.equal(first.execution.status, 'completed');
  const token = first.received[0]!.headers.authorization!;
  t.match(token, /^Bearer token-\d+$/);
  const request = w.target.received.find((r) => r.path === '/oauth/token' && r.body === 'grant_type=client_credentials&scope=read');
  t.ok(request, 'the client-credentials grant, with the scope');
  // The same tool again: its cached token.
  const action = first.execution.steps[0].actionId;
  const flow = await w.flow({ steps: [{ key: 'call', actionId: action }] });
  const second = await w.run(flow.id);
  const sent = w.target.received.find((r) => r.headers['idempotency-key'] === `${second.id}:call`);
  t.equal(sent!.headers.authorization, token, 'the same token');
  t.equal(w.target.tokensIssued() - tokensBefore, 1, 'fetched once');
  await neverShown(t, second.id, first.tool.id, ['s3cret', token.slice('Bearer '.length)]);

  const refused = await runWith('oauth2', { ...credentials, clientSecret: 'wrong' });
  t.match(refused.execution.steps[0], {
    status: 'failed',
    error: { code: 'credentials-error', message: /The OAuth token endpoint answered 401 \(invalid_client\)/ },
  });
  t.equal(refused.received.length, 0, 'the action was not called without a token');
});

t.test('sealed credentials copied to another tool do not open', async (t) => {
  const original = await runWith('bearer', { token: SECRET });
  const impostor = await w.send({
    method: 'POST',
    url: '/tools',
    payload: { name: 'copy', baseUrl: w.target.url, authType: 'bearer', credentials: { token: 'other' } },
  });
  const sealed = (await w.db.tool.findUnique({ where: { id: original.tool.id } }))!.credentials;
  await w.db.tool.update({ where: { id: impostor.data.id }, data: { credentials: sealed } });
  const action = await w.send({
    method: 'POST',
    url: '/actions',
    payload: { toolId: impostor.data.id, name: 'a', key: 'copied', method: 'GET', endpoint: '/echo/copied' },
  });
  const flow = await w.flow({ steps: [{ key: 'call', actionId: action.data.id }] });
  const execution = await w.run(flow.id);
  t.match(execution.steps[0], { status: 'failed', error: { code: 'credentials-error', message: /do not belong to this tool/ } });
  t.equal(w.target.received.filter((r) => r.headers['idempotency-key'] === `${execution.id}:call`).length, 0);
});

t.test('scrubbing finds a secret however JSON escapes it, and leaves an answer without one as it is', async (t) => {
  const secret = 'quo"te\\back\u00e9\u2028-s3cret';
  const answer = { echoed: `Bearer ${secret}`, [`key-${secret}`]: [1, { deep: secret }], plain: 'text' };
  t.same(scrubbed(answer, new Set([secret])), { echoed: 'Bearer [REDACTED]', 'key-[REDACTED]': [1, { deep: '[REDACTED]' }], plain: 'text' });
  const clean = { items: [{ id: 1, name: 'nothing secret' }] };
  t.equal(scrubbed(clean, new Set([secret])), clean, 'the same object: nothing needed walking');
});
