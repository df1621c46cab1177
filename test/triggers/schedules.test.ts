// Schedule triggers in one process with a worker and its ticker, on a real database: slots fire
// on time with the schedule's input; after downtime the catch-up policy decides (downtime is
// made by moving a trigger's next slot into the past, as workers that stopped leave it); while a
// run is unfinished the overlap policy decides, with a flow slow enough to overlap.
import t from 'tap';
import { world } from '../engine/world.ts';

const w = await world(t, { concurrency: 8 });
const echo = await w.action({ endpoint: '/echo/tick' });
const quick = await w.flow({ steps: [{ key: 'tick', actionId: echo, inputs: { at: { $eval: 'trigger.scheduledAt' } } }] });
const slowAction = await w.action({ endpoint: '/slow/2200/tick' });
const slow = await w.flow({ steps: [{ key: 'tick', actionId: slowAction }] });

async function schedule(flowId: string, settings: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const created = await w.send({ method: 'POST', url: '/triggers', payload: { flowId, name: 'Tick', type: 'schedule', schedule: settings, ...extra } });
  if (created.statusCode !== 201) throw new Error(`creating a trigger failed: ${created.body}`);
  return created.data;
}

async function deliveries(triggerId: string) {
  return (await w.send({ method: 'GET', url: `/triggers/${triggerId}/deliveries?limit=100` })).data.items.reverse();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('every second: each slot starts one run with the input, its scheduledAt, and little lateness', async (t) => {
  const tick = await schedule(quick.id, { cron: '* * * * * *', input: { full: true }, overlap: 'allow' });
  t.match(tick.schedule, { cron: '* * * * * *', timezone: 'UTC', catchUp: 'latest', overlap: 'allow', lastFireAt: null });
  t.ok(Date.parse(tick.schedule.nextFireAt) > Date.parse(tick.createdAt) - 1000);
  t.equal(new Date(tick.schedule.nextFireAt).getUTCMilliseconds(), 0, 'slots are whole seconds');
  await sleep(3300);
  await w.send({ method: 'PATCH', url: `/triggers/${tick.id}`, payload: { enabled: false }, headers: { 'content-type': 'application/merge-patch+json' } });
  const fired = await deliveries(tick.id);
  t.ok(fired.length >= 3 && fired.length <= 4, `3 or 4 slots in 3.3 s (${fired.length})`);
  const slots = fired.map((d: any) => Date.parse(d.scheduledAt));
  t.same(
    slots,
    [...slots].sort((a, b) => a - b),
  );
  t.equal(new Set(slots).size, slots.length, 'no slot twice');
  for (const [i, slot] of slots.entries()) if (i > 0) t.equal(slot - slots[i - 1]!, 1000, 'no slot skipped');
  for (const delivery of fired) {
    t.equal(delivery.outcome, 'started');
    t.ok(Date.parse(delivery.firedAt) - Date.parse(delivery.scheduledAt) < 1000, 'fired within a second of its slot');
    const run = await w.finished(delivery.executionId);
    t.equal(run.status, 'completed');
    t.same(run.input, { full: true });
    t.same(run.trigger, { type: 'schedule', id: tick.id, deliveryId: delivery.id, scheduledAt: delivery.scheduledAt });
  }
  const disabled = (await w.send({ method: 'GET', url: `/triggers/${tick.id}` })).data;
  t.equal(disabled.schedule.nextFireAt, null, 'a disabled schedule has no next slot');
  t.equal(disabled.schedule.lastFireAt, fired.at(-1).scheduledAt);
});

/** Moves the trigger's next slot `days` midnights into the past, as if no worker had run since. */
async function downFor(triggerId: string, days: number) {
  await w.db.$executeRaw`UPDATE triggers SET next_fire_at = date_trunc('day', now()) - make_interval(days => ${days - 1}) WHERE id = ${triggerId}::uuid`;
  await w.db.$executeRaw`SELECT pg_notify('tolstoy_schedules', '')`;
}

async function settled(triggerId: string, count: number) {
  for (let i = 0; i < 100; i++) {
    const listed = await deliveries(triggerId);
    if (listed.length >= count) return listed;
    await sleep(50);
  }
  throw new Error(`trigger ${triggerId} reached fewer than ${count} slots`);
}

t.test('catch-up after three missed midnights: skip, latest, all', async (t) => {
  const midnight = (daysAgo: number) => new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000 - daysAgo * 86_400_000).toISOString();
  const policies = { skip: ['missed', 'missed', 'missed'], latest: ['missed', 'missed', 'started'], all: ['started', 'started', 'started'] };
  for (const [catchUp, outcomes] of Object.entries(policies)) {
    const nightly = await schedule(quick.id, { cron: '0 0 * * *', catchUp, overlap: 'allow' });
    await downFor(nightly.id, 3);
    const listed = await settled(nightly.id, 3);
    t.same(
      listed.map((d: any) => [d.scheduledAt, d.outcome]),
      [midnight(2), midnight(1), midnight(0)].map((at, i) => [at, outcomes[i]]),
      catchUp,
    );
    const after = (await w.send({ method: 'GET', url: `/triggers/${nightly.id}` })).data.schedule;
    t.equal(after.nextFireAt, new Date(Date.parse(midnight(0)) + 86_400_000).toISOString(), `${catchUp}: next is the coming midnight`);
    t.equal(after.lastFireAt, midnight(0));
  }
});

t.test('overlap with a run slower than the period: skip, queue, allow', async (t) => {
  // Three slots only, a second apart, for the queue: disabling a trigger skips its queued slots.
  const seconds = [2, 3, 4].map((ahead) => (new Date().getUTCSeconds() + ahead) % 60).join(',');
  const triggers = {
    skip: await schedule(slow.id, { cron: '* * * * * *', overlap: 'skip' }),
    queue: await schedule(slow.id, { cron: `${seconds} * * * * *`, overlap: 'queue' }),
    allow: await schedule(slow.id, { cron: '* * * * * *', overlap: 'allow' }),
  };
  await sleep(4500);
  for (const trigger of [triggers.skip, triggers.allow]) {
    await w.send({ method: 'PATCH', url: `/triggers/${trigger.id}`, payload: { enabled: false }, headers: { 'content-type': 'application/merge-patch+json' } });
  }
  const skip = await deliveries(triggers.skip.id);
  t.equal(skip[0].outcome, 'started');
  t.ok(
    skip.slice(1, 3).every((d: any) => d.outcome === 'skipped' && /unfinished/.test(d.reason)),
    'slots while the run is unfinished are skipped',
  );
  t.ok(
    skip.some((d: any, i: number) => i > 2 && d.outcome === 'started'),
    'and the next after it finished starts',
  );
  const allow = await deliveries(triggers.allow.id);
  t.ok(allow.length >= 4 && allow.every((d: any) => d.outcome === 'started'), 'allow starts every slot');
  const running = await w.db.execution.count({ where: { triggerId: triggers.allow.id, status: { in: ['queued', 'running'] } } });
  t.ok(running >= 2, `runs overlap under allow (${running} unfinished)`);
  // Queued slots start one after another, each when the one before has finished.
  let queued = await deliveries(triggers.queue.id);
  t.equal(queued[0].outcome, 'started');
  t.ok(
    queued.slice(1).some((d: any) => d.outcome === 'queued'),
    'slots wait under queue',
  );
  for (let i = 0; i < 400 && queued.some((d: any) => d.outcome === 'queued'); i++) {
    await sleep(100);
    queued = await deliveries(triggers.queue.id);
  }
  t.equal(queued.length, 3);
  t.ok(
    queued.every((d: any) => d.outcome === 'started'),
    'every queued slot started in the end',
  );
  await w.send({
    method: 'PATCH',
    url: `/triggers/${triggers.queue.id}`,
    payload: { enabled: false },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  const runs = await Promise.all(queued.map((d: any) => w.finished(d.executionId, 60_000)));
  for (const [i, run] of runs.entries()) {
    if (i > 0) t.ok(Date.parse(run.startedAt) >= Date.parse(runs[i - 1].finishedAt), `run ${i} started after run ${i - 1} finished`);
  }
});

t.test('bad schedules are refused with the field named', async (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ cron: '* * * *' }, '/schedule/cron'],
    [{ cron: '0 2 * * *', timezone: 'Mars/Olympus' }, '/schedule/timezone'],
    [{ cron: '0 0 30 2 *' }, '/schedule/cron'],
  ];
  for (const [settings, pointer] of cases) {
    const refused = await w.send({ method: 'POST', url: '/triggers', payload: { flowId: quick.id, name: 'Bad', type: 'schedule', schedule: settings } });
    t.equal(refused.statusCode, 422, JSON.stringify(settings));
    t.equal(refused.data.errors[0].pointer, pointer);
  }
  const noSchedule = await w.send({ method: 'POST', url: '/triggers', payload: { flowId: quick.id, name: 'Bad', type: 'schedule' } });
  t.equal(noSchedule.data.errors[0].pointer, '/schedule');
  const mixed = await w.send({
    method: 'POST',
    url: '/triggers',
    payload: { flowId: quick.id, name: 'Bad', type: 'webhook', schedule: { cron: '* * * * *' } },
  });
  t.equal(mixed.data.errors[0].pointer, '/schedule');
  const noVersion = await w.send({ method: 'POST', url: '/triggers', payload: { flowId: quick.id, name: 'Bad', type: 'webhook', version: 9 } });
  t.equal(noVersion.data.errors[0].pointer, '/version');
});
