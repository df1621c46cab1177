// An evaluator process (see evaluator.ts): it renders a step's condition and inputs, checks the
// inputs against the action's inputSchema, or renders a flow's output, one task at a time, and
// tells its parent of each phase (and its CPU time so far) so that the parent applies that phase's deadline. Its heap is
// capped by its command line; its parent kills it at a deadline.
import { Validators } from '../definitions/inputSchemas.ts';
import { holds, render, type TemplateContext, TemplateError } from '../definitions/templates.ts';
import type { Evaluated, EvaluationTask, Phase } from './evaluator.ts';

interface Options {
  resultLimitBytes: number;
  schemaCacheSize: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const validators = new Validators(options.schemaCacheSize);

// Its parent gone (stopped, or killed), it has nothing left to do.
process.on('disconnect', () => process.exit(0));
process.on('message', (task: EvaluationTask) => {
  const outcome = task.kind === 'step' ? evaluateStep(task) : task.kind === 'value' ? evaluateValue(task) : rendered(task.template, task.context, 'output');
  process.send?.({ id: task.id, outcome, cpuMs: cpuMs() });
});

process.send?.({ ready: true, cpuMs: cpuMs() });

function begin(id: number, phase: Phase): void {
  process.send?.({ id, phase, cpuMs: cpuMs() });
}

/** The CPU time this process has used, in ms: its parent measures a phase's deadline in it. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Whether the step's condition holds: undefined when it does (or it has none), else why not. */
function conditionFails(task: { id: number; condition: string | null; context: TemplateContext }): Evaluated | undefined {
  if (task.condition === null) return undefined;
  try {
    if (!holds(task.condition, task.context)) return { status: 'skipped' };
  } catch (error) {
    return templateFailure(error, 'if');
  }
  begin(task.id, 'inputs');
  return undefined;
}

function evaluateStep(task: Extract<EvaluationTask, { kind: 'step' }>): Evaluated {
  const unmet = conditionFails(task);
  if (unmet) return unmet;
  const inputs = rendered(task.inputs, task.context, 'inputs');
  if (inputs.status !== 'ready') return inputs;
  const { value } = inputs;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { status: 'failed', phase: 'inputs', code: 'template-error', message: 'inputs: the template must render a JSON object', value };
  if (task.schema === undefined) return inputs;
  begin(task.id, 'validation');
  let invalid: string | undefined;
  try {
    invalid = validators.check(task.schema, value);
  } catch (error) {
    // A schema stored before the checks that now refuse it when an action is written.
    const message = `The action's inputSchema cannot be compiled: ${(error as Error).message}`;
    return { status: 'failed', phase: 'validation', code: 'invalid-inputs', message, value };
  }
  if (invalid)
    return { status: 'failed', phase: 'validation', code: 'invalid-inputs', message: `The inputs do not match the action's inputSchema: ${invalid}`, value };
  return inputs;
}

function evaluateValue(task: Extract<EvaluationTask, { kind: 'value' }>): Evaluated {
  const unmet = conditionFails(task);
  if (unmet) return unmet;
  if (task.choice === undefined) return rendered(task.template, task.context, 'inputs', task.where);
  for (const [index, condition] of task.choice.entries()) {
    try {
      if (holds(condition, task.context)) return { status: 'ready', value: index };
    } catch (error) {
      return templateFailure(error, 'inputs', `${task.where}[${index}].if`);
    }
  }
  return { status: 'ready', value: -1 };
}

/** The template rendered, unless it fails or renders more than the limit allows. */
function rendered(template: unknown, context: TemplateContext, phase: 'inputs' | 'output', where: string = phase): Evaluated {
  let value: unknown;
  try {
    value = render(template, context, where);
  } catch (error) {
    return templateFailure(error, phase);
  }
  if (jsonBytes(value) > options.resultLimitBytes) {
    const message = `${where}: the template renders more than TOLSTOY_TEMPLATE_RESULT_LIMIT_BYTES (${options.resultLimitBytes} bytes of JSON)`;
    return { status: 'failed', phase, code: 'template-limit', message };
  }
  return { status: 'ready', value };
}

function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    // Longer than a string can be.
    return Number.POSITIVE_INFINITY;
  }
}

function templateFailure(error: unknown, phase: Phase, where?: string): Evaluated {
  if (!(error instanceof TemplateError)) throw error;
  const message = where === undefined ? error.message : error.message.replace(/^if/, where);
  return { status: 'failed', phase, code: 'template-error', message };
}
