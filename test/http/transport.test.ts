// Protection and transport: rate limits per API key and per organization (429 with Retry-After
// and RateLimit headers), CORS for the origins configured (off by default), and compression of
// large answers.
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { UNLIMITED } from '../../src/http/app.ts';
import { ADMIN_TOKEN, addMember, bearer, buildTestApp, call, createTenant, testAuth } from '../helper.ts';

const WINDOW_MS = 2000;

async function appWith(http: Partial<typeof UNLIMITED>, auth = testAuth('keys')) {
  return (await buildTestApp(t, {}, undefined, auth, { ...UNLIMITED, ...http })).app;
}

t.test('each API key, and each organization, may make so many requests per window; then 429', async (t) => {
  const app = await appWith({ rateLimits: { ...UNLIMITED.rateLimits, perKey: 5, perOrganization: 8, windowMs: WINDOW_MS } });
  const acme = await createTenant(app, 'Acme');
  const colleague = await addMember(app, acme); // two requests of Acme's owner key
  const globex = await createTenant(app, 'Globex');

  const remaining: string[] = [];
  for (let i = 0; i < 3; i++) {
    const answer = await call(app, acme, { method: 'GET', url: '/tools' });
    t.equal(answer.statusCode, 200);
    t.equal(answer.headers['ratelimit-limit'], '5');
    remaining.push(String(answer.headers['ratelimit-remaining']));
    t.ok(Number(answer.headers['ratelimit-reset']) <= WINDOW_MS / 1000);
  }
  t.same(remaining, ['2', '1', '0'], 'the key counts down (its first two requests added the colleague and their key)');
  const refused = await call(app, acme, { method: 'GET', url: '/tools' });
  t.equal(refused.statusCode, 429);
  t.match(refused.headers['content-type'], /^application\/problem\+json/);
  t.match(refused.data, { type: '/problems/too-many-requests', title: 'Too many requests', status: 429 });
  t.match(refused.data.detail, /^This API key made more than 5 requests in 2 s; retry in [12] s\.$/);
  t.ok(Number(refused.headers['retry-after']) >= 1, 'Retry-After');
  t.equal(refused.headers['ratelimit-remaining'], '0');

  // Acme has made 6 requests; its colleague's key has its own count, but the organization's is shared.
  t.equal((await call(app, colleague, { method: 'GET', url: '/tools' })).statusCode, 200);
  t.equal((await call(app, colleague, { method: 'GET', url: '/tools' })).statusCode, 200);
  const organization = await call(app, colleague, { method: 'GET', url: '/tools' });
  t.equal(organization.statusCode, 429);
  t.match(organization.data.detail, /^This organization made more than 8 requests/);
  t.equal((await call(app, globex, { method: 'GET', url: '/tools' })).statusCode, 200, 'another organization is not held up');

  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 100));
  t.equal((await call(app, acme, { method: 'GET', url: '/tools' })).statusCode, 200, 'a new window, new requests');
});

t.test('with tenant headers, each member has the limit of a key; sign-up and the operator are not limited', async (t) => {
  const app = await appWith({ rateLimits: { ...UNLIMITED.rateLimits, perKey: 2, perOrganization: 100, windowMs: WINDOW_MS } }, testAuth('headers'));
  const acme = await createTenant(app, 'Acme');
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await call(app, acme, { method: 'GET', url: '/flows' })).statusCode);
  t.same(statuses, [200, 200, 429]);
  const limited = await appWith({ rateLimits: { ...UNLIMITED.rateLimits, perKey: 1, perOrganization: 1, windowMs: WINDOW_MS } });
  for (let i = 0; i < 3; i++) await createTenant(limited, `Signup ${i}`);
  for (let i = 0; i < 3; i++) {
    t.equal((await call(limited, undefined, { method: 'GET', url: '/organizations', headers: bearer(ADMIN_TOKEN) })).statusCode, 200, 'the operator');
  }
});

t.test('without limits configured, no RateLimit headers and no 429', async (t) => {
  const app = await appWith({});
  const acme = await createTenant(app);
  const answer = await call(app, acme, { method: 'GET', url: '/tools' });
  t.equal(answer.headers['ratelimit-limit'], undefined);
});

t.test('CORS is off by default: no page of another origin may read an answer', async (t) => {
  const app = await appWith({});
  const answer = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://app.example.com' } });
  t.equal(answer.headers['access-control-allow-origin'], undefined);
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/tools',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
  });
  t.equal(preflight.statusCode, 405, 'a preflight finds no CORS');
});

t.test('CORS for the origins configured: preflights answered before credentials, headers exposed', async (t) => {
  const app = await appWith({ corsOrigins: ['https://app.example.com'] });
  const acme = await createTenant(app);
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/tools',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, idempotency-key' },
  });
  t.equal(preflight.statusCode, 204);
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com');
  t.match(String(preflight.headers['access-control-allow-headers']), /authorization, idempotency-key/);
  const answer = await app.inject({ method: 'GET', url: '/tools', headers: { ...acme.headers, origin: 'https://app.example.com' } });
  t.equal(answer.statusCode, 200);
  t.equal(answer.headers['access-control-allow-origin'], 'https://app.example.com');
  t.match(String(answer.headers['access-control-expose-headers']), /ETag.*X-Request-Id.*RateLimit-Remaining/);
  const stranger = await app.inject({ method: 'GET', url: '/tools', headers: { ...acme.headers, origin: 'https://evil.example.com' } });
  t.equal(stranger.headers['access-control-allow-origin'], undefined, 'another origin is not let in');
  const plain = await app.inject({ method: 'OPTIONS', url: '/tools' });
  t.equal(plain.statusCode, 405, 'an OPTIONS that is no preflight is still not allowed');
});

t.test('answers of 1 KiB or more are compressed for clients that accept it; bodies sent compressed are refused', async (t) => {
  const app = await appWith({});
  const acme = await createTenant(app);
  for (let i = 0; i < 10; i++) await call(app, acme, { method: 'POST', url: '/tools', payload: { name: `Tool ${i}`, baseUrl: 'https://example.com' } });
  const plain = await app.inject({ method: 'GET', url: '/tools', headers: acme.headers });
  t.ok(plain.rawPayload.length > 1024, `${plain.rawPayload.length} bytes`);
  t.equal(plain.headers['content-encoding'], undefined, 'not without Accept-Encoding');
  const zipped = await app.inject({ method: 'GET', url: '/tools', headers: { ...acme.headers, 'accept-encoding': 'gzip' } });
  t.equal(zipped.headers['content-encoding'], 'gzip');
  t.ok(zipped.rawPayload.length < plain.rawPayload.length / 2, `${zipped.rawPayload.length} bytes`);
  t.same(JSON.parse(gunzipSync(zipped.rawPayload).toString()), plain.json(), 'the same answer');
  const small = await app.inject({ method: 'GET', url: '/health', headers: { 'accept-encoding': 'gzip' } });
  t.equal(small.headers['content-encoding'], undefined, 'a small answer is sent as it is');
  const compressedBody = await app.inject({
    method: 'POST',
    url: '/tools',
    headers: { ...acme.headers, 'content-type': 'application/json', 'content-encoding': 'gzip' },
    payload: Buffer.from('{}'),
  });
  t.equal(compressedBody.statusCode, 415);
  t.match(compressedBody.json(), { type: '/problems/unsupported-media-type' });
});
