// The planner, without a database: every combination of recorded outcomes of a three-step flow,
// with and without continueOnError, against what a run should do next.
import t from 'tap';
import { type Decision, lastCompleted, nextStep, pathOf, type StepRecord } from '../../src/engine/plan.ts';
import type { StepStatus } from '../../src/engine/runs/statuses.ts';
import type { StoredStep } from '../../src/resources/flows.ts';

const NOW = new Date('2026-12-06T12:00:00Z');
const LATER = new Date('2026-12-06T12:00:05Z');
const EARLIER = new Date('2026-12-06T11:59:55Z');
const STATES: (StepStatus | 'waiting-due')[] = ['pending', 'running', 'waiting', 'waiting-due', 'completed', 'failed', 'skipped', 'cancelled', 'not_run'];

function step(key: string, continueOnError = false): StoredStep {
  return {
    key,
    actionId: '00000000-0000-7000-8000-000000000000',
    inputs: {},
    if: null,
    timeoutMs: 1000,
    retry: { maxAttempts: 1, initialDelayMs: 1, maxDelayMs: 1 },
    continueOnError,
  };
}

function recordOf(state: StepStatus | 'waiting-due'): StepRecord {
  if (state === 'waiting') return { status: 'waiting', wakeAt: LATER };
  if (state === 'waiting-due') return { status: 'waiting', wakeAt: EARLIER };
  return { status: state };
}

/** What the run should do, read off the rules in words: the first step that is not settled decides. */
function expected(steps: StoredStep[], states: (StepStatus | 'waiting-due')[]): Decision {
  for (const [index, state] of states.entries()) {
    const current = steps[index]!;
    const path = current.key;
    if (state === 'completed' || state === 'skipped' || (state === 'failed' && current.continueOnError)) continue;
    if (state === 'failed') return { kind: 'fail', path };
    if (state === 'cancelled' || state === 'not_run') return { kind: 'stopped' };
    if (state === 'waiting') return { kind: 'wait', path, until: LATER };
    return { kind: 'run', path, step: current };
  }
  return { kind: 'complete' };
}

for (const continueOnError of [false, true]) {
  t.test(`every outcome of three steps${continueOnError ? ', the middle one with continueOnError' : ''}`, async (t) => {
    const steps = [step('a'), step('b', continueOnError), step('c')];
    let cases = 0;
    for (const a of STATES)
      for (const b of STATES)
        for (const c of STATES) {
          const states = [a, b, c];
          const recorded = new Map(states.map((state, index) => [steps[index]!.key, recordOf(state)]));
          t.same(nextStep(steps, recorded, NOW), expected(steps, states), states.join(' '));
          cases++;
        }
    t.equal(cases, STATES.length ** 3);
  });
}

t.test('a step with nothing recorded is pending; a flow with no step completes at once', async (t) => {
  const steps = [step('a'), step('b')];
  t.same(nextStep(steps, new Map(), NOW), { kind: 'run', path: 'a', step: steps[0] });
  t.same(nextStep(steps, new Map([['a', { status: 'completed' }]]), NOW), { kind: 'run', path: 'b', step: steps[1] });
  t.same(nextStep([], new Map(), NOW), { kind: 'complete' });
});

t.test('a waiting step is due at its time exactly', async (t) => {
  const steps = [step('a')];
  t.match(nextStep(steps, new Map([['a', { status: 'waiting', wakeAt: NOW }]]), NOW), { kind: 'run', path: 'a' });
  t.match(nextStep(steps, new Map([['a', { status: 'waiting', wakeAt: LATER }]]), NOW), { kind: 'wait', until: LATER });
  t.match(nextStep(steps, new Map([['a', { status: 'waiting', wakeAt: null }]]), NOW), { kind: 'run', path: 'a' }, 'a wait without a time is due');
});

t.test('the run’s default output is the last step that completed, in the flow’s order', async (t) => {
  const steps = [step('a'), step('b', true), step('c')];
  const of = (...states: StepStatus[]) => new Map(states.map((status, index): [string, StepRecord] => [steps[index]!.key, { status }]));
  t.equal(lastCompleted(steps, of('completed', 'failed', 'completed')), 'c');
  t.equal(lastCompleted(steps, of('completed', 'completed', 'skipped')), 'b');
  t.equal(lastCompleted(steps, of('skipped', 'failed', 'skipped')), undefined);
});

t.test('a top-level step’s path is its key', async (t) => {
  t.equal(pathOf('notify'), 'notify');
});
