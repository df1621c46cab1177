// A worker that stops while a send hangs: it waits for the send until its deadline, then cuts it
// short and hands the delivery back, due at once, so the next worker sends it (the same
// webhook-id) without waiting for the lease to end.
import { pino } from 'pino';
import t from 'tap';
import { EVENTS } from '../../src/config/settings.ts';
import { startEngine } from '../../src/engine/engine.ts';
import { buildTestApp, call, createTenant, TEST_ENGINE } from '../helper.ts';
import { startReceiver, subscribe, until } from './scene.ts';

t.test('a stopping worker hands a send in flight back, and the next worker sends it at once', async (t) => {
  const { app, db, database, keyring } = await buildTestApp(t);
  const worker = () =>
    startEngine({
      database,
      directUrl: database.url,
      keyring,
      settings: { ...TEST_ENGINE, worker: true, events: { ...EVENTS, sendTimeoutMs: 30_000 } },
      log: pino({ level: 'silent' }),
    });
  const receiver = await startReceiver((_, earlier) => (earlier === 0 ? 'hang' : 200));
  t.teardown(() => receiver.close());
  const member = await createTenant(app);
  await subscribe(db, keyring, member.orgId, receiver.url, { events: ['execution.started'] });
  const flow = await call(app, member, { method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'done', transform: 1 }] } });

  const first = await worker();
  await call(app, member, { method: 'POST', url: `/flows/${flow.data.id}/executions`, payload: {} });
  await until('the send in flight', () => receiver.heard.length === 1);
  const stopping = Date.now();
  await first.stop(300);
  t.ok(Date.now() - stopping < 5000, `stopped in ${Date.now() - stopping} ms, not at the send's 30 s timeout`);
  const [handed] = await db.$queryRaw<{ status: string; attempts: number; due: boolean }[]>`
    SELECT status::text, attempts, next_attempt_at <= now() AS due FROM event_deliveries`;
  t.same(handed, { status: 'pending', attempts: 1, due: true }, 'handed back, due at once');

  const second = await worker();
  t.teardown(() => second.stop(1000));
  await until('sent again by the next worker', () => receiver.delivered().length === 1, 5000);
  t.equal(receiver.heard[1]!.headers['webhook-id'], receiver.heard[0]!.headers['webhook-id'], 'the same webhook-id');
});
