// The checks at save time agree with JSON-e itself: every template here that JSON-e renders in a
// run's context passes them, and every one they refuse fails when JSON-e renders it (in the
// context of a run where step "a" ran and step "b" is the one being checked).
import jsone from 'json-e';
import t from 'tap';
import { TokenBudget, templateProblems } from '../../src/definitions/templateChecks.ts';

const context = {
  input: {
    name: 'Ada',
    list: [1, 2, 3],
    users: [
      { id: 2, name: 'b' },
      { id: 1, name: 'a' },
    ],
    kind: 'a',
    bindings: { x: 1 },
    which: 'a',
    field: 'f',
  },
  steps: { a: { output: { items: [{ name: 'x' }], n: 2 }, status: 200, headers: { 'content-type': 'application/json' } } },
  execution: { id: 'e1', flowId: 'f1', flowVersion: 1 },
};
const keys = { all: ['a', 'b', 'c'], visible: new Set(['a']), self: 'b' };
const check = (template: unknown) => templateProblems(template, keys, new TokenBudget());
const renders = (template: unknown) => {
  try {
    jsone(template as Record<string, unknown>, context);
    return true;
  } catch {
    return false;
  }
};

const valid: unknown[] = [
  { x: { $eval: 'steps.a.output.n + 1' }, y: 'Hi ${input.name}, ${steps["a"].status}', z: '$${not.evaluated}' },
  { x: { $map: { $eval: 'input.list' }, 'each(n, i)': { $eval: 'n * i' } } },
  { x: { $map: { $eval: 'input.bindings' }, 'each(v, k)': { '${k}': { $eval: 'v' } } } },
  { x: { $reduce: { $eval: 'input.list' }, initial: 0, 'each(sum, n)': { $eval: 'sum + n' } } },
  { x: { $let: { who: { $eval: 'input.name' }, steps: 1 }, in: { $eval: 'who + str(steps)' } } },
  { x: { $let: { $eval: 'input.bindings' }, in: { $eval: 'x' } } },
  { x: { $find: { $eval: 'input.users' }, 'each(u)': 'u.id == 1' } },
  { x: { $sort: { $eval: 'input.users' }, 'by(u)': 'u.name' } },
  { x: { $switch: { 'input.kind == "a"': 1, 'input.kind == "b"': 2, $default: 3 } } },
  { x: { $match: { 'len(input.list) > 1': 'many' } } },
  { x: { $if: 'defined("input") && typeof(now) == "string"', then: { $json: { $eval: 'execution' } }, else: null } },
  { x: { $merge: [{ a: 1 }, { $eval: 'steps.a.headers' }] }, y: { $mergeDeep: [{ a: [1] }, { a: [2] }] } },
  { x: { $flatten: [[1], [2]] }, y: { $flattenDeep: [[[1]]] }, z: { $reverse: { $eval: 'input.list' } } },
  { x: { $eval: 'steps[input.which].output.items[0].name + lowercase(input.field) + str(max(1, 2))' } },
  { x: { $eval: '{a: steps.a.output.n, b: [1, 2][0:1], c: "x" in input}' } },
  { $$eval: 'a literal key', '${input.field}': 'an interpolated key' },
];

const refused: unknown[] = [
  { x: { $eval: 'steps.b.output' } },
  { x: { $eval: 'steps.nope' } },
  { x: '${steps.c.status}' },
  { x: { $eval: 'steps.a.outptu' } },
  { x: { $eval: 'execution.idd' } },
  { x: { $eval: 'inptu.name' } },
  { x: { $evl: 'input.name' } },
  { x: { $eval: 'input.name', $if: 'true' } },
  { x: { $eval: 'input.name +' } },
  { x: 'Hi ${input.name' },
  { x: '${}' },
  { x: { $map: { $eval: 'input.list' }, each: 1 } },
  { x: { $let: { who: 1 } } },
  { x: { $let: { who: 1 }, in: { $eval: 'whom' } } },
  { x: { $find: { $eval: 'input.users' }, 'each(u)': { $eval: 'u' } } },
  { x: { $if: 'true', $then: 1 } },
  { x: { $reduce: { $eval: 'input.list' }, 'each(sum, n)': { $eval: 'sum + n' } } },
];

t.test('what JSON-e renders passes the checks', async (t) => {
  for (const template of valid) {
    t.ok(renders(template), `JSON-e renders ${JSON.stringify(template)}`);
    t.same(check(template), [], JSON.stringify(template));
  }
});

t.test('what the checks refuse, JSON-e fails to render', async (t) => {
  for (const template of refused) {
    t.notSame(check(template), [], `refused: ${JSON.stringify(template)}`);
    t.notOk(renders(template), `JSON-e fails on ${JSON.stringify(template)}`);
  }
});

t.test('what a template refers to is read, never evaluated', async (t) => {
  const started = performance.now();
  t.same(check({ x: { $eval: 'len(range(0, 150000000))' } }), []);
  t.comment(`checked in ${(performance.now() - started).toFixed(2)} ms`);
});
