// Attacks on authentication from one client address, each answer a problem document:
// - a flood of forged API keys whose checksums hold (each a new key id, so each would cost a
//   database lookup): past the address's allowance of lookups, 429 with Retry-After, before
//   any lookup; another address is not held back, nor is a key this node already verified;
// - the same forged key sent over and over: its key id is remembered as unknown, so it costs one
//   lookup, then none, and never uses up the address's allowance;
// - a flood of sign-ups (POST /organizations, open in development): past the address's
//   allowance, 429 with Retry-After; another address may still sign up, and the operator is not held back.
import t from 'tap';
import { newKey } from '../../src/access/keyFormat.ts';
import { UNLIMITED } from '../../src/http/app.ts';
import { ADMIN_TOKEN, bearer, buildTestApp, call, createTenant, testAuth } from '../helper.ts';

const LOOKUPS = 5;
const SIGNUPS = 3;
const http = { ...UNLIMITED, rateLimits: { ...UNLIMITED.rateLimits, keyLookupsPerAddress: LOOKUPS, signupsPerAddress: SIGNUPS } };
const { app, db } = await buildTestApp(t, {}, undefined, testAuth('keys', { keyCacheMs: 60_000 }), http);
const acme = await createTenant(app, 'Acme');
// Created before the limits are tried (sign-ups count against the test's address too).
const from = (remoteAddress: string, headers: Record<string, string>) =>
  call(app, undefined, { method: 'GET', url: '/tools', headers, remoteAddress } as Parameters<typeof call>[2]);

t.test('forged keys: past the allowance of lookups, 429 before any lookup', async (t) => {
  t.equal((await from('198.51.100.7', bearer(acme.key))).statusCode, 200, 'a real key, verified once');
  const answers = [];
  for (let i = 0; i < LOOKUPS + 3; i++) answers.push((await from('198.51.100.7', bearer(newKey().key))).statusCode);
  t.same(answers, [...Array(LOOKUPS - 1).fill(401), ...Array(4).fill(429)]);
  const refused = await from('198.51.100.7', bearer(newKey().key));
  t.match(refused.headers['content-type'], /^application\/problem\+json/);
  t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After');
  t.match(refused.data.detail, /authentication/);
  t.equal((await from('198.51.100.7', bearer(acme.key))).statusCode, 200, 'the key this node verified still works from there');
  t.equal((await from('203.0.113.9', bearer(newKey().key))).statusCode, 401, 'another address is not held back');
});

t.test('the same forged key again and again costs one lookup', async (t) => {
  const forged = newKey();
  const answers = new Set();
  for (let i = 0; i < LOOKUPS * 4; i++) answers.add((await from('192.0.2.44', bearer(forged.key))).statusCode);
  t.same([...answers], [401], 'never 429: only the first was looked up');
  // Were it looked up again, the row made behind the API would be found now.
  await db.apiKey.create({ data: { orgId: acme.orgId, userId: acme.userId, name: 'Behind', lookup: forged.lookup, hash: forged.hash } });
  t.equal((await from('192.0.2.44', bearer(forged.key))).statusCode, 401, 'its id is remembered as unknown');
});

t.test('many requests at once with a key not yet verified cost one lookup', async (t) => {
  const key = newKey();
  await db.apiKey.create({ data: { orgId: acme.orgId, userId: acme.userId, name: 'Busy', lookup: key.lookup, hash: key.hash } });
  const answers = await Promise.all(Array.from({ length: LOOKUPS * 4 }, () => from('192.0.2.77', bearer(key.key))));
  t.same(new Set(answers.map((answer) => answer.statusCode)), new Set([200]), 'never 429: they waited for the one lookup');
  t.equal((await from('192.0.2.77', bearer(newKey().key))).statusCode, 401, 'the address has lookups left');

  // An address past its allowance sends a key as others need it: its refusal is not theirs.
  for (let i = 0; i < LOOKUPS; i++) await from('192.0.2.78', bearer(newKey().key));
  const shared = newKey();
  await db.apiKey.create({ data: { orgId: acme.orgId, userId: acme.userId, name: 'Shared', lookup: shared.lookup, hash: shared.hash } });
  const [refused, ...others] = await Promise.all([
    from('192.0.2.78', bearer(shared.key)),
    ...Array.from({ length: 3 }, () => from('192.0.2.79', bearer(shared.key))),
  ]);
  t.equal(refused!.statusCode, 429, 'the address past its allowance is refused');
  t.same(
    others.map((answer) => answer.statusCode),
    [200, 200, 200],
    'the others, who waited on its lookup, look up for themselves',
  );
});

t.test('sign-ups: past the allowance of an address, 429', async (t) => {
  const signUp = (remoteAddress: string, headers: Record<string, string> = {}) =>
    call(app, undefined, {
      method: 'POST',
      url: '/organizations',
      headers,
      remoteAddress,
      payload: { name: 'Spam', owner: { email: `spam-${Math.random()}@example.com` } },
    } as Parameters<typeof call>[2]);
  const answers = [];
  for (let i = 0; i < SIGNUPS + 2; i++) answers.push((await signUp('198.51.100.99')).statusCode);
  t.same(answers, [...Array(SIGNUPS).fill(201), 429, 429]);
  const refused = await signUp('198.51.100.99');
  t.ok(Number(refused.headers['retry-after']) > 0);
  t.match(refused.data.detail, /sign-ups/);
  t.equal((await signUp('203.0.113.10')).statusCode, 201, 'another address may sign up');
  t.equal((await signUp('198.51.100.99', bearer(ADMIN_TOKEN))).statusCode, 201, 'the operator is not held back');
});
