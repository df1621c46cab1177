// A flow's concurrency: at most `limit` of its runs at once per value of `key`, a JSON-e
// expression over the run's input (and trigger). The key is checked when the flow is written, as
// the other templates are, and evaluated once when a run is created (src/engine/runs/slots.ts).
import type { FieldError } from '../contract/problems.ts';
import type { components } from '../generated/openapi.ts';
import { conditionProblems, FLOW_EXPRESSION_TOKENS, TokenBudget, TooManyTokens } from './templateChecks.ts';

export type FlowConcurrency = NonNullable<components['schemas']['FlowConcurrency']>;

/** The longest value of a key, as JSON: longer ones fail the run (`concurrency-key`). */
export const KEY_VALUE_LIMIT_BYTES = 256;

/** What a run stores as its key when its flow's concurrency has no `key`: one set of slots per flow. */
export const WHOLE_FLOW = '';

/** The mistakes of a key as written (the pointer is the body's `/concurrency/key`); a key sees no steps. */
export function concurrencyProblems(concurrency: FlowConcurrency | null | undefined): FieldError[] {
  if (!concurrency?.key) return [];
  try {
    const problems = conditionProblems(concurrency.key, { all: [], visible: new Set() }, new TokenBudget());
    return problems.map((message) => ({ in: 'body', pointer: '/concurrency/key', message }));
  } catch (error) {
    if (!(error instanceof TooManyTokens)) throw error;
    return [{ in: 'body', pointer: '/concurrency/key', message: `has more than ${FLOW_EXPRESSION_TOKENS} tokens` }];
  }
}

/** The template that renders a key's value. */
export function keyTemplate(key: string): { $eval: string } {
  return { $eval: key };
}
