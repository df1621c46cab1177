// Removing runs: every run of an organization that is deleted (runs past their retention: retention.ts).
import type { Transaction } from '../../db/client.ts';
import { UNFINISHED } from './statuses.ts';

/** Removes every execution of an organization, with its steps and logs, in `tx` (the organization is being deleted). */
export async function removeRunsOf(tx: Transaction, orgId: string): Promise<void> {
  await tx.executionLog.deleteMany({ where: { orgId } });
  // Retries name the executions they retried: unlinked first, so that any order of deletion holds.
  await tx.execution.updateMany({ where: { orgId, retryOf: { not: null } }, data: { retryOf: null } });
  await tx.execution.deleteMany({ where: { orgId } });
}

/** How many runs of the organization (that the member started, when one is named) have not finished. */
export function unfinishedRuns(tx: Transaction, orgId: string, createdBy?: string): Promise<number> {
  return tx.execution.count({ where: { orgId, status: { in: [...UNFINISHED] }, ...(createdBy && { createdBy }) } });
}
