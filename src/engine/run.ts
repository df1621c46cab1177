// Runs one execution for as long as there is something to do now: the planner (plan.ts) decides
// what runs next from the flow version and what is recorded; this module does it, one step at a
// time, each transition recorded before the next step starts (so a run resumed after a crash
// repeats no completed step). A step that waits for its next attempt is recorded with a timer in
// the queue, and the run is handed back: it holds no worker while it waits.
import type { Database, Transaction } from '../db/client.ts';
import type { TemplateContext, TemplateStep } from '../definitions/templates.ts';
import { inSpan } from '../observability/tracing.ts';
import type { StoredStep } from '../resources/flows.ts';
import { Budget, BudgetSpent, withShortMessages } from './budget.ts';
import type { RunQueue } from './jobs/queue.ts';
import { type Decision, lastCompleted, nextStep, pathOf, type StepRecord } from './plan.ts';
import { type ClaimedRun, claimRun, type Failure, recordTransition, recordWait, type Settlement, type StepProgress, type Transition } from './runs/progress.ts';
import { isSettled } from './runs/statuses.ts';
import { type Attempt, attemptStep, type StepTools } from './step.ts';
import { scrubbed } from './toolAuth.ts';

/** How a worker's turn with an execution ended. */
export type Outcome =
  /** Finished, or nothing was left to do (cancelled, finished before). */
  | 'done'
  /** A step waits: the queue holds a timer that hands the run to a worker when it is due. */
  | 'waiting'
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
  /**
   * Ends this turn's job in `tx`, the transaction that sets the run's timer: the run then has
   * one live job, the timer, whatever happens to this worker after the commit.
   */
  handBack: (tx: Transaction) => Promise<void>;
}

/** What one run may consume: TOLSTOY_EXECUTION_BUDGET_BYTES and TOLSTOY_STEP_RESUME_LIMIT. */
export interface RunLimits {
  budgetBytes: number;
  resumeLimit: number;
}

/** What a worker lends a run: the tools of its steps, and the queue that holds its timers. */
export interface RunTools extends StepTools {
  queue: RunQueue;
}

function runExecution(db: Database, executionId: string, tools: RunTools, signals: RunSignals, limits: RunLimits): Promise<Outcome> {
  return inSpan('execution', { 'tolstoy.execution_id': executionId }, () => runClaimed(db, executionId, tools, signals, limits));
}

async function runClaimed(db: Database, executionId: string, tools: RunTools, signals: RunSignals, limits: RunLimits): Promise<Outcome> {
  // The claim counts an attempt of the step it begins, which is then sent even while draining.
  if (signals.stopping()) return 'released';
  const run = await claimRun(db, executionId);
  if (!run) return 'done';
  const context = contextOf(run);
  const recorded = new Map(run.progress.map((step): [string, StepRecord] => [step.path, recordOf(step)]));
  const signal = AbortSignal.any([signals.cancel, signals.shutdown]);
  // Credentials the run's steps sent: neither the templates nor the record ever see them.
  const secrets = new Set<string>();
  const budget = new Budget(limits.budgetBytes, run.stored);
  const record = async (transition: Transition) => {
    const scrubbedTransition = withShortMessages(scrubbed(transition, secrets));
    const charged = budget.charge(scrubbedTransition);
    const { settle } = charged;
    const waits = settle?.status === 'waiting' && settle.wakeAt !== undefined && !charged.finish;
    const owned = waits
      ? await recordWait(db, run, { ...settle, wakeAt: settle.wakeAt! }, async (tx) => {
          await tools.queue.wakeAt(tx, run, settle.wakeAt!);
          await signals.handBack(tx);
        })
      : await recordTransition(db, run, charged);
    owned || lostRun();
    if (charged !== scrubbedTransition) throw new BudgetSpent();
    if (waits) tools.queue.queued(run.id, settle.wakeAt);
    return true as const;
  };
  if (run.begun !== null && run.resumes > limits.resumeLimit) {
    await record(crashLoop(run, run.begun, limits.resumeLimit));
    return 'done';
  }
  let decision = nextStep(run.steps, recorded, run.claimedAt);
  // The claim began the first open step that is due, which is the one the planner runs.
  if (decision.kind === 'run' && decision.path !== run.begun) await record({ begin: decision.path });
  let settlement: Settlement | undefined;
  while (decision.kind === 'run') {
    const { path, step } = decision;
    const progress = run.progress.find((p) => p.path === path) ?? { path, status: 'pending', wakeAt: null, attempts: 0, response: null };
    const ran = await runStep(run, step, path, progress, context, tools, { signal, signals, secrets });
    if (ran === 'released') return 'released';
    settlement = ran.settlement;
    recorded.set(path, { status: settlement.status, wakeAt: settlement.wakeAt ?? null });
    // A step that waits ends the turn, however short its wait: its timer hands the run back.
    decision = settlement.status === 'waiting' ? { kind: 'wait', path, until: settlement.wakeAt! } : nextStep(run.steps, recorded, new Date());
    if (decision.kind !== 'run') break;
    // Draining: the next step is left pending, uncounted, for the worker that takes the run on.
    if (signals.stopping()) {
      await record({ settle: settlement });
      return 'released';
    }
    await record({ settle: settlement, begin: decision.path });
  }
  return endTurn(run, decision, settlement, context, tools, record);
}

/** Records the end of a turn: the run finished, failed, or waits. */
async function endTurn(
  run: ClaimedRun,
  decision: Exclude<Decision, { kind: 'run' }>,
  settlement: Settlement | undefined,
  context: TemplateContext,
  tools: RunTools,
  record: (transition: Transition) => Promise<true>,
): Promise<Outcome> {
  switch (decision.kind) {
    case 'complete':
      await record({ settle: settlement, finish: await finishing(run, context, tools) });
      return 'done';
    case 'fail': {
      const key = stepAt(run, decision.path).key;
      const failure = settlement?.path === decision.path ? settlement.error : undefined;
      const error: Failure = { code: 'step-failed', message: `Step ${key} failed: ${failure?.message ?? 'unknown error'}`, step: key };
      await record({ settle: settlement, finish: { status: 'failed', error } });
      return 'done';
    }
    case 'wait':
      if (settlement) await record({ settle: settlement });
      return 'waiting';
    case 'stopped':
      return 'done';
  }
}

class LostRun extends Error {}

function stepAt(run: ClaimedRun, path: string): StoredStep {
  return run.steps.find((step) => pathOf(step.key) === path)!;
}

/** Fails a run whose step was cut short more often than the limit: its worker died each time (for lack of memory, say). */
function crashLoop(run: ClaimedRun, path: string, resumeLimit: number): Transition {
  const key = stepAt(run, path).key;
  const error: Failure = {
    code: 'interrupted',
    message:
      `Step ${key} was cut short ${run.resumes} times: its worker stopped each time, as when it runs out of memory. The run fails rather than ` +
      `take down another worker (TOLSTOY_STEP_RESUME_LIMIT is ${resumeLimit}).`,
    step: key,
  };
  return { settle: { path, status: 'failed', error }, finish: { status: 'failed', error } };
}

function lostRun(): never {
  throw new LostRun('The execution is no longer this worker’s to run.');
}

/** Runs `execution`, turning a lost run into its outcome. */
export async function runOrLose(db: Database, executionId: string, tools: RunTools, signals: RunSignals, limits: RunLimits): Promise<Outcome> {
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
  settlement: Settlement;
}

/**
 * One attempt of a step: its condition, inputs and their check in one bounded evaluation, then
 * the call. An attempt that may be tried again comes back `waiting`, with when.
 */
async function runStep(
  run: ClaimedRun,
  step: StoredStep,
  path: string,
  progress: StepProgress,
  context: TemplateContext,
  tools: StepTools,
  { signal, signals, secrets }: { signal: AbortSignal; signals: RunSignals; secrets: Set<string> },
): Promise<StepResult | 'released'> {
  const templates = { condition: step.if, inputs: step.inputs, schema: run.actions.get(step.actionId)?.inputSchema };
  const evaluated = await tools.evaluator.step(run.orgId, templates, context);
  if (evaluated.status === 'failed' && evaluated.phase === 'if') {
    const failure = { code: evaluated.code, message: evaluated.message };
    return { settlement: { path, status: 'failed', error: failure, durationMs: 0 } };
  }
  if (evaluated.status === 'skipped') {
    context.steps[step.key] = { status: 'skipped', httpStatus: null, output: null, headers: {} };
    return { settlement: { path, status: 'skipped' } };
  }
  // The attempt begun now is the next after those recorded; a step resumed after a crash gets it
  // even past its maxAttempts, because the outcome of the attempt the crash cut short is unknown.
  const attempt = progress.attempts + 1;
  const maxAttempts = Math.max(step.retry.maxAttempts, attempt);
  const attributes = { 'tolstoy.step': path, 'tolstoy.action_id': step.actionId, 'tolstoy.attempt': attempt };
  const result = await inSpan(`step ${path}`, attributes, async (span) => {
    const attempted = await attemptStep(run, step, path, evaluated, tools, signal);
    span.setAttribute('tolstoy.status', attempted.status);
    return attempted;
  });
  tools.attempted(step.actionId, result.status, result.durationMs);
  for (const secret of result.secrets ?? []) secrets.add(secret);
  // Stopped now: nothing is recorded, so the attempt is made again elsewhere.
  if (signals.shutdown.aborted) return 'released';
  const settlement = settlementOf(path, result);
  const waitMs = result.retryable && attempt < maxAttempts && !signals.cancel.aborted ? delayBefore(attempt + 1, step, result) : undefined;
  // The failed attempt is recorded now; the next is counted when the timer hands the run back,
  // as it is sent, so that a run lost during the wait counts no attempt unsent.
  if (waitMs !== undefined) return { settlement: { ...settlement, status: 'waiting', wakeAt: new Date(Date.now() + waitMs) } };
  // Scrubbed before templates see it: an API that echoes a credential cannot hand it, whole
  // or sliced, to a later step's request.
  const response = result.response && scrubbed(result.response, secrets);
  context.steps[step.key] = { status: result.status, httpStatus: response?.status ?? null, output: response?.body ?? null, headers: response?.headers ?? {} };
  return { settlement };
}

function settlementOf(path: string, attempt: Attempt): Settlement {
  return {
    path,
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

function recordOf(progress: StepProgress): StepRecord {
  return { status: progress.status, wakeAt: progress.wakeAt === null ? null : new Date(progress.wakeAt) };
}

/** What the templates see, with the steps already settled (a resumed run, a rerun's reused steps). */
function contextOf(run: ClaimedRun): TemplateContext {
  const context: TemplateContext = {
    input: run.input,
    trigger: run.trigger,
    steps: {},
    execution: { id: run.id, flowId: run.flowId, flowVersion: run.flowVersion },
  };
  const progress = new Map(run.progress.map((step) => [step.path, step]));
  for (const step of run.steps) {
    const recorded = progress.get(pathOf(step.key));
    if (!recorded || !isSettled(recorded.status, step.continueOnError)) break;
    const response = recorded.response;
    context.steps[step.key] = {
      status: recorded.status as TemplateStep['status'],
      httpStatus: response?.status ?? null,
      output: response?.body ?? null,
      headers: response?.headers ?? {},
    };
  }
  return context;
}

/** The output template rendered, or the last completed step's output. */
async function finishing(run: ClaimedRun, context: TemplateContext, tools: StepTools): Promise<Transition['finish']> {
  if (run.outputTemplate === null) {
    const last = lastCompleted(run.steps, completedOf(run, context));
    return { status: 'completed', output: last === undefined ? null : (context.steps[stepAt(run, last).key]?.output ?? null) };
  }
  const output = await tools.evaluator.output(run.orgId, run.outputTemplate, context);
  if (output.status === 'failed') return { status: 'failed', error: { code: output.code, message: output.message } };
  return { status: 'completed', output: output.status === 'ready' ? output.value : null };
}

/** The steps' states as the templates see them, for the planner's choice of the last completed. */
function completedOf(run: ClaimedRun, context: TemplateContext): Map<string, StepRecord> {
  return new Map(run.steps.map((step): [string, StepRecord] => [pathOf(step.key), { status: context.steps[step.key]?.status ?? 'pending' }]));
}
