// One worker's turn with an execution: it claims the run, asks the planner (plan.ts) what to do,
// and does it, several step runs at once when a loop or parallel branches allow (each kind in
// kinds.ts). Every change is recorded before what follows it starts, so a run resumed after a crash
// repeats no settled step run; only those in flight at the crash are sent again, with the same
// Idempotency-Key. When nothing can be done now, the run is parked (runs/waits.ts): it holds no
// worker while it waits for a time, a signal or a sub-flow's run.
import type { Database, Transaction } from '../db/client.ts';
import type { StepKind, StoredStep } from '../definitions/steps.ts';
import type { TemplateContext, TemplateStep } from '../definitions/templates.ts';
import { inSpan } from '../observability/tracing.ts';
import { Budget, BudgetSpent, withShortMessages } from './budget.ts';
import type { RunQueue } from './jobs/queue.ts';
import { beginStep, type KindTools, type KnownStep } from './kinds.ts';
import { type Begin, newMemo, type Plan, plan, type Wait } from './plan.ts';
import { cancelRun } from './runs/cancel.ts';
import { type Changes, type ClaimedRun, claimWithSlot, type Failure, LostRun, recordChanges, type StepProgress, type StepWrite } from './runs/progress.ts';
import { freeSlots } from './runs/slots.ts';
import { isUnder } from './runs/start.ts';
import { park, waitingWithNews, wakeParent } from './runs/waits.ts';
import { scrubbed } from './toolAuth.ts';

/** How a worker's turn with an execution ended. */
export type Outcome =
  /** Finished, or nothing was left to do (cancelled, finished before). */
  | 'done'
  /** It waits: parked, with a timer in the queue for when a step is due. */
  | 'waiting'
  /** Given back unfinished (the worker is stopping): another worker goes on from what is recorded. */
  | 'released'
  /** Taken from this worker (cancelled, or its job handed on): it stopped writing. */
  | 'lost';

/** Step runs one execution may have, nested ones included. */
export const MAX_STEP_RUNS = 20_000;
/**
 * Step runs one execution has in flight at once: the largest concurrency of one loop. Loops nested
 * in loops and parallel branches would otherwise multiply theirs (10 × 50 × 50), each call's answer
 * held before the budget counts it.
 */
export const MAX_IN_FLIGHT = 50;

/** Rung when there is news for a run in a turn (a signal, a sub-flow's run that ended). */
export class Bell {
  #next: { rung: Promise<void>; ring: () => void } | undefined;
  #rung = false;

  ring(): void {
    this.#rung = true;
    this.#next?.ring();
    this.#next = undefined;
  }

  /** Whether it rang since the last call, which resets it. */
  take(): boolean {
    const rung = this.#rung;
    this.#rung = false;
    return rung;
  }

  /** When it next rings (one promise for all who wait meanwhile). */
  next(): Promise<void> {
    if (!this.#next) {
      let ring = () => {};
      const rung = new Promise<void>((resolve) => {
        ring = resolve;
      });
      this.#next = { rung, ring };
    }
    return this.#next.rung;
  }
}

export interface RunSignals {
  /** Aborted when the execution is cancelled. */
  cancel: AbortSignal;
  /** Aborted when the worker must stop now (its drain ran out of time). */
  shutdown: AbortSignal;
  /** Whether the worker is draining: finish the step runs in flight, begin no other. */
  stopping: () => boolean;
  /** Ends this turn's job in `tx`, the transaction that parks the run. */
  handBack: (tx: Transaction) => Promise<void>;
  /** Rings when news for the run is heard. */
  news: Bell;
}

/** What one run may consume: TOLSTOY_EXECUTION_BUDGET_BYTES, TOLSTOY_STEP_RESUME_LIMIT and TOLSTOY_RUN_TREE_LIMIT. */
export interface RunLimits {
  budgetBytes: number;
  resumeLimit: number;
  /** Runs its tree of sub-flows may hold, its root included. */
  treeLimit: number;
}

/** What a worker lends a run: the tools of its steps, and the queue that holds its timers and sub-flows' runs. */
export interface RunTools extends KindTools {
  queue: RunQueue;
}

/** Runs `execution`, turning a lost run into its outcome. */
export async function runOrLose(db: Database, executionId: string, tools: RunTools, signals: RunSignals, limits: RunLimits): Promise<Outcome> {
  try {
    return await inSpan('execution', { 'tolstoy.execution_id': executionId }, async () => {
      // The claim takes the run; nothing is begun while draining.
      if (signals.stopping()) return 'released';
      const run = await claimWithSlot(db, tools.queue, executionId);
      if (!run) return 'done';
      return await new Turn(db, run, tools, signals, limits).go();
    });
  } catch (error) {
    if (error instanceof LostRun) return 'lost';
    // Failed for going past its budget: recorded, so done.
    if (error instanceof BudgetSpent) return 'done';
    throw error;
  }
}

/** A step run as this turn knows it: its record, and what templates see of it. */
interface Known extends KnownStep {
  kind: StepKind;
  httpStatus: number | null;
  headers: Record<string, string>;
  resumes: number;
}

class Turn {
  readonly #db: Database;
  readonly #run: ClaimedRun;
  readonly #tools: RunTools;
  readonly #signals: RunSignals;
  readonly #limits: RunLimits;
  readonly #known = new Map<string, Known>();
  /** A loop's items, by its path. */
  readonly #items = new Map<string, unknown[]>();
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #memo = newMemo();
  /** Credentials the run's steps sent: neither the templates nor the record ever see them. */
  readonly #secrets = new Set<string>();
  readonly #budget: Budget;
  readonly #abort: AbortSignal;
  #failure: unknown;
  #settled: (() => void) | undefined;
  /** Changes waiting for the statement in progress: recorded together, in the next. */
  #batch: { changes: Changes; done: (owned: boolean) => void; failed: (error: unknown) => void }[] = [];
  #writing: Promise<void> | undefined;
  #transactions: Promise<unknown> = Promise.resolve();

  constructor(db: Database, run: ClaimedRun, tools: RunTools, signals: RunSignals, limits: RunLimits) {
    this.#db = db;
    this.#run = run;
    this.#tools = tools;
    this.#signals = signals;
    this.#limits = limits;
    this.#budget = new Budget(limits.budgetBytes, run.stored);
    this.#abort = AbortSignal.any([signals.cancel, signals.shutdown]);
    for (const step of run.progress) this.#learn(step);
  }

  #learn(step: StepProgress): void {
    const response = step.response;
    this.#known.set(step.path, {
      kind: step.kind,
      status: step.status,
      wakeAt: step.wakeAt === null ? null : new Date(step.wakeAt),
      output: step.kind === 'action' ? (response?.body ?? null) : step.output,
      error: step.error,
      httpStatus: response?.status ?? null,
      headers: response?.headers ?? {},
      resumes: step.resumes,
      attempts: step.attempts,
      ...(step.state?.childId && { childId: step.state.childId }),
      ...(step.state?.case !== undefined && { case: step.state.case }),
      ...(step.state?.items && { itemCount: step.state.items.length }),
    });
    if (step.state?.items) this.#items.set(step.path, step.state.items);
  }

  async go(): Promise<Outcome> {
    // News may have come while no turn ran: the waiting steps that could take it look once.
    let news = this.#run.progress.some((step) => step.status === 'waiting' && (step.kind === 'waitFor' || step.kind === 'flow'));
    let now = this.#run.claimedAt;
    for (;;) {
      // News (a signal kept, a child run ended) is for the waiting steps that can take it: those look again.
      const withNews = news && !this.#signals.stopping() ? await waitingWithNews(this.#db, this.#run.id) : undefined;
      if (this.#failure !== undefined) throw this.#failure;
      const next = plan(this.#run.steps, this.#known, now, new Set(this.#inFlight.keys()), this.#memo);
      if (next.conclude.length > 0) {
        await this.#conclude(next);
        continue;
      }
      if (next.outcome !== 'active' && this.#inFlight.size === 0) return this.#finish(next);
      let unchecked = false;
      if (!this.#signals.stopping()) {
        for (const begin of next.begin) if (this.#inFlight.size < MAX_IN_FLIGHT && !this.#inFlight.has(begin.path)) this.#start(begin, false);
        if (withNews) unchecked = this.#recheck(next.waits, withNews);
      }
      news = this.#signals.news.take() || unchecked;
      if (this.#inFlight.size > 0) {
        await this.#nextEvent(next);
        news ||= this.#signals.news.take();
        now = new Date();
        continue;
      }
      // Draining: steps left to begin are for the worker that takes the run on.
      if (this.#signals.stopping() && next.begin.length > 0) return 'released';
      if (news && !this.#signals.stopping()) continue;
      const parked = await this.#park(next);
      if (parked === 'parked') return 'waiting';
      news = true;
      now = new Date();
    }
  }

  /** Waits for a step run to settle, the next step due, or news. */
  async #nextEvent(current: Plan): Promise<void> {
    const due = current.waits.map((wait) => wait.until?.getTime() ?? Number.POSITIVE_INFINITY);
    const earliest = Math.min(...due);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        this.#settled = resolve;
      }),
      this.#signals.news.next(),
      ...(Number.isFinite(earliest) ? [new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, earliest - Date.now()))))] : []),
    ]);
    clearTimeout(timer);
  }

  #start(begin: Begin, recheck: boolean): void {
    const work = this.#work(begin, recheck)
      .catch((error) => {
        this.#failure ??= error;
      })
      .finally(() => {
        this.#inFlight.delete(begin.path);
        this.#settled?.();
      });
    this.#inFlight.set(begin.path, work);
  }

  /** The waiting steps with news take it (a signal, their child's outcome); true when some must wait for a free place in flight. */
  #recheck(waits: Wait[], withNews: ReadonlySet<string>): boolean {
    for (const wait of waits) {
      if (!withNews.has(wait.path) || this.#inFlight.has(wait.path)) continue;
      if (this.#inFlight.size >= MAX_IN_FLIGHT) return true;
      this.#start(wait, true);
    }
    return false;
  }

  async #work(begin: Begin, recheck: boolean): Promise<void> {
    const known = this.#known.get(begin.path);
    const isNew = !known;
    if (isNew && this.#known.size >= MAX_STEP_RUNS) {
      const error: Failure = {
        code: 'too-many-steps',
        message: `The execution reached ${MAX_STEP_RUNS} step runs, its limit; it fails rather than grow without bound.`,
        step: begin.path,
      };
      await this.#write({
        writes: [{ path: begin.path, key: begin.step.key, kind: begin.kind, status: 'failed', error }],
        finish: { status: 'failed', error },
      });
      throw new BudgetSpent();
    }
    // A step found running that nothing here runs was cut short: its worker stopped mid-step.
    const resumed = known?.status === 'running' && known.kind === 'action';
    if (resumed && known.resumes + 1 > this.#limits.resumeLimit) return this.#crashLoop(begin, known.resumes + 1);
    await beginStep(
      {
        run: this.#run,
        db: this.#db,
        tools: this.#tools,
        signal: this.#abort,
        shutdown: this.#signals.shutdown,
        cancel: this.#signals.cancel,
        context: this.#contextOf(begin),
        record: known ?? null,
        recheck,
        secrets: this.#secrets,
        write: (changes) => this.#write(changes),
        charge: (changes) => this.#charge(changes),
        treeLimit: this.#limits.treeLimit,
        written: (write) => this.#remember(write),
        transaction: (work) => this.#transaction(work),
        items: (path, items) => this.#items.set(path, items),
      },
      begin,
    );
  }

  async #crashLoop(begin: Begin, resumes: number): Promise<void> {
    const error: Failure = {
      code: 'interrupted',
      message:
        `Step ${begin.path} was cut short ${resumes} times: its worker stopped each time, as when it runs out of memory. The run fails rather than ` +
        `take down another worker (TOLSTOY_STEP_RESUME_LIMIT is ${this.#limits.resumeLimit}).`,
      step: begin.path,
    };
    await this.#write({ writes: [{ path: begin.path, key: begin.step.key, kind: begin.kind, status: 'failed', error }], finish: { status: 'failed', error } });
    throw new BudgetSpent();
  }

  /** What the templates of a step run see: the run, the steps before it, its loop's item. */
  #contextOf(begin: Begin): TemplateContext {
    const run = this.#run;
    const steps: Record<string, TemplateStep> = {};
    for (const [key, path] of begin.scope.visible) steps[key] = this.#view(path);
    const context: TemplateContext = {
      input: run.input,
      trigger: run.trigger,
      steps,
      execution: { id: run.id, flowId: run.flowId, flowVersion: run.flowVersion },
    };
    const iteration = begin.scope.iteration;
    if (iteration) {
      context.item = this.#items.get(iteration.loop)?.[iteration.index] ?? null;
      context.index = iteration.index;
    }
    return context;
  }

  #view(path: string): TemplateStep {
    const known = this.#known.get(path);
    return {
      status: (known?.status ?? 'skipped') as TemplateStep['status'],
      httpStatus: known?.httpStatus ?? null,
      output: known?.output ?? null,
      headers: known?.headers ?? {},
      ...(known?.case !== undefined && { case: known.case }),
    };
  }

  async #conclude(current: Plan): Promise<void> {
    const writes: StepWrite[] = current.conclude.map((conclusion) => ({
      path: conclusion.path,
      key: conclusion.key,
      kind: this.#known.get(conclusion.path)!.kind,
      status: conclusion.status,
      output: conclusion.status === 'completed' ? conclusion.output : undefined,
      error: conclusion.error,
    }));
    const cancelUnder = current.conclude.filter((conclusion) => conclusion.cancelsOpen).map((conclusion) => conclusion.path);
    await this.#write({ writes, cancelUnder });
    for (const [path, known] of this.#known) {
      const holder = cancelUnder.find((under) => isUnder(path, under));
      if (holder === undefined || !['pending', 'running', 'waiting'].includes(known.status)) continue;
      known.status = 'cancelled';
      // A sub-flow step cancelled with its holder takes its child run with it.
      if (known.kind === 'flow' && known.childId) {
        const by = `the failure of step ${holder} of its parent execution ${this.#run.id}`;
        await cancelRun(this.#db, this.#tools.queue, { orgId: this.#run.orgId, executionId: known.childId, by });
      }
    }
  }

  /** Records changes, several step runs' together when they come while a statement is in progress. */
  #write(changes: Changes): Promise<void> {
    const { changes: charged, spent } = this.#charge(changes);
    const written = new Promise<boolean>((done, failed) => this.#batch.push({ changes: charged, done, failed }));
    this.#writing ??= this.#flush();
    return written.then((owned) => {
      owned || lost();
      if (spent) throw new BudgetSpent();
      for (const write of charged.writes) this.#remember(write);
    });
  }

  async #flush(): Promise<void> {
    while (this.#batch.length > 0) {
      const batch = takeBatch(this.#batch);
      const merged: Changes = {
        writes: batch.flatMap((entry) => entry.changes.writes),
        cancelUnder: batch.flatMap((entry) => entry.changes.cancelUnder ?? []),
        finish: batch.find((entry) => entry.changes.finish)?.changes.finish,
      };
      try {
        const wakes = this.#run.parentId !== null || this.#run.concurrencyKey !== null;
        const owned = merged.finish && wakes ? await this.#finishWaking(merged) : await recordChanges(this.#db, this.#run, merged);
        for (const entry of batch) entry.done(owned);
      } catch (error) {
        for (const entry of batch) entry.failed(error);
      }
    }
    this.#writing = undefined;
  }

  /** A sub-flow's run ends in the transaction that wakes its parent; a run holding a slot, in the one that wakes the next run waiting for it. */
  #finishWaking(changes: Changes): Promise<boolean> {
    return this.#db.$transaction(async (tx) => {
      const owned = await recordChanges(tx as unknown as Database, this.#run, changes);
      if (!owned) return false;
      await wakeParent(tx, this.#tools.queue, this.#run.id);
      await freeSlots(tx, this.#tools.queue, [this.#run.id]);
      return true;
    });
  }

  /** Runs `work` in a transaction once those begun before it in this turn have ended. */
  #transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const turn = this.#transactions.then(() => this.#db.$transaction(work));
    this.#transactions = turn.catch(() => undefined);
    return turn;
  }

  /** The changes as they may be recorded: scrubbed of credentials, messages cut, and within the run's budget. */
  #charge(changes: Changes): { changes: Changes; spent: boolean } {
    const writes = changes.writes.map((write) => withShortMessages(scrubbed(write, this.#secrets)));
    return this.#budget.charge({ ...changes, writes });
  }

  #remember(write: StepWrite): void {
    const known = this.#known.get(write.path);
    const keep = write.keep === true && known !== undefined;
    const response = write.response as { status?: number; headers?: Record<string, string>; body?: unknown } | undefined;
    this.#known.set(write.path, {
      kind: write.kind,
      status: write.status,
      wakeAt: write.wakeAt ?? null,
      output: keep ? known.output : write.kind === 'action' ? (response?.body ?? null) : (write.output ?? null),
      error: keep ? known.error : (write.error ?? null),
      httpStatus: keep ? known.httpStatus : (response?.status ?? null),
      headers: keep ? known.headers : (response?.headers ?? {}),
      resumes: known?.resumes ?? 0,
      attempts: (known?.attempts ?? 0) + (write.attempt ? 1 : write.refused ? -1 : 0),
      ...((write.state?.childId ?? known?.childId) !== undefined && { childId: write.state?.childId ?? known?.childId }),
      ...((write.state?.case ?? known?.case) !== undefined && { case: write.state?.case ?? known?.case }),
      ...((write.state?.items ?? known?.itemCount) !== undefined && { itemCount: write.state?.items?.length ?? known?.itemCount }),
    });
  }

  /** Records how the run ended: completed (with its output), failed, or nothing (stopped from outside). */
  async #finish(current: Plan): Promise<Outcome> {
    if (current.outcome === 'stopped') return 'done';
    if (current.outcome === 'fail') {
      const path = current.failed!;
      const cause = this.#known.get(path)?.error;
      const error: Failure = { code: 'step-failed', message: `Step ${path} failed: ${cause?.message ?? 'unknown error'}`, step: path };
      await this.#write({ writes: [], finish: { status: 'failed', error } });
      return 'done';
    }
    await this.#write({ writes: [], finish: await this.#output(current) });
    return 'done';
  }

  /** The output template rendered over the top-level steps, or the last completed one's output. */
  async #output(current: Plan): Promise<NonNullable<Changes['finish']>> {
    const run = this.#run;
    if (run.outputTemplate === null)
      return { status: 'completed', output: current.last === undefined ? null : (this.#known.get(current.last)?.output ?? null) };
    const visible = new Map(run.steps.filter((step: StoredStep) => this.#known.has(step.key)).map((step) => [step.key, step.key]));
    const context = this.#contextOf({ path: '', step: run.steps[0]!, kind: 'action', scope: { visible } });
    const output = await this.#tools.evaluator.output(run.orgId, run.outputTemplate, context);
    if (output.status === 'failed') return { status: 'failed', error: { code: output.code, message: output.message } };
    return { status: 'completed', output: output.status === 'ready' ? output.value : null };
  }

  /** Parks the run until its earliest due step, or until news. */
  async #park(current: Plan): Promise<'parked' | 'news'> {
    const times = current.waits.map((wait) => wait.until).filter((until): until is Date => until !== null);
    const until = times.length === 0 ? null : new Date(Math.min(...times.map((time) => time.getTime())));
    const parked = await this.#db.$transaction((tx) => park(tx, this.#run, until, this.#tools.queue, this.#signals.handBack));
    if (parked === 'lost') lost();
    if (parked === 'parked' && until) this.#tools.queue.queued(this.#run.id, until);
    return parked;
  }
}

/** The next changes to record in one statement: those of distinct step runs, in order. */
function takeBatch<T extends { changes: Changes }>(pending: T[]): T[] {
  const paths = new Set<string>();
  let count = 0;
  for (const entry of pending) {
    const mine = entry.changes.writes.map((write) => write.path);
    if (count > 0 && (mine.some((path) => paths.has(path)) || entry.changes.finish)) break;
    for (const path of mine) paths.add(path);
    count++;
    if (entry.changes.finish) break;
  }
  return pending.splice(0, count);
}

function lost(): never {
  throw new LostRun();
}
