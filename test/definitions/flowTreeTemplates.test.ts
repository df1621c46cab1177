// What the templates of nested steps see, checked when a flow is written (flowChecks.ts,
// templateExpressions.ts): a template sees `steps.<key>` only for the steps that have run before it
// (those before it in its own list, and those before the steps that hold it, up to the top), and
// `item` and `index` only inside a forEach. Every kind's templates are checked where they are.
import t from 'tap';
import { FLOW_EXPRESSION_TOKENS } from '../../src/definitions/templateChecks.ts';
import { buildTestApp, call, createTenant } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Users', baseUrl: 'https://api.example.com' } })).data;
const post = (
  await call(app, acme, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: 'Post', key: 'post', method: 'POST', endpoint: '/post' } })
).data.id as string;
const save = (steps: unknown[], output?: unknown) =>
  call(app, acme, { method: 'POST', url: '/flows', payload: { name: 'Nested', steps, ...(output === undefined ? {} : { output }) } });
const child = (await save([{ key: 'only', transform: 1 }])).data.id as string;

const NOT_BEFORE = 'which does not run before this step: a template sees the steps before it in its own list and those before the steps that hold it';
const ITSELF = 'which is this step itself: a step sees the steps before it';
const UNKNOWN_NAME =
  'which no template sees (they see input, trigger, steps, execution, now, item and index inside a forEach, and the names a $let, $map, $reduce, $find or $sort binds)';

t.test('a template never sees a later step, the step that holds it, another branch or case, nor the steps inside an earlier one', async (t) => {
  const response = await save(
    [
      { key: 'before', transform: 1 },
      {
        key: 'loop',
        forEach: {
          items: 'steps.before.output',
          steps: [
            { key: 'inner1', transform: { a: { $eval: 'steps.inner2.output' } } },
            { key: 'inner2', transform: { $eval: 'steps.loop.output' } },
            { key: 'inner3', if: 'steps.inner3.status == "completed"', transform: { $eval: 'steps.inner1.output + steps.before.output' } },
          ],
        },
      },
      { key: 'p', parallel: { branches: { a: [{ key: 'a1', transform: 1 }], b: [{ key: 'b1', transform: { $eval: 'steps.a1.output' } }] } } },
      {
        key: 's',
        switch: {
          cases: [
            { if: 'steps.s.case == 0', steps: [{ key: 'c0', transform: 1 }] },
            { if: 'steps.p.status == "completed"', steps: [{ key: 'c1', transform: { $eval: 'steps.c0.output' } }] },
          ],
          default: [{ key: 'd0', transform: '${steps.c1.output}' }],
        },
      },
      { key: 'after', transform: { $eval: 'steps.inner1.output' } },
      { key: 'nap', sleep: { until: 'steps.later.output' } },
      { key: 'later', flow: { flowId: child, input: { n: { $eval: 'item' } } } },
    ],
    { x: { $eval: 'steps.inner1.output' }, y: { $eval: 'steps.later.output' } },
  );
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/1/forEach/steps/0/transform/a/$eval', message: `\`steps.inner2.output\` refers to step "inner2", ${NOT_BEFORE}` },
    { in: 'body', pointer: '/steps/1/forEach/steps/1/transform/$eval', message: `\`steps.loop.output\` refers to step "loop", ${NOT_BEFORE}` },
    { in: 'body', pointer: '/steps/1/forEach/steps/2/if', message: `refers to step "inner3", ${ITSELF}` },
    { in: 'body', pointer: '/steps/2/parallel/branches/b/0/transform/$eval', message: `\`steps.a1.output\` refers to step "a1", ${NOT_BEFORE}` },
    { in: 'body', pointer: '/steps/3/switch/cases/0/if', message: `refers to step "s", ${ITSELF}` },
    { in: 'body', pointer: '/steps/3/switch/cases/1/steps/0/transform/$eval', message: `\`steps.c0.output\` refers to step "c0", ${NOT_BEFORE}` },
    { in: 'body', pointer: '/steps/3/switch/default/0/transform', message: `\${steps.c1.output}: refers to step "c1", ${NOT_BEFORE}` },
    { in: 'body', pointer: '/steps/4/transform/$eval', message: `\`steps.inner1.output\` refers to step "inner1", ${NOT_BEFORE}` },
    { in: 'body', pointer: '/steps/5/sleep/until', message: `refers to step "later", ${NOT_BEFORE}` },
    { in: 'body', pointer: '/steps/6/flow/input/n/$eval', message: `\`item\` refers to \`item\`, ${UNKNOWN_NAME}` },
    {
      in: 'body',
      pointer: '/output/x/$eval',
      message: '`steps.inner1.output` refers to step "inner1", which runs inside another step: the flow\'s output sees the steps of its top level',
    },
  ]);
});

t.test('item and index are seen inside a forEach only, and not by its own items', async (t) => {
  const response = await save([
    { key: 'top', if: 'index > 0', transform: { $eval: 'item' } },
    { key: 'loop', forEach: { items: 'item.children', steps: [{ key: 'in', transform: { $eval: 'item' } }] } },
    { key: 'p', parallel: { branches: { a: [{ key: 'x', switch: { cases: [{ if: 'index == 0', steps: [{ key: 'y', transform: 1 }] }] } }] } } },
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/0/transform/$eval', message: `\`item\` refers to \`item\`, ${UNKNOWN_NAME}` },
    { in: 'body', pointer: '/steps/0/if', message: `refers to \`index\`, ${UNKNOWN_NAME}` },
    { in: 'body', pointer: '/steps/1/forEach/items', message: `refers to \`item\`, ${UNKNOWN_NAME}` },
    { in: 'body', pointer: '/steps/2/parallel/branches/a/0/switch/cases/0/if', message: `refers to \`index\`, ${UNKNOWN_NAME}` },
  ]);
});

t.test("a step's fields are output, status, httpStatus, headers and case", async (t) => {
  const response = await save([
    { key: 's', switch: { cases: [{ if: 'true', steps: [{ key: 'a', transform: 1 }] }] } },
    { key: 'b', transform: { chosen: { $eval: 'steps.s.case' }, typo: { $eval: 'steps.s.cse' } } },
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    {
      in: 'body',
      pointer: '/steps/1/transform/typo/$eval',
      message: '`steps.s.cse` reads `cse` of step "s", which has only output, status, httpStatus, headers, case',
    },
  ]);
});

t.test('nested flows whose templates see what runs before them are accepted', async (t) => {
  const response = await save(
    [
      { key: 'rows', actionId: post },
      {
        key: 'fan',
        parallel: {
          branches: {
            crm: [
              { key: 'crmStart', transform: { at: { $eval: 'now' } } },
              {
                key: 'each',
                forEach: {
                  items: 'steps.rows.output.items',
                  concurrency: 5,
                  steps: [
                    {
                      key: 'pick',
                      switch: {
                        cases: [
                          {
                            if: 'item.vip && index < 10 && steps.crmStart.status == "completed"',
                            steps: [{ key: 'vip', actionId: post, inputs: { id: { $eval: 'item.id' }, at: '${index}', rows: { $eval: 'steps.rows.output' } } }],
                          },
                        ],
                        default: [{ key: 'plain', transform: { $eval: 'item' } }],
                      },
                    },
                    {
                      key: 'note',
                      if: 'steps.pick.status == "completed"',
                      transform: { case: { $eval: 'steps.pick.case' }, out: { $eval: 'steps.pick.output' } },
                    },
                    {
                      key: 'pairs',
                      forEach: { items: 'item.children', steps: [{ key: 'child', transform: { parent: { $eval: 'index' }, me: { $eval: 'item' } } }] },
                    },
                  ],
                },
              },
            ],
            mail: [
              { key: 'wait', waitFor: { signal: 'approval' } },
              { key: 'nap', sleep: { until: 'steps.wait.output.at' } },
            ],
          },
        },
      },
      { key: 'sum', transform: { fan: { $eval: 'steps.fan.output' }, status: '${steps.fan.status}' } },
      {
        key: 'route',
        switch: {
          cases: [
            { if: 'steps.sum.output.fan.crm != null', steps: [{ key: 'sub', flow: { flowId: child, input: { rows: { $eval: 'steps.rows.output' } } } }] },
          ],
        },
      },
      { key: 'which', transform: { $eval: 'steps.route.case' } },
    ],
    { which: { $eval: 'steps.which.output' }, route: { $eval: 'steps.route.case' } },
  );
  t.equal(response.statusCode, 201, JSON.stringify(response.data.errors));
});

t.test("the flow's bound of expression tokens counts every nested step's, naming the step past it", async (t) => {
  const sum = { $eval: Array(1000).fill('input.a').join(' + ') };
  const response = await save([
    { key: 'p', parallel: { branches: { a: [{ key: 'a', transform: sum }], b: [{ key: 'b', transform: sum }], c: [{ key: 'c', transform: sum }] } } },
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    {
      in: 'body',
      pointer: '/steps/0/parallel/branches/c/0',
      message: `has more than ${FLOW_EXPRESSION_TOKENS} tokens of expressions with those before it; a flow may hold no more in all: split it, or compute less in its templates`,
    },
  ]);
});
