// What each kind of step does when it begins (or, waiting, looks again): an action sends its
// request (step.ts); a transform renders its template; a switch chooses its case, a forEach
// evaluates its items and a parallel step just begins (the planner runs what they hold); a sleep
// waits for its time, a waitFor for its signal, a sub-flow step for its child run, each parked
// without a worker. Templates are evaluated in the evaluator's bounded processes.
import { ProblemError } from '../contract/problems.ts';
import type { Database, Transaction } from '../db/client.ts';
import { MAX_ITEMS } from '../definitions/steps.ts';
import type { TemplateContext } from '../definitions/templates.ts';
import { inSpan } from '../observability/tracing.ts';
import { BudgetSpent } from './budget.ts';
import type { Evaluated } from './evaluator.ts';
import type { RunQueue } from './jobs/queue.ts';
import type { Begin, StepRecord } from './plan.ts';
import { type Changes, type ClaimedRun, type Failure, LostRun, recordChanges, type StepWrite } from './runs/progress.ts';
import { countTreeRun, MAX_RUN_DEPTH, storeRun } from './runs/start.ts';
import { childOutcome, takeSignal, wakeParent } from './runs/waits.ts';
import { type Attempt, isPrepared, prepareAttempt, type StepTools, sendAttempt } from './step.ts';
import { pauseTool, reserveCall, tryAgainAt } from './toolLimits.ts';

// The longest wait before another attempt, even when an answer's Retry-After asks for longer.
const MAX_RETRY_WAIT_MS = 300_000;
// The longest a sleep may last.
const MAX_SLEEP_MS = 31_536_000_000;

export interface KindTools extends StepTools {
  queue: RunQueue;
}

/** What the turn knows of a step run: its record, its attempts, a sub-flow step's child. */
export interface KnownStep extends StepRecord {
  attempts: number;
  childId?: string;
}

/** What a step run is given by its turn. */
export interface StepRun {
  run: ClaimedRun;
  db: Database;
  tools: KindTools;
  /** Aborted when the run is cancelled or the worker must stop now. */
  signal: AbortSignal;
  shutdown: AbortSignal;
  cancel: AbortSignal;
  context: TemplateContext;
  /** What is recorded of it, if anything. */
  record: KnownStep | null;
  /** A waiting waitFor or sub-flow step looking whether its news came. */
  recheck: boolean;
  secrets: Set<string>;
  write: (changes: Changes) => Promise<void>;
  /** The changes as they may be recorded in a transaction of the step run's own: scrubbed, and charged against the run's budget. */
  charge: (changes: Changes) => { changes: Changes; spent: boolean };
  /** Runs the run's tree of sub-flows may hold (TOLSTOY_RUN_TREE_LIMIT). */
  treeLimit: number;
  /** Told of a write recorded in a transaction of the step run's own (a signal taken, a child started). */
  written: (write: StepWrite) => void;
  /** Keeps a loop's items for its iterations' templates. */
  items: (path: string, items: unknown[]) => void;
  /** Runs a transaction of the step run's own, one at a time in its turn: they would all wait for the run's row lock, holding connections. */
  transaction: <T>(work: (tx: Transaction) => Promise<T>) => Promise<T>;
}

export function beginStep(run: StepRun, begin: Begin): Promise<void> {
  switch (begin.kind) {
    case 'action':
      return action(run, begin);
    case 'waitFor':
      return waitFor(run, begin);
    case 'flow':
      return run.recheck ? childEnded(run, begin) : subFlow(run, begin);
    case 'sleep':
      return sleep(run, begin);
    default:
      return valued(run, begin);
  }
}

/** A write of the step run at `begin` taking `status`. */
function writeOf(begin: Begin, status: StepWrite['status'], more: Partial<StepWrite> = {}): StepWrite {
  return { path: begin.path, key: begin.step.key, kind: begin.kind, actionId: begin.step.actionId ?? null, status, ...more };
}

/** Records the step run settled, or failed for `failure`, or skipped, and its execution log. */
function settle(run: StepRun, begin: Begin, status: 'completed' | 'failed' | 'skipped', more: Partial<StepWrite> = {}): Promise<void> {
  const write = writeOf(begin, status, { ...more, log: { status, inputs: more.log?.inputs ?? {} } });
  return run.write({ writes: [write] });
}

function failed(run: StepRun, begin: Begin, error: Failure, attempt = false): Promise<void> {
  return settle(run, begin, 'failed', { error, attempt });
}

/** Evaluates the step's condition and its value; undefined when the step was settled (skipped, failed). */
async function evaluated(run: StepRun, begin: Begin, value: Omit<Parameters<StepTools['evaluator']['value']>[1], 'condition'>): Promise<unknown> {
  // Nothing to evaluate: no trip to an evaluator process.
  if (begin.step.if === null && value.template === null && value.choice === undefined) return { value: null };
  const outcome: Evaluated = await run.tools.evaluator.value(run.run.orgId, { condition: begin.step.if, ...value }, run.context);
  if (outcome.status === 'skipped') {
    await settle(run, begin, 'skipped');
    return undefined;
  }
  if (outcome.status === 'failed') {
    await failed(run, begin, { code: outcome.code, message: outcome.message }, true);
    return undefined;
  }
  return { value: outcome.value };
}

/** A transform renders its output; a switch chooses its case, a forEach its items, a parallel step begins. */
async function valued(run: StepRun, begin: Begin): Promise<void> {
  const { step } = begin;
  if (begin.kind === 'transform') {
    const result = (await evaluated(run, begin, { where: 'transform', template: step.transform ?? null })) as { value: unknown } | undefined;
    if (result) await settle(run, begin, 'completed', { output: result.value, attempt: true });
    return;
  }
  if (begin.kind === 'switch') {
    const result = (await evaluated(run, begin, { where: 'switch.cases', choice: step.switch!.cases.map((branch) => branch.if) })) as
      | { value: number }
      | undefined;
    if (result) await run.write({ writes: [writeOf(begin, 'running', { state: { case: result.value === -1 ? 'default' : result.value } })] });
    return;
  }
  if (begin.kind === 'forEach') {
    const result = (await evaluated(run, begin, { where: 'forEach.items', template: { $eval: step.forEach!.items } })) as { value: unknown } | undefined;
    if (!result) return;
    const items = result.value;
    if (!Array.isArray(items)) return failed(run, begin, { code: 'template-error', message: `forEach.items: gives ${typeName(items)}, not an array` });
    if (items.length > MAX_ITEMS)
      return failed(run, begin, { code: 'too-many-items', message: `forEach.items: gives ${items.length} items; a loop takes at most ${MAX_ITEMS}` });
    run.items(begin.path, items);
    await run.write({ writes: [writeOf(begin, 'running', { state: { items } })] });
    return;
  }
  // parallel
  if (await evaluated(run, begin, { where: 'if', template: null })) await run.write({ writes: [writeOf(begin, 'running')] });
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * One attempt of an action step: begun (counted) before it is sent, and settled or waiting for its
 * next after. Its call is reserved under the tool's rate limit just before it is sent, so that calls
 * reach the tool in the order the limit let them go; a step whose reservation is refused takes its
 * attempt back and waits, durably, until it may try again.
 */
async function action(run: StepRun, begin: Begin): Promise<void> {
  const { step, path } = begin;
  const templates = { condition: step.if, inputs: step.inputs, schema: run.run.actions.get(step.actionId!)?.inputSchema };
  const evaluation = await run.tools.evaluator.step(run.run.orgId, templates, run.context);
  if (evaluation.status === 'skipped') return settle(run, begin, 'skipped');
  if (evaluation.status === 'failed') {
    const inputs = evaluation.value ?? {};
    return settle(run, begin, 'failed', {
      error: { code: evaluation.code, message: evaluation.message },
      attempt: true,
      durationMs: 0,
      log: { status: 'failed', inputs },
    });
  }
  const prepared = await prepareAttempt(run.run, step, path, evaluation, run.tools, run.signal);
  await run.write({ writes: [writeOf(begin, 'running', { attempt: true, keep: true })] });
  if (isPrepared(prepared)) {
    const waitMs = await reserveCall(run.db, prepared.toolId);
    if (waitMs > 0) {
      await run.write({ writes: [writeOf(begin, 'waiting', { refused: true, keep: true, wakeAt: tryAgainAt(waitMs) })] });
      return;
    }
  }
  const attempts = (run.record?.attempts ?? 0) + 1;
  const attributes = { 'tolstoy.step': path, 'tolstoy.action_id': step.actionId!, 'tolstoy.attempt': attempts };
  const result = !isPrepared(prepared)
    ? prepared
    : await inSpan(`step ${path}`, attributes, async (span) => {
        const attempted = await sendAttempt(run.run, step, prepared, run.tools, run.signal);
        span.setAttribute('tolstoy.status', attempted.status);
        return attempted;
      });
  // Every run calling the tool pauses, not only this one.
  if (isPrepared(prepared) && result.response?.status === 429 && result.retryAfterMs !== undefined)
    await pauseTool(run.db, prepared.toolId, result.retryAfterMs);
  run.tools.attempted(step.actionId!, result.status, result.durationMs);
  for (const secret of result.secrets ?? []) run.secrets.add(secret);
  // Stopped now: nothing is recorded, so the attempt is made again elsewhere.
  if (run.shutdown.aborted) return;
  const maxAttempts = Math.max(step.retry!.maxAttempts, attempts);
  const waitMs = result.retryable && attempts < maxAttempts && !run.cancel.aborted ? delayBefore(attempts + 1, step.retry!, result) : undefined;
  const recorded = {
    request: result.request,
    response: result.response,
    error: result.error,
    durationMs: result.durationMs,
    log: { status: result.status, inputs: result.inputs ?? {} },
  };
  // The failed attempt is recorded now; the next is counted when it is sent.
  if (waitMs !== undefined) {
    await run.write({ writes: [writeOf(begin, 'waiting', { ...recorded, wakeAt: new Date(Date.now() + waitMs) })] });
    return;
  }
  await run.write({ writes: [writeOf(begin, result.status, recorded)] });
}

/** Exponential backoff with jitter, capped; longer when the answer's Retry-After asks for it. */
export function delayBefore(attempt: number, retry: { initialDelayMs: number; maxDelayMs: number }, result: Pick<Attempt, 'retryAfterMs'>): number {
  const exponential = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 2));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.min(MAX_RETRY_WAIT_MS, Math.max(jittered, result.retryAfterMs ?? 0));
}

/** A sleep: waiting until its time, then completed. */
async function sleep(run: StepRun, begin: Begin): Promise<void> {
  if (run.record?.status === 'waiting') return settle(run, begin, 'completed', { output: null });
  const sleepFor = begin.step.sleep!;
  let wakeAt: Date;
  if (sleepFor.ms !== undefined) {
    if (!(await evaluated(run, begin, { where: 'if', template: null }))) return;
    wakeAt = new Date(Date.now() + sleepFor.ms);
  } else {
    const result = (await evaluated(run, begin, { where: 'sleep.until', template: { $eval: sleepFor.until } })) as { value: unknown } | undefined;
    if (!result) return;
    const time =
      typeof result.value === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/i.test(result.value)
        ? new Date(result.value)
        : undefined;
    if (!time || Number.isNaN(time.getTime())) {
      const message = `sleep.until: gives ${JSON.stringify(result.value)?.slice(0, 100)}, not an ISO 8601 time with its offset (such as 2026-12-24T09:00:00Z)`;
      return failed(run, begin, { code: 'template-error', message });
    }
    if (time.getTime() - Date.now() > MAX_SLEEP_MS)
      return failed(run, begin, { code: 'template-error', message: `sleep.until: ${result.value} is more than a year away; a sleep lasts at most a year` });
    wakeAt = time;
  }
  if (wakeAt.getTime() <= Date.now()) return settle(run, begin, 'completed', { output: null });
  await run.write({ writes: [writeOf(begin, 'waiting', { wakeAt })] });
}

/** A waitFor: takes a signal of its name kept for the run, or waits for one until its timeout. */
async function waitFor(run: StepRun, begin: Begin): Promise<void> {
  const { signal: name, timeoutMs } = begin.step.waitFor!;
  const waiting = run.record?.status === 'waiting';
  if (!waiting && !(await evaluated(run, begin, { where: 'if', template: null }))) return;
  const taken = await inTransaction(run, async (tx) => {
    const signal = await takeSignal(tx, run.run, begin.path, name);
    if (!signal) return undefined;
    // A payload is stored and held like an answer: past the budget, the step and the run fail.
    const charged = run.charge({ writes: [writeOf(begin, 'completed', { output: signal.payload, log: { status: 'completed', inputs: {} } })] });
    await record(tx, run, charged.changes);
    return charged;
  });
  if (taken) {
    for (const write of taken.changes.writes) run.written(write);
    if (taken.spent) throw new BudgetSpent();
    return;
  }
  const wakeAt = run.record?.wakeAt;
  if (waiting && wakeAt && wakeAt.getTime() <= Date.now()) {
    return failed(run, begin, { code: 'timeout', message: `No signal "${name}" came within ${timeoutMs} ms.` });
  }
  if (!waiting) await run.write({ writes: [writeOf(begin, 'waiting', { wakeAt: new Date(Date.now() + timeoutMs), state: { signal: name } })] });
}

/** A sub-flow step: starts its child run and waits for it, in one transaction. */
async function subFlow(run: StepRun, begin: Begin): Promise<void> {
  const { flowId, version, input } = begin.step.flow!;
  const result = (await evaluated(run, begin, { where: 'flow.input', template: input })) as { value: unknown } | undefined;
  if (!result) return;
  const childInput = result.value;
  if (childInput === null || typeof childInput !== 'object' || Array.isArray(childInput)) {
    return failed(run, begin, { code: 'template-error', message: 'flow.input: the template must render a JSON object' });
  }
  if (run.run.depth + 1 > MAX_RUN_DEPTH) {
    const message = `This run is ${run.run.depth} sub-flows deep; runs nest at most ${MAX_RUN_DEPTH} deep, so it cannot start another (does a flow call itself?).`;
    return failed(run, begin, { code: 'too-deep', message });
  }
  const trigger = { type: 'flow' as const, executionId: run.run.id, step: begin.path };
  const rootId = run.run.rootId ?? run.run.id;
  let started: { childId: string; write: StepWrite };
  try {
    started = await inTransaction(run, async (tx) => {
      const child = await storeRun(
        tx,
        {
          orgId: run.run.orgId,
          flowId,
          ...(version !== null && { version }),
          input: childInput as Record<string, unknown>,
          trigger,
          parentDepth: run.run.depth,
          rootId,
        },
        run.tools.evaluator,
      );
      await run.tools.queue.enqueue(tx, child);
      const write = writeOf(begin, 'waiting', { state: { childId: child.id } });
      await record(tx, run, { writes: [write] });
      // Counted last, on the root's row: the locks go from a run to its ancestors, as when a child ends.
      if (!(await countTreeRun(tx, rootId, run.treeLimit))) throw new TreeFull();
      return { childId: child.id, write };
    });
  } catch (error) {
    if (error instanceof TreeFull) {
      const message = `The runs of this tree of sub-flows (from execution ${rootId}) reached ${run.treeLimit}, its limit (TOLSTOY_RUN_TREE_LIMIT); it starts no other.`;
      return failed(run, begin, { code: 'too-many-runs', message });
    }
    if (!(error instanceof ProblemError)) throw error;
    return failed(run, begin, { code: 'child-refused', message: `The sub-flow's run could not start: ${error.message}` });
  }
  run.written(started.write);
  run.tools.queue.queued(started.childId);
}

/** Thrown to undo a child's start when its tree of runs is full. */
class TreeFull extends Error {}

/** A waiting sub-flow step: settled with its child's outcome once the child ended. */
async function childEnded(run: StepRun, begin: Begin): Promise<void> {
  const childId = run.record?.childId;
  if (!childId) return;
  const outcome = await inTransaction(run, (tx) => childOutcome(tx, childId));
  if (!outcome) return;
  if (outcome.status === 'completed') return settle(run, begin, 'completed', { output: outcome.output });
  return failed(run, begin, outcome.error);
}

function inTransaction<T>(run: StepRun, work: (tx: Transaction) => Promise<T>): Promise<T> {
  return run.transaction(work);
}

/** Records changes in `tx`, fenced by the lease like every other; a sub-flow's run they end wakes its parent. */
async function record(tx: Transaction, run: StepRun, changes: Changes): Promise<void> {
  if (!(await recordChanges(tx as unknown as Database, run.run, changes))) throw new LostRun();
  if (changes.finish && run.run.parentId) await wakeParent(tx, run.tools.queue, run.run.id);
}
