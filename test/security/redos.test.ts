// Attacks through an action's inputSchema, which a tenant writes and the worker checks every
// step's inputs against. Each must cost its own step at most TOLSTOY_VALIDATION_TIMEOUT_MS, while
// the API keeps answering:
//   - `pattern: ^(a+)+$` against 31 characters (40 s of backtracking in JavaScript's engine) ->
//     RE2 answers at once: the step fails with invalid-inputs, naming the pattern;
//   - the same in `patternProperties` (the key tested) -> the same;
//   - a backreference or a lookahead (which RE2 cannot run) -> refused with 422 naming
//     /inputSchema/... when the action is written, created or updated;
//   - patterns that expand to thousands of instructions (`(a{100}){10}`, a hundred times), costly to
//     compile on the API's event loop -> refused with 422 past 1024 characters of patterns in all;
//   - such a schema stored before this check (written to the database directly) -> the step fails
//     with invalid-inputs ("cannot be compiled"), the worker goes on;
//   - twenty thousand distinct objects against `uniqueItems` (AJV compares every pair: ~10 s) ->
//     validation-limit at TOLSTOY_VALIDATION_TIMEOUT_MS.
// The /health latency and the process's memory while they run are logged (not asserted).
import t from 'tap';
import { world } from '../engine/world.ts';
import { described, watchHealth } from './health.ts';

const w = await world(t);

t.test('catastrophic patterns answer at once, and huge inputs against uniqueItems stop at the bound', async (t) => {
  const pattern = await w.action({ inputSchema: { type: 'object', properties: { name: { type: 'string', pattern: '^(a+)+$' } } } });
  const keyed = await w.action({ inputSchema: { type: 'object', patternProperties: { '^(a+)+$': { type: 'integer' } }, additionalProperties: false } });
  const unique = await w.action({ inputSchema: { type: 'object', properties: { items: { type: 'array', uniqueItems: true } } } });
  const flows = await Promise.all([
    w.flow({ steps: [{ key: 'name', actionId: pattern, inputs: { name: { $eval: 'input.name' } } }] }),
    w.flow({ steps: [{ key: 'keyed', actionId: keyed, inputs: { $eval: 'input.keyed' } }] }),
    w.flow({ steps: [{ key: 'unique', actionId: unique, inputs: { items: { $eval: 'input.items' } } }] }),
  ]);
  const evil = `${'a'.repeat(30)}!`;
  const inputs = [{ name: evil }, { keyed: { [evil]: 'x' } }, { items: Array.from({ length: 20_000 }, (_, i) => ({ i })) }];
  const stop = watchHealth(w.app);
  const began = Date.now();
  // Prefer: wait rather than polling, so that the figures are the server's, not the test's reading.
  const started = flows.map((flow, i) =>
    w.send({ method: 'POST', url: `/flows/${flow.id}/executions`, payload: { input: inputs[i] }, headers: { prefer: 'wait=30' } }),
  );
  const [named, patterned, uniqued] = (await Promise.all(started)).map((response) => response.data);
  const health = await stop();
  t.comment(`three schema attacks at once, settled in ${Date.now() - began} ms: ${described(health)}`);

  t.match(named.steps[0], { status: 'failed', request: null, error: { code: 'invalid-inputs', message: /\/name must match pattern "\^\(a\+\)\+\$"/ } });
  t.match(patterned.steps[0], { status: 'failed', request: null, error: { code: 'invalid-inputs', message: /must NOT have additional properties/ } });
  t.match(uniqued.steps[0], {
    status: 'failed',
    request: null,
    error: {
      code: 'validation-limit',
      message: "Checking the inputs against the action's inputSchema took longer than TOLSTOY_VALIDATION_TIMEOUT_MS (1000 ms).",
    },
  });
  const fine = await w.run(flows[0]!.id, { input: { name: 'aaaa' } });
  t.equal(fine.status, 'completed', 'a matching input passes');
});

t.test('patterns RE2 cannot run are refused when the action is written', async (t) => {
  for (const [schema, pointer] of [
    [{ properties: { pin: { type: 'string', pattern: '^(\\d)\\1{3}$' } } }, '/inputSchema/properties/pin/pattern'],
    [{ properties: { id: { type: 'string', pattern: '^(?=.*[A-Z]).+$' } } }, '/inputSchema/properties/id/pattern'],
    [{ patternProperties: { '(?<!x)y': {} } }, '/inputSchema/patternProperties/(?<!x)y'],
    [{ allOf: Array.from({ length: 100 }, () => ({ pattern: '(a{100}){10}' })) }, /^\/inputSchema\/allOf\/\d+\/pattern$/],
  ] as const) {
    const response = await w.send({
      method: 'POST',
      url: '/actions',
      payload: { toolId: w.toolId, name: 'Evil', key: `evil-${Math.random()}`, method: 'POST', endpoint: '/echo/evil', inputSchema: schema },
    });
    t.equal(response.statusCode, 422, String(pointer));
    t.match(response.data, { type: /unprocessable-content/, errors: [{ in: 'body', pointer, message: /RE2 syntax|more than 1024 characters/ }] });
  }
});

t.test('a schema stored before these checks fails its step, not the worker', async (t) => {
  const action = await w.action();
  const inputSchema = JSON.stringify({ type: 'object', properties: { pin: { type: 'string', pattern: '^(\\d)\\1$' } } });
  await w.db.$executeRaw`UPDATE actions SET input_schema = ${inputSchema} WHERE id = ${action}::uuid`;
  const flow = await w.flow({ steps: [{ key: 'old', actionId: action, inputs: { pin: '11' } }] });
  const execution = await w.run(flow.id);
  t.match(execution.steps[0], { status: 'failed', request: null, error: { code: 'invalid-inputs', message: /inputSchema cannot be compiled/ } });
  const echo = await w.action();
  const after = await w.flow({ steps: [{ key: 'next', actionId: echo, inputs: { a: 1 } }] });
  t.equal((await w.run(after.id)).status, 'completed', 'the worker runs the next flow');
});
