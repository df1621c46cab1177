// What runs next: a pure function of the flow version's steps and what has been recorded of them.
// No I/O here (no database, no clock, no calls); src/engine/run.ts does what it decides.
//
// A step's identity is its path: a top-level step's path is its key. Steps inside a loop
// iteration or a branch (a later issue) get `<parent>[<index>].<key>` or `<parent>.<branch>.<key>`,
// so that each keeps its identity in the record, in the outbound Idempotency-Key and across crashes.
import type { StoredStep } from '../resources/flows.ts';
import { isSettled, type StepStatus } from './runs/statuses.ts';

/** What is recorded of one step: its state, and until when it waits when it is waiting. */
export interface StepRecord {
  status: StepStatus;
  wakeAt?: Date | null;
}

export type Decision =
  /** Run (or go on with) this step now. */
  | { kind: 'run'; path: string; step: StoredStep }
  /** Nothing to do before `until`: the step at `path` waits (for its next attempt). */
  | { kind: 'wait'; path: string; until: Date }
  /** Every step is settled. */
  | { kind: 'complete' }
  /** The step at `path` failed without continueOnError: the run fails. */
  | { kind: 'fail'; path: string }
  /** The run was stopped from outside (cancelled): nothing is left to do. */
  | { kind: 'stopped' };

/** The path of a step of the flow's top level: its key (steps in loops and branches come with the control-flow issue). */
export function pathOf(key: string): string {
  return key;
}

/**
 * Decides what happens next. Steps run one after another, in the order the flow gives them: the
 * first that is not settled is the one to run, unless it waits (then the run waits for it) or it
 * failed or was cancelled (then the run ends).
 */
export function nextStep(steps: readonly StoredStep[], recorded: ReadonlyMap<string, StepRecord>, now: Date): Decision {
  for (const step of steps) {
    const path = pathOf(step.key);
    const record = recorded.get(path) ?? { status: 'pending' };
    if (isSettled(record.status, step.continueOnError)) continue;
    switch (record.status) {
      case 'failed':
        return { kind: 'fail', path };
      case 'cancelled':
      case 'not_run':
        return { kind: 'stopped' };
      case 'waiting':
        if (record.wakeAt && record.wakeAt.getTime() > now.getTime()) return { kind: 'wait', path, until: record.wakeAt };
        return { kind: 'run', path, step };
      default:
        return { kind: 'run', path, step };
    }
  }
  return { kind: 'complete' };
}

/** The path of the last step, in the flow's order, that completed: its output is the run's default output. */
export function lastCompleted(steps: readonly StoredStep[], recorded: ReadonlyMap<string, StepRecord>): string | undefined {
  return steps.map((step) => pathOf(step.key)).findLast((path) => recorded.get(path)?.status === 'completed');
}
