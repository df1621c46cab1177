// Templates at save time: a tenant writes templates that cost a great deal to evaluate, or to
// read, and saves them. Saving parses them and never evaluates them (src/definitions/templateChecks.ts).
//
// Attacks, and what each must get:
// - `$reduce` nested in `$reduce` over `range(0, 150000000)`, in inputs, a condition and the
//   output: saved (201) without evaluating any of it, the process's heap unmoved, and another
//   tenant's run against the target completes meanwhile.
// - `range(0, 150000000)` built into a string key (`${…}`) and a `$let`: saved (201), same.
// - Parentheses and unary minus nested two hundred thousand deep: 422 "is nested too deeply", no
//   stack overflow reaching the process.
// - A 1 MiB body of expression tokens (sums, lists, interpolations, string keys): 422 naming
//   the first field past the flow's bound of FLOW_EXPRESSION_TOKENS tokens.
// Each save's time and the event loop's longest stall are reported (t.comment), not asserted.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { FLOW_EXPRESSION_TOKENS } from '../../src/definitions/templateChecks.ts';
import { world } from '../engine/world.ts';
import { call, createTenant } from '../helper.ts';

const w = await world(t);
const attacker = await createTenant(w.app, 'Attacker');
const tool = await call(w.app, attacker, { method: 'POST', url: '/tools', payload: { name: 'Anything', baseUrl: w.target.url } });
const action = await call(w.app, attacker, {
  method: 'POST',
  url: '/actions',
  payload: { toolId: tool.data.id, name: 'echo', key: 'echo', method: 'POST', endpoint: '/echo/attack' },
});

const HUGE = 'range(0, 150000000)';
const nestedReduce = {
  $reduce: { $eval: HUGE },
  initial: 0,
  'each(total, n)': { $reduce: { $eval: HUGE }, initial: { $eval: 'total' }, 'each(sum, m)': { $eval: 'sum + n * m' } },
};

/** 400 keys, each a `${…}` to interpolate. */
function manyKeys(group: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`\${input.k${group}x${i}}`, i]));
}

/** Saves the flow as the attacker, reporting how long it took and the event loop's longest stall. */
async function save(t: Test, label: string, payload: Record<string, unknown>) {
  const stalls = monitorEventLoopDelay({ resolution: 1 });
  stalls.enable();
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const response = await call(w.app, attacker, { method: 'POST', url: '/flows', payload: { name: label, ...payload } });
  const ms = performance.now() - started;
  stalls.disable();
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
  t.comment(
    `${label}: ${response.statusCode} in ${ms.toFixed(1)} ms, longest event-loop stall ${(stalls.max / 1e6).toFixed(1)} ms, heap ${heapMb.toFixed(1)} MB`,
  );
  return response;
}

/** Another tenant's run, against the target, completes: the process is healthy. */
async function othersRunStill(t: Test) {
  const echo = await w.action();
  const flow = await w.flow({ steps: [{ key: 'hello', actionId: echo, inputs: { text: 'hello' } }] });
  const execution = await w.run(flow.id);
  t.equal(execution.status, 'completed', "another tenant's run completes");
}

t.test('nested $reduce over range(0, 150000000) is saved without being evaluated', async (t) => {
  const response = await save(t, 'nested reduce', {
    steps: [{ key: 'a', actionId: action.data.id, inputs: { total: nestedReduce }, if: `len(${HUGE}) > 0` }],
    output: { total: nestedReduce, text: `\${len(${HUGE})}` },
  });
  t.equal(response.statusCode, 201, 'a template that costs much to run is still a valid template');
  t.ok(process.memoryUsage().heapUsed < 512 * 2 ** 20, 'no array of 150 million numbers was built');
  await othersRunStill(t);
});

t.test('range(0, 150000000) in a key and in a $let is saved without being evaluated', async (t) => {
  const response = await save(t, 'range in a key', {
    steps: [{ key: 'a', actionId: action.data.id, inputs: { [`\${str(len(${HUGE}))}`]: 1, x: { $let: { all: { $eval: HUGE } }, in: { $eval: 'len(all)' } } } }],
  });
  t.equal(response.statusCode, 201);
  await othersRunStill(t);
});

t.test('expressions nested two hundred thousand deep are refused, not a stack overflow', async (t) => {
  const deep = 200_000;
  const response = await save(t, 'deep nesting', {
    steps: [
      { key: 'a', actionId: action.data.id, inputs: { parens: { $eval: `${'('.repeat(deep)}1${')'.repeat(deep)}` } } },
      { key: 'b', actionId: action.data.id, inputs: { minus: { $eval: `${'-'.repeat(deep)}1` } } },
    ],
  });
  t.equal(response.statusCode, 422);
  t.match(response.data.errors, [
    { pointer: '/steps/0/inputs/parens/$eval', message: /is nested too deeply$/ },
    { pointer: '/steps/1/inputs/minus/$eval', message: /is nested too deeply$/ },
  ]);
  await othersRunStill(t);
});

t.test('a body full of expression tokens is refused past the bound, naming where', async (t) => {
  const tokens = 450_000;
  const bodies: [string, Record<string, unknown>, string][] = [
    [
      'a long sum',
      {
        x: {
          $eval: Array(tokens / 2)
            .fill('1')
            .join('+'),
        },
      },
      '/steps/0',
    ],
    [
      'a long list',
      {
        x: {
          $eval: `[${Array(tokens / 2)
            .fill('1')
            .join(',')}]`,
        },
      },
      '/steps/0',
    ],
    ['many interpolations', { x: '${input.a}'.repeat(tokens / 5) }, '/steps/0'],
    ['many keys', Object.fromEntries(Array.from({ length: 50 }, (_, group) => [`g${group}`, manyKeys(group)])), '/steps/0'],
  ];
  for (const [label, inputs, pointer] of bodies) {
    const response = await save(t, label, { steps: [{ key: 'a', actionId: action.data.id, inputs }] });
    t.equal(response.statusCode, 422, label);
    t.same(response.data.errors, [
      {
        in: 'body',
        pointer,
        message: `has more than ${FLOW_EXPRESSION_TOKENS} tokens of expressions with those before it; a flow may hold no more in all: split it, or compute less in its templates`,
      },
    ]);
  }
  await othersRunStill(t);
});
