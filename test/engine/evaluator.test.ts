// The evaluator's processes: what a step's evaluation answers, and what happens to a task that
// overruns its deadline, its memory or its result limit; the process goes and another takes
// its place, and other tasks are evaluated meanwhile.
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { EVALUATION } from '../../src/config/settings.ts';
import type { TemplateContext } from '../../src/definitions/templates.ts';
import { Evaluator } from '../../src/engine/evaluator.ts';

const context: TemplateContext = { input: { n: 3, text: 'aaa' }, trigger: { type: 'api' }, steps: {}, execution: { id: 'e', flowId: 'f', flowVersion: 1 } };
const schema = { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } };
// A million rounds of JSON-e's interpreter: about ten seconds unbounded.
const NESTED_REDUCE = {
  $reduce: { $eval: 'range(0, 1000)' },
  initial: 0,
  'each(a, x)': { $reduce: { $eval: 'range(0, 1000)' }, initial: 0, 'each(b, y)': { $eval: 'b + 1' } },
};

function evaluator(t: { teardown(fn: () => unknown): void }, settings = {}): Evaluator {
  const evaluator = new Evaluator({ ...EVALUATION, templateTimeoutMs: 300, validationTimeoutMs: 300, ...settings });
  t.teardown(() => evaluator.close());
  return evaluator;
}

t.test("a step's condition, inputs and check, in one evaluation", async (t) => {
  const e = evaluator(t);
  t.same(await e.step('org', { condition: 'input.n > 1', inputs: { n: { $eval: 'input.n' } }, schema }, context), { status: 'ready', value: { n: 3 } });
  t.same(await e.step('org', { condition: 'input.n > 5', inputs: {}, schema }, context), { status: 'skipped' });
  t.match(await e.step('org', { condition: 'input.nope +', inputs: {}, schema }, context), { status: 'failed', phase: 'if', code: 'template-error' });
  t.match(await e.step('org', { condition: null, inputs: { n: { $eval: 'input.text' } }, schema }, context), {
    status: 'failed',
    phase: 'validation',
    code: 'invalid-inputs',
    message: /\/n must be integer/,
    value: { n: 'aaa' },
  });
  t.match(await e.step('org', { condition: null, inputs: [1], schema: undefined }, context), {
    status: 'failed',
    code: 'template-error',
    message: /must render a JSON object/,
  });
  t.same(await e.output('org', { out: '${input.text}!' }, context), { status: 'ready', value: { out: 'aaa!' } });
});

t.test('a template past its deadline fails with template-limit; the process is replaced', async (t) => {
  const e = evaluator(t, { processes: 1 });
  t.match(await e.step('org', { condition: null, inputs: { x: NESTED_REDUCE }, schema: undefined }, context), {
    status: 'failed',
    phase: 'inputs',
    code: 'template-limit',
    message: 'inputs: evaluating the template took longer than TOLSTOY_TEMPLATE_TIMEOUT_MS (300 ms)',
  });
  t.match(await e.output('org', NESTED_REDUCE, context), { status: 'failed', phase: 'output', code: 'template-limit' });
  t.same(
    await e.step('org', { condition: null, inputs: { a: 1 }, schema: undefined }, context),
    { status: 'ready', value: { a: 1 } },
    'the next task is evaluated',
  );
});

t.test('a deadline is of CPU time: a process the machine keeps waiting (SIGSTOP) is not killed for it', async (t) => {
  const e = evaluator(t, { processes: 1 });
  t.same(await e.step('org', { condition: null, inputs: { a: 1 }, schema: undefined }, context), { status: 'ready', value: { a: 1 } }, 'its process started');
  const [pid] = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes('evaluation.ts'))
    .map((line) => Number(line.trim().split(' ')[0]));
  t.ok(pid, 'its one evaluator process');
  process.kill(pid!, 'SIGSTOP');
  const evaluated = e.step('org', { condition: 'input.n > 1', inputs: { n: { $eval: 'input.n' } }, schema }, context);
  // Stopped for more than three times the deadline (300 ms), and less than the allowance (ten times).
  await new Promise((resolve) => setTimeout(resolve, 1000));
  process.kill(pid!, 'SIGCONT');
  t.same(await evaluated, { status: 'ready', value: { n: 3 } }, 'evaluated once it could run');
  t.match(
    await e.step('org', { condition: null, inputs: { x: NESTED_REDUCE }, schema: undefined }, context),
    { status: 'failed', code: 'template-limit' },
    'one that computes is still stopped at its deadline',
  );
});

t.test('a template that exhausts its heap fails with template-limit', async (t) => {
  const e = evaluator(t, { processes: 1, memoryMb: 32, templateTimeoutMs: 5000 });
  t.match(await e.step('org', { condition: null, inputs: { x: { $eval: 'range(0, 150000000)' } }, schema: undefined }, context), {
    status: 'failed',
    code: 'template-limit',
    message: 'inputs: evaluating the template needed more memory than TOLSTOY_EVALUATOR_MEMORY_MB (32 MB)',
  });
  t.match(await e.step('org', { condition: 'len(range(0, 150000000)) > 0', inputs: {}, schema: undefined }, context), {
    status: 'failed',
    phase: 'if',
    code: 'template-limit',
    message: /^if: evaluating the template needed more memory/,
  });
  t.same(await e.output('org', 1, context), { status: 'ready', value: 1 });
});

t.test('a template may render at most TOLSTOY_TEMPLATE_RESULT_LIMIT_BYTES', async (t) => {
  const e = evaluator(t, { resultLimitBytes: 1024 });
  const inputs = { x: { $eval: 'range(0, 1000)' } };
  t.match(await e.step('org', { condition: null, inputs, schema: undefined }, context), {
    status: 'failed',
    code: 'template-limit',
    message: 'inputs: the template renders more than TOLSTOY_TEMPLATE_RESULT_LIMIT_BYTES (1024 bytes of JSON)',
  });
});

t.test('validation past its deadline fails with validation-limit', async (t) => {
  const e = evaluator(t, { processes: 1 });
  const unique = { type: 'object', properties: { items: { type: 'array', uniqueItems: true } } };
  // Twenty thousand distinct objects: AJV compares every pair, about ten seconds.
  const items = Array.from({ length: 20_000 }, (_, i) => ({ i }));
  t.match(await e.step('org', { condition: null, inputs: { items: { $eval: 'input.items' } }, schema: unique }, { ...context, input: { items } }), {
    status: 'failed',
    phase: 'validation',
    code: 'validation-limit',
    message: "Checking the inputs against the action's inputSchema took longer than TOLSTOY_VALIDATION_TIMEOUT_MS (300 ms).",
  });
});

t.test('a schema that cannot be compiled fails the step, not the worker', async (t) => {
  const e = evaluator(t);
  const backreference = { type: 'object', properties: { a: { type: 'string', pattern: '(a)\\1' } } };
  t.match(await e.step('org', { condition: null, inputs: { a: 'aa' }, schema: backreference }, context), {
    status: 'failed',
    code: 'invalid-inputs',
    message: /inputSchema cannot be compiled: .*invalid escape sequence/,
  });
});

t.test("one organization's slow templates make another's wait one deadline at most", async (t) => {
  const e = evaluator(t, { processes: 2 });
  // Both processes started.
  await Promise.all([e.output('warm', 1, context), e.output('warm', 2, context)]);
  const order: string[] = [];
  const slow = Array.from({ length: 6 }, (_, index) => e.output('hostile', NESTED_REDUCE, context).finally(() => order.push(`hostile ${index}`)));
  const started = Date.now();
  const quick = await e.output('other', 'fine', context).finally(() => order.push('other'));
  t.comment(
    `the other organization's template waited ${Date.now() - started} ms behind six that overran (deadline 300 ms, 2 processes, each replaced when killed)`,
  );
  t.same(quick, { status: 'ready', value: 'fine' });
  const settled = await Promise.all(slow);
  t.ok(
    settled.every((outcome) => outcome.status === 'failed' && outcome.code === 'template-limit'),
    'each slow one failed at its deadline',
  );
  t.same(order.slice(0, 3).sort(), ['hostile 0', 'hostile 1', 'other'], 'the other went before the hostile ones still waiting');
});

t.test("one organization's slow templates hold every process but one: another's task does not wait for them", async (t) => {
  // A deadline longer than a process takes to start, as the default (1 s) is.
  const e = evaluator(t, { processes: 2, templateTimeoutMs: 2000 });
  await Promise.all([e.output('warm', 1, context), e.output('warm', 2, context)]);
  const order: string[] = [];
  const slow = Array.from({ length: 2 }, (_, index) => e.output('hostile', NESTED_REDUCE, context).finally(() => order.push(`hostile ${index}`)));
  // Each task of the other organization comes after the last: a run's steps, one at a time.
  for (let step = 0; step < 5; step++) await e.output('other', step, context).finally(() => order.push(`other ${step}`));
  await Promise.all(slow);
  t.same(order.slice(0, 5), ['other 0', 'other 1', 'other 2', 'other 3', 'other 4'], 'the other organization never waited for a deadline');
});

t.test('a closed evaluator refuses tasks', async (t) => {
  const e = evaluator(t);
  e.close();
  await t.rejects(e.output('org', 1, context), /closed/);
});
