// Every status rule of an execution and its steps, in one place: which states are final, which
// steps are settled (the run goes on past them), and the same lists as SQL for the statements
// that change a run.
import { Prisma } from '../../generated/prisma/client.ts';

export type ExecutionStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
export type StepStatus = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'skipped' | 'cancelled' | 'not_run';

/** An execution in one of these states is over: nothing changes it any more. */
export const FINISHED: readonly ExecutionStatus[] = ['completed', 'failed', 'cancelled'];
/** An execution in one of these states may still change: a worker may run it, a member may cancel it. */
export const UNFINISHED: readonly ExecutionStatus[] = ['queued', 'running'];
/** A step in one of these states has not ended: it is still to run, running, or waiting to be tried again. */
export const OPEN_STEP: readonly StepStatus[] = ['pending', 'running', 'waiting'];

export function isFinished(status: string): boolean {
  return (FINISHED as readonly string[]).includes(status);
}

/**
 * Whether the run goes on past a step in this state: it completed, was skipped, or failed with
 * continueOnError. A step that failed otherwise ends its run.
 */
export function isSettled(status: StepStatus, continueOnError: boolean): boolean {
  return status === 'completed' || status === 'skipped' || (status === 'failed' && continueOnError);
}

/** Whether a step's recorded outcome can be reused by a rerun, byte for byte. */
export function isReusable(status: StepStatus): boolean {
  return status === 'completed' || status === 'skipped';
}

/** A list of states as SQL, for `status IN (…)`. */
export function sqlList(states: readonly string[]): Prisma.Sql {
  return Prisma.raw(`(${states.map((state) => `'${state}'`).join(', ')})`);
}
