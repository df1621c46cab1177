// What is checked of a flow when it is written, before anything runs: the shape of its tree of
// steps (keys unique in the whole flow, nesting, how many steps), fields that only an action step
// takes, the actions and sub-flows of the organization that steps name, templates that JSON-e can
// read and whose references exist where they are (templateChecks.ts), and inputs that fill every
// `{placeholder}` of the action's endpoint. Each mistake that would fail every run is refused (422)
// naming where it is in the written body; what the save cannot tell is warned of in the answer's
// `warnings`.
import type { FieldError } from '../contract/problems.ts';
import { everyStep, kindOf, MAX_FLOW_STEPS, MAX_NESTING, type StepInput, type StoredStep, sequencesOf } from './steps.ts';
import { conditionProblems, FLOW_EXPRESSION_TOKENS, OPERATORS, type StepKeys, TokenBudget, TooManyTokens, templateProblems } from './templateChecks.ts';

/** A step as written, or as stored when an update keeps the steps. */
export type Step = StepInput | StoredStep;

/** The steps and output a flow will have, and which of them the write gives (the others are kept as stored). */
export interface FlowDocument {
  steps: Step[];
  output: Record<string, unknown> | null;
  given: ('steps' | 'output')[];
}

export interface FlowProblems {
  errors: FieldError[];
  warnings: FieldError[];
}

/** What the organization has that steps name: its actions' endpoints by action id, its live flows' ids. */
export interface Referents {
  endpoints: ReadonlyMap<string, string>;
  flows: ReadonlySet<string>;
}

// An endpoint's placeholders, as the engine fills them (src/engine/step.ts).
const PLACEHOLDER = /\{([^}]+)\}/g;
const ACTION_FIELDS = ['inputs', 'timeoutMs', 'retry'] as const;

/** Where a list of steps is: what its first step sees, whether inside a loop, how deep. */
interface Place {
  visible: ReadonlySet<string>;
  inLoop: boolean;
  depth: number;
}

/** One check of a flow as it goes: what it knows, what it found, and the step it is at. */
interface Check {
  all: string[];
  referents: Referents;
  budget: TokenBudget;
  found: FlowProblems;
  /** Where each key was first met. */
  firstAt: Map<string, string>;
  at: string;
}

/** The problems of a flow whose steps name the `referents`. */
export function flowProblems(flow: FlowDocument, referents: Referents): FlowProblems {
  const found: FlowProblems = { errors: [], warnings: [] };
  const all = [...everyStep(flow.steps)].map(({ step }) => step.key);
  if (flow.given.includes('steps') && all.length > MAX_FLOW_STEPS) {
    found.errors.push({ in: 'body', pointer: '/steps', message: `hold ${all.length} steps, nested ones included; a flow holds at most ${MAX_FLOW_STEPS}` });
    return found;
  }
  const check: Check = { all, referents, budget: new TokenBudget(), found, firstAt: new Map(), at: '/steps' };
  try {
    if (flow.given.includes('steps')) listProblems(flow.steps, '/steps', { visible: new Set(), inLoop: false, depth: 1 }, check);
    check.at = '/output';
    if (flow.output && flow.given.length > 0) outputProblems(flow, check);
  } catch (error) {
    if (!(error instanceof TooManyTokens)) throw error;
    const message = `has more than ${FLOW_EXPRESSION_TOKENS} tokens of expressions with those before it; a flow may hold no more in all: split it, or compute less in its templates`;
    found.errors.push({ in: 'body', pointer: check.at, message });
  }
  return found;
}

/** The output sees the steps of the top level, each of which has run (or been skipped) by then. */
function outputProblems(flow: FlowDocument, check: Check): void {
  // An update of the steps alone keeps the output, which may refer to a step it removes.
  const kept = flow.given.includes('output') ? '' : 'is kept by this update, but ';
  const sight: StepKeys = { all: check.all, visible: new Set(flow.steps.map((step) => step.key)) };
  for (const { pointer, message } of templateProblems(flow.output, sight, check.budget)) {
    check.found.errors.push({ in: 'body', pointer: `/output${pointer}`, message: `${kept}${message}` });
  }
}

/**
 * The problems of a list of steps and of those they hold. A step sees the steps before it in its
 * list and what the list's first step sees; the steps it holds see the same, not the step itself,
 * and the steps after it see its key, not those it holds.
 */
function listProblems(steps: Step[], pointer: string, place: Place, check: Check): void {
  const before = new Set(place.visible);
  for (const [index, step] of steps.entries()) {
    const at = `${pointer}/${index}`;
    const here: Place = { ...place, visible: new Set(before) };
    stepProblems(step, at, here, check);
    const inner: Place = { visible: here.visible, inLoop: place.inLoop || kindOf(step) === 'forEach', depth: place.depth + 1 };
    for (const sequence of sequencesOf(step)) listProblems(sequence.steps, `${at}${sequence.pointer}`, inner, check);
    before.add(step.key);
  }
}

function stepProblems(step: Step, at: string, place: Place, check: Check): void {
  const error = (pointer: string, message: string) => check.found.errors.push({ in: 'body', pointer, message });
  check.at = at;
  const first = check.firstAt.get(step.key);
  if (first === undefined) check.firstAt.set(step.key, at);
  else error(`${at}/key`, `repeats the key "${step.key}" of the step at ${first}`);
  // `p.x`'s step runs would read as those of a branch `x` of a step `p`, and the other way round.
  const prefix = check.all.find((key) => step.key.startsWith(`${key}.`));
  if (prefix !== undefined)
    error(`${at}/key`, `begins with the key "${prefix}" and a dot, so the paths of their step runs could be read either way; rename one of them`);
  // The steps a step too deep holds are deeper still: the first too deep is the one to name.
  if (place.depth === MAX_NESTING + 1) error(at, `is nested ${place.depth} deep; steps nest at most ${MAX_NESTING} deep`);
  const kind = kindOf(step);
  if (kind !== 'action') {
    for (const field of ACTION_FIELDS) if (step[field] !== undefined) error(`${at}/${field}`, 'applies to action steps only');
  }
  const sight: StepKeys = { all: check.all, visible: place.visible, self: step.key, inLoop: place.inLoop };
  kindTemplateProblems(step, at, sight, check);
  if (step.if) expressionFieldProblems(step.if, `${at}/if`, sight, check);
  if (kind === 'action') actionProblems(step, at, check);
  if (step.flow && !check.referents.flows.has(step.flow.flowId)) error(`${at}/flow/flowId`, `no flow ${step.flow.flowId} in this organization`);
}

/** The templates and expressions of the step's kind. */
function kindTemplateProblems(step: Step, at: string, sight: StepKeys, check: Check): void {
  if (kindOf(step) === 'action') templateFieldProblems(step.inputs ?? {}, `${at}/inputs`, sight, check);
  if ('transform' in step) templateFieldProblems(step.transform, `${at}/transform`, sight, check);
  for (const [index, branch] of (step.switch?.cases ?? []).entries()) expressionFieldProblems(branch.if, `${at}/switch/cases/${index}/if`, sight, check);
  if (step.forEach) expressionFieldProblems(step.forEach.items, `${at}/forEach/items`, sight, check);
  if (step.sleep?.until !== undefined) expressionFieldProblems(step.sleep.until, `${at}/sleep/until`, sight, check);
  if (step.flow) templateFieldProblems(step.flow.input ?? {}, `${at}/flow/input`, sight, check);
}

function templateFieldProblems(template: unknown, at: string, sight: StepKeys, check: Check): void {
  for (const { pointer, message } of templateProblems(template, sight, check.budget))
    check.found.errors.push({ in: 'body', pointer: `${at}${pointer}`, message });
}

function expressionFieldProblems(expression: string, at: string, sight: StepKeys, check: Check): void {
  for (const message of conditionProblems(expression, sight, check.budget)) check.found.errors.push({ in: 'body', pointer: at, message });
}

/** The action must be the organization's, and the step's inputs must fill its endpoint's placeholders. */
function actionProblems(step: Step, at: string, { referents, found }: Check): void {
  const actionId = step.actionId!;
  const endpoint = referents.endpoints.get(actionId);
  if (endpoint === undefined) {
    found.errors.push({ in: 'body', pointer: `${at}/actionId`, message: `no action ${actionId} in this organization` });
    return;
  }
  const names = [...endpoint.matchAll(PLACEHOLDER)].map((match) => match[1]!);
  if (names.length === 0) return;
  const inputs = inputNames(step.inputs ?? {});
  for (const name of names) {
    if (inputs === undefined) {
      found.warnings.push({
        in: 'body',
        pointer: `${at}/inputs`,
        message: `are computed, so whether they have the input "${name}" that the endpoint ${endpoint} needs is known only when the step runs`,
      });
    } else if (!inputs.has(name)) {
      found.errors.push({
        in: 'body',
        pointer: `${at}/inputs`,
        message: `has no input "${name}", which the endpoint ${endpoint} of action ${actionId} needs`,
      });
    }
  }
}

/** The names of the inputs a template renders, when its keys are written out; undefined when they are computed. */
function inputNames(inputs: Record<string, unknown>): Set<string> | undefined {
  const keys = Object.keys(inputs);
  if (keys.some((key) => OPERATORS.includes(key) || key.includes('${'))) return undefined;
  return new Set(keys.map((key) => (key.startsWith('$$') ? key.slice(1) : key)));
}
