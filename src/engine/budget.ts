// What one execution may store (TOLSTOY_EXECUTION_BUDGET_BYTES): the inputs and responses of its
// attempts, as their execution logs keep them, the outputs of its other steps (a signal taken, a
// transform), what their kinds keep (a loop's items), and its output. A run holds in memory what it
// stored (the templates see every step's output), and a resumed run reads it all back, so the
// budget bounds what a run holds, what it stores, and what GET /executions/{id} loads and answers.
import type { Changes, Failure, StepWrite } from './runs/progress.ts';

// A failure's message may quote what failed: a template error the value it could not use, an
// endpoint that leaves its base URL its inputs; megabytes a step, which the budget does not count.
const MESSAGE_LENGTH = 1000;

/** The write with its failure's message cut to MESSAGE_LENGTH characters, saying how long it was. */
export function withShortMessages(write: StepWrite): StepWrite {
  return write.error ? { ...write, error: shortened(write.error) } : write;
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
   * The changes as they may be recorded: counted against the budget, or, when a step run's write
   * would go past it, changes that fail that step run and the run, storing neither its inputs nor its answer.
   */
  charge(changes: Changes): { changes: Changes; spent: boolean } {
    const finish = changes.finish && { ...changes.finish, ...(changes.finish.error && { error: shortened(changes.finish.error) }) };
    let stepBytes = 0;
    for (const write of changes.writes) {
      const bytes = sizeOf(write.log?.inputs) + sizeOf(write.response) + sizeOf(write.output) + sizeOf(write.state);
      if (this.#used + stepBytes + bytes > this.#limit) {
        const error = this.#exceeded(`Step ${write.path}'s attempt`, bytes, stepBytes, write.path);
        const failed: StepWrite = {
          ...write,
          status: 'failed',
          wakeAt: undefined,
          request: undefined,
          response: undefined,
          output: undefined,
          state: undefined,
          error,
          log: { status: 'failed', inputs: {} },
        };
        return { changes: { writes: [failed], finish: { status: 'failed', error } }, spent: true };
      }
      stepBytes += bytes;
    }
    const outputBytes = sizeOf(finish?.output);
    if (this.#used + stepBytes + outputBytes > this.#limit) {
      this.#used += stepBytes;
      return { changes: { ...changes, finish: { status: 'failed', error: this.#exceeded('The output', outputBytes, 0) } }, spent: true };
    }
    this.#used += stepBytes + outputBytes;
    return { changes: { ...changes, finish }, spent: false };
  }

  #exceeded(what: string, bytes: number, pending: number, step?: string): Failure {
    return {
      code: 'budget-exceeded',
      message:
        `${what} would store ${bytes} bytes, and the execution's attempts already stored ${this.#used + pending}: past its budget of ` +
        `${this.#limit} bytes (TOLSTOY_EXECUTION_BUDGET_BYTES). Steps that answer less (a page, a filter) keep a run within it.`,
      ...(step && { step }),
    };
  }
}

/** Bytes of a document as it is stored: JSON text in UTF-8. */
function sizeOf(document: unknown): number {
  return document === undefined ? 0 : Buffer.byteLength(JSON.stringify(document) ?? '');
}
