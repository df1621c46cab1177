// Step inputs, step conditions and flow outputs are JSON-e templates (https://json-e.js.org):
// JSON structures with `{"$eval": "steps.lookup.output.id"}` (a whole value, keeping its type),
// `"Hello ${input.name}"` (interpolation into a string), `$if`, `$map` and the rest. JSON-e never
// evaluates code and keeps types, but does not bound its own work: the engine calls render() and
// holds() only in its evaluator processes (src/engine/evaluator.ts), which bound time and memory.
// See README, "Running flows", for why JSON-e was chosen over the alternatives.
import jsone from 'json-e';

/** What a template sees: the execution's input, the steps before it, and the execution itself. */
export interface TemplateContext {
  input: Record<string, unknown>;
  /** What started the run: `{type: 'api' | 'webhook' | 'schedule', …}`. */
  trigger: Record<string, unknown>;
  steps: Record<string, TemplateStep>;
  execution: { id: string; flowId: string; flowVersion: number };
  /** Inside a forEach: this iteration's item and its index. */
  item?: unknown;
  index?: number;
}

/**
 * A step before, as templates see it. `status` is the step's state, as everywhere in the API;
 * the HTTP status of its answer is `httpStatus` (null when no answer came: skipped, or failed
 * before or without one).
 */
export interface TemplateStep {
  status: 'completed' | 'failed' | 'skipped';
  httpStatus: number | null;
  output: unknown;
  headers: Record<string, string>;
  /** A switch's case that ran: its index, or "default". */
  case?: number | 'default';
}

export class TemplateError extends Error {}

/** The template rendered in `context`; a reference to a missing step or field names it. */
export function render(template: unknown, context: TemplateContext, where: string): unknown {
  try {
    return jsone(template as Record<string, unknown>, context as unknown as Record<string, unknown>);
  } catch (error) {
    throw new TemplateError(describe(error, where));
  }
}

/** Whether the condition holds, by JSON-e's truthiness (false, null, 0, "", [] and {} do not). */
export function holds(condition: string, context: TemplateContext): boolean {
  return render(conditionTemplate(condition), context, 'if') === true;
}

function conditionTemplate(condition: string) {
  // biome-ignore lint/suspicious/noThenProperty: JSON-e's $if names its branches then and else; this object is never awaited
  return { $if: condition, then: true, else: false };
}

// JSON-e's errors say where in the template they happened ("template.a.b[0]") and what went
// wrong ("object has no property \"lookup\""); they are written here as `<where>.a.b[0]: …`.
function describe(error: unknown, where: string): string {
  const failure = error as Error & { location?: string[] };
  const location = failure.location?.join('') ?? '';
  // JSON-e's own errors say what went wrong; anything else means it could not make sense of the template.
  const message = 'location' in failure ? failure.message.replace(/^object has no property /, 'no property ') : `cannot be evaluated (${failure.message})`;
  return `${where}${location}: ${message}`;
}
