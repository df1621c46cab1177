// Runs one execution: from its first step that has not completed (so a run resumed after a
// crash repeats no completed step), one step at a time, each recorded before the next starts.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../db/client.ts';
import type { TemplateContext, TemplateStep } from '../definitions/templates.ts';
import { type ClaimedRun, claimRun, type Failure, recordTransition, type Settlement, type StepProgress, type Transition } from '../domain/progress.ts';
import { inSpan } from '../observability/tracing.ts';
import type { StoredStep } from '../resources/flows.ts';
import { Budget, BudgetSpent, withShortMessages } from './budget.ts';
import { type Attempt, attemptStep, type StepTools } from './step.ts';
import { scrubbed } from './toolAuth.ts';

/** How a worker's turn with an execution ended. */
export type Outcome =
  /** Finished, or nothing was left to do (cancelled, finished before). */
  | 'done'
  /** Given back unfinished (the worker is stopping): another worker goes on from the last completed step. */
  | 'released'
  /** Taken from this worker (cancelled, or its job handed on): it stopped writing. */
  | 'lost';

// The longest wait before another attempt, even when an answer's Retry-After asks for longer.
const MAX_RETRY_WAIT_MS = 300_000;

export interface RunSignals {
  /** Aborted when the execution is cancelled. */
  cancel: AbortSignal;
  /** Aborted when the worker must stop now (its drain ran out of time). */
  shutdown: AbortSignal;
  /** Whether the worker is draining: finish the step in flight, start no other. */
  stopping: () => boolean;
}

/** What one run may consume: TOLSTOY_EXECUTION_BUDGET_BYTES and TOLSTOY_STEP_RESUME_LIMIT. */
export interface RunLimits {
  budgetBytes: number;
  resumeLimit: number;
}

export function runExecution(db: Database, executionId: string, tools: StepTools, signals: RunSignals, limits: RunLimits): Promise<Outcome> {
  return inSpan('execution', { 'tolstoy.execution_id': executionId }, () => runClaimed(db, executionId, tools, signals, limits));
}

async function runClaimed(db: Database, executionId: string, tools: StepTools, signals: RunSignals, limits: RunLimits): Promise<Outcome> {
  // The claim counts an attempt of the step it begins, which is then sent even while draining.
  if (signals.stopping()) return 'released';
  const run = await claimRun(db, executionId);
  if (!run) return 'done';
  const context = contextOf(run);
  const signal = AbortSignal.any([signals.cancel, signals.shutdown]);
  // Credentials the run's steps sent: neither the templates nor the record ever see them.
  const secrets = new Set<string>();
  const budget = new Budget(limits.budgetBytes, run.stored);
  const record = async (transition: Transition) => {
    const scrubbedTransition = withShortMessages(scrubbed(transition, secrets));
    const charged = budget.charge(scrubbedTransition);
    (await recordTransition(db, run, charged)) || lostRun();
    if (charged !== scrubbedTransition) throw new BudgetSpent();
    return true as const;
  };
  if (run.begun !== null && run.resumes > limits.resumeLimit) {
    await record(crashLoop(run, run.begun, limits.resumeLimit));
    return 'done';
  }
  // The claim began the first step not yet settled.
  let position = run.begun ?? run.steps.length;
  let lastCompleted = lastOutput(run, position);
  while (position < run.steps.length) {
    const step = run.steps[position]!;
    const progress = run.progress[position]!;
    const ran = await runStep(run, step, position, progress, context, tools, { signal, signals, secrets }, record);
    if (ran === 'released') return 'released';
    if (ran.status === 'completed') lastCompleted = ran.output;
    if (ran.status === 'failed' && !step.continueOnError) {
      const error: Failure = { code: 'step-failed', message: `Step ${step.key} failed: ${ran.error?.message ?? 'unknown error'}`, step: step.key };
      await record({ settle: ran.settlement, finish: { status: 'failed', error } });
      return 'done';
    }
    const next = position + 1 < run.steps.length ? position + 1 : undefined;
    if (next === undefined) {
      await record({ settle: ran.settlement, finish: await finishing(run, context, lastCompleted, tools) });
      return 'done';
    }
    // Draining: the next step is left pending, uncounted, for the worker that takes the run on.
    if (signals.stopping()) {
      await record({ settle: ran.settlement });
      return 'released';
    }
    await record({ settle: ran.settlement, begin: next });
    position = next;
  }
  // Every step was already done (a crash just before the end): finish.
  await record({ finish: await finishing(run, context, lastCompleted, tools) });
  return 'done';
}

class LostRun extends Error {}

/** Fails a run whose step was cut short more often than the limit: its worker died each time (for lack of memory, say). */
function crashLoop(run: ClaimedRun, position: number, resumeLimit: number): Transition {
  const key = run.steps[position]!.key;
  const error: Failure = {
    code: 'interrupted',
    message:
      `Step ${key} was cut short ${run.resumes} times: its worker stopped each time, as when it runs out of memory. The run fails rather than ` +
      `take down another worker (TOLSTOY_STEP_RESUME_LIMIT is ${resumeLimit}).`,
    step: key,
  };
  return { settle: { position, key, status: 'failed', error }, finish: { status: 'failed', error } };
}

function lostRun(): never {
  throw new LostRun('The execution is no longer this worker’s to run.');
}

/** Runs `execution`, turning a lost run into its outcome. */
export async function runOrLose(db: Database, executionId: string, tools: StepTools, signals: RunSignals, limits: RunLimits): Promise<Outcome> {
  try {
    return await runExecution(db, executionId, tools, signals, limits);
  } catch (error) {
    if (error instanceof LostRun) return 'lost';
    // Failed for going past its budget: recorded, so done.
    if (error instanceof BudgetSpent) return 'done';
    throw error;
  }
}

interface StepResult {
  status: 'completed' | 'failed' | 'skipped';
  settlement: Settlement;
  output: unknown;
  error?: Failure;
}

async function runStep(
  run: ClaimedRun,
  step: StoredStep,
  position: number,
  progress: StepProgress,
  context: TemplateContext,
  tools: StepTools,
  { signal, signals, secrets }: { signal: AbortSignal; signals: RunSignals; secrets: Set<string> },
  record: (transition: Transition) => Promise<true>,
): Promise<StepResult | 'released'> {
  // The condition, the inputs and their check, in one bounded evaluation.
  const templates = { condition: step.if, inputs: step.inputs, schema: run.actions.get(step.actionId)?.inputSchema };
  const evaluated = await tools.evaluator.step(run.orgId, templates, context);
  if (evaluated.status === 'failed' && evaluated.phase === 'if') {
    const failure = { code: evaluated.code, message: evaluated.message };
    return { status: 'failed', settlement: { position, key: step.key, status: 'failed', error: failure, durationMs: 0 }, output: null, error: failure };
  }
  if (evaluated.status === 'skipped') {
    context.steps[step.key] = { status: 'skipped', httpStatus: null, output: null, headers: {} };
    return { status: 'skipped', settlement: { position, key: step.key, status: 'skipped' }, output: null };
  }
  // The attempt begun now is the next after those recorded; a step resumed after a crash gets it
  // even past its maxAttempts, because the outcome of the attempt the crash cut short is unknown.
  const first = progress.attempts + 1;
  const maxAttempts = Math.max(step.retry.maxAttempts, first);
  for (let attempt = first; ; attempt++) {
    const attributes = { 'tolstoy.step': step.key, 'tolstoy.action_id': step.actionId, 'tolstoy.attempt': attempt };
    const result = await inSpan(`step ${step.key}`, attributes, async (span) => {
      const attempted = await attemptStep(run, step, evaluated, tools, signal);
      span.setAttribute('tolstoy.status', attempted.status);
      return attempted;
    });
    tools.attempted(step.actionId, result.status, result.durationMs);
    for (const secret of result.secrets ?? []) secrets.add(secret);
    // Stopped now: nothing is recorded, so the attempt is made again elsewhere.
    if (signals.shutdown.aborted) return 'released';
    const settlement = settlementOf(position, step.key, result);
    const waitMs = result.retryable && attempt < maxAttempts ? delayBefore(attempt + 1, step, result) : undefined;
    if (waitMs === undefined || signals.cancel.aborted) {
      // Scrubbed before templates see it: an API that echoes a credential cannot hand it, whole
      // or sliced, to a later step's request.
      const response = result.response && scrubbed(result.response, secrets);
      const output = response?.body ?? null;
      context.steps[step.key] = { status: result.status, httpStatus: response?.status ?? null, output, headers: response?.headers ?? {} };
      return { status: result.status, settlement, output, error: result.error };
    }
    // The failed attempt is recorded now; the next is counted once the wait is over, as it is
    // sent, so that a run handed on (or a worker lost) during the wait counts no attempt unsent.
    await record({ settle: { ...settlement, status: 'running' } });
    try {
      await sleep(waitMs, undefined, { signal });
    } catch {
      if (signals.shutdown.aborted) return 'released';
    }
    await record({ begin: position });
  }
}

function settlementOf(position: number, key: string, attempt: Attempt): Settlement {
  return {
    position,
    key,
    status: attempt.status,
    inputs: attempt.inputs ?? {},
    request: attempt.request,
    response: attempt.response,
    error: attempt.error,
    durationMs: attempt.durationMs,
  };
}

/** Exponential backoff with jitter, capped; longer when the answer's Retry-After asks for it. */
export function delayBefore(attempt: number, step: StoredStep, result: Pick<Attempt, 'retryAfterMs'>): number {
  const exponential = Math.min(step.retry.maxDelayMs, step.retry.initialDelayMs * 2 ** (attempt - 2));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.min(MAX_RETRY_WAIT_MS, Math.max(jittered, result.retryAfterMs ?? 0));
}

function settled(progress: StepProgress, step: StoredStep): boolean {
  return progress.status === 'completed' || progress.status === 'skipped' || (progress.status === 'failed' && step.continueOnError);
}

/** What the templates see, with the steps already done (a resumed run). */
function contextOf(run: ClaimedRun): TemplateContext {
  const context: TemplateContext = { input: run.input, steps: {}, execution: { id: run.id, flowId: run.flowId, flowVersion: run.flowVersion } };
  for (const progress of run.progress) {
    if (!settled(progress, run.steps[progress.position]!)) break;
    const response = progress.response;
    context.steps[run.steps[progress.position]!.key] = {
      status: progress.status as TemplateStep['status'],
      httpStatus: response?.status ?? null,
      output: response?.body ?? null,
      headers: response?.headers ?? {},
    };
  }
  return context;
}

/** The output of the last step before `position` that completed. */
function lastOutput(run: ClaimedRun, position: number): unknown {
  const last = run.progress.slice(0, position).findLast((step) => step.status === 'completed');
  return last?.response?.body ?? null;
}

/** The output template rendered, or the last completed step's output. */
async function finishing(run: ClaimedRun, context: TemplateContext, lastCompleted: unknown, tools: StepTools): Promise<Transition['finish']> {
  if (run.outputTemplate === null) return { status: 'completed', output: lastCompleted };
  const output = await tools.evaluator.output(run.orgId, run.outputTemplate, context);
  if (output.status === 'failed') return { status: 'failed', error: { code: output.code, message: output.message } };
  return { status: 'completed', output: output.status === 'ready' ? output.value : null };
}
