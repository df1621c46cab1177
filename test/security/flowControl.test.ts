// Attacks on flow control (issue 23), and what each must get:
// - many runs waiting for the turn of one rate-limited tool (1 call per 200 ms): each refused
//   reservation was told to come back when the oldest call leaves the window, the same time for
//   all of them, so all came back at once, one went and the others were refused again: N waiting
//   runs made about N²/2 turns (each a claim, an evaluation, two writes), a tenant's cheap way to
//   keep every worker busy. Refused reservations are handed turns spread at the tool's rate: at
//   most `requests` told to come back in any window, and the runs make about one turn each.
// - a flow's onFailure naming another organization's flow, when written or changed: 422 naming
//   /onFailure/flowId, in the words used for an id that names nothing (held).
// - the slots' advisory locks are keyed by a 32-bit hash of (flow, key value), and a tenant chooses
//   key values: two that hash alike are found in a second. Runs ending together took their pairs'
//   locks in the order of (flow, key), not of the locks: with pairs A < B < C where A and C share
//   a lock, one transaction freeing A and B and another freeing B and C each held one lock and
//   waited for the other's, and PostgreSQL broke the deadlock by failing one of them. The locks
//   are taken in their own order.
import t from 'tap';
import type { RunQueue } from '../../src/engine/jobs/queue.ts';
import { freeSlots } from '../../src/engine/runs/slots.ts';
import { reserveCall } from '../../src/engine/toolLimits.ts';
import { world } from '../engine/world.ts';
import { call, createTenant } from '../helper.ts';

const w = await world(t);

async function limitedTool(rateLimit: { requests: number; perMs: number }): Promise<string> {
  const created = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Limited', baseUrl: w.target.url, rateLimit } });
  if (created.statusCode !== 201) throw new Error(`creating a tool failed: ${created.body}`);
  return created.data.id;
}

/** The most of `times` (ms from now) that fall within any `windowMs`. */
function busiest(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  return Math.max(...sorted.map((start) => sorted.filter((time) => time >= start && time < start + windowMs).length));
}

t.test('refused reservations are told to come back spread at the tool’s rate, not all at once', async (t) => {
  const id = await limitedTool({ requests: 2, perMs: 1000 });
  // When each is told to come back, by the database's clock: its wait counts from its own turn at the lock.
  const reserve = async () => {
    const [row] = await w.db.$queryRaw<{ wait: number; at: Date }[]>`SELECT reserve_tool_call(${id}::uuid) AS wait, clock_timestamp() AS at`;
    return { wait: row!.wait, back: row!.at.getTime() + row!.wait };
  };
  const refused = (await Promise.all(Array.from({ length: 12 }, reserve))).filter(({ wait }) => wait > 0);
  t.equal(refused.length, 10, 'two go, ten are refused');
  const [first] = await w.db.$queryRaw<{ at: Date }[]>`SELECT min(at) AS at FROM tool_calls WHERE tool_id = ${id}::uuid`;
  const backs = refused.map(({ back }) => back - first!.at.getTime());
  t.ok(Math.min(...backs) >= 1000, `none comes back before the window passed (ms after the first call): ${backs}`);
  t.ok(busiest(backs, 1000) <= 2, `at most 2 told to come back in any second: ${backs.sort((a, b) => a - b)}`);

  // Turns handed to runs cancelled since: the line reaches at most an hour past a call's chance.
  await w.db.$executeRaw`UPDATE tools SET next_turn_at = now() + interval '1 day' WHERE id = ${id}::uuid`;
  const wait = await reserveCall(w.db, id);
  t.ok(wait > 3_600_000 && wait <= 3_600_000 + 8000, `a call refused behind a long line waits at most an hour past its chance: ${wait} ms`);
});

t.test('runs waiting for a limited tool take about one turn each', async (t) => {
  // Counts reservations as the workers make them (installed before any is made, so none is missed).
  await w.db.$executeRawUnsafe('CREATE TABLE reservations_made (tool_id uuid NOT NULL)');
  await w.db.$executeRawUnsafe('ALTER FUNCTION reserve_tool_call(uuid) RENAME TO reserve_tool_call_counted');
  await w.db.$executeRawUnsafe(`CREATE FUNCTION reserve_tool_call(tool uuid) RETURNS integer LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO reservations_made VALUES (tool); RETURN reserve_tool_call_counted(tool); END $$`);
  const runs = 24;
  const id = await limitedTool({ requests: 1, perMs: 200 });
  const action = await w.action({ toolId: id, endpoint: '/echo/herd' });
  const flow = await w.flow({ steps: [{ key: 'call', actionId: action }] });
  const started = await Promise.all(
    Array.from({ length: runs }, async () => (await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: {} })).data.id as string),
  );
  for (const executionId of started) t.equal((await w.finished(executionId, 60_000)).status, 'completed');
  const [made] = await w.db.$queryRaw<{ n: number }[]>`SELECT count(*)::int AS n FROM reservations_made WHERE tool_id = ${id}::uuid`;
  t.ok(made!.n <= 3 * runs, `${runs} runs made ${made!.n} reservations (at most ${3 * runs})`);
});

t.test('runs ending together whose keys share a slot lock do not deadlock', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'done', transform: 1 }], concurrency: { limit: 1, key: 'input.k' } });
  // Two key values (as stored: JSON) whose pairs hash alike, and one between them that does not.
  const [collision] = await w.db.$queryRawUnsafe<{ a: string; c: string; hash: number }[]>(
    `SELECT min(k) AS a, max(k) AS c, h AS hash FROM (
       SELECT '"' || i || '"' AS k, hashtext($1 || ' "' || i || '"') AS h FROM generate_series(1, 400000) i) keys
     GROUP BY h HAVING count(*) > 1 ORDER BY h LIMIT 1`,
    flow.id,
  );
  t.ok(collision, 'two key values share a lock');
  const [between] = await w.db.$queryRawUnsafe<{ b: string; hash: number }[]>(
    `SELECT k AS b, hashtext($1 || ' ' || k) AS hash FROM (SELECT '"' || i || '"' AS k FROM generate_series(1, 1000) i) keys
     WHERE k > $2 AND k < $3 AND hashtext($1 || ' ' || k) <> $4 LIMIT 1`,
    flow.id,
    collision!.a,
    collision!.c,
    collision!.hash,
  );
  const keys = [collision!.a, between!.b, collision!.c];
  const runs: string[] = [];
  for (const key of keys) {
    const done = await w.run(flow.id, { input: { k: JSON.parse(key) } });
    t.equal(done.status, 'completed');
    runs.push(done.id);
  }
  const stored = await w.db.$queryRaw<
    { key: string }[]
  >`SELECT concurrency_key AS key FROM executions WHERE id = ANY(${runs}::uuid[]) ORDER BY concurrency_key`;
  t.same(
    stored.map((row) => row.key),
    keys,
    'the runs hold those keys',
  );

  // No run waits for a slot: nothing is woken.
  const queue = { wake: async () => undefined } as unknown as RunQueue;
  // One transaction holds both locks while two others line up behind it, each for the first of its pairs;
  // once it ends, each takes its first lock and asks for the other's.
  const held = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const holder = w.db.$transaction(async (tx) => {
    for (const hash of [collision!.hash, between!.hash]) await tx.$executeRaw`SELECT pg_advisory_xact_lock(${0x736c6f74}::int, ${hash}::int)`;
    held.resolve();
    await release.promise;
  });
  await held.promise;
  const ending = [
    [runs[0]!, runs[1]!],
    [runs[1]!, runs[2]!],
  ].map((ids) =>
    w.db
      .$transaction((tx) => freeSlots(tx, queue, ids), { timeout: 30_000 })
      .then(
        () => 'ok',
        (error: Error) => error.message,
      ),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  release.resolve();
  await holder;
  t.same(await Promise.all(ending), ['ok', 'ok'], 'both transactions end');
});

t.test('onFailure naming another organization’s flow is refused as an id naming nothing', async (t) => {
  const other = await createTenant(w.app, 'Other');
  const theirs = await call(w.app, other, { method: 'POST', url: '/flows', payload: { name: 'Theirs', steps: [{ key: 'done', transform: 1 }] } });
  const steps = [{ key: 'done', transform: 1 }];
  const missing = '01900000-0000-7000-8000-000000000000';
  const answers = [];
  for (const flowId of [theirs.data.id, missing]) {
    const created = await w.send({ method: 'POST', url: '/flows', payload: { name: 'Mine', steps, onFailure: { flowId } } });
    t.equal(created.statusCode, 422, 'creating');
    answers.push(created.data.errors.map((error: { pointer: string; message: string }) => [error.pointer, error.message.replace(flowId, 'ID')]));
  }
  t.same(answers[0], answers[1], 'the same answer as for an id naming nothing');
  t.same(answers[0], [['/onFailure/flowId', 'names no flow of this organization: ID']]);
  const mine = await w.flow({ steps });
  const changed = await w.send({ method: 'PUT', url: `/flows/${mine.id}`, payload: { name: 'Mine', steps, onFailure: { flowId: theirs.data.id } } });
  t.equal(changed.statusCode, 422, 'changing');
  const [stored] = await w.db.$queryRaw<{ onFailure: string | null }[]>`SELECT on_failure_flow_id::text AS "onFailure" FROM flows WHERE id = ${mine.id}::uuid`;
  t.equal(stored!.onFailure, null, 'nothing stored');
});
