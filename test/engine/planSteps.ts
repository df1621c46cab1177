// Steps as stored, of every kind, and a short way to ask the planner, for the planner's tests.
import type { StoredStep } from '../../src/definitions/steps.ts';
import { newMemo, type Plan, type PlanMemo, plan, type StepRecord } from '../../src/engine/plan.ts';

export const NOW = new Date('2026-12-06T12:00:00Z');
export const LATER = new Date('2026-12-06T12:00:05Z');
export const EARLIER = new Date('2026-12-06T11:59:55Z');

function common(key: string, continueOnError: boolean) {
  return { key, if: null, continueOnError };
}

export function action(key: string, continueOnError = false): StoredStep {
  return {
    ...common(key, continueOnError),
    actionId: '00000000-0000-7000-8000-000000000000',
    inputs: {},
    timeoutMs: 1000,
    retry: { maxAttempts: 1, initialDelayMs: 1, maxDelayMs: 1 },
  };
}

export function transform(key: string, continueOnError = false): StoredStep {
  return { ...common(key, continueOnError), transform: { copied: true } };
}

export function sleep(key: string, continueOnError = false): StoredStep {
  return { ...common(key, continueOnError), sleep: { ms: 1000 } };
}

export function waitFor(key: string, continueOnError = false): StoredStep {
  return { ...common(key, continueOnError), waitFor: { signal: 'go', timeoutMs: 1000 } };
}

export function subFlow(key: string, continueOnError = false): StoredStep {
  return { ...common(key, continueOnError), flow: { flowId: '00000000-0000-7000-8000-000000000001', version: null, input: {} } };
}

/** A switch whose cases are these lists, in order, and whose default is `fallback`. */
export function switchOf(key: string, cases: StoredStep[][], fallback: StoredStep[] = [], continueOnError = false): StoredStep {
  return { ...common(key, continueOnError), switch: { cases: cases.map((steps) => ({ if: 'true', steps })), default: fallback } };
}

export function forEachOf(key: string, concurrency: number, steps: StoredStep[], continueOnError = false): StoredStep {
  return { ...common(key, continueOnError), forEach: { items: 'input.items', concurrency, steps } };
}

export function parallelOf(key: string, branches: Record<string, StoredStep[]>, continueOnError = false): StoredStep {
  return { ...common(key, continueOnError), parallel: { branches } };
}

export interface Ask {
  inFlight?: string[];
  memo?: PlanMemo;
  now?: Date;
}

/** The plan for steps recorded as `records` (path → record), at NOW unless told, nothing in flight unless told. */
export function planOf(steps: StoredStep[], records: Record<string, StepRecord>, ask: Ask = {}): Plan {
  return plan(steps, new Map(Object.entries(records)), ask.now ?? NOW, new Set(ask.inFlight ?? []), ask.memo ?? newMemo());
}

export function pathsOf(list: readonly { path: string }[]): string[] {
  return list.map((entry) => entry.path);
}

/** A holder's record once begun: running, with its case or its number of items. */
export function running(more: Partial<StepRecord> = {}): StepRecord {
  return { status: 'running', ...more };
}

export function completed(output: unknown = null): StepRecord {
  return { status: 'completed', output };
}

export function failed(message = 'boom'): StepRecord {
  return { status: 'failed', error: { code: 'http-error', message } };
}
