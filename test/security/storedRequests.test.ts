// Attacks on what the idempotency table keeps of a request, by someone who reads that table (a
// backup, a replica, a leaked dump) but not the process's keys:
// - guessing a tool's credentials sent in a POST /tools with an Idempotency-Key, by hashing
//   candidate bodies as the server did: no candidate, not even the true one, must match the
//   stored hash (it is keyed with a key the process alone has);
// - reading the credentials themselves in the stored answer: they must not be there.
// A replay with the same key and body must still be answered, and another body still refused.
import { createHash, randomUUID } from 'node:crypto';
import t from 'tap';
import { canonical } from '../../src/http/rules/preconditions.ts';
import { buildTestApp, call, createTenant, testAuth } from '../helper.ts';

const { app, db } = await buildTestApp(t, {}, undefined, testAuth('keys'));
const acme = await createTenant(app, 'Acme');
const SECRET = 'sk_live_the-one-acme-keeps-to-itself';
const body = { name: 'Stripe', baseUrl: 'https://api.stripe.com', authType: 'bearer', credentials: { token: SECRET } };
const key = randomUUID();
const post = (payload: object) => call(app, acme, { method: 'POST', url: '/tools', payload, headers: { 'idempotency-key': key } });

const first = await post(body);

t.test('the stored hash cannot be recomputed from a guess of the request, even the right one', async (t) => {
  t.equal(first.statusCode, 201);
  const stored = await db.idempotencyKey.findFirstOrThrow({ where: { key } });
  const request = { userId: acme.userId, params: {}, body };
  const guess = createHash('sha256')
    .update(`createTool ${canonical(request)}`)
    .digest('hex');
  t.not(stored.requestHash, guess);
  t.notOk(stored.body.includes(SECRET), 'the credentials are not in the stored answer');
  t.notOk(stored.requestHash.includes(SECRET));
});

t.test('replays still work, and another request with the key is still refused', async (t) => {
  const again = await post(body);
  t.equal(again.statusCode, 201);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.data.id, first.data.id);
  t.equal((await post({ ...body, credentials: { token: 'another' } })).statusCode, 422);
});
