// The owner of a run's life. Every statement that creates, claims, advances, waits, cancels,
// retries, abandons or deletes an execution is in this folder (start.ts, progress.ts,
// cancel.ts, removal.ts), and every status rule in statuses.ts; the API's handlers and the worker go through
// here. Glossary and state diagram: src/engine/README.md.
import type { Database, Transaction } from '../../db/client.ts';
import type { RunQueue } from '../jobs/queue.ts';
import { cancelRun } from './cancel.ts';
import type { RunChanges } from './changes.ts';
import { type KeyEvaluator, type NewRun, type Rerun, type StoredRun, storeRerun, storeRun } from './start.ts';
import { keepSignal } from './waits.ts';

/** What the API's handlers may do with runs. */
export type RunOwner = Pick<Runs, 'start' | 'rerun' | 'started' | 'cancel' | 'cancelled' | 'finished' | 'signal'>;

export class Runs {
  readonly #queue: RunQueue;
  readonly #changes: RunChanges;
  readonly #evaluator: KeyEvaluator;

  /** `evaluator`: evaluates the concurrency keys of the runs started (bounded, in child processes). */
  constructor(queue: RunQueue, changes: RunChanges, evaluator: KeyEvaluator) {
    this.#queue = queue;
    this.#changes = changes;
    this.#evaluator = evaluator;
  }

  /** Stores a run and queues it, in `tx`: it is acknowledged only once both are committed. */
  async start(tx: Transaction, run: NewRun): Promise<StoredRun> {
    const stored = await storeRun(tx, run, this.#evaluator);
    await this.#queue.enqueue(tx, stored);
    return stored;
  }

  /** Stores a run that starts again from a step of an earlier one, and queues it, in `tx`. */
  async rerun(tx: Transaction, rerun: Rerun): Promise<StoredRun> {
    const stored = await storeRerun(tx, rerun, this.#evaluator);
    await this.#queue.enqueue(tx, stored);
    return stored;
  }

  /** After the commit of a start: wakes a worker of this process, if any (others hear of it from the queue). */
  started(executionId: string): void {
    this.#queue.queued(executionId);
  }

  /** Cancels a queued or running run; false when there is none to cancel. */
  cancel(db: Database, request: { orgId: string; executionId: string; by: string }): Promise<boolean> {
    return cancelRun(db, this.#queue, request);
  }

  /** After the commit of a cancel: a worker of this process aborts the run's step in flight at once (others hear of it within a second). */
  cancelled(executionId: string): void {
    this.#changes.announce({ executionId, status: 'cancelled' });
  }

  /** Keeps a signal for a queued or running run and wakes it, in `tx`, which holds the run's row lock. */
  signal(tx: Transaction, signal: Parameters<typeof keepSignal>[2]): Promise<void> {
    return keepSignal(tx, this.#queue, signal);
  }

  /** Whether the run finishes within `ms` (or before `stop`); listening starts at the call. */
  finished(executionId: string, ms: number, stop?: AbortSignal): Promise<boolean> {
    return this.#changes.finished(executionId, ms, stop);
  }
}
