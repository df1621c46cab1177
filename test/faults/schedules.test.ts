// Schedule triggers with real worker processes: a schedule of every second goes on through a
// kill -9 of one of two workers (there is no leader: the other's ticker keeps firing) with no slot
// twice and none lost; and after every worker stopped, a fresh worker process applies the
// trigger's catch-up policy to the slots missed meanwhile.
import t from 'tap';
import { TICK_MAX_MS } from '../../src/engine/jobs/schedules.ts';
import { startTarget } from '../engine/target.ts';
import { freshDatabaseUrl } from '../helper.ts';
import { startServer, startWorker, type WorkerProcess } from '../process.ts';
import { allDeliveries, finishedRuns, notifyFlow, type Send, sleep, sql, tally, tenant } from './triggerScene.ts';

async function schedule(send: Send, flowId: string, settings: object): Promise<any> {
  const created = await send('POST', '/triggers', { flowId, name: 'Tick', type: 'schedule', schedule: settings });
  if (created.status !== 201) throw new Error(`creating the trigger failed: ${JSON.stringify(created.data)}`);
  return created.data;
}

async function disable(send: Send, triggerId: string): Promise<void> {
  const patched = await send('PATCH', `/triggers/${triggerId}`, { enabled: false }, { 'content-type': 'application/merge-patch+json' });
  if (patched.status !== 200) throw new Error(`disabling the trigger failed: ${JSON.stringify(patched.data)}`);
}

/** The step's inputs: the slot the run was started for. */
const SLOT = { scheduledAt: { $eval: 'trigger.scheduledAt' } };

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

t.test('every second, two workers, one killed with kill -9 mid-way: no slot twice, none lost', async (t) => {
  const url = await freshDatabaseUrl(t);
  const api = await startServer({ DATABASE_URL: url, TOLSTOY_WORKER: 'false' });
  t.teardown(() => api.process.kill('SIGKILL'));
  const workers: WorkerProcess[] = await Promise.all([startWorker({ DATABASE_URL: url }), startWorker({ DATABASE_URL: url })]);
  t.teardown(() => {
    for (const worker of workers) worker.process.kill('SIGKILL');
  });
  const target = await startTarget();
  t.teardown(() => target.close());
  const send = await tenant(api.base);
  const tick = await schedule(send, await notifyFlow(send, target.url, '/echo/tick', SLOT), { cron: '* * * * * *', overlap: 'allow' });
  await sleep(4000);
  workers[0]!.process.kill('SIGKILL');
  const killedAt = Date.now();
  await sleep(4000);
  const disabledAt = Date.now();
  await disable(send, tick.id);

  const fired = await allDeliveries(send, tick.id);
  const slots = fired.map((delivery) => Date.parse(delivery.scheduledAt));
  t.equal(fired[0]?.scheduledAt, tick.schedule.nextFireAt, 'the first slot is the one planned when the trigger was made');
  t.same(
    slots.slice(1).map((slot, i) => slot - slots[i]!),
    Array(slots.length - 1).fill(1000),
    `${slots.length} slots a second apart: none twice, none skipped`,
  );
  t.ok(slots.at(-1)! > killedAt + 2000, 'slots went on firing after the kill');
  // A slot due as the trigger is disabled may be left unfired; older ones were fired.
  t.ok(slots.at(-1)! >= disabledAt - 3000, `no slot lost before the trigger was disabled (the last ${disabledAt - slots.at(-1)!} ms before it)`);
  t.same(
    fired.filter((delivery) => delivery.outcome !== 'started' || !delivery.executionId || !delivery.firedAt),
    [],
    'each slot started a run',
  );

  const lateness = fired.map((delivery) => Date.parse(delivery.firedAt) - Date.parse(delivery.scheduledAt));
  const aroundKill = fired
    .filter((delivery) => Math.abs(Date.parse(delivery.scheduledAt) - killedAt) <= 1500)
    .map((delivery) => Date.parse(delivery.firedAt) - Date.parse(delivery.scheduledAt));
  t.comment(`lateness (firedAt - scheduledAt): median ${median(lateness)} ms, max ${Math.max(...lateness)} ms; around the kill ${aroundKill.join(', ')} ms`);
  t.ok(Math.max(...lateness) < TICK_MAX_MS, 'no slot waited for a ticker to take over: the surviving one fired each on time');

  const runs = await finishedRuns(url, tick.id, 90_000);
  t.same(
    runs.filter((run) => run.status !== 'completed').map((run) => [run.id, run.status]),
    [],
    `all ${runs.length} runs completed`,
  );
  const runsPerSlot = tally(runs.map((run) => run.trigger.scheduledAt));
  t.same(
    fired.map((delivery) => [delivery.scheduledAt, runsPerSlot.get(delivery.scheduledAt) ?? 0]),
    fired.map((delivery) => [delivery.scheduledAt, 1]),
    'each slot has exactly one run',
  );
  t.equal(runs.length, fired.length, 'and no run belongs to no slot');
  t.same(
    fired.map((delivery) => runs.find((run) => run.id === delivery.executionId)?.trigger.scheduledAt),
    fired.map((delivery) => delivery.scheduledAt),
    "each delivery's run is its slot's",
  );
  const calls = tally(
    target.received.filter((request) => request.path === '/echo/tick').map((request) => (request.body as { scheduledAt: string }).scheduledAt),
  );
  t.same([...calls.keys()].sort(), fired.map((delivery) => delivery.scheduledAt).sort(), 'each slot reached the target');
});

t.test('after every worker stopped, a fresh worker process applies each catch-up policy to the slots missed', async (t) => {
  const url = await freshDatabaseUrl(t);
  const api = await startServer({ DATABASE_URL: url, TOLSTOY_WORKER: 'false' });
  t.teardown(() => api.process.kill('SIGKILL'));
  const before = await startWorker({ DATABASE_URL: url });
  t.teardown(() => before.process.kill('SIGKILL'));
  const target = await startTarget();
  t.teardown(() => target.close());
  const send = await tenant(api.base);
  const flowId = await notifyFlow(send, target.url, '/echo/tick', SLOT);
  // Three minutes of the hour, 5, 4 and 3 minutes ago: each far older than the grace (30 s), so
  // none is on time whenever the worker fires them (the current minute of `* * * * *` could be).
  const [{ minute }] = (await sql<{ minute: Date }>(url, "SELECT date_trunc('minute', now()) AS minute")) as [{ minute: Date }];
  const missed = [5, 4, 3].map((ago) => new Date(minute.getTime() - ago * 60_000));
  const cron = `${missed.map((slot) => slot.getUTCMinutes()).join(',')} * * * *`;
  const policies = { skip: ['missed', 'missed', 'missed'], latest: ['missed', 'missed', 'started'], all: ['started', 'started', 'started'] };
  const triggers = new Map<string, any>();
  for (const catchUp of Object.keys(policies)) triggers.set(catchUp, await schedule(send, flowId, { cron, catchUp, overlap: 'allow' }));

  before.process.kill('SIGKILL');
  await before.exited;
  // Down since before the first of them, as if no worker had run for six minutes.
  await sql(url, "UPDATE triggers SET next_fire_at = $1::timestamptz - interval '6 minutes'", [minute]);
  for (const trigger of triggers.values()) t.same(await allDeliveries(send, trigger.id), [], 'nothing fires while no worker runs');

  const after = await startWorker({ DATABASE_URL: url });
  t.teardown(() => after.process.kill('SIGKILL'));
  for (const [catchUp, outcomes] of Object.entries(policies)) {
    const { id } = triggers.get(catchUp);
    let listed: any[] = [];
    for (let i = 0; i < 200 && listed.length < missed.length; i++) {
      await sleep(50);
      listed = await allDeliveries(send, id);
    }
    t.same(
      listed.map((delivery) => [delivery.scheduledAt, delivery.outcome]),
      missed.map((slot, i) => [slot.toISOString(), outcomes[i]]),
      `${catchUp}: ${outcomes.join(', ')}`,
    );
    const runs = await finishedRuns(url, id, 30_000);
    t.same(
      runs.map((run) => [run.trigger.scheduledAt, run.status]).sort(),
      listed.filter((delivery) => delivery.outcome === 'started').map((delivery) => [delivery.scheduledAt, 'completed']),
      `${catchUp}: a run for each slot started, completed`,
    );
    const { schedule: now } = (await send('GET', `/triggers/${id}`)).data;
    t.equal(now.lastFireAt, missed.at(-1)!.toISOString(), `${catchUp}: the last slot is recorded`);
    t.equal(now.nextFireAt, new Date(missed[0]!.getTime() + 3_600_000).toISOString(), `${catchUp}: the next is in an hour`);
  }
});
