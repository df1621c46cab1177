// A flow's steps as a tree: each step is one kind (an action's call, a transform, a switch, a
// loop over items, parallel branches, a sleep, a wait for a signal, a sub-flow), and the three
// kinds that hold steps (switch, forEach, parallel) hold lists of them. Every step run has a path
// in its execution: its key at the top level, `<loop>[<index>].<key>` in a loop's iteration,
// `<parallel>.<branch>.<key>` in a branch, `<switch>.<key>` in a switch's branch. Keys are unique in
// the whole flow, so that every path reads one way.
import type { components } from '../generated/openapi.ts';

export type StoredStep = components['schemas']['StoredFlowStep'];
export type StepInput = components['schemas']['FlowStep'];

export const KINDS = ['action', 'transform', 'switch', 'forEach', 'parallel', 'sleep', 'waitFor', 'flow'] as const;
export type StepKind = (typeof KINDS)[number];

/** How deep steps nest: a step in a loop in a branch is 3 deep. */
export const MAX_NESTING = 4;
/** Steps in a flow, nested ones included. */
export const MAX_FLOW_STEPS = 500;
/** Items one forEach may loop over. */
export const MAX_ITEMS = 10_000;

export const STEP_DEFAULTS = { timeoutMs: 30_000, retry: { maxAttempts: 1, initialDelayMs: 1000, maxDelayMs: 30_000 }, continueOnError: false };
export const WAIT_FOR_DEFAULT_TIMEOUT_MS = 86_400_000;

/** A step's kind: the one field of its kind that it has. */
export function kindOf(step: object): StepKind {
  if ('actionId' in step) return 'action';
  return KINDS.find((kind) => kind in step) ?? 'action';
}

/** A list of steps held by a step: a switch's case, its default, a loop's body, a branch. */
export interface Sequence<S> {
  /** Where it is in the written flow, from its step: `/switch/cases/0/steps`, `/parallel/branches/crm`. */
  pointer: string;
  /** A branch's name, a case's index or "default"; undefined for a loop's body. */
  name?: string | number;
  steps: S[];
}

type Holder<S> = {
  switch?: { cases: { steps: S[] }[]; default?: S[] } | null;
  forEach?: { steps: S[] } | null;
  parallel?: { branches: Record<string, S[]> } | null;
};

/** The lists of steps a step holds (none for the kinds that hold none). */
export function sequencesOf<S extends Holder<S>>(step: S): Sequence<S>[] {
  if (step.switch) {
    const cases = step.switch.cases.map((branch, index): Sequence<S> => ({ pointer: `/switch/cases/${index}/steps`, name: index, steps: branch.steps }));
    return step.switch.default ? [...cases, { pointer: '/switch/default', name: 'default', steps: step.switch.default }] : cases;
  }
  if (step.forEach) return [{ pointer: '/forEach/steps', steps: step.forEach.steps }];
  if (step.parallel) {
    return Object.entries(step.parallel.branches).map(([name, steps]) => ({ pointer: `/parallel/branches/${escapeKey(name)}`, name, steps }));
  }
  return [];
}

function escapeKey(name: string): string {
  return name.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Every step of the tree, depth first in the written order, with its pointer and depth (1 at the top). */
export function* everyStep<S extends Holder<S> & { key: string }>(
  steps: readonly S[],
  pointer = '/steps',
  depth = 1,
): Generator<{ step: S; pointer: string; depth: number }> {
  for (const [index, step] of steps.entries()) {
    const at = `${pointer}/${index}`;
    yield { step, pointer: at, depth };
    for (const sequence of sequencesOf(step)) yield* everyStep(sequence.steps, `${at}${sequence.pointer}`, depth + 1);
  }
}

/**
 * How many steps a body's `steps` holds, nested ones included, counted before the body is
 * validated (its shape unchecked), up to just past `limit`: validating a body of thousands of
 * nested steps that are each wrong costs the validator time that grows with their square.
 */
export function writtenStepCount(steps: unknown, limit = MAX_FLOW_STEPS): number {
  let count = 0;
  const lists: unknown[] = [steps];
  while (lists.length > 0 && count <= limit) {
    const list = lists.pop();
    if (!Array.isArray(list)) continue;
    // What is not an object is no step, and the validator refuses it cheaply.
    for (const step of list) {
      if (typeof step !== 'object' || step === null) continue;
      count++;
      lists.push(...heldLists(step as Record<string, unknown>));
    }
  }
  return count;
}

/** The lists of steps a written step may hold, whatever its shape. */
function heldLists(step: Record<string, unknown>): unknown[] {
  const field = (value: unknown, name: string) => (typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined);
  const cases = field(step.switch, 'cases');
  const branches = field(step.parallel, 'branches');
  return [
    field(step.forEach, 'steps'),
    field(step.switch, 'default'),
    ...(Array.isArray(cases) ? cases.map((branch) => field(branch, 'steps')) : []),
    ...(typeof branches === 'object' && branches !== null ? Object.values(branches) : []),
  ];
}

/** A step as stored and run: every option with its value, its nested steps alike. */
export function storedStep(step: StepInput): StoredStep {
  const common = { key: step.key, if: step.if ?? null, continueOnError: step.continueOnError ?? STEP_DEFAULTS.continueOnError };
  const stored = (steps: StepInput[] | undefined) => (steps ?? []).map(storedStep);
  switch (kindOf(step)) {
    case 'action':
      // The order the API answers in: the fields every step has first (the schema's required ones).
      return {
        ...common,
        actionId: step.actionId,
        inputs: step.inputs ?? {},
        timeoutMs: step.timeoutMs ?? STEP_DEFAULTS.timeoutMs,
        retry: { ...STEP_DEFAULTS.retry, ...step.retry },
      };
    case 'transform':
      return { ...common, transform: step.transform ?? null };
    case 'switch':
      return {
        ...common,
        switch: { cases: step.switch!.cases.map((branch) => ({ if: branch.if, steps: stored(branch.steps) })), default: stored(step.switch!.default) },
      };
    case 'forEach':
      return { ...common, forEach: { items: step.forEach!.items, concurrency: step.forEach!.concurrency ?? 1, steps: stored(step.forEach!.steps) } };
    case 'parallel':
      return { ...common, parallel: { branches: Object.fromEntries(Object.entries(step.parallel!.branches).map(([name, steps]) => [name, stored(steps)])) } };
    case 'sleep':
      return { ...common, sleep: step.sleep!.ms !== undefined ? { ms: step.sleep!.ms } : { until: step.sleep!.until! } };
    case 'waitFor':
      return { ...common, waitFor: { signal: step.waitFor!.signal, timeoutMs: step.waitFor!.timeoutMs ?? WAIT_FOR_DEFAULT_TIMEOUT_MS } };
    case 'flow':
      return { ...common, flow: { flowId: step.flow!.flowId, version: step.flow!.version ?? null, input: step.flow!.input ?? {} } };
  }
}

/** The path of a step run: `key` at the top, under `parent` with the iteration or branch it runs in. */
export function childPath(parent: string | undefined, key: string, at?: { index?: number; branch?: string }): string {
  if (parent === undefined) return key;
  if (at?.index !== undefined) return `${parent}[${at.index}].${key}`;
  if (at?.branch !== undefined) return `${parent}.${at.branch}.${key}`;
  return `${parent}.${key}`;
}
