// Attacks by a tenant's own API through what it answers, and what each must get:
// - an answer nested 100,000 levels deep (a few hundred KB, within the response limit): JSON.parse
//   reads it, but every recursive step after it (scrubbing, the budget's count, the call to the
//   evaluator, PostgreSQL) overflows its stack. The step fails `response-too-deep` at once, naming
//   the bound, the run fails, GET /executions/{id} answers it, and the worker goes on.
// - the same for an answer the tool's credentials are echoed in (the scrubber's path).
import { createServer } from 'node:http';
import t from 'tap';
import { world } from '../engine/world.ts';

// Made here, not in a subtest: the test PostgreSQL of a file run alone lives as long as what made it first.
const w = await world(t);

/** An API of the tenant's own that answers JSON nested `levels` deep, echoing the query's `echo`. */
async function deepApi(t: { teardown(fn: () => unknown): void }, levels: number) {
  const server = createServer((request, response) => {
    const echo = new URL(request.url ?? '/', 'http://api').searchParams.get('echo') ?? request.headers['x-api-key'] ?? '';
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(`{"echo":${JSON.stringify(echo)},"deep":${'['.repeat(levels)}${']'.repeat(levels)}}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

for (const auth of [undefined, { authType: 'apiKey', credentials: { name: 'X-Api-Key', value: 'sk-live-0123456789abcdef' } }]) {
  t.test(`an answer nested 100,000 levels deep fails its step${auth ? ' (credentials echoed in it)' : ''}`, async (t) => {
    const baseUrl = await deepApi(t, 100_000);
    const tool = await w.send({ method: 'POST', url: '/tools', payload: { name: 'Deep', baseUrl, ...auth } });
    t.equal(tool.statusCode, 201, 'the tool is created');
    const action = await w.send({
      method: 'POST',
      url: '/actions',
      payload: { toolId: tool.data.id, name: 'deep', key: `deep-${auth ? 'keyed' : 'open'}`, method: 'GET', endpoint: '/deep' },
    });
    t.equal(action.statusCode, 201, 'its action is created');
    const flow = await w.flow({ steps: [{ key: 'deep', actionId: action.data.id }] });
    const started = Date.now();
    const execution = await w.run(flow.id);
    t.ok(Date.now() - started < 10_000, 'the run ends at once, not after the queue retries it');
    t.equal(execution.status, 'failed');
    t.match(execution.steps[0], { status: 'failed', error: { code: 'response-too-deep', message: /deeper than \d+ levels/ } });
    t.match(execution.error, { code: 'step-failed', step: 'deep' });
    const logs = await w.send({ method: 'GET', url: `/execution-logs?executionId=${execution.id}` });
    t.equal(logs.statusCode, 200, 'its logs are read');

    const echo = await w.flow({ steps: [{ key: 'a', actionId: await w.action() }] });
    t.equal((await w.run(echo.id)).status, 'completed', 'the worker goes on with other runs');
  });
}
