// What runs next: a pure function of the flow version's steps and what has been recorded of them.
// No I/O here (no database, no clock, no calls); src/engine/run.ts does what it decides.
//
// A flow is a list of steps run in order; a switch runs one list, a forEach one list per item
// (at most `concurrency` at once), a parallel step its lists at once. Each step run has a path
// (src/definitions/steps.ts), which names it in the record, in the outbound Idempotency-Key and
// across crashes. The planner walks the tree and answers the step runs to begin now, the steps
// that hold others and are over (their outcome decided by their children's), the waits, and
// whether the run is over.
import { childPath, kindOf, type StepKind, type StoredStep, sequencesOf } from '../definitions/steps.ts';
import { isSettled, type StepStatus } from './runs/statuses.ts';

/** What is recorded of one step run. */
export interface StepRecord {
  status: StepStatus;
  /** When a waiting step is due: its next attempt, a sleep's end, a waitFor's timeout. */
  wakeAt?: Date | null;
  output?: unknown;
  error?: { code: string; message: string } | null;
  /** A switch's case, once chosen. */
  case?: number | 'default';
  /** A forEach's number of items, once evaluated. */
  itemCount?: number;
}

/** Where a step runs: the steps its templates see (key → path), and the loop iteration it is in. */
export interface Scope {
  visible: ReadonlyMap<string, string>;
  iteration?: { loop: string; index: number };
}

/** A step run to begin now (or to go on with: one found running that nothing here runs, one due again). */
export interface Begin {
  path: string;
  step: StoredStep;
  kind: StepKind;
  scope: Scope;
}

/** A step holding others whose outcome is decided: its children are over. */
export interface Conclusion {
  path: string;
  key: string;
  status: 'completed' | 'failed';
  output?: unknown;
  error?: { code: string; message: string; step?: string };
  /** Its open descendants (waiting ones, when a sibling failed) end `cancelled`. */
  cancelsOpen: boolean;
}

/** A step run that waits: for its time (`until`), or for news (a signal, a child run). */
export interface Wait extends Begin {
  until: Date | null;
}

export interface Plan {
  begin: Begin[];
  conclude: Conclusion[];
  waits: Wait[];
  /** `active` while anything is open; otherwise how the run ends. */
  outcome: 'active' | 'complete' | 'fail' | 'stopped';
  /** For `fail`: the top-level step that failed. */
  failed?: string;
  /** For `complete`: the top-level step whose output is the run's default output. */
  last?: string;
}

/** What the planner may remember between calls about one run: a loop's iterations known over. */
export interface PlanMemo {
  finishedIterations: Map<string, Set<number>>;
}

export function newMemo(): PlanMemo {
  return { finishedIterations: new Map() };
}

interface Walk {
  recorded: ReadonlyMap<string, StepRecord>;
  inFlight: ReadonlySet<string>;
  now: Date;
  memo: PlanMemo;
  plan: Plan;
}

/** How a list of steps stands. `busy`: a step in it runs or begins now; `parked`: it only waits. */
type SequenceState =
  | { state: 'done'; last?: string }
  | { state: 'failed'; path: string; error?: StepRecord['error'] }
  | { state: 'stopped' }
  | { state: 'busy' }
  | { state: 'parked' };

/**
 * Decides what happens next. `inFlight` are the step runs this turn is running: a step found
 * `running` that is not among them was cut short (its worker stopped), and begins again.
 */
export function plan(steps: readonly StoredStep[], recorded: ReadonlyMap<string, StepRecord>, now: Date, inFlight: ReadonlySet<string>, memo: PlanMemo): Plan {
  const result: Plan = { begin: [], conclude: [], waits: [], outcome: 'active' };
  const walk: Walk = { recorded, inFlight, now, memo, plan: result };
  const top = sequence(steps, { visible: new Map() }, (key) => childPath(undefined, key), walk, true);
  if (top.state === 'done') {
    result.outcome = 'complete';
    result.last = top.last;
  } else if (top.state === 'failed') {
    result.outcome = 'fail';
    result.failed = top.path;
  } else if (top.state === 'stopped') result.outcome = 'stopped';
  return result;
}

/** Steps run one after another: the first not settled is the one that runs, or waits, or ended the list. */
function sequence(steps: readonly StoredStep[], outer: Scope, pathOf: (key: string) => string, walk: Walk, mayBegin: boolean): SequenceState {
  const visible = new Map(outer.visible);
  let last: string | undefined;
  for (const step of steps) {
    const path = pathOf(step.key);
    const record = walk.recorded.get(path) ?? { status: 'pending' };
    const scope: Scope = { visible, ...(outer.iteration && { iteration: outer.iteration }) };
    if (isSettled(record.status, step.continueOnError)) {
      visible.set(step.key, path);
      if (record.status === 'completed') last = path;
      continue;
    }
    return open(step, path, record, scope, walk, mayBegin);
  }
  return { state: 'done', last };
}

/** A step that is not settled: what it does now. */
function open(step: StoredStep, path: string, record: StepRecord, scope: Scope, walk: Walk, mayBegin: boolean): SequenceState {
  const kind = kindOf(step);
  // Begun by this turn and not recorded running yet: a failed list waits for it as for one running.
  if (!mayBegin && walk.inFlight.has(path) && (record.status === 'pending' || record.status === 'waiting')) return { state: 'busy' };
  switch (record.status) {
    case 'failed':
      return { state: 'failed', path, error: record.error };
    case 'cancelled':
    case 'not_run':
      return { state: 'stopped' };
    case 'pending':
      if (!mayBegin) return { state: 'parked' };
      walk.plan.begin.push({ path, step, kind, scope });
      return { state: 'busy' };
    case 'waiting': {
      const until = record.wakeAt ?? null;
      const due = until !== null && until.getTime() <= walk.now.getTime();
      if (due && mayBegin && kind !== 'flow') {
        walk.plan.begin.push({ path, step, kind, scope });
        return { state: 'busy' };
      }
      walk.plan.waits.push({ path, step, kind, scope, until });
      return { state: 'parked' };
    }
    default: {
      // running
      if (HOLDERS.includes(kind)) return holder(step, kind, path, record, scope, walk, mayBegin);
      // Cut short: it begins again, in a failed list too, which could not end while it is running.
      if (!walk.inFlight.has(path)) walk.plan.begin.push({ path, step, kind, scope });
      return { state: 'busy' };
    }
  }
}

const HOLDERS: readonly StepKind[] = ['switch', 'forEach', 'parallel'];

/**
 * A switch, forEach or parallel step that is running: how its lists stand, and its conclusion
 * once they are over. Once one of its lists failed, it begins no other step: it fails when the
 * steps running in it have ended, and those that only wait are cancelled.
 */
function holder(step: StoredStep, kind: StepKind, path: string, record: StepRecord, scope: Scope, walk: Walk, mayBegin: boolean): SequenceState {
  // What its lists plan is kept apart: once one failed, they are walked again, beginning nothing.
  const local: Walk = { ...walk, plan: emptied(walk.plan) };
  let states = lists(step, kind, path, record, scope, local, mayBegin);
  const failed = () => states.find((state): state is Extract<SequenceState, { state: 'failed' }> => state.state === 'failed');
  if (failed() && mayBegin) {
    local.plan = emptied(walk.plan);
    states = lists(step, kind, path, record, scope, local, false);
  }
  walk.plan.begin.push(...local.plan.begin);
  walk.plan.conclude.push(...local.plan.conclude);
  walk.plan.waits.push(...local.plan.waits);
  if (states.some((state) => state.state === 'busy')) return { state: 'busy' };
  const failure = failed();
  if (failure) {
    const message = `step ${failure.path} failed: ${failure.error?.message ?? 'unknown error'}`;
    return concluded(walk, { path, key: step.key, status: 'failed', error: { code: 'step-failed', message, step: failure.path }, cancelsOpen: true });
  }
  if (states.some((state) => state.state === 'stopped')) return { state: 'stopped' };
  if (states.some((state) => state.state === 'parked')) return { state: 'parked' };
  return concluded(walk, { path, key: step.key, status: 'completed', output: outputOf(kind, step, path, record, states, walk), cancelsOpen: false });
}

function emptied(plan: Plan): Plan {
  return { ...plan, begin: [], conclude: [], waits: [] };
}

function concluded(walk: Walk, conclusion: Conclusion): SequenceState {
  walk.plan.conclude.push(conclusion);
  // Settled by this plan: the list holding it goes on at the next.
  return { state: 'busy' };
}

function lists(step: StoredStep, kind: StepKind, path: string, record: StepRecord, scope: Scope, walk: Walk, mayBegin: boolean): SequenceState[] {
  if (kind === 'forEach') return iterations(step, path, record, scope, walk, mayBegin);
  const all = sequencesOf(step);
  if (kind === 'switch') {
    const chosen = all.find((list) => list.name === record.case);
    return chosen ? [sequence(chosen.steps, scope, (key) => childPath(path, key), walk, mayBegin)] : [{ state: 'done' }];
  }
  return all.map((list) => sequence(list.steps, scope, (key) => childPath(path, key, { branch: String(list.name) }), walk, mayBegin));
}

/**
 * A forEach's iterations: those begun go on, and new ones begin, lowest index first, while fewer
 * than `concurrency` are open. Iterations begin in order, so the first not begun ends the walk
 * (but in a failed loop, which looks at every item).
 */
function iterations(step: StoredStep, path: string, record: StepRecord, scope: Scope, walk: Walk, mayBegin: boolean): SequenceState[] {
  const loop = step.forEach!;
  const count = record.itemCount ?? 0;
  const finished = walk.memo.finishedIterations.get(path) ?? new Set<number>();
  walk.memo.finishedIterations.set(path, finished);
  const states: SequenceState[] = [];
  let open = 0;
  const firstKey = loop.steps[0]!.key;
  for (let index = 0; index < count; index++) {
    if (finished.has(index)) {
      states.push({ state: 'done' });
      continue;
    }
    const pathOf = (key: string) => childPath(path, key, { index });
    const begun = walk.recorded.has(pathOf(firstKey)) || walk.inFlight.has(pathOf(firstKey));
    if (!begun && (!mayBegin || open >= loop.concurrency)) {
      // Items left to begin keep the loop open, unless one failed: a failure ends it without them.
      states.push({ state: 'parked' });
      if (mayBegin) break;
      // Begun together, iterations record their beginnings in any order: a crash may have lost this
      // one's and kept later ones', which a failed loop waits for. (While it may begin, none came later.)
      continue;
    }
    const state = sequence(loop.steps, { visible: scope.visible, iteration: { loop: path, index } }, pathOf, walk, mayBegin);
    if (state.state === 'done') finished.add(index);
    if (state.state === 'busy' || state.state === 'parked') open++;
    states.push(state);
  }
  return states;
}

/** A holder's output: a switch's branch's last, a forEach's per item, a parallel's per branch. */
function outputOf(kind: StepKind, step: StoredStep, path: string, record: StepRecord, states: SequenceState[], walk: Walk): unknown {
  const lastOutput = (state: SequenceState | undefined) => (state?.state === 'done' && state.last ? (walk.recorded.get(state.last)?.output ?? null) : null);
  if (kind === 'switch') return lastOutput(states[0]);
  if (kind === 'parallel') return Object.fromEntries(sequencesOf(step).map((list, index) => [list.name, lastOutput(states[index])]));
  const count = record.itemCount ?? 0;
  const loop = step.forEach!;
  return Array.from({ length: count }, (_, index) => {
    const paths = loop.steps.map((inner) => childPath(path, inner.key, { index }));
    const last = paths.findLast((inner) => walk.recorded.get(inner)?.status === 'completed');
    return last === undefined ? null : (walk.recorded.get(last)?.output ?? null);
  });
}
