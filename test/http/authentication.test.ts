// API keys as production uses them (TOLSTOY_AUTH=keys): every operation refuses every kind of bad
// credentials with the same 401; keys are never shown again, logged or echoed; a verified key
// costs no query while it is remembered; the operator token manages organizations only.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { lookupOf, newKey } from '../../src/access/keyFormat.ts';
import { buildApp } from '../../src/http/app.ts';
import { operations } from '../contract.ts';
import { ADMIN_TOKEN, bearer, buildTestApp, call, createTenant, type Member, MISSING_ID, testAuth } from '../helper.ts';

const keys = testAuth('keys');
const { app, db, database, services } = await buildTestApp(t, {}, undefined, keys);
const acme = await createTenant(app, 'Acme');
const as = (headers: Record<string, string>): Member => ({ ...acme, headers });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A key that expires soon and one about to be revoked, each used once, so that this node
// remembers both as valid: expiry and revocation must win over what it remembers.
const expiring = (await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'Soon', expiresAt: new Date(Date.now() + 1000).toISOString() } }))
  .data;
const revoked = (await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'Revoked' } })).data;
for (const key of [expiring.key, revoked.key]) {
  if ((await call(app, as(bearer(key)), { method: 'GET', url: '/tools' })).statusCode !== 200) throw new Error('a new key was refused');
}
if ((await call(app, acme, { method: 'DELETE', url: `/api-keys/${revoked.id}` })).statusCode !== 204) throw new Error('revoking failed');
await sleep(Math.max(0, Date.parse(expiring.expiresAt) - Date.now() + 50));

const lastCharacter = acme.key.at(-1) === 'A' ? 'B' : 'A';
const refused: Record<string, Record<string, string>> = {
  'no credentials': {},
  'the right tenant headers without a key': { 'x-org-id': acme.orgId, 'x-user-id': acme.userId },
  'a token that is no key': bearer('not-a-key'),
  'a key with a broken checksum': bearer(acme.key.slice(0, -1) + lastCharacter),
  'a well-formed key nobody issued': bearer(newKey().key),
  "a real key's id with another secret": bearer(newKey(lookupOf(acme.key)).key),
  'an expired key': bearer(expiring.key),
  'a revoked key': bearer(revoked.key),
  'another scheme': { authorization: `Basic ${Buffer.from(`${acme.userId}:${acme.key}`).toString('base64')}` },
  'a key without its scheme': { authorization: acme.key },
  'an operator token that is not': bearer(`${ADMIN_TOKEN}x`),
};

const urlOf = (path: string) => path.replace('{id}', MISSING_ID).replace('{version}', '1').replace('{deliveryId}', MISSING_ID).replace('{name}', 'approval');
// Every operation but those the spec opens to anyone (`security: []`): health, readiness, the problem types' pages and webhooks.
const secured = operations.filter(({ operation }) => operation.security?.length !== 0);

t.test('every operation refuses every kind of bad credentials with one and the same 401', async (t) => {
  t.equal(secured.length, 65);
  for (const [kind, headers] of Object.entries(refused)) {
    for (const { method, path, operationId } of secured) {
      // Sign-up is open here: without credentials it is no refusal.
      if (operationId === 'createOrganization' && headers.authorization === undefined) continue;
      const response = await call(app, as(headers), { method: method.toUpperCase() as 'GET', url: urlOf(path), payload: method === 'get' ? undefined : {} });
      t.equal(response.statusCode, 401, `${kind}: ${operationId}`);
      t.same(
        { type: response.data.type, title: response.data.title, detail: response.data.detail },
        { type: '/problems/unauthorized', title: 'Authentication required', detail: 'Send a valid API key: Authorization: Bearer tsk_…' },
        `${kind}: ${operationId}: the answer does not say what was wrong`,
      );
      const challenge = headers.authorization === undefined ? 'Bearer realm="tolstoy"' : 'Bearer realm="tolstoy", error="invalid_token"';
      t.equal(response.headers['www-authenticate'], challenge);
      if (headers.authorization) t.notOk(response.body.includes(headers.authorization.replace(/^\w+ /, '')), 'the credentials are not echoed');
    }
  }
});

t.test('credentials are checked before the body is read', async (t) => {
  const response = await call(app, undefined, { method: 'POST', url: '/tools', headers: { 'content-type': 'application/json' }, payload: '{not json' });
  t.equal(response.statusCode, 401);
});

t.test('a key is shown once: never in lists, reads, or anywhere after', async (t) => {
  const created = await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'Deploy' } });
  t.equal(created.statusCode, 201);
  t.match(created.data, { name: 'Deploy', userId: acme.userId, orgId: acme.orgId, key: /^tsk_[0-9A-Za-z]{59}$/, lastUsedAt: null, expiresAt: null });
  t.equal(created.data.prefix, created.data.key.slice(0, 14), 'the prefix tells it apart');
  t.equal(created.headers.location, `/api-keys/${created.data.id}`);
  const listed = await call(app, acme, { method: 'GET', url: '/api-keys' });
  const read = await call(app, acme, { method: 'GET', url: `/api-keys/${created.data.id}` });
  t.notOk(listed.body.includes(created.data.key.slice(14)) || read.body.includes(created.data.key.slice(14)), 'the secret is never returned again');
  t.notOk('key' in read.data);
  const [row] = await db.apiKey.findMany({ where: { id: created.data.id } });
  t.not(row!.hash, created.data.key, 'only its hash is stored');
  t.notOk(JSON.stringify(row).includes(created.data.key.slice(14)));
});

t.test('the last use is recorded, to the minute', async (t) => {
  const created = (await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'Used' } })).data;
  t.equal((await call(app, as(bearer(created.key)), { method: 'GET', url: '/flows' })).statusCode, 200);
  const used = (await call(app, acme, { method: 'GET', url: `/api-keys/${created.id}` })).data;
  t.ok(Date.parse(used.lastUsedAt) >= Date.parse(created.createdAt));
});

t.test('a key expiring in the past, or for someone who is no member, is refused', async (t) => {
  const past = await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'Old', expiresAt: '2020-01-01T00:00:00Z' } });
  t.equal(past.statusCode, 422);
  t.match(past.data.errors, [{ pointer: '/expiresAt', message: 'must be in the future' }]);
  const stranger = await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'X', userId: MISSING_ID } });
  t.equal(stranger.statusCode, 422);
  t.match(stranger.data.errors, [{ pointer: '/userId' }]);
});

t.test('a remembered key costs no query: the keys and members tables can be away', async (t) => {
  const fresh = (await call(app, acme, { method: 'POST', url: '/api-keys', payload: { name: 'Fresh' } })).data;
  const member = as(bearer(fresh.key));
  t.equal((await call(app, member, { method: 'GET', url: '/tools' })).statusCode, 200, 'verified and remembered');
  // Within the time a node remembers a key (5 s), counted from its verification just now.
  await db.$executeRawUnsafe('ALTER TABLE api_keys RENAME TO api_keys_away');
  await db.$executeRawUnsafe('ALTER TABLE users RENAME TO users_away');
  try {
    for (let i = 0; i < 20; i++) t.equal((await call(app, member, { method: 'GET', url: '/tools' })).statusCode, 200);
    const created = await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'Written without a membership query' } });
    t.equal(created.statusCode, 201, 'a write too');
    await t.rejects(db.$queryRawUnsafe('SELECT 1 FROM api_keys'), 'the tables were away indeed');
  } finally {
    await db.$executeRawUnsafe('ALTER TABLE api_keys_away RENAME TO api_keys');
    await db.$executeRawUnsafe('ALTER TABLE users_away RENAME TO users');
  }
});

t.test('the operator token manages every organization, and acts inside none', async (t) => {
  const operator = as(bearer(ADMIN_TOKEN));
  const globex = await createTenant(app, 'Globex');
  const listed = await call(app, operator, { method: 'GET', url: '/organizations?limit=100' });
  t.ok(
    [acme.orgId, globex.orgId].every((id) => listed.data.items.some((item: { id: string }) => item.id === id)),
    'it lists them all',
  );
  t.equal((await call(app, operator, { method: 'GET', url: `/organizations/${globex.orgId}` })).statusCode, 200);
  t.equal((await call(app, operator, { method: 'PUT', url: `/organizations/${globex.orgId}`, payload: { name: 'Globex 2' } })).data.name, 'Globex 2');
  const inside = await call(app, operator, { method: 'GET', url: '/tools' });
  t.equal(inside.statusCode, 403);
  t.match(inside.data.detail, /manages organizations only/);
  t.equal((await call(app, operator, { method: 'DELETE', url: `/organizations/${globex.orgId}` })).statusCode, 204);
  t.equal((await call(app, globex, { method: 'GET', url: '/tools' })).statusCode, 401, "the deleted organization's keys went with it");
});

t.test('with a key, a member sees its own organization only', async (t) => {
  const globex = await createTenant(app, 'Globex');
  const listed = await call(app, acme, { method: 'GET', url: '/organizations' });
  t.same(
    listed.data.items.map((item: { id: string }) => item.id),
    [acme.orgId],
  );
  for (const method of ['GET', 'PUT', 'DELETE'] as const) {
    const response = await call(app, acme, { method, url: `/organizations/${globex.orgId}`, payload: method === 'PUT' ? { name: 'Mine' } : undefined });
    t.equal(response.statusCode, 404, `${method} another organization: as if it did not exist`);
  }
  t.equal((await call(app, acme, { method: 'GET', url: `/organizations/${acme.orgId}` })).data.name, 'Acme');
  t.equal((await call(app, undefined, { method: 'GET', url: '/organizations' })).statusCode, 401, 'and without a key, nobody sees any');
});

t.test('with API keys, an organization needs an owner', async (t) => {
  const response = await call(app, undefined, { method: 'POST', url: '/organizations', payload: { name: 'Ownerless' } });
  t.equal(response.statusCode, 422);
  t.match(response.data.errors, [{ pointer: '/owner' }]);
});

t.test('closed sign-up: the operator token creates organizations, nobody else', async (t) => {
  const closed = await buildApp({ database, services, auth: { ...keys, signup: false } });
  t.teardown(() => closed.close());
  const payload = { name: 'Closed', owner: { email: 'owner@closed.test' } };
  const anonymous = await call(closed, undefined, { method: 'POST', url: '/organizations', payload });
  t.equal(anonymous.statusCode, 401);
  t.match(anonymous.data.detail, /Sign-up is closed/);
  t.equal((await call(closed, acme, { method: 'POST', url: '/organizations', payload })).statusCode, 403, "a member's key");
  const created = await call(closed, as(bearer(ADMIN_TOKEN)), { method: 'POST', url: '/organizations', payload });
  t.equal(created.statusCode, 201);
  t.match(created.data, { owner: { role: 'owner' }, apiKey: { key: /^tsk_/, userId: created.data.owner.id } });
});

t.test('keys never reach the logs', async (t) => {
  let lines = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines += chunk;
      done();
    },
  });
  const logged = await buildApp({ database, services, auth: keys, logger: pino({ level: 'trace' }, sink) });
  t.teardown(() => logged.close());
  const created = await call(logged, acme, { method: 'POST', url: '/api-keys', payload: { name: 'Logged' } });
  await call(logged, as(bearer(created.data.key)), { method: 'GET', url: '/tools' });
  await call(logged, as(bearer(`${created.data.key}x`)), { method: 'GET', url: '/tools' });
  await call(logged, as(bearer(ADMIN_TOKEN)), { method: 'GET', url: '/organizations' });
  t.match(lines, /"url":"\/tools"/, 'the requests are logged');
  for (const secret of [created.data.key, acme.key, ADMIN_TOKEN]) t.notOk(lines.includes(secret.slice(4)), 'no key or token is');
});
