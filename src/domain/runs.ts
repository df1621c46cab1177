// What the domain needs from the engine, without knowing how it works: a queue that takes a run
// inside the transaction that stores it (so an acknowledged run is never lost), and news of runs.
import type { Prisma } from '../generated/prisma/client.ts';

export type Transaction = Prisma.TransactionClient;

export interface Runs {
  /** Queues the execution inside the transaction that stores it. */
  enqueue(tx: Transaction, execution: { id: string; orgId: string }): Promise<void>;
  /** After the commit: wakes a worker of this process, if any (others find the run by polling). */
  queued(executionId: string): void;
  /** Whether the execution finishes within `ms`. */
  finished(executionId: string, ms: number): Promise<boolean>;
  /** Aborts the step in flight when a worker of this process runs it (others notice within a second). */
  cancelled(executionId: string): void;
}
