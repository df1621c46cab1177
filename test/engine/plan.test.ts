// The planner on a flow of top-level steps, without a database: every combination of recorded
// states of three steps, with and without continueOnError, against the rules written here in
// words; then waits, steps cut short, and what a step's templates see.
import t from 'tap';
import type { StoredStep } from '../../src/definitions/steps.ts';
import type { Plan, StepRecord } from '../../src/engine/plan.ts';
import { action, completed, EARLIER, forEachOf, LATER, NOW, pathsOf, planOf, sleep, subFlow, transform, waitFor } from './planSteps.ts';

/** A step's state in the exhaustive test: its recorded status, told apart where the planner must tell them apart. */
const STATES = ['pending', 'in-flight', 'cut-short', 'waiting', 'waiting-due', 'completed', 'failed', 'skipped', 'cancelled', 'not_run'] as const;
type State = (typeof STATES)[number];

function recordOf(state: State): StepRecord {
  if (state === 'in-flight' || state === 'cut-short') return { status: 'running' };
  if (state === 'waiting') return { status: 'waiting', wakeAt: LATER };
  if (state === 'waiting-due') return { status: 'waiting', wakeAt: EARLIER };
  if (state === 'completed') return completed(`output of a step`);
  return { status: state };
}

/** What a plan says of a flow of top-level steps, in plain values. */
function summary(plan: Plan) {
  return {
    begin: plan.begin.map((begin) => ({ path: begin.path, kind: begin.kind, visible: [...begin.scope.visible] })),
    waits: plan.waits.map((wait) => ({ path: wait.path, until: wait.until })),
    conclude: plan.conclude,
    outcome: plan.outcome,
    ...(plan.failed !== undefined && { failed: plan.failed }),
    ...(plan.last !== undefined && { last: plan.last }),
  };
}

/**
 * The rules in words. Steps run in order: a step is settled when it completed, was skipped, or
 * failed with continueOnError, and the first step that is not settled decides. Failed: the run
 * fails at it. Cancelled or not run: the run was stopped. Pending, running but not in flight (its
 * worker stopped), or waiting and due: it begins (again), seeing the steps before it by their keys.
 * Running in flight: nothing begins, the run waits for it. Waiting and not due: it waits until its
 * time. Every step settled: the run completes, its default output the last completed step's.
 */
function expected(steps: StoredStep[], states: State[]): ReturnType<typeof summary> {
  const none = { begin: [], waits: [], conclude: [] };
  let last: string | undefined;
  for (const [index, state] of states.entries()) {
    const current = steps[index]!;
    const path = current.key;
    if (state === 'completed') last = path;
    if (state === 'completed' || state === 'skipped' || (state === 'failed' && current.continueOnError)) continue;
    if (state === 'failed') return { ...none, outcome: 'fail', failed: path };
    if (state === 'cancelled' || state === 'not_run') return { ...none, outcome: 'stopped' };
    if (state === 'in-flight') return { ...none, outcome: 'active' };
    if (state === 'waiting') return { ...none, waits: [{ path, until: LATER }], outcome: 'active' };
    const visible = steps.slice(0, index).map((before): [string, string] => [before.key, before.key]);
    return { ...none, begin: [{ path, kind: 'action', visible }], outcome: 'active' };
  }
  return { ...none, outcome: 'complete', ...(last !== undefined && { last }) };
}

for (const continueOnError of [false, true]) {
  t.test(`every combination of states of three steps${continueOnError ? ', the middle one with continueOnError' : ''}`, async (t) => {
    const steps = [action('a'), action('b', continueOnError), action('c')];
    let cases = 0;
    for (const a of STATES)
      for (const b of STATES)
        for (const c of STATES) {
          const states = [a, b, c];
          const records = Object.fromEntries(states.map((state, index) => [steps[index]!.key, recordOf(state)]));
          const inFlight = steps.filter((_, index) => states[index] === 'in-flight').map((step) => step.key);
          t.same(summary(planOf(steps, records, { inFlight })), expected(steps, states), states.join(' '));
          cases++;
        }
    t.equal(cases, STATES.length ** 3);
  });
}

t.test('a step with nothing recorded is pending; a flow with no step completes at once', async (t) => {
  const steps = [action('a'), action('b')];
  t.same(pathsOf(planOf(steps, {}).begin), ['a']);
  t.same(pathsOf(planOf(steps, { a: completed() }).begin), ['b']);
  t.same(summary(planOf([], {})), { begin: [], waits: [], conclude: [], outcome: 'complete' });
});

t.test('a step begins with its kind and the step itself', async (t) => {
  const steps = [transform('t'), sleep('s'), waitFor('w'), subFlow('f')];
  const begin = (records: Record<string, StepRecord>) => planOf(steps, records).begin[0]!;
  t.match(begin({}), { path: 't', kind: 'transform', step: steps[0] });
  t.match(begin({ t: completed() }), { path: 's', kind: 'sleep', step: steps[1] });
  t.match(begin({ t: completed(), s: completed() }), { path: 'w', kind: 'waitFor', step: steps[2] });
  t.match(begin({ t: completed(), s: completed(), w: completed() }), { path: 'f', kind: 'flow', step: steps[3] });
});

t.test('waits', async (t) => {
  t.test('a waiting step is due at its time exactly, and begins again whatever its kind but a sub-flow', async (t) => {
    for (const step of [action('a'), sleep('a'), waitFor('a')]) {
      const kind = planOf([step], {}).begin[0]!.kind;
      for (const wakeAt of [EARLIER, NOW]) {
        const plan = planOf([step], { a: { status: 'waiting', wakeAt } });
        t.same([pathsOf(plan.begin), plan.waits], [['a'], []], `${kind} due at ${wakeAt.toISOString()}`);
      }
      const plan = planOf([step], { a: { status: 'waiting', wakeAt: LATER } });
      t.same(pathsOf(plan.begin), [], `${kind} not due`);
      t.match(plan.waits, [{ path: 'a', kind, until: LATER, step }]);
      t.equal(plan.outcome, 'active');
    }
  });

  t.test('a sub-flow’s step waits for its child’s end, never for a time', async (t) => {
    for (const wakeAt of [EARLIER, NOW, LATER, null]) {
      const plan = planOf([subFlow('f')], { f: { status: 'waiting', wakeAt } });
      t.same(pathsOf(plan.begin), [], `waking at ${wakeAt?.toISOString()}`);
      t.same(
        plan.waits.map((wait) => [wait.path, wait.until]),
        [['f', wakeAt]],
      );
    }
  });

  t.test('a step waiting without a time waits for news', async (t) => {
    const plan = planOf([waitFor('w')], { w: { status: 'waiting', wakeAt: null } });
    t.same([pathsOf(plan.begin), plan.waits.map((wait) => [wait.path, wait.until]), plan.outcome], [[], [['w', null]], 'active']);
    t.same(planOf([waitFor('w')], { w: { status: 'waiting' } }).waits[0]?.until, null, 'nor with none recorded');
  });

  t.test('the scope of a waiting step is where it runs', async (t) => {
    const steps = [action('a'), sleep('s')];
    const plan = planOf(steps, { a: completed(), s: { status: 'waiting', wakeAt: LATER } });
    t.same([...plan.waits[0]!.scope.visible], [['a', 'a']]);
  });
});

t.test('a step recorded running is begun again when nothing runs it, and not while it runs', async (t) => {
  const steps = [action('a'), action('b')];
  const records = { a: completed(), b: { status: 'running' as const } };
  t.same(pathsOf(planOf(steps, records).begin), ['b'], 'its worker stopped: it resumes');
  t.same(pathsOf(planOf(steps, records, { inFlight: ['b'] }).begin), [], 'in flight');
  t.equal(planOf(steps, records, { inFlight: ['b'] }).outcome, 'active');
});

t.test('what a step sees', async (t) => {
  t.test('the steps before it, by key, skipped and failed with continueOnError ones included', async (t) => {
    const steps = [action('a'), action('b', true), action('c'), action('d'), action('e')];
    const plan = planOf(steps, { a: completed(), b: { status: 'failed' }, c: { status: 'skipped' } });
    t.same(
      plan.begin[0]!.scope,
      {
        visible: new Map([
          ['a', 'a'],
          ['b', 'b'],
          ['c', 'c'],
        ]),
      },
      'and no iteration at the top',
    );
  });

  t.test('in a loop: the steps before its holder, its own iteration’s steps before it, and the iteration', async (t) => {
    const steps = [action('a'), forEachOf('each', 2, [action('x'), action('y'), action('z')]), action('after')];
    const records: Record<string, StepRecord> = {
      a: completed(),
      each: { status: 'running', itemCount: 2 },
      'each[0].x': completed(),
      'each[0].y': completed(),
      'each[0].z': completed(),
      'each[1].x': completed(),
    };
    const [begin, ...others] = planOf(steps, records).begin;
    t.same(others, [], 'one step begins');
    t.equal(begin?.path, 'each[1].y');
    t.same(begin?.scope, {
      visible: new Map([
        ['a', 'a'],
        ['x', 'each[1].x'],
      ]),
      iteration: { loop: 'each', index: 1 },
    });
  });

  t.test('after a holder: the holder, not what it held', async (t) => {
    const steps = [action('a'), forEachOf('each', 1, [action('x')]), action('after')];
    const plan = planOf(steps, { a: completed(), each: completed([1]), 'each[0].x': completed(1) });
    t.same(plan.begin[0]!.scope, {
      visible: new Map([
        ['a', 'a'],
        ['each', 'each'],
      ]),
    });
  });
});

t.test('the run’s default output is the last step that completed, in the flow’s order', async (t) => {
  const steps = [action('a'), action('b', true), action('c')];
  const of = (...states: StepRecord['status'][]) => Object.fromEntries(states.map((status, index) => [steps[index]!.key, { status }]));
  t.equal(planOf(steps, of('completed', 'failed', 'completed')).last, 'c');
  t.equal(planOf(steps, of('completed', 'completed', 'skipped')).last, 'b');
  t.equal(planOf(steps, of('skipped', 'failed', 'skipped')).last, undefined);
  t.equal(planOf(steps, of('skipped', 'failed', 'skipped')).outcome, 'complete');
});
