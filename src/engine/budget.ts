// What one execution may store (TOLSTOY_EXECUTION_BUDGET_BYTES): the inputs and responses of its
// attempts, as their execution logs keep them, and its output. A run holds in memory what it
// stored (the templates see every step's output), and a resumed run reads it all back, so the
// budget bounds what a run holds, what it stores, and what GET /executions/{id} loads and answers.
import type { Failure, Transition } from './runs/progress.ts';

// A failure's message may quote what failed: a template error the value it could not use, an
// endpoint that leaves its base URL its inputs; megabytes a step, which the budget does not count.
const MESSAGE_LENGTH = 1000;

/** The transition with its failures' messages cut to MESSAGE_LENGTH characters, saying how long they were. */
export function withShortMessages(transition: Transition): Transition {
  const { settle, finish } = transition;
  return {
    ...transition,
    ...(settle?.error && { settle: { ...settle, error: shortened(settle.error) } }),
    ...(finish?.error && { finish: { ...finish, error: shortened(finish.error) } }),
  };
}

function shortened(failure: Failure): Failure {
  const { message } = failure;
  if (message.length <= MESSAGE_LENGTH) return failure;
  return { ...failure, message: `${message.slice(0, MESSAGE_LENGTH)}… (${message.length} characters in all)` };
}

/** Thrown once a run went past its budget and was failed for it. */
export class BudgetSpent extends Error {}

export class Budget {
  readonly #limit: number;
  #used: number;

  /** `used`: what the run's attempts stored before (a resumed run). */
  constructor(limit: number, used: number) {
    this.#limit = limit;
    this.#used = used;
  }

  /**
   * The transition as it may be recorded: counted against the budget, or, when it would go past
   * it, one that fails the step and the run, storing neither its inputs nor its answer.
   */
  charge(transition: Transition): Transition {
    const { settle, finish } = transition;
    const stepBytes = sizeOf(settle?.inputs) + sizeOf(settle?.response);
    if (settle && this.#used + stepBytes > this.#limit) {
      const error = this.#exceeded(`Step ${settle.path}'s attempt`, stepBytes, settle.path);
      return {
        settle: { ...settle, status: 'failed', wakeAt: undefined, inputs: {}, request: undefined, response: undefined, error },
        finish: { status: 'failed', error },
      };
    }
    const outputBytes = sizeOf(finish?.output);
    if (this.#used + stepBytes + outputBytes > this.#limit) {
      this.#used += stepBytes;
      return { ...transition, finish: { status: 'failed', error: this.#exceeded('The output', outputBytes) } };
    }
    this.#used += stepBytes + outputBytes;
    return transition;
  }

  #exceeded(what: string, bytes: number, step?: string): Failure {
    return {
      code: 'budget-exceeded',
      message:
        `${what} would store ${bytes} bytes, and the execution's attempts already stored ${this.#used}: past its budget of ` +
        `${this.#limit} bytes (TOLSTOY_EXECUTION_BUDGET_BYTES). Steps that answer less (a page, a filter) keep a run within it.`,
      ...(step && { step }),
    };
  }
}

/** Bytes of a document as it is stored: JSON text in UTF-8. */
function sizeOf(document: unknown): number {
  return document === undefined ? 0 : Buffer.byteLength(JSON.stringify(document) ?? '');
}
