// Attacks on flow control (issue 23), and what each must get:
// - many runs waiting for the turn of one rate-limited tool (1 call per 200 ms): each refused
//   reservation was told to come back when the oldest call leaves the window, the same time for
//   all of them, so all came back at once, one went and the others were refused again: N waiting
//   runs made about N²/2 turns (each a claim, an evaluation, two writes), a tenant's cheap way to
//   keep every worker busy. Refused reservations are handed turns spread at the tool's rate: at
//   most `requests` told to come back in any window, and the runs make about one turn each.
import t from 'tap';
import { reserveCall } from '../../src/engine/toolLimits.ts';
import { world } from '../engine/world.ts';

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
  const waits = (await Promise.all(Array.from({ length: 12 }, () => reserveCall(w.db, id)))).filter((wait) => wait > 0);
  t.equal(waits.length, 10, 'two go, ten are refused');
  t.ok(Math.min(...waits) >= 1000, `none comes back before the window passed: ${waits}`);
  t.ok(busiest(waits, 1000) <= 2, `at most 2 told to come back in any second: ${waits.sort((a, b) => a - b)}`);
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
