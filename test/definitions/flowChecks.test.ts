// What a flow is checked for when it is written (src/definitions/flowChecks.ts, templateChecks.ts):
// mistakes that would fail every run are refused with 422 naming the step and the field; valid
// templates of every kind still pass; what cannot be checked is saved and warned of.
import t from 'tap';
import { buildTestApp, call, createTenant } from '../helper.ts';

const { app } = await buildTestApp(t);
const acme = await createTenant(app);
const tool = (await call(app, acme, { method: 'POST', url: '/tools', payload: { name: 'Users', baseUrl: 'https://api.example.com' } })).data;
const newAction = async (key: string, endpoint = `/${key}`) =>
  (await call(app, acme, { method: 'POST', url: '/actions', payload: { toolId: tool.id, name: key, key, method: 'POST', endpoint } })).data.id as string;
const post = await newAction('post');
const getUser = await newAction('get-user', '/users/{id}/teams/{team}');

type Steps = { key: string; actionId?: string; inputs?: unknown; if?: string }[];
const save = (steps: Steps, output?: unknown) =>
  call(app, acme, {
    method: 'POST',
    url: '/flows',
    payload: { name: 'Checked', steps: steps.map((step) => ({ actionId: post, ...step })), ...(output === undefined ? {} : { output }) },
  });

t.test('a reference to a step that does not exist, comes later, or is the step itself is refused, naming step and field', async (t) => {
  const response = await save([
    { key: 'first', inputs: { name: { $eval: 'steps.nope.output.name' } } },
    { key: 'second', inputs: { text: 'Hi ${steps.third.output.name}' } },
    { key: 'third', if: 'steps.third.status == 200' },
  ]);
  t.equal(response.statusCode, 422);
  t.same(response.data.errors, [
    { in: 'body', pointer: '/steps/0/inputs/name/$eval', message: '`steps.nope.output.name` refers to step "nope", which this flow does not have' },
    {
      in: 'body',
      pointer: '/steps/1/inputs/text',
      message:
        '${steps.third.output.name}: refers to step "third", which does not run before this step: a template sees the steps before it in its own list and those before the steps that hold it',
    },
    { in: 'body', pointer: '/steps/2/if', message: 'refers to step "third", which is this step itself: a step sees the steps before it' },
  ]);
  t.match(response.data.detail, /body\/steps\/0\/inputs\/name\/\$eval: `steps\.nope\.output\.name` refers to step "nope"/);
  const bracketed = await save([{ key: 'a', inputs: { x: { $eval: 'steps["later"].output' } } }, { key: 'later' }]);
  t.equal(bracketed.statusCode, 422, 'in brackets too');
  t.match(bracketed.data.errors, [{ pointer: '/steps/0/inputs/x/$eval', message: /refers to step "later", which does not run before this step/ }]);
});

t.test('the output template sees every step, and only those', async (t) => {
  const fine = await save([{ key: 'a' }, { key: 'b' }], { a: { $eval: 'steps.a.output' }, b: '${steps.b.status}' });
  t.equal(fine.statusCode, 201);
  const refused = await save([{ key: 'a' }], { c: { $eval: 'steps.c.output' } });
  t.equal(refused.statusCode, 422);
  t.same(refused.data.errors, [{ in: 'body', pointer: '/output/c/$eval', message: '`steps.c.output` refers to step "c", which this flow does not have' }]);
});

t.test('a mistyped operator is refused, named', async (t) => {
  const response = await save([
    { key: 'a', inputs: { name: { $evl: 'input.name' } } },
    { key: 'b', inputs: { $if: 'input.x', $then: { y: 1 } } },
  ]);
  t.equal(response.statusCode, 422);
  t.match(response.data.errors, [
    { pointer: '/steps/0/inputs/name/$evl', message: /^is not a JSON-e operator: \$evl is none of \$eval, / },
    { pointer: '/steps/1/inputs/$then', message: 'is spelled then (no $) in an $if' },
  ]);
  const escaped = await save([{ key: 'a', inputs: { $$evl: 'a key that begins with $', text: 'costs $${input.price}' } }]);
  t.equal(escaped.statusCode, 201, '$$ escapes a key and an interpolation');
});

t.test('a step key that is not a name, referred to with a dot, is refused with the bracket syntax to use', async (t) => {
  const response = await save([
    { key: 'get-user', actionId: getUser, inputs: { id: 1, team: 2 } },
    { key: 'b', inputs: { text: '${steps.get-user.output.name}' } },
  ]);
  t.equal(response.statusCode, 422);
  t.match(response.data.errors, [
    {
      pointer: '/steps/1/inputs/text',
      message: '${steps.get-user.output.name}: reads steps.get-user as steps.get followed by "-user": refer to step "get-user" as steps["get-user"]',
    },
  ]);
  t.equal(response.data.errors.length, 1, 'what follows the misread key is not reported again');
  const dotted = await save([{ key: 'lookup.user' }, { key: 'b', inputs: { x: { $eval: 'steps.lookup.user.output' } } }]);
  t.same(dotted.data.errors, [
    {
      in: 'body',
      pointer: '/steps/1/inputs/x/$eval',
      message: '`steps.lookup.user.output` reads steps.lookup.user as steps.lookup followed by ".user": refer to step "lookup.user" as steps["lookup.user"]',
    },
  ]);
  const bracketed = await save([
    { key: 'get-user', actionId: getUser, inputs: { id: 1, team: 2 } },
    { key: 'b', inputs: { text: '${steps["get-user"].output.name}', whole: { $eval: "steps['get-user'].output" } } },
  ]);
  t.equal(bracketed.statusCode, 201, 'steps["get-user"] refers to it');
});

t.test("an endpoint's placeholder without an input of its name is refused; computed inputs are saved with a warning", async (t) => {
  const missing = await save([{ key: 'a', actionId: getUser, inputs: { id: { $eval: 'input.id' } } }]);
  t.equal(missing.statusCode, 422);
  t.same(missing.data.errors, [
    { in: 'body', pointer: '/steps/0/inputs', message: `has no input "team", which the endpoint /users/{id}/teams/{team} of action ${getUser} needs` },
  ]);
  const escaped = await save([{ key: 'a', actionId: getUser, inputs: { id: 1, team: { $if: 'input.t', then: 1, else: 2 } } }]);
  t.equal(escaped.statusCode, 201);
  t.notOk('warnings' in escaped.data, 'no warnings when there is nothing to say');
  const computed = await save([{ key: 'a', actionId: getUser, inputs: { $merge: [{ id: 1 }, { $eval: 'input.rest' }] } }]);
  t.equal(computed.statusCode, 201, 'the inputs may well have them');
  t.same(
    computed.data.warnings.map((warning: { pointer: string }) => warning.pointer),
    ['/steps/0/inputs', '/steps/0/inputs'],
  );
  t.match(computed.data.warnings[1].message, /are computed, so whether they have the input "team" that the endpoint \/users\/\{id\}\/teams\/\{team\} needs/);
  const read = await call(app, acme, { method: 'GET', url: `/flows/${computed.data.id}` });
  t.notOk('warnings' in read.data, 'warnings belong to the answer of the write');
  t.equal(read.headers.etag, computed.headers.etag, 'and stay out of the ETag');
});

t.test('names no template sees, and fields steps and executions do not have, are refused', async (t) => {
  const response = await save([
    { key: 'a', inputs: { x: { $eval: 'inptu.name' } } },
    { key: 'b', inputs: { x: { $eval: 'steps.a.outptu' }, y: '${execution.flow}' } },
  ]);
  t.equal(response.statusCode, 422);
  t.match(response.data.errors, [
    { pointer: '/steps/0/inputs/x/$eval', message: /refers to `inptu`, which no template sees/ },
    { pointer: '/steps/1/inputs/x/$eval', message: /reads `outptu` of step "a", which has only output, status, httpStatus, headers/ },
    { pointer: '/steps/1/inputs/y', message: /reads execution\.flow; an execution has only id, flowId, flowVersion/ },
  ]);
});

t.test('templates that do not parse, or misshapen operators, are refused where they are', async (t) => {
  const response = await save(
    [
      { key: 'a', inputs: { text: 'Hi ${input.name' } },
      { key: 'b', if: 'input.x ===' },
      { key: 'c', inputs: { list: { $map: { $eval: 'input.l' }, each: 1 } } },
      { key: 'd', inputs: { x: { $let: { 'not-a-name': 1 }, in: 2 } } },
    ],
    { result: { $eval: 'steps.a.output +' } },
  );
  t.equal(response.statusCode, 422);
  t.match(response.data.errors, [
    { pointer: '/steps/0/inputs/text', message: '${input.name: `${` is never closed with `}`' },
    { pointer: '/steps/1/if', message: /^does not parse/ },
    { pointer: '/steps/2/inputs/list', message: 'has keys that $map does not take: each (it takes each(item) or each(item, index))' },
    { pointer: '/steps/3/inputs/x/$let/not-a-name', message: /is not a name \$let can bind/ },
    { pointer: '/output/result/$eval', message: '`steps.a.output +` is incomplete' },
  ]);
});

t.test('valid templates of every kind are accepted', async (t) => {
  const response = await save(
    [
      { key: 'first', inputs: { id: { $eval: 'input.id' }, run: '${execution.id} of ${execution.flowId} v${execution.flowVersion}' } },
      {
        key: 'second',
        if: 'steps.first.status == 200 && len(steps.first.output.items) > 0',
        inputs: {
          names: { $map: { $eval: 'steps.first.output.items' }, 'each(item, i)': { name: '${item.name} #${i}', from: { $eval: 'steps["first"].headers' } } },
          total: { $reduce: { $eval: 'input.numbers' }, initial: 0, 'each(sum, n)': { $eval: 'sum + n' } },
          greeting: { $let: { who: { $eval: 'input.name' } }, in: 'Hello, ${who}' },
          computed: { $let: { $eval: 'input.bindings' }, in: { $eval: 'anything' } },
          found: { $find: { $eval: 'input.users' }, 'each(u)': 'u.id == input.id' },
          sorted: { $sort: { $eval: 'input.users' }, 'by(u)': 'u.name' },
          chosen: { $switch: { 'input.kind == "a"': 1, $default: 2 } },
          matched: { $match: { 'input.x > 1': 'big' } },
          merged: { $merge: [{ a: 1 }, { $eval: 'input.extra' }] },
          key: { '${input.field}': 'a key interpolated' },
          functions: { $eval: 'str(max(1, 2)) + lowercase("A") + typeof(now) + str(defined("input"))' },
          byName: { $eval: 'steps[input.which]' },
          slice: { $eval: 'input.list[1:2]' },
          when: { $fromNow: '1 hour', from: '${input.start}' },
          text: { $json: { $eval: 'input' } },
          nested: [{ $flatten: [[1], [2]] }, { $reverse: { $eval: 'input.list' } }],
        },
      },
    ],
    { first: { $eval: 'steps.first.output' }, second: { $eval: 'steps.second' } },
  );
  t.equal(response.statusCode, 201, JSON.stringify(response.data.errors));
});

t.test('an update is checked against the steps or output it keeps', async (t) => {
  const flow = (await save([{ key: 'a' }, { key: 'b' }], { b: { $eval: 'steps.b.output' } })).data;
  const dropped = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { steps: [{ key: 'a', actionId: post }] } });
  t.equal(dropped.statusCode, 422, 'the output would refer to a step that is gone');
  t.same(dropped.data.errors, [
    { in: 'body', pointer: '/output/b/$eval', message: 'is kept by this update, but `steps.b.output` refers to step "b", which this flow does not have' },
  ]);
  const output = await call(app, acme, {
    method: 'PATCH',
    url: `/flows/${flow.id}`,
    headers: { 'content-type': 'application/merge-patch+json' },
    payload: { output: { c: { $eval: 'steps.c.output' } } },
  });
  t.equal(output.statusCode, 422, 'a new output is checked against the steps the flow keeps');
  t.match(output.data.errors, [{ pointer: '/output/c/$eval', message: /refers to step "c"/ }]);
  const renamed = await call(app, acme, { method: 'PUT', url: `/flows/${flow.id}`, payload: { name: 'Renamed', output: { a: { $eval: 'steps.a.output' } } } });
  t.equal(renamed.statusCode, 200);
  t.equal(renamed.data.version, 2);
});
