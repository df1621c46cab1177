// Leaking a tool's credentials through control flow, by a member who may run flows but not read
// them. The target echoes every request, the bearer token included; the flow then tries to carry
// the echo out:
// - into a transform's output, a loop's items (and so each iteration's templates), a parallel
//   branch, a switch's case expression, and a sub-flow's input and output;
// - across a park (a sleep ends the turn; the next turn reads what the first recorded);
// - into the step's error, when the target answers 500 with the echo.
// What it must get: the token appears nowhere, in the parent or the child: not in any step run,
// execution log, execution input or output, nor in any answer of the API.
import t from 'tap';
import { world } from '../engine/world.ts';

const TOKEN = 'tok-7f3c9a51d2e84b06';
const w = await world(t);

t.test('a bearer token echoed by the target reaches no transform, loop, sub-flow or log', async (t) => {
  const tool = await w.send({
    method: 'POST',
    url: '/tools',
    payload: { name: 'Secret API', baseUrl: w.target.url, authType: 'bearer', credentials: { token: TOKEN } },
  });
  const echo = (
    await w.send({ method: 'POST', url: '/actions', payload: { toolId: tool.data.id, name: 'Echo', key: 'echo', method: 'POST', endpoint: '/echo/auth' } })
  ).data.id;
  const child = await w.flow({ name: 'Carrier', steps: [{ key: 'carry', transform: { $eval: 'input' } }] });
  const headers = 'steps.call.output.headers';
  const flow = await w.flow({
    steps: [
      { key: 'call', actionId: echo },
      { key: 'copy', transform: { auth: { $eval: `${headers}.authorization` }, all: { $eval: headers } } },
      { key: 'pause', sleep: { ms: 50 } },
      { key: 'later', transform: { $eval: `${headers}.authorization` } },
      {
        key: 'each',
        forEach: { items: `[${headers}.authorization, ${headers}]`, steps: [{ key: 'seen', transform: { item: { $eval: 'item' } } }] },
      },
      {
        key: 'route',
        switch: { cases: [{ if: `${headers}.authorization == 'Bearer ${TOKEN}'`, steps: [{ key: 'matched', transform: 'the token is known' }] }], default: [] },
      },
      { key: 'both', parallel: { branches: { one: [{ key: 'branch', transform: { $eval: headers } }] } } },
      { key: 'sub', flow: { flowId: child.id, input: { auth: { $eval: `${headers}.authorization` }, copy: { $eval: 'steps.copy.output' } } } },
    ],
    output: { sub: { $eval: 'steps.sub.output' }, later: { $eval: 'steps.later.output' } },
  });
  const done = await w.run(flow.id);
  t.equal(done.status, 'completed');
  t.equal(done.steps.find((step: { key: string }) => step.key === 'route')?.case, 'default', 'no branch tells the token from another value');
  t.notMatch(JSON.stringify(done), TOKEN, 'the parent as the API answers it');
  const childRun = (await w.send({ method: 'GET', url: `/executions?parentId=${done.id}` })).data.items[0];
  t.notMatch(JSON.stringify((await w.send({ method: 'GET', url: `/executions/${childRun.id}` })).data), TOKEN, 'the child as the API answers it');
  for (const id of [done.id, childRun.id]) {
    const logs = await w.app.inject({ method: 'GET', url: `/execution-logs?executionId=${id}&limit=100`, headers: w.member.headers });
    t.equal(logs.statusCode, 200);
    t.notMatch(logs.body, TOKEN, `the logs of ${id}`);
  }
  const stored = await w.db.$queryRaw<{ found: number }[]>`
    SELECT (SELECT count(*) FROM execution_steps WHERE concat(request, response, output, state, error) LIKE ${`%${TOKEN}%`})
      + (SELECT count(*) FROM execution_logs WHERE concat(inputs, outputs, error) LIKE ${`%${TOKEN}%`})
      + (SELECT count(*) FROM executions WHERE concat(input, output, error) LIKE ${`%${TOKEN}%`}) AS found`;
  t.equal(Number(stored[0]!.found), 0, 'no row stores the token');
  t.ok(
    w.target.received.some((request) => request.headers.authorization === `Bearer ${TOKEN}`),
    'the token was sent',
  );
});

t.test('an answer that quotes the token in a failure stores it nowhere', async (t) => {
  const tool = await w.send({
    method: 'POST',
    url: '/tools',
    payload: { name: 'Failing API', baseUrl: w.target.url, authType: 'bearer', credentials: { token: TOKEN } },
  });
  const failing = (
    await w.send({
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.data.id, name: 'Quoting', key: 'quoting', method: 'POST', endpoint: '/failEcho/500' },
    })
  ).data.id;
  const flow = await w.flow({
    steps: [
      { key: 'each', forEach: { items: '[1, 2]', concurrency: 2, steps: [{ key: 'call', actionId: failing, continueOnError: true }] } },
      { key: 'after', transform: { $eval: 'steps.each.output' } },
    ],
  });
  const done = await w.run(flow.id);
  t.equal(done.status, 'completed');
  t.ok(
    w.target.received.some((request) => request.path.startsWith('/failEcho/') && request.headers.authorization === `Bearer ${TOKEN}`),
    'the API was sent the token, and answered it back in its failure',
  );
  const stored = await w.db.$queryRaw<{ found: number }[]>`
    SELECT (SELECT count(*) FROM execution_steps WHERE execution_id = ${done.id}::uuid AND concat(request, response, output, state, error) LIKE ${`%${TOKEN}%`})
      + (SELECT count(*) FROM execution_logs WHERE execution_id = ${done.id} AND concat(inputs, outputs, error) LIKE ${`%${TOKEN}%`}) AS found`;
  t.equal(Number(stored[0]!.found), 0, 'no row stores the token');
});
