// Retries, counted at real receivers with a short schedule: one that fails N times then takes
// it (the same webhook-id and body each time), one that answers 429 with a longer Retry-After,
// one that hangs (each attempt ends at the timeout), one that refuses for good (a 4xx), and a
// target the SSRF guard refuses.
import t, { type Test } from 'tap';
import { EVENTS, type EventSettings } from '../../src/config/settings.ts';
import { world } from '../engine/world.ts';
import { startReceiver, subscribe, until } from './scene.ts';

const SHORT: EventSettings = { ...EVENTS, sendTimeoutMs: 600, retryScheduleMs: [0, 200, 400, 400] };

type Row = { id: string; status: string; attempts: number; lastStatus: number | null; lastError: string | null; nextAttemptAt: Date | null };
const rowsOf = (w: Awaited<ReturnType<typeof world>>, subscriptionId: string) =>
  w.db.$queryRaw<Row[]>`SELECT id, status::text, attempts, last_status AS "lastStatus", last_error AS "lastError", next_attempt_at AS "nextAttemptAt"
    FROM event_deliveries WHERE subscription_id = ${subscriptionId}::uuid ORDER BY seq`;

/** A world whose runs each make one event (execution.completed) for a subscription at `url`. */
async function scene(t: Test, url: string, events: Partial<EventSettings> = {}, allowPrivateTargets = true) {
  const w = await world(t, { events: { ...SHORT, ...events }, allowPrivateTargets });
  const subscription = await subscribe(w.db, w.keyring, w.member.orgId, url, { events: ['execution.completed'] });
  const flow = await w.flow({ steps: [{ key: 'done', transform: { ok: true } }] });
  return { w, subscription, flow };
}

t.test('a receiver that fails twice then takes it hears the same webhook-id and body three times, by the schedule', async (t) => {
  const receiver = await startReceiver((_, earlier) => (earlier < 2 ? 503 : 204));
  t.teardown(() => receiver.close());
  const { w, subscription, flow } = await scene(t, receiver.url);
  await w.run(flow.id);
  await until('the third attempt taken', () => receiver.delivered().length === 1);
  await until('and recorded', async () => (await rowsOf(w, subscription.id))[0]?.status === 'delivered');
  const [first, second, third] = receiver.heard;
  t.equal(receiver.heard.length, 3);
  t.equal(new Set(receiver.heard.map((heard) => heard.headers['webhook-id'])).size, 1, 'one webhook-id');
  t.equal(new Set(receiver.heard.map((heard) => heard.body)).size, 1, 'one body');
  t.ok(second!.at - first!.at >= 180, `the second attempt ${second!.at - first!.at} ms after the first (schedule: 200)`);
  t.ok(third!.at - second!.at >= 380, `the third ${third!.at - second!.at} ms after the second (schedule: 400)`);
  t.match(await rowsOf(w, subscription.id), [{ status: 'delivered', attempts: 3, lastStatus: 204, lastError: null, nextAttemptAt: null }]);
  const [sub] = await w.db.$queryRaw<
    { failingSince: Date | null }[]
  >`SELECT failing_since AS "failingSince" FROM subscriptions WHERE id = ${subscription.id}::uuid`;
  t.equal(sub!.failingSince, null, 'a delivery ends the failing streak');
});

t.test('a 429 with a Retry-After longer than the schedule is waited for', async (t) => {
  const receiver = await startReceiver((_, earlier) => (earlier === 0 ? { status: 429, headers: { 'retry-after': '2' } } : 200));
  t.teardown(() => receiver.close());
  const { w, flow } = await scene(t, receiver.url, { retryScheduleMs: [0, 200, 5000] });
  await w.run(flow.id);
  await until('the attempt after the 429', () => receiver.delivered().length === 1);
  const [first, second] = receiver.heard;
  t.ok(second!.at - first!.at >= 1900, `the second attempt ${second!.at - first!.at} ms after the 429 (Retry-After: 2 s, schedule: 200 ms)`);
});

t.test('Retry-After is bounded by the schedule’s longest wait', async (t) => {
  const receiver = await startReceiver((_, earlier) => (earlier === 0 ? { status: 429, headers: { 'retry-after': '3600' } } : 200));
  t.teardown(() => receiver.close());
  const { w, flow } = await scene(t, receiver.url, { retryScheduleMs: [0, 100, 1000] });
  await w.run(flow.id);
  await until('the attempt after the 429', () => receiver.delivered().length === 1, 10_000);
  const [first, second] = receiver.heard;
  t.ok(second!.at - first!.at >= 950, `${second!.at - first!.at} ms: at least the schedule's longest wait`);
});

t.test('a receiver that hangs: each attempt ends at the timeout, and after the last the delivery fails', async (t) => {
  const receiver = await startReceiver(() => 'hang');
  t.teardown(() => receiver.close());
  const { w, subscription, flow } = await scene(t, receiver.url);
  const started = Date.now();
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'completed');
  await until('the delivery failed', async () => (await rowsOf(w, subscription.id))[0]?.status === 'failed');
  t.equal(receiver.heard.length, 4, 'four attempts, as the schedule has four waits');
  for (const [i, heard] of receiver.heard.entries()) if (i > 0) t.ok(heard.at - receiver.heard[i - 1]!.at >= 600, 'each after the one before timed out');
  t.ok(Date.now() - started < 15_000);
  t.match(await rowsOf(w, subscription.id), [
    { status: 'failed', attempts: 4, lastStatus: null, lastError: /^a timeout: No complete answer within 600 ms/, nextAttemptAt: null },
  ]);
});

t.test('a 4xx other than 408 and 429 fails at once; its answer is kept, bounded', async (t) => {
  const receiver = await startReceiver(() => 410);
  t.teardown(() => receiver.close());
  const { w, subscription, flow } = await scene(t, receiver.url);
  await w.run(flow.id);
  await until('the delivery failed', async () => (await rowsOf(w, subscription.id))[0]?.status === 'failed');
  t.equal(receiver.heard.length, 1, 'not tried again');
  t.match(await rowsOf(w, subscription.id), [{ status: 'failed', attempts: 1, lastStatus: 410, lastError: 'HTTP 410: refused with 410' }]);
});

t.test('a target the SSRF guard refuses fails at once, and is never called', async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const { w, subscription, flow } = await scene(t, receiver.url, {}, false);
  await w.run(flow.id);
  await until('the delivery failed', async () => (await rowsOf(w, subscription.id))[0]?.status === 'failed');
  t.equal(receiver.heard.length, 0);
  t.match(await rowsOf(w, subscription.id), [
    { status: 'failed', attempts: 1, lastStatus: null, lastError: /^a refused target: 127\.0\.0\.1 is not a public address/ },
  ]);
});
