// Idempotency-Key on starting a run: a retried request starts nothing new and answers what the
// first one did; a reused key with another body is refused; keys are per organization and last 24 h.
import t from 'tap';
import { createTenant } from '../helper.ts';
import { world } from './world.ts';

const w = await world(t);
const echo = await w.action();
const flow = await w.flow({ steps: [{ key: 'a', actionId: echo }] });
const start = (key: string, payload: object, headers: Record<string, string> = {}) =>
  w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload, headers: { 'idempotency-key': key, ...headers } });
const runsOf = async () => (await w.send({ method: 'GET', url: `/executions?flowId=${flow.id}&limit=100` })).data.items.length;

t.test('the same key answers what the first request did, and starts nothing new', async (t) => {
  const before = await runsOf();
  const first = await start('order-1', { input: { order: 1 } });
  t.equal(first.statusCode, 202);
  t.equal(first.headers['idempotent-replayed'], undefined);
  const second = await start('order-1', { input: { order: 1 } });
  t.equal(second.statusCode, 202);
  t.equal(second.headers['idempotent-replayed'], 'true');
  t.same(second.data, first.data, 'the same body, as it was then');
  t.equal(second.headers.location, first.headers.location);
  t.equal(await runsOf(), before + 1, 'one run');
  const reordered = await start('order-1', { input: { order: 1 }, version: undefined });
  t.equal(reordered.headers['idempotent-replayed'], 'true', 'the same body, whatever its key order');
  const waited = await start('order-1', { input: { order: 1 } }, { prefer: 'wait=10' });
  t.equal(waited.statusCode, 200, 'with Prefer: wait, the replay waits for the run and shows it now');
  t.match(waited.data, { id: first.data.id, status: 'completed' }, JSON.stringify([waited.data.error, waited.data.steps]));
});

t.test('the same key with another body is refused', async (t) => {
  await start('order-2', { input: { order: 2 } });
  const reused = await start('order-2', { input: { order: 3 } });
  t.equal(reused.statusCode, 422);
  t.match(reused.data.detail, /The Idempotency-Key order-2 was used for a different request/);
});

t.test('concurrent requests with one key start one run; the others are told the first is still being handled', async (t) => {
  const before = await runsOf();
  const answers = await Promise.all(Array.from({ length: 6 }, () => start('order-4', { input: { order: 4 } })));
  const started = answers.filter((answer) => answer.statusCode === 202);
  const refused = answers.filter((answer) => answer.statusCode === 409);
  t.equal(started.length + refused.length, 6, answers.map((answer) => answer.statusCode).join(','));
  t.equal(started.filter((answer) => answer.headers['idempotent-replayed'] === undefined).length, 1, 'one started the run');
  t.equal(new Set(started.map((answer) => answer.data.id)).size, 1, 'any other 202 replays it');
  for (const answer of refused) t.match(answer.data.detail, /still being handled; retry once it has finished/);
  t.equal(await runsOf(), before + 1);
  const retried = await start('order-4', { input: { order: 4 } });
  t.equal(retried.headers['idempotent-replayed'], 'true', 'a retry after the first finished replays it');
  t.equal(retried.data.id, started[0]!.data.id);
});

t.test('keys belong to one organization', async (t) => {
  const other = await createTenant(w.app, 'Other');
  const tool = (await w.app.inject({ method: 'POST', url: '/tools', headers: other.headers, payload: { name: 'T', baseUrl: w.target.url } })).json();
  const action = (
    await w.app.inject({
      method: 'POST',
      url: '/actions',
      headers: other.headers,
      payload: { toolId: tool.id, name: 'a', key: 'a', method: 'POST', endpoint: '/echo/a' },
    })
  ).json();
  const otherFlow = (
    await w.app.inject({ method: 'POST', url: '/flows', headers: other.headers, payload: { name: 'F', steps: [{ key: 'a', actionId: action.id }] } })
  ).json();
  const mine = await start('shared-key', { input: {} });
  const theirs = await w.app.inject({
    method: 'POST',
    url: `/flows/${otherFlow.id}/executions`,
    headers: { ...other.headers, 'idempotency-key': 'shared-key' },
    payload: {},
  });
  t.equal(theirs.statusCode, 202);
  t.equal(theirs.headers['idempotent-replayed'], undefined);
  t.not(theirs.json().id, mine.data.id);
});

t.test('a key is forgotten after 24 hours', async (t) => {
  const first = await start('order-5', { input: {} });
  await w.db.idempotencyKey.updateMany({ where: { key: 'order-5' }, data: { createdAt: new Date(Date.now() - 25 * 3600_000) } });
  const later = await start('order-5', { input: { other: true } });
  t.equal(later.statusCode, 202);
  t.not(later.data.id, first.data.id, 'a new run');
  t.equal(later.headers['idempotent-replayed'], undefined);
});

t.test('a request that changed nothing (a 404) is not remembered', async (t) => {
  const missing = await w.send({
    method: 'POST',
    url: '/flows/01a20000-0000-7000-8000-000000000000/executions',
    payload: {},
    headers: { 'idempotency-key': 'order-6' },
  });
  t.equal(missing.statusCode, 404);
  t.equal((await start('order-6', {})).statusCode, 202, 'the key is free for a request that works');
});

t.test('a malformed key is refused', async (t) => {
  for (const key of ['', 'x'.repeat(256), 'has space']) {
    const response = await start(key, {});
    t.equal(response.statusCode, 400, JSON.stringify(key.slice(0, 20)));
  }
});
