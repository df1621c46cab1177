// Attacks by reads that would load unbounded data, and what each must get:
// - GET /executions?limit=100 over runs that each hold an input of about 1 MB (the body limit)
//   and an output up to the execution budget: a page holds at most 4 MiB of them (at least one),
//   with a nextCursor where the rest begin; following the cursors lists every run once.
// - GET /execution-logs?limit=100 over logs that each hold about 1 MB: the same.
// - GET /flows?limit=100 over flows whose steps hold about 1 MB each, and GET /actions?limit=100
//   over actions whose inputSchema holds about 1 MB, and GET /flows/{id}/versions over 100
//   versions of about 1 MB each: the same.
import t from 'tap';
import { world } from '../engine/world.ts';
import { buildTestApp } from '../helper.ts';

const MiB = 1024 * 1024;
const PADDING = 'x'.repeat(1_000_000);
// Made here, not in a subtest: the test PostgreSQL of a file run alone lives as long as what made it first.
// No worker: the runs stay queued, holding their inputs.
const w = await world(t, {}, await buildTestApp(t, { worker: false }));

/** Every item of a list, page after page, and the largest answer on the way. */
async function everyItem(url: string) {
  const ids: string[] = [];
  let largest = 0;
  let pages = 0;
  for (let cursor: string | null = null; pages === 0 || cursor !== null; pages++) {
    const page = await w.send({ method: 'GET', url: `${url}&limit=100${cursor ? `&cursor=${cursor}` : ''}` });
    if (page.statusCode !== 200) throw new Error(`${url} answered ${page.statusCode}: ${page.body.slice(0, 500)}`);
    largest = Math.max(largest, page.body.length);
    ids.push(...page.data.items.map((item: { id: string }) => item.id));
    cursor = page.data.nextCursor;
  }
  return { ids, largest, pages };
}

t.test('a page of executions holds at most 4 MiB of them', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
  const started = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const answer = await w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: { input: { padding: PADDING } } });
    t.equal(answer.statusCode, 202, 'a run with a 1 MB input is queued');
    started.add(answer.data.id);
  }
  const { ids, largest, pages } = await everyItem(`/executions?flowId=${flow.id}`);
  t.ok(largest <= 5 * MiB, `the largest page answers ${largest} bytes`);
  t.ok(pages > 1, `the runs take ${pages} pages`);
  t.same(new Set(ids), started, 'every run is listed');
  t.equal(ids.length, started.size, 'once');
});

t.test('a page of execution logs holds at most 4 MiB of them', async (t) => {
  const flow = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
  const executionId = 'hand-written';
  const written = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const payload = { flowId: flow.id, executionId, stepKey: 'a', status: 'completed', outputs: { padding: PADDING } };
    const answer = await w.send({ method: 'POST', url: '/execution-logs', payload });
    t.equal(answer.statusCode, 201, 'a log of 1 MB is written');
    written.add(answer.data.id);
  }
  const { ids, largest, pages } = await everyItem(`/execution-logs?executionId=${executionId}`);
  t.ok(largest <= 5 * MiB, `the largest page answers ${largest} bytes`);
  t.ok(pages > 1, `the logs take ${pages} pages`);
  t.same(new Set(ids), written, 'every log is listed');
  t.equal(ids.length, written.size, 'once');
});

t.test('a page of flows holds at most 4 MiB of them', async (t) => {
  const actionId = await w.action();
  const created = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const answer = await w.send({
      method: 'POST',
      url: '/flows',
      payload: { name: `Big ${i}`, steps: [{ key: 'a', actionId, inputs: { padding: PADDING } }] },
    });
    t.equal(answer.statusCode, 201, 'a flow of 1 MB is created');
    created.add(answer.data.id);
  }
  const { ids, largest, pages } = await everyItem('/flows?');
  t.ok(largest <= 5 * MiB, `the largest page answers ${largest} bytes`);
  t.ok(pages > 1, `the flows take ${pages} pages`);
  t.ok(
    [...created].every((id) => ids.includes(id)),
    'every flow is listed',
  );
  t.equal(new Set(ids).size, ids.length, 'once');
});

t.test('a page of actions holds at most 4 MiB of them', async (t) => {
  const created = new Set<string>();
  for (let i = 0; i < 100; i++) {
    created.add(await w.action({ key: `big-${i}`, inputSchema: { type: 'object', description: PADDING } }));
  }
  const { ids, largest, pages } = await everyItem('/actions?');
  t.ok(largest <= 5 * MiB, `the largest page answers ${largest} bytes`);
  t.ok(pages > 1, `the actions take ${pages} pages`);
  t.ok(
    [...created].every((id) => ids.includes(id)),
    'every action is listed',
  );
  t.equal(new Set(ids).size, ids.length, 'once');
});

t.test('a page of flow versions holds at most 4 MiB of them', async (t) => {
  const actionId = await w.action();
  const steps = (n: number) => [{ key: 'a', actionId, inputs: { padding: PADDING, n } }];
  const flow = await w.flow({ steps: steps(0) });
  for (let version = 2; version <= 100; version++) {
    const answer = await w.send({ method: 'PUT', url: `/flows/${flow.id}`, payload: { steps: steps(version) } });
    t.equal(answer.statusCode, 200, 'a version of 1 MB is added');
  }
  const { ids, largest, pages } = await everyItem(`/flows/${flow.id}/versions?`);
  t.ok(largest <= 5 * MiB, `the largest page answers ${largest} bytes`);
  t.ok(pages > 1, `the versions take ${pages} pages`);
  t.equal(ids.length, 100, 'every version is listed');
});
