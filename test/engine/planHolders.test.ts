// The planner on steps that hold others, without a database: a switch's chosen list, a loop's
// iterations within its concurrency, parallel branches, their outputs and failures, and holders
// nested in each other.
import t from 'tap';
import type { StoredStep } from '../../src/definitions/steps.ts';
import { newMemo, type StepRecord } from '../../src/engine/plan.ts';
import { action, completed, EARLIER, failed, forEachOf, LATER, parallelOf, pathsOf, planOf, running, sleep, switchOf } from './planSteps.ts';

t.test('switch', async (t) => {
  const steps = [action('a'), switchOf('route', [[action('x'), action('y')], [action('z')], []], [action('d')]), action('after')];
  const begun = (records: Record<string, StepRecord>) => pathsOf(planOf(steps, { a: completed(), ...records }).begin);

  t.test('begins itself, then its chosen case’s steps in order, at `<switch>.<key>`', async (t) => {
    t.match(planOf(steps, { a: completed() }).begin, [{ path: 'route', kind: 'switch' }]);
    t.same(begun({ route: running({ case: 0 }) }), ['route.x']);
    t.same(begun({ route: running({ case: 0 }), 'route.x': completed() }), ['route.y']);
    t.same(begun({ route: running({ case: 1 }) }), ['route.z']);
    t.same(begun({ route: running({ case: 'default' }) }), ['route.d']);
  });

  t.test('its steps see the steps before the switch and those before them in the case', async (t) => {
    const plan = planOf(steps, { a: completed(), route: running({ case: 0 }), 'route.x': completed() });
    t.same(plan.begin[0]!.scope, {
      visible: new Map([
        ['a', 'a'],
        ['x', 'route.x'],
      ]),
    });
  });

  t.test('concludes with its branch’s last completed output, once its branch is over', async (t) => {
    const records = { a: completed(), route: running({ case: 0 }), 'route.x': completed('X') };
    t.same(planOf(steps, { ...records, 'route.y': { status: 'running' } }, { inFlight: ['route.y'] }).conclude, [], 'not while a step runs');
    const done = planOf(steps, { ...records, 'route.y': completed('Y') });
    t.same(done.conclude, [{ path: 'route', key: 'route', status: 'completed', output: 'Y', cancelsOpen: false }]);
    t.same([pathsOf(done.begin), done.outcome], [[], 'active'], 'the step after it waits for the conclusion to be recorded');
    t.same(planOf(steps, { ...records, 'route.y': { status: 'skipped' } }).conclude[0]?.output, 'X', 'a skipped step has no output');
    t.same(planOf(steps, { ...records, 'route.x': { status: 'skipped' }, 'route.y': { status: 'skipped' } }).conclude[0]?.output, null);
    t.same(planOf(steps, { a: completed(), route: running({ case: 'default' }), 'route.d': completed('D') }).conclude[0]?.output, 'D');
  });

  t.test('a case with no steps concludes at once, completed with output null', async (t) => {
    t.same(planOf(steps, { a: completed(), route: running({ case: 2 }) }).conclude, [
      { path: 'route', key: 'route', status: 'completed', output: null, cancelsOpen: false },
    ]);
    const bare = [switchOf('route', [[action('x')]])];
    t.same(
      planOf(bare, { route: running({ case: 'default' }) }).conclude,
      [{ path: 'route', key: 'route', status: 'completed', output: null, cancelsOpen: false }],
      'nor a default',
    );
  });

  t.test('once concluded, the flow goes on after it and sees it', async (t) => {
    const plan = planOf(steps, { a: completed(), route: completed('Y'), 'route.x': completed('X'), 'route.y': completed('Y') });
    t.same(pathsOf(plan.begin), ['after']);
    t.same(
      [...plan.begin[0]!.scope.visible],
      [
        ['a', 'a'],
        ['route', 'route'],
      ],
    );
  });

  t.test('a step of its branch that fails fails it, naming the step', async (t) => {
    const plan = planOf(steps, { a: completed(), route: running({ case: 0 }), 'route.x': failed('no answer') });
    t.same(pathsOf(plan.begin), []);
    t.same(plan.conclude, [
      {
        path: 'route',
        key: 'route',
        status: 'failed',
        error: { code: 'step-failed', message: 'step route.x failed: no answer', step: 'route.x' },
        cancelsOpen: true,
      },
    ]);
    const goesOn = [switchOf('route', [[action('x', true), action('y')]])];
    t.same(pathsOf(planOf(goesOn, { route: running({ case: 0 }), 'route.x': failed() }).begin), ['route.y'], 'unless it goes on on error');
    t.same(planOf(steps, { a: completed(), route: failed() }).failed, 'route', 'recorded failed, it fails the run');
  });
});

t.test('forEach', async (t) => {
  const loop = (concurrency: number, inner: StoredStep[] = [action('x')]) => [forEachOf('each', concurrency, inner)];

  t.test('begins min(concurrency, items) iterations at first, lowest index first', async (t) => {
    t.match(planOf(loop(2), {}).begin, [{ path: 'each', kind: 'forEach' }], 'itself first');
    for (let items = 1; items <= 6; items++)
      for (let concurrency = 1; concurrency <= 4; concurrency++) {
        const plan = planOf(loop(concurrency), { each: running({ itemCount: items }) });
        const indexes = Array.from({ length: Math.min(concurrency, items) }, (_, index) => index);
        t.same(
          plan.begin.map((begin) => [begin.path, begin.scope.iteration]),
          indexes.map((index) => [`each[${index}].x`, { loop: 'each', index }]),
          `${items} items, ${concurrency} at once`,
        );
        t.same([plan.conclude, plan.outcome], [[], 'active']);
      }
  });

  t.test('zero items concludes at once with []', async (t) => {
    t.same(planOf(loop(3), { each: running({ itemCount: 0 }) }).conclude, [{ path: 'each', key: 'each', status: 'completed', output: [], cancelsOpen: false }]);
  });

  t.test('as iterations finish, the next ones begin in order, never more than concurrency open', async (t) => {
    // 5 items, 2 at once; each line: the iteration that completes, then the steps that begin.
    const script: [number | undefined, string[]][] = [
      [undefined, ['each[0].x', 'each[1].x']],
      [1, ['each[2].x']],
      [0, ['each[3].x']],
      [3, ['each[4].x']],
      [4, []],
      [2, []],
    ];
    const records: Record<string, StepRecord> = { each: running({ itemCount: 5 }) };
    const inFlight = new Set<string>();
    const memo = newMemo();
    for (const [index, begins] of script) {
      if (index !== undefined) {
        records[`each[${index}].x`] = completed(`out ${index}`);
        inFlight.delete(`each[${index}].x`);
      }
      const plan = planOf(loop(2), records, { inFlight: [...inFlight], memo });
      t.same(pathsOf(plan.begin), begins, `after ${index ?? 'none'}`);
      for (const path of pathsOf(plan.begin)) {
        records[path] = { status: 'running' };
        inFlight.add(path);
      }
      t.ok(inFlight.size <= 2, `${inFlight.size} open`);
    }
    const done = planOf(loop(2), records, { inFlight: [...inFlight], memo });
    t.same(done.conclude, [{ path: 'each', key: 'each', status: 'completed', output: ['out 0', 'out 1', 'out 2', 'out 3', 'out 4'], cancelsOpen: false }]);
    t.same(planOf(loop(2), records).conclude, done.conclude, 'the same without the memo');
  });

  t.test('an iteration is open while a step of it runs, waits, or is still to come', async (t) => {
    const two = loop(1, [action('x'), sleep('y')]);
    const begun = (records: Record<string, StepRecord>, inFlight: string[] = []) =>
      pathsOf(planOf(two, { each: running({ itemCount: 2 }), ...records }, { inFlight }).begin);
    t.same(begun({ 'each[0].x': completed() }), ['each[0].y'], 'a later step pending');
    t.same(begun({ 'each[0].x': running() }, ['each[0].x']), [], 'running');
    t.same(begun({ 'each[0].x': completed(), 'each[0].y': { status: 'waiting', wakeAt: LATER } }), [], 'waiting');
    t.same(begun({ 'each[0].x': completed(), 'each[0].y': completed() }), ['each[1].x'], 'over');
    t.same(begun({ 'each[0].x': { status: 'skipped' }, 'each[0].y': { status: 'skipped' } }), ['each[1].x'], 'skipped through');
  });

  t.test('its output: each iteration’s last completed output, in item order', async (t) => {
    const records: Record<string, StepRecord> = {
      each: running({ itemCount: 4 }),
      'each[0].x': completed('x0'),
      'each[0].y': completed('y0'),
      'each[1].x': completed('x1'),
      'each[1].y': { status: 'skipped' },
      'each[2].x': { status: 'skipped' },
      'each[2].y': { status: 'skipped' },
      'each[3].x': completed('x3'),
      'each[3].y': failed(),
    };
    const plan = planOf(loop(4, [action('x'), action('y', true)]), records);
    t.same(plan.conclude, [{ path: 'each', key: 'each', status: 'completed', output: ['y0', 'x1', null, 'x3'], cancelsOpen: false }]);
  });

  t.test('an iteration that fails: no iteration begins after it, and the loop fails once none runs', async (t) => {
    const steps = loop(2, [action('x'), action('y')]);
    const failure = {
      path: 'each',
      key: 'each',
      status: 'failed',
      error: { code: 'step-failed', message: 'step each[0].x failed: boom', step: 'each[0].x' },
      cancelsOpen: true,
    };
    const memo = newMemo();
    const records: Record<string, StepRecord> = { each: running({ itemCount: 4 }), 'each[0].x': failed(), 'each[1].x': running() };
    const holding = planOf(steps, records, { inFlight: ['each[1].x'], memo });
    t.same([pathsOf(holding.begin), holding.conclude, holding.outcome], [[], [], 'active'], 'an iteration still runs: no new one, nor its next step');
    records['each[1].x'] = completed();
    const after = planOf(steps, records, { memo });
    t.same([pathsOf(after.begin), after.conclude], [[], [failure]], 'its next step does not begin: the loop fails');
  });

  t.test('iterations that only wait do not hold the failure back', async (t) => {
    const records = { each: running({ itemCount: 3 }), 'each[0].x': { status: 'waiting' as const, wakeAt: LATER }, 'each[1].x': failed() };
    const plan = planOf(loop(3, [sleep('x')]), records);
    t.same(pathsOf(plan.begin), []);
    t.match(plan.conclude, [{ path: 'each', key: 'each', status: 'failed', error: { step: 'each[1].x' }, cancelsOpen: true }]);
  });

  t.test('a failed iteration with continueOnError on its step is over, not failed', async (t) => {
    const plan = planOf(loop(1, [action('x', true)]), { each: running({ itemCount: 2 }), 'each[0].x': failed() });
    t.same(pathsOf(plan.begin), ['each[1].x']);
  });
});

t.test('parallel', async (t) => {
  const steps = [parallelOf('p', { a: [action('a1'), action('a2')], b: [action('b1'), action('b2')], c: [sleep('c1')] })];

  t.test('every branch’s first step begins at once, at `<parallel>.<branch>.<key>`', async (t) => {
    t.match(planOf(steps, {}).begin, [{ path: 'p', kind: 'parallel' }]);
    t.same(pathsOf(planOf(steps, { p: running() }).begin), ['p.a.a1', 'p.b.b1', 'p.c.c1']);
    t.same(pathsOf(planOf(steps, { p: running(), 'p.a.a1': completed(), 'p.b.b1': running() }, { inFlight: ['p.b.b1'] }).begin), ['p.a.a2', 'p.c.c1']);
  });

  t.test('a branch’s steps see those before them in their branch, not the other branches’', async (t) => {
    const plan = planOf(steps, { p: running(), 'p.a.a1': completed(), 'p.b.b1': completed() });
    t.same(
      plan.begin.map((begin) => [begin.path, [...begin.scope.visible]]),
      [
        ['p.a.a2', [['a1', 'p.a.a1']]],
        ['p.b.b2', [['b1', 'p.b.b1']]],
        ['p.c.c1', []],
      ],
    );
  });

  t.test('concludes with an object of each branch’s last completed output', async (t) => {
    const records = { p: running(), 'p.a.a1': completed('A1'), 'p.a.a2': completed('A2'), 'p.b.b1': completed('B1'), 'p.b.b2': { status: 'skipped' as const } };
    t.same(planOf(steps, { ...records, 'p.c.c1': { status: 'waiting', wakeAt: LATER } }).conclude, [], 'not while a branch waits');
    t.same(planOf(steps, { ...records, 'p.c.c1': completed(null) }).conclude, [
      { path: 'p', key: 'p', status: 'completed', output: { a: 'A2', b: 'B1', c: null }, cancelsOpen: false },
    ]);
  });

  t.test('a failed branch stops the others from beginning steps, and fails it when nothing runs', async (t) => {
    const records: Record<string, StepRecord> = { p: running(), 'p.a.a1': failed(), 'p.b.b1': running() };
    const holding = planOf(steps, records, { inFlight: ['p.b.b1'] });
    t.same([pathsOf(holding.begin), holding.conclude, holding.outcome], [[], [], 'active'], 'c1 does not begin; b1 runs on');
    records['p.b.b1'] = completed();
    const after = planOf(steps, records);
    t.same(pathsOf(after.begin), [], 'b2 does not begin');
    t.same(after.conclude, [
      { path: 'p', key: 'p', status: 'failed', error: { code: 'step-failed', message: 'step p.a.a1 failed: boom', step: 'p.a.a1' }, cancelsOpen: true },
    ]);
  });
});

t.test('a failed list waits for the steps in flight in its holder, whatever they were recorded as', async (t) => {
  const steps = [parallelOf('p', { a: [action('a1')], b: [action('b1')] })];
  const failure = {
    path: 'p',
    key: 'p',
    status: 'failed',
    error: { code: 'step-failed', message: 'step p.a.a1 failed: boom', step: 'p.a.a1' },
    cancelsOpen: true,
  };

  t.test('a step begun but not recorded yet', async (t) => {
    const plan = planOf(steps, { p: running(), 'p.a.a1': failed() }, { inFlight: ['p.b.b1'] });
    t.same([plan.conclude, plan.outcome], [[], 'active']);
  });

  t.test('a loop’s iteration begun but not recorded yet', async (t) => {
    const loop = [forEachOf('each', 2, [action('x')])];
    const plan = planOf(loop, { each: running({ itemCount: 3 }), 'each[0].x': failed() }, { inFlight: ['each[1].x'] });
    t.same([pathsOf(plan.begin), plan.conclude, plan.outcome], [[], [], 'active']);
  });

  t.test('iterations recorded after one whose beginning a crash lost', async (t) => {
    // Begun together, iterations record their first step in any order: a crash can leave the first unrecorded.
    const loop = [forEachOf('each', 3, [action('x')])];
    const records: Record<string, StepRecord> = { each: running({ itemCount: 3 }), 'each[1].x': running(), 'each[2].x': failed() };
    const holding = planOf(loop, records, { inFlight: ['each[1].x'] });
    t.same([pathsOf(holding.begin), holding.conclude], [[], []], 'the first does not begin again');
    records['each[1].x'] = completed();
    t.match(planOf(loop, records).conclude, [{ path: 'each', status: 'failed', error: { step: 'each[2].x' } }]);
  });

  t.test('a waiting step due and begun again', async (t) => {
    const plan = planOf(steps, { p: running(), 'p.a.a1': failed(), 'p.b.b1': { status: 'waiting', wakeAt: EARLIER } }, { inFlight: ['p.b.b1'] });
    t.same([plan.conclude, plan.outcome], [[], 'active']);
  });

  t.test('a step cut short is begun again, and the holder fails once it ends', async (t) => {
    const records: Record<string, StepRecord> = { p: running(), 'p.a.a1': failed(), 'p.b.b1': running() };
    const resumed = planOf(steps, records);
    t.same([pathsOf(resumed.begin), resumed.conclude], [['p.b.b1'], []], 'nothing runs it: it would hold the run forever');
    const again = planOf(steps, records, { inFlight: ['p.b.b1'] });
    t.same([pathsOf(again.begin), again.conclude], [[], []], 'while it runs again');
    records['p.b.b1'] = completed();
    t.same(planOf(steps, records).conclude, [failure]);
  });

  t.test('each wait and each conclusion in it is listed once', async (t) => {
    const tree = [parallelOf('p', { a: [action('a1')], b: [sleep('b1')], c: [switchOf('s', [[]])] })];
    const plan = planOf(tree, { p: running(), 'p.a.a1': failed(), 'p.b.b1': { status: 'waiting', wakeAt: LATER }, 'p.c.s': running({ case: 0 }) });
    t.same(pathsOf(plan.waits), ['p.b.b1']);
    t.same(plan.conclude, [{ path: 'p.c.s', key: 's', status: 'completed', output: null, cancelsOpen: false }]);
  });
});

t.test('nesting', async (t) => {
  t.test('a loop in a branch: `p.a.each[2].x`', async (t) => {
    const steps = [parallelOf('p', { a: [forEachOf('each', 2, [action('x')])], b: [action('y')] })];
    const records: Record<string, StepRecord> = { p: running(), 'p.a.each': running({ itemCount: 3 }) };
    t.same(pathsOf(planOf(steps, records).begin), ['p.a.each[0].x', 'p.a.each[1].x', 'p.b.y']);
    Object.assign(records, { 'p.a.each[0].x': completed(0), 'p.a.each[1].x': completed(1), 'p.b.y': completed('Y') });
    const memo = newMemo();
    const third = planOf(steps, records, { memo });
    t.same(
      third.begin.map((begin) => [begin.path, begin.scope.iteration]),
      [['p.a.each[2].x', { loop: 'p.a.each', index: 2 }]],
    );
    records['p.a.each[2].x'] = completed(2);
    t.same(planOf(steps, records, { memo }).conclude, [{ path: 'p.a.each', key: 'each', status: 'completed', output: [0, 1, 2], cancelsOpen: false }]);
    records['p.a.each'] = completed([0, 1, 2]);
    t.same(planOf(steps, records, { memo }).conclude, [{ path: 'p', key: 'p', status: 'completed', output: { a: [0, 1, 2], b: 'Y' }, cancelsOpen: false }]);
  });

  t.test('a switch in a loop: `each[1].route.y`', async (t) => {
    const steps = [forEachOf('each', 2, [action('pre'), switchOf('route', [[action('y')]], [action('z')])])];
    const records: Record<string, StepRecord> = {
      each: running({ itemCount: 2 }),
      'each[0].pre': completed(),
      'each[0].route': running({ case: 'default' }),
      'each[1].pre': completed(),
      'each[1].route': running({ case: 0 }),
    };
    const plan = planOf(steps, records);
    t.same(
      plan.begin.map((begin) => [begin.path, [...begin.scope.visible], begin.scope.iteration]),
      [
        ['each[0].route.z', [['pre', 'each[0].pre']], { loop: 'each', index: 0 }],
        ['each[1].route.y', [['pre', 'each[1].pre']], { loop: 'each', index: 1 }],
      ],
    );
    Object.assign(records, { 'each[0].route.z': completed('Z'), 'each[1].route.y': completed('Y') });
    t.same(planOf(steps, records).conclude, [
      { path: 'each[0].route', key: 'route', status: 'completed', output: 'Z', cancelsOpen: false },
      { path: 'each[1].route', key: 'route', status: 'completed', output: 'Y', cancelsOpen: false },
    ]);
    Object.assign(records, { 'each[0].route': completed('Z'), 'each[1].route': completed('Y') });
    t.same(planOf(steps, records).conclude, [{ path: 'each', key: 'each', status: 'completed', output: ['Z', 'Y'], cancelsOpen: false }]);
  });

  t.test('a step cut short deep inside is begun again', async (t) => {
    const steps = [parallelOf('p', { a: [forEachOf('each', 1, [action('x')])] })];
    const records = { p: running(), 'p.a.each': running({ itemCount: 1 }), 'p.a.each[0].x': running() };
    t.same(pathsOf(planOf(steps, records).begin), ['p.a.each[0].x']);
    t.same(pathsOf(planOf(steps, records, { inFlight: ['p.a.each[0].x'] }).begin), []);
  });
});
