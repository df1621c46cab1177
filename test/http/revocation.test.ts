// Two nodes on one database, each remembering the keys it verified for 5 s (TOLSTOY_KEY_CACHE_MS):
// a revoked key, a removed member and a demoted owner are refused at once by the node that made
// the change, and by the other node within those 5 s.
import t from 'tap';
import { addMember, buildTestApp, call, createTenant, type Member, testAuth } from '../helper.ts';

const REMEMBERED_MS = 5000;
const auth = testAuth('keys', { keyCacheMs: REMEMBERED_MS });
const nodeA = await buildTestApp(t, {}, undefined, auth);
const nodeB = await buildTestApp(t, {}, nodeA.database.url, auth);
const a = nodeA.app;
const b = nodeB.app;

const owner = await createTenant(a, 'Acme');
const revokedKey = await addMember(a, owner);
const removed = await addMember(a, owner);
const demoted = await addMember(a, owner, 'owner');
const keyId = (await call(a, revokedKey, { method: 'GET', url: '/api-keys' })).data.items[0].id;

const readTools = (app: typeof a, member: Member) => call(app, member, { method: 'GET', url: '/tools' });
const addUser = (app: typeof a, member: Member) =>
  call(app, member, { method: 'POST', url: '/users', payload: { email: `u-${Date.now()}-${Math.random()}@acme.test` } });

t.test('the other node refuses within the time it remembers keys', async (t) => {
  // Both nodes verify and remember every key.
  for (const app of [a, b]) {
    t.equal((await readTools(app, revokedKey)).statusCode, 200);
    t.equal((await readTools(app, removed)).statusCode, 200);
    t.equal((await addUser(app, demoted)).statusCode, 201, 'an owner adds members');
  }
  const changed = Date.now();
  t.equal((await call(a, revokedKey, { method: 'DELETE', url: `/api-keys/${keyId}` })).statusCode, 204);
  t.equal((await call(a, owner, { method: 'DELETE', url: `/users/${removed.userId}` })).statusCode, 204);
  t.equal((await call(a, owner, { method: 'PUT', url: `/users/${demoted.userId}`, payload: { role: 'member' } })).statusCode, 200);

  t.equal((await readTools(a, revokedKey)).statusCode, 401, 'the node that revoked the key refuses it at once');
  t.equal((await readTools(a, removed)).statusCode, 401, "and the removed member's key");
  t.equal((await addUser(a, demoted)).statusCode, 403, 'and treats the demoted owner as a member');

  const refusedBy = async (check: () => Promise<boolean>) => {
    while (!(await check())) {
      if (Date.now() - changed > 3 * REMEMBERED_MS) return Number.POSITIVE_INFINITY;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return Date.now() - changed;
  };
  const [revokedAfter, removedAfter, demotedAfter] = await Promise.all([
    refusedBy(async () => (await readTools(b, revokedKey)).statusCode === 401),
    refusedBy(async () => (await readTools(b, removed)).statusCode === 401),
    refusedBy(async () => (await addUser(b, demoted)).statusCode === 403),
  ]);
  // The other node verified each key before the change, so it forgets them less than 5 s after it.
  for (const [what, after] of [
    ['the revoked key', revokedAfter],
    ["the removed member's key", removedAfter],
    ["the demoted owner's key as an owner's", demotedAfter],
  ] as const) {
    t.ok(after <= REMEMBERED_MS + 1000, `the other node refused ${what} ${after} ms after the change`);
  }
});
