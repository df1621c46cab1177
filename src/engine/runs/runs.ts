// The owner of a run's life. Every statement that creates, claims, advances, waits, cancels,
// retries, abandons or deletes an execution is in this folder (start.ts, progress.ts,
// cancel.ts), and every status rule in statuses.ts; the API's handlers and the worker go through
// here. Glossary and state diagram: src/engine/README.md.
import type { Database, Transaction } from '../../db/client.ts';
import type { RunQueue } from '../jobs/queue.ts';
import { cancelRun } from './cancel.ts';
import type { RunChanges } from './changes.ts';
import { type NewRun, type Rerun, type StoredRun, storeRerun, storeRun } from './start.ts';

export class Runs {
  readonly #queue: RunQueue;
  readonly #changes: RunChanges;

  constructor(queue: RunQueue, changes: RunChanges) {
    this.#queue = queue;
    this.#changes = changes;
  }

  /** Stores a run and queues it, in `tx`: it is acknowledged only once both are committed. */
  async start(tx: Transaction, run: NewRun): Promise<StoredRun> {
    const stored = await storeRun(tx, run);
    await this.#queue.enqueue(tx, stored);
    return stored;
  }

  /** Stores a run that starts again from a step of an earlier one, and queues it, in `tx`. */
  async rerun(tx: Transaction, rerun: Rerun): Promise<StoredRun> {
    const stored = await storeRerun(tx, rerun);
    await this.#queue.enqueue(tx, stored);
    return stored;
  }

  /** After the commit of a start: wakes a worker of this process, if any (others hear of it from the queue). */
  started(executionId: string): void {
    this.#queue.queued(executionId);
  }

  /** Cancels a queued or running run; false when there is none to cancel. Its step in flight is aborted. */
  async cancel(db: Database, request: { orgId: string; executionId: string; by: string }): Promise<boolean> {
    const cancelled = await cancelRun(db, request);
    if (cancelled) this.#changes.announce({ executionId: request.executionId, status: 'cancelled' });
    return cancelled;
  }

  /** Whether the run finishes within `ms`; listening starts at the call. */
  finished(executionId: string, ms: number): Promise<boolean> {
    return this.#changes.finished(executionId, ms);
  }
}
