// What is checked of a flow when it is written, before anything runs: unique step keys, actions of
// the organization, templates that JSON-e can read and whose references exist (templateChecks.ts),
// and inputs that fill every `{placeholder}` of the action's endpoint. Each mistake that would fail
// every run is refused (422) naming where it is; what the save cannot tell is warned of in the
// answer's `warnings`.
import type { FieldError } from '../contract/problems.ts';
import type { components } from '../generated/openapi.ts';
import { conditionProblems, FLOW_EXPRESSION_TOKENS, OPERATORS, type StepKeys, TokenBudget, TooManyTokens, templateProblems } from './templateChecks.ts';

type Step = Pick<components['schemas']['FlowStep'], 'key' | 'actionId' | 'inputs' | 'if'>;

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

// An endpoint's placeholders, as the engine fills them (src/engine/step.ts).
const PLACEHOLDER = /\{([^}]+)\}/g;

/** The problems of a flow whose steps call the actions of `endpoints` (action id → endpoint). */
export function flowProblems(flow: FlowDocument, endpoints: ReadonlyMap<string, string>): FlowProblems {
  const found: FlowProblems = { errors: [], warnings: [] };
  const all = flow.steps.map((step) => step.key);
  const budget = new TokenBudget();
  let at = '';
  try {
    if (flow.given.includes('steps')) {
      flow.steps.forEach((step, index) => {
        at = `/steps/${index}`;
        stepProblems(step, index, { all, before: index }, endpoints, budget, found);
      });
    }
    at = '/output';
    if (flow.output && flow.given.length > 0) outputProblems(flow, all, budget, found);
  } catch (error) {
    if (!(error instanceof TooManyTokens)) throw error;
    const message = `has more than ${FLOW_EXPRESSION_TOKENS} tokens of expressions with those before it; a flow may hold no more in all: split it, or compute less in its templates`;
    found.errors.push({ in: 'body', pointer: at, message });
  }
  return found;
}

function outputProblems(flow: FlowDocument, all: string[], budget: TokenBudget, found: FlowProblems): void {
  // An update of the steps alone keeps the output, which may refer to a step it removes.
  const kept = flow.given.includes('output') ? '' : 'is kept by this update, but ';
  for (const { pointer, message } of templateProblems(flow.output, { all, before: all.length }, budget)) {
    found.errors.push({ in: 'body', pointer: `/output${pointer}`, message: `${kept}${message}` });
  }
}

function stepProblems(step: Step, index: number, keys: StepKeys, endpoints: ReadonlyMap<string, string>, budget: TokenBudget, found: FlowProblems): void {
  const at = (field: string) => `/steps/${index}/${field}`;
  const earlier = keys.all.indexOf(step.key);
  if (earlier < index) found.errors.push({ in: 'body', pointer: at('key'), message: `repeats the key "${step.key}" of step ${earlier}` });
  for (const { pointer, message } of templateProblems(step.inputs ?? {}, keys, budget))
    found.errors.push({ in: 'body', pointer: `${at('inputs')}${pointer}`, message });
  for (const message of step.if ? conditionProblems(step.if, keys, budget) : []) found.errors.push({ in: 'body', pointer: at('if'), message });
  const endpoint = endpoints.get(step.actionId);
  if (endpoint === undefined) {
    found.errors.push({ in: 'body', pointer: at('actionId'), message: `no action ${step.actionId} in this organization` });
    return;
  }
  const names = [...endpoint.matchAll(PLACEHOLDER)].map((match) => match[1]!);
  if (names.length === 0) return;
  const inputs = inputNames(step.inputs ?? {});
  for (const name of names) {
    if (inputs === undefined) {
      found.warnings.push({
        in: 'body',
        pointer: at('inputs'),
        message: `are computed, so whether they have the input "${name}" that the endpoint ${endpoint} needs is known only when the step runs`,
      });
    } else if (!inputs.has(name)) {
      found.errors.push({
        in: 'body',
        pointer: at('inputs'),
        message: `has no input "${name}", which the endpoint ${endpoint} of action ${step.actionId} needs`,
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
