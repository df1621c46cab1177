// The planner against a simulated worker: small random step trees, each run many times by a
// turn that begins what the plan says, ends the steps in flight at random (completed, failed,
// skipped, waiting for a retry or a time or a child run), lets time pass, records conclusions
// as run.ts does, and, in the second test, often crashes (losing what it had begun and not
// recorded). Every run must end, complete or failed as its record says, and no plan may begin
// a step that runs or is over, or anything new in a holder after a step in it failed, keep a
// loop's iterations open beyond its concurrency, conclude a holder while a step in it is in
// flight, or list a path twice.
import t from 'tap';
import type { StoredStep } from '../../src/definitions/steps.ts';
import { type Begin, newMemo, type Plan, plan, type StepRecord } from '../../src/engine/plan.ts';
import { isSettled } from '../../src/engine/runs/statuses.ts';
import { action, forEachOf, NOW, parallelOf, sleep, subFlow, switchOf, transform } from './planSteps.ts';

const TREES = 300;
const WALKS_PER_TREE = 4;
const MAX_ROUNDS = 5000;

/** mulberry32: the same walks on every run, and the seed in a failure's name. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), state | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const below = (random: Random, n: number) => Math.floor(random() * n);
const pick = <T>(random: Random, list: readonly T[]): T => list[below(random, list.length)]!;

/** A list of 1 to 3 steps; holders only above the third level. */
function treeOf(random: Random, depth: number, next: { key: number }, least = 1): StoredStep[] {
  return Array.from({ length: least + below(random, 4 - least) }, () => stepOf(random, depth, next));
}

function stepOf(random: Random, depth: number, next: { key: number }): StoredStep {
  const key = `s${next.key++}`;
  const onError = random() < 0.2;
  const kinds = depth < 3 ? ['action', 'action', 'transform', 'sleep', 'flow', 'switch', 'forEach', 'parallel'] : ['action', 'transform', 'sleep', 'flow'];
  const kind = pick(random, kinds);
  if (kind === 'transform') return transform(key, onError);
  if (kind === 'sleep') return sleep(key, onError);
  if (kind === 'flow') return subFlow(key, onError);
  if (kind === 'switch')
    return switchOf(key, [treeOf(random, depth + 1, next, 0), treeOf(random, depth + 1, next, 0)], treeOf(random, depth + 1, next, 0), onError);
  if (kind === 'forEach') return forEachOf(key, 1 + below(random, 3), treeOf(random, depth + 1, next), onError);
  if (kind === 'parallel') return parallelOf(key, { left: treeOf(random, depth + 1, next), right: treeOf(random, depth + 1, next) }, onError);
  return action(key, onError);
}

/** Every step of a tree by its key (keys are unique in a flow). */
function byKey(steps: readonly StoredStep[], into = new Map<string, StoredStep>()): Map<string, StoredStep> {
  for (const step of steps) {
    into.set(step.key, step);
    if (step.switch) for (const list of [...step.switch.cases.map((branch) => branch.steps), step.switch.default]) byKey(list, into);
    if (step.forEach) byKey(step.forEach.steps, into);
    if (step.parallel) for (const list of Object.values(step.parallel.branches)) byKey(list, into);
  }
  return into;
}

const keyOf = (path: string) => path.split(/[.\]]/).at(-1)!;
const under = (holder: string, path: string) => path.startsWith(`${holder}.`) || path.startsWith(`${holder}[`);

/** One run of a flow by a simulated turn, or several turns when it crashes. */
class Walk {
  readonly recorded = new Map<string, StepRecord>();
  /** The step runs the worker is doing, as the turn's inFlight. */
  readonly inFlight = new Map<string, Begin>();
  memo = newMemo();
  now = NOW;
  readonly problems: string[] = [];

  readonly steps: StoredStep[];
  readonly keys: Map<string, StoredStep>;
  readonly random: Random;
  readonly crashes: boolean;

  constructor(steps: StoredStep[], random: Random, crashes: boolean) {
    this.steps = steps;
    this.keys = byKey(steps);
    this.random = random;
    this.crashes = crashes;
  }

  run(): Plan | 'stuck' | 'too long' {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const next = plan(this.steps, this.recorded, this.now, new Set(this.inFlight.keys()), this.memo);
      this.check(next);
      if (next.conclude.length > 0) {
        for (const conclusion of next.conclude) this.conclude(conclusion);
        continue;
      }
      if (next.outcome !== 'active' && this.inFlight.size === 0) return next;
      for (const begin of next.begin) if (!this.inFlight.has(begin.path)) this.start(begin);
      this.checkLoops();
      this.now = new Date(this.now.getTime() + below(this.random, 1500));
      if (this.crashes && this.inFlight.size > 0 && this.random() < 0.2) this.crash();
      else if (this.inFlight.size > 0 && this.random() < 0.85) this.end(pick(this.random, [...this.inFlight.values()]));
      else if (!this.newsOrTime(next) && this.inFlight.size === 0) return 'stuck';
    }
    return 'too long';
  }

  /** What the plan must never say. */
  check(next: Plan): void {
    for (const [what, list] of Object.entries({ begin: next.begin, waits: next.waits, conclude: next.conclude })) {
      const twice = list.map((entry) => entry.path).filter((path, index, all) => all.indexOf(path) !== index);
      if (twice.length > 0) this.problems.push(`${twice} twice in one plan's ${what}`);
    }
    for (const { path } of next.begin) {
      const status = this.recorded.get(path)?.status;
      if (status === 'running' && this.inFlight.has(path)) this.problems.push(`${path} begins while it runs`);
      if (status !== undefined && !['pending', 'running', 'waiting'].includes(status)) this.problems.push(`${path} begins, recorded ${status}`);
      const failure = status !== 'running' && this.failedAbove(path);
      if (failure) this.problems.push(`${path} begins after ${failure} failed`);
    }
    for (const conclusion of next.conclude) {
      const busy = [...this.inFlight.keys()].filter((path) => under(conclusion.path, path));
      if (busy.length > 0) this.problems.push(`${conclusion.path} concludes ${conclusion.status} while ${busy} run`);
    }
  }

  /** A step failed (without continueOnError) in a list of a running holder above `path`: nothing new begins in that holder. */
  failedAbove(path: string): string | undefined {
    for (const [failure, record] of this.recorded) {
      if (record.status !== 'failed' || this.keys.get(keyOf(failure))!.continueOnError) continue;
      const holder = this.holderOf(failure);
      if (holder !== undefined && this.recorded.get(holder)?.status === 'running' && under(holder, path)) return failure;
    }
    return undefined;
  }

  /** The holder whose list a step run is in: the deepest step run above it. */
  holderOf(path: string): string | undefined {
    const above = [...this.recorded.keys()].filter((holder) => under(holder, path));
    return above.sort((a, b) => b.length - a.length)[0];
  }

  /** No loop has more iterations open (begun, not over) than its concurrency. */
  checkLoops(): void {
    for (const [path, record] of this.recorded) {
      const loop = this.keys.get(keyOf(path))?.forEach;
      if (!loop || record.status !== 'running') continue;
      let open = 0;
      for (let index = 0; index < (record.itemCount ?? 0); index++) if (this.iterationOpen(path, index, loop.steps)) open++;
      if (open > loop.concurrency) this.problems.push(`${path} has ${open} iterations open, concurrency ${loop.concurrency}`);
    }
  }

  iterationOpen(loop: string, index: number, inner: readonly StoredStep[]): boolean {
    const prefix = `${loop}[${index}].`;
    const begun = [...this.recorded.keys(), ...this.inFlight.keys()].some((path) => path.startsWith(prefix));
    if (!begun) return false;
    for (const step of inner) {
      const status = this.recorded.get(`${prefix}${step.key}`)?.status ?? 'pending';
      if (isSettled(status, step.continueOnError)) continue;
      return status === 'pending' || status === 'running' || status === 'waiting';
    }
    return false;
  }

  /** The worker takes the step on; half the time its first write ("running") is not made yet. */
  start(begin: Begin): void {
    this.inFlight.set(begin.path, begin);
    const record = this.recorded.get(begin.path);
    if (begin.kind === 'action' && record?.status !== 'waiting' && this.random() < 0.5) this.recorded.set(begin.path, { status: 'running' });
  }

  /** The step run in flight ends, as its kind may. */
  end(begin: Begin): void {
    const random = this.random;
    const before = this.recorded.get(begin.path);
    const step = begin.step;
    const later = new Date(this.now.getTime() + 500 + below(random, 3000));
    const roll = random();
    let record: StepRecord;
    if (roll < 0.08) record = { status: 'skipped' };
    else if (step.switch) record = { status: 'running', case: pick(random, [...step.switch.cases.keys(), 'default' as const]) };
    else if (step.forEach) record = { status: 'running', itemCount: below(random, 5) };
    else if (step.parallel) record = { status: 'running' };
    else if (step.sleep) record = before?.status === 'waiting' ? { status: 'completed', output: null } : { status: 'waiting', wakeAt: later };
    else if (step.flow) record = { status: 'waiting', wakeAt: null };
    else if (roll < 0.7) record = { status: 'completed', output: `out ${begin.path}` };
    else if (roll < 0.85 && step.actionId) record = { status: 'waiting', wakeAt: later };
    else record = { status: 'failed', error: { code: 'http-error', message: 'boom' } };
    this.recorded.set(begin.path, record);
    this.inFlight.delete(begin.path);
  }

  /** Nothing else to do: a child run ends (a sub-flow's step is over), or time passes to the next wait. */
  newsOrTime(next: Plan): boolean {
    const children = [...this.recorded].filter(([path, record]) => record.status === 'waiting' && this.keys.get(keyOf(path))?.flow);
    const timed = next.waits.filter((wait) => wait.until !== null).map((wait) => wait.until!.getTime());
    if (children.length > 0 && (timed.length === 0 || this.random() < 0.5)) {
      const [path] = pick(this.random, children);
      this.recorded.set(
        path,
        this.random() < 0.8 ? { status: 'completed', output: `child of ${path}` } : { status: 'failed', error: { code: 'child-failed', message: 'no' } },
      );
      return true;
    }
    if (timed.length === 0) return false;
    this.now = new Date(Math.max(this.now.getTime(), Math.min(...timed)));
    return true;
  }

  /** As run.ts records a conclusion: its status and output, and its open steps cancelled when it says so. */
  conclude(conclusion: Plan['conclude'][number]): void {
    const record = this.recorded.get(conclusion.path)!;
    this.recorded.set(conclusion.path, { ...record, status: conclusion.status, output: conclusion.output ?? null, error: conclusion.error ?? null });
    if (!conclusion.cancelsOpen) return;
    for (const [path, inner] of this.recorded)
      if (under(conclusion.path, path) && !isSettled(inner.status, false) && inner.status !== 'failed')
        this.recorded.set(path, { ...inner, status: 'cancelled' });
  }

  /** The worker stops: what it ran stays as recorded, and the next turn starts with nothing in flight and a new memo. */
  crash(): void {
    this.inFlight.clear();
    this.memo = newMemo();
  }

  /** The run's end agrees with the record: complete when every top-level step is settled (its output the last completed one's), failed at a step recorded failed. */
  checkEnd(end: Plan): void {
    if (end.outcome === 'complete') {
      const open = this.steps.filter((step) => !isSettled(this.recorded.get(step.key)?.status ?? 'pending', step.continueOnError));
      if (open.length > 0) this.problems.push(`complete with ${open.map((step) => step.key)} not settled`);
      const last = this.steps.findLast((step) => this.recorded.get(step.key)?.status === 'completed')?.key;
      if (end.last !== last) this.problems.push(`complete with ${end.last} as the last completed step, not ${last}`);
    } else if (end.outcome === 'fail') {
      const step = this.steps.find((top) => top.key === end.failed);
      if (!step || this.recorded.get(step.key)?.status !== 'failed' || step.continueOnError) this.problems.push(`fails at ${end.failed}`);
    } else this.problems.push(`ends ${end.outcome}`);
  }
}

for (const crashes of [false, true]) {
  t.test(`random trees run to their end${crashes ? ', their worker crashing now and then' : ''}`, async (t) => {
    const ends = { complete: 0, fail: 0 };
    for (let seed = 1; seed <= TREES; seed++) {
      const random = generator(seed);
      const steps = treeOf(random, 1, { key: 0 });
      for (let walk = 0; walk < WALKS_PER_TREE; walk++) {
        const run = new Walk(steps, random, crashes);
        const end = run.run();
        if (typeof end === 'string') run.problems.push(`the run is ${end}`);
        else run.checkEnd(end);
        if (run.problems.length > 0) {
          t.fail(`tree ${seed}, walk ${walk}: ${run.problems.slice(0, 3).join('; ')}`, { tree: JSON.stringify(steps), recorded: [...run.recorded] });
          return;
        }
        if (typeof end !== 'string' && (end.outcome === 'complete' || end.outcome === 'fail')) ends[end.outcome]++;
      }
    }
    t.ok(ends.complete > TREES && ends.fail > TREES / 4, `runs completed (${ends.complete}) and failed (${ends.fail}), both often`);
  });
}
