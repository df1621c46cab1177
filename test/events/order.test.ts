// Order and isolation, counted at real receivers: per execution, execution.completed is not sent
// before execution.started is delivered, while another execution's events go on; a subscription
// failing for longer than the limit is disabled and says why, its deliveries kept pending until it
// is enabled again; a hanging receiver holds up no run; and one organization's hanging receiver
// delays no other organization's events.
import t from 'tap';
import { EVENTS, type EventSettings } from '../../src/config/settings.ts';
import { world } from '../engine/world.ts';
import { buildTestApp, call, createTenant } from '../helper.ts';
import { startReceiver, subscribe, until } from './scene.ts';

const SHORT: EventSettings = { ...EVENTS, sendTimeoutMs: 1000, retryScheduleMs: [0, 300, 300, 300, 300, 300] };

t.test('per execution, events arrive in order: a failing execution.started holds back only its own execution', async (t) => {
  // Retries enough to outlast a slow machine: the held execution's events must not run out of attempts.
  const w = await world(t, { events: { ...SHORT, retryScheduleMs: [0, ...Array(60).fill(300)] } });
  const held = await w.flow({ name: 'Held', steps: [{ key: 'done', transform: { ok: true } }] });
  const free = await w.flow({ name: 'Free', steps: [{ key: 'done', transform: { ok: true } }] });
  // The held flow's execution.started is refused until the other execution's events have all been
  // delivered (at least once): were they held up by it, it would be refused until its attempts ran out.
  const receiver = await startReceiver((heard) => (heard.event.data.flowId === held.id && heard.event.type === 'execution.started' && !freeDone() ? 503 : 200));
  t.teardown(() => receiver.close());
  const freeDone = () =>
    receiver.heard.some((heard) => heard.event.data.flowId === free.id && heard.event.type === 'execution.completed' && heard.answer === 200);
  await subscribe(w.db, w.keyring, w.member.orgId, receiver.url);

  const first = await w.run(held.id);
  await until('the held execution.started refused once', () => receiver.heard.some((heard) => heard.event.data.id === first.id && heard.answer === 503));
  const second = await w.run(free.id);
  await until('all four events delivered', () => receiver.delivered().length === 4);
  const of = (id: string) => receiver.heard.filter((heard) => heard.event.data.id === id);
  const heldHeard = of(first.id).map((heard) => `${heard.event.type} ${heard.answer}`);
  t.same(
    heldHeard.filter((line) => line !== 'execution.started 503'),
    ['execution.started 200', 'execution.completed 200'],
    'execution.completed is not sent before execution.started is delivered',
  );
  t.ok(heldHeard.indexOf('execution.started 200') > 0, 'execution.started was refused before it was delivered');
  t.same(
    of(second.id).map((heard) => `${heard.event.type} ${heard.answer}`),
    ['execution.started 200', 'execution.completed 200'],
    'the other execution’s events were delivered while the held one’s were refused',
  );
});

t.test('a subscription failing for longer than the limit is disabled, says why, and resumes its pending deliveries once enabled', async (t) => {
  // Retries that last longer than the limit: the subscription is disabled while its delivery is still pending.
  const w = await world(t, { events: { ...SHORT, retryScheduleMs: Array(20).fill(200), failingLimitMs: 1500 } });
  let answer = 500;
  const receiver = await startReceiver(() => answer);
  t.teardown(() => receiver.close());
  const subscription = await subscribe(w.db, w.keyring, w.member.orgId, receiver.url, { events: ['execution.completed'] });
  const flow = await w.flow({ steps: [{ key: 'done', transform: { ok: true } }] });
  await w.run(flow.id);
  const state = async () =>
    (
      await w.db.$queryRaw<{ enabled: boolean; disabledReason: string | null; failingSince: Date | null }[]>`
        SELECT enabled, disabled_reason AS "disabledReason", failing_since AS "failingSince" FROM subscriptions WHERE id = ${subscription.id}::uuid`
    )[0]!;
  await until('the subscription disabled', async () => !(await state()).enabled);
  const disabled = await state();
  t.match(
    disabled.disabledReason,
    /^Disabled at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: every delivery since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ failed; the last answered HTTP 500\.$/,
  );
  const attemptsAtDisabling = receiver.heard.length;
  t.ok(attemptsAtDisabling >= 5, `${attemptsAtDisabling} attempts over the 1.5 s limit`);
  const [row] = await w.db.$queryRaw<{ status: string }[]>`SELECT status::text FROM event_deliveries WHERE subscription_id = ${subscription.id}::uuid`;
  t.equal(row!.status, 'pending', 'its delivery is kept pending');

  // While disabled: no events are stored for it, and nothing is sent.
  await w.run(flow.id);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(receiver.heard.length, attemptsAtDisabling, 'nothing is sent while disabled');

  answer = 200;
  await w.db.$executeRaw`UPDATE subscriptions SET enabled = true, disabled_reason = NULL WHERE id = ${subscription.id}::uuid`;
  await until('the pending delivery sent once enabled again', () => receiver.delivered().length === 1);
  await until('its failing streak ended by the delivery', async () => (await state()).failingSince === null);
});

t.test('a hanging receiver holds up no run', async (t) => {
  const w = await world(t, { events: { ...EVENTS, sendTimeoutMs: 30_000 } });
  const receiver = await startReceiver(() => 'hang');
  t.teardown(() => receiver.close());
  await subscribe(w.db, w.keyring, w.member.orgId, receiver.url);
  const flow = await w.flow({ steps: [{ key: 'call', actionId: await w.action() }] });
  for (let i = 0; i < 5; i++) {
    const started = Date.now();
    const execution = await w.run(flow.id);
    t.equal(execution.status, 'completed');
    t.ok(Date.now() - started < 5000, `run ${i} finished in ${Date.now() - started} ms while its events hang`);
  }
  // Each run's execution.started, as many as one organization may have in flight (TOLSTOY_EVENT_ORG_SENDS).
  await until('events in flight at the receiver', () => receiver.heard.length === EVENTS.orgInFlight);
});

t.test('one organization’s hanging receiver delays no other organization’s events', async (t) => {
  const app = await buildTestApp(t, { worker: true, events: { ...EVENTS, sendTimeoutMs: 30_000, inFlight: 6, orgInFlight: 2 } });
  const hanging = await startReceiver(() => 'hang');
  const prompt = await startReceiver();
  t.teardown(() => Promise.all([hanging.close(), prompt.close()]));
  const slow = await createTenant(app.app, 'Slow');
  const fast = await createTenant(app.app, 'Fast');
  const flowOf = async (member: typeof slow) => {
    const flow = await call(app.app, member, { method: 'POST', url: '/flows', payload: { name: 'F', steps: [{ key: 'done', transform: 1 }] } });
    return flow.data.id as string;
  };
  const runOf = async (member: typeof slow, flowId: string) =>
    call(app.app, member, { method: 'POST', url: `/flows/${flowId}/executions`, payload: {}, headers: { prefer: 'wait=10' } });
  await subscribe(app.db, app.keyring, slow.orgId, hanging.url);
  await subscribe(app.db, app.keyring, fast.orgId, prompt.url);
  const slowFlow = await flowOf(slow);
  const fastFlow = await flowOf(fast);
  for (let i = 0; i < 10; i++) await runOf(slow, slowFlow);
  await until('the slow organization’s sends in flight', () => hanging.heard.length >= 2);
  const sentAt = Date.now();
  await runOf(fast, fastFlow);
  await until('the other organization’s events', () => prompt.delivered().length === 2, 5000);
  t.ok(Date.now() - sentAt < 5000);
  t.equal(hanging.heard.length, 2, 'the hanging organization has at most 2 sends in flight (TOLSTOY_EVENT_ORG_SENDS)');
});
