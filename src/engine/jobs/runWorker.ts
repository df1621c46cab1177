// A worker of runs: takes execution jobs from the queue and runs them, at most `concurrency` at
// once, and at most `orgConcurrency` of one organization across all workers. A run that waits
// (a step's next attempt) is handed back with a timer in the queue and frees its slot. A
// cancelled run's step in flight is aborted as soon as the cancel is heard (src/engine/runs/
// changes.ts). Stopping drains: no new jobs; the steps in flight finish and their runs are
// released to go on elsewhere; at the deadline, the steps still in flight are aborted and
// released unrecorded. Waiting runs hold nothing here, so they never delay a stop.
//
// Jobs are taken with pg-boss's own fetch, complete, fail and touch, by one loop per process
// rather than one poller per slot: one fetch takes as many runs as there are free slots (pg-boss's
// work() fetches one job per slot, and every new job woke every slot's poller to fetch it), and
// the runs that finished together are completed in one statement.
import { fromPrisma, type Db as IDatabase, type JobAttempt, type JobWithMetadata, type PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { EngineSettings } from '../../config/settings.ts';
import type { Keyring } from '../../crypto/keyring.ts';
import type { Database, Transaction } from '../../db/client.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { Evaluator } from '../evaluator.ts';
import { Outbound } from '../outbound.ts';
import { Bell, type RunLimits, type RunTools, runOrLose } from '../run.ts';
import type { RunChanges } from '../runs/changes.ts';
import { abandonRun } from '../runs/progress.ts';
import { isFinished } from '../runs/statuses.ts';
import { Authenticator } from '../toolAuth.ts';
import { EXECUTIONS, HEARTBEAT_SECONDS, type JobData, listenForRuns, nextDueMs, RETRY_LIMIT, type RunQueue } from './queue.ts';

/** How often a worker looks for runs when nothing told it of one: runs a group limit held back, news it missed. */
export const POLL_MS = 2000;
/** How often without news from the database (LISTEN/NOTIFY unavailable, as behind a pooler). */
export const POLL_WITHOUT_NEWS_MS = 500;

export interface WorkerOptions {
  db: () => Database;
  boss: PgBoss;
  queue: RunQueue;
  changes: RunChanges;
  keyring: Keyring;
  /** The engine's evaluator processes, which the engine closes. */
  evaluator: Evaluator;
  settings: EngineSettings;
  log: Logger;
  metrics?: Metrics;
}

type Job = JobWithMetadata<JobData>;

interface InFlight {
  job: Job;
  cancel: AbortController;
  news: Bell;
  done: Promise<unknown>;
}

/** The advisory lock that makes workers take runs one at a time (any number; this one spells "tols"). */
const FETCH_LOCK = 0x746f6c73;

/** What pg-boss's own pool is (getDb() is typed as the plain executor): it can run a transaction. */
type TransactionalDb = IDatabase & { withTransaction<T>(fn: (db: IDatabase) => Promise<T>): Promise<T> };

/**
 * Takes up to `batchSize` runs, at most `orgConcurrency` of an organization running at once. pg-boss
 * counts an organization's active jobs in its fetch statement, so two workers fetching at the same
 * moment each counted the same running jobs and together went past the limit (11 to 13 of 10).
 * Holding one transaction-level advisory lock from before that count until the fetch commits makes
 * the fetches of all workers take turns, each seeing the jobs the previous one took: exact, for a
 * fetch that lasts a few milliseconds per batch (the lock ends with the transaction, so a worker
 * that dies cannot keep it).
 */
function fetchRuns(boss: PgBoss, batchSize: number, orgConcurrency: number): Promise<Job[]> {
  return (boss.getDb() as TransactionalDb).withTransaction(async (db) => {
    await db.executeSql('SELECT pg_advisory_xact_lock($1)', [FETCH_LOCK]);
    return boss.fetch<JobData>(EXECUTIONS, { batchSize, includeMetadata: true, groupConcurrency: orgConcurrency, db });
  });
}

export class RunWorker {
  readonly #options: WorkerOptions;
  readonly #outbound: Outbound;
  readonly #tools: RunTools;
  readonly #limits: RunLimits;
  readonly #inFlight = new Map<string, InFlight>();
  readonly #shutdown = new AbortController();
  #stopping = false;
  /** The heartbeat of the jobs in flight: it runs until they are drained. */
  #heartbeats: NodeJS.Timeout | undefined;
  #dispatching: Promise<void> | undefined;
  #stopListening: (() => Promise<void>) | undefined;
  #stopHearing: (() => void)[] = [];
  /** When the timers known here are due, earliest first (set here, or found in the queue when idle): the worker looks for runs then. */
  readonly #timers: number[] = [];
  #timersLookedUp = 0;
  /** Set when news of a run came (or a slot freed) since the last fetch began. */
  #news = false;
  #wake: (() => void) | undefined;
  readonly #completed: JobAttempt[] = [];
  /** The completion of the jobs that finished since the last one began, in one statement. */
  #flushing: Promise<void> | undefined;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#outbound = new Outbound({ allowPrivateTargets: options.settings.allowPrivateTargets, responseLimitBytes: options.settings.responseLimitBytes });
    const { executionBudgetBytes: budgetBytes, resumeLimit, runTreeLimit: treeLimit } = options.settings;
    this.#limits = { budgetBytes, resumeLimit, treeLimit };
    const attempts = options.metrics?.attempts;
    this.#tools = {
      queue: options.queue,
      outbound: this.#outbound,
      authenticator: new Authenticator(options.keyring, this.#outbound),
      evaluator: options.evaluator,
      attempted: (_actionId, status, durationMs) => attempts?.observe({ status }, durationMs / 1000),
    };
  }

  async start(): Promise<void> {
    const { boss, queue, changes, log } = this.#options;
    queue.onQueued = (_executionId, at) => (at === undefined ? this.#signal() : this.#timerSet(at));
    // A run that finished while in flight here was cancelled (or handed on and finished elsewhere): its step stops.
    this.#stopHearing = [
      changes.subscribe(({ executionId, status }) => (status === 'news' ? this.#tellNews(executionId) : isFinished(status) && this.#abort(executionId))),
      changes.watch(() => [...this.#inFlight.values()].map((flight) => flight.job.data.executionId)),
    ];
    this.#stopListening = await listenForRuns(boss, () => this.#signal()).catch((error) => {
      log.warn({ err: error }, `no news of new runs from the database (LISTEN/NOTIFY); looking every ${POLL_WITHOUT_NEWS_MS} ms`);
      return undefined;
    });
    this.#heartbeats = setInterval(() => void this.#heartbeat(), (HEARTBEAT_SECONDS * 1000) / 2);
    this.#heartbeats.unref();
    this.#dispatching = this.#dispatch();
  }

  #timerSet(at: Date): void {
    const due = at.getTime();
    const later = this.#timers.findIndex((timer) => timer > due);
    this.#timers.splice(later === -1 ? this.#timers.length : later, 0, due);
  }

  #signal(): void {
    this.#news = true;
    this.#wake?.();
  }

  /** Waits for news, a free slot when there was none, the next timer, or the poll interval. */
  #idle(pollMs: number): Promise<void> {
    const now = Date.now();
    while (this.#timers.length > 0 && this.#timers[0]! <= now) this.#timers.shift();
    // The queue hands out a job whose time has come at its next fetch: look just after it.
    const next = this.#timers[0];
    const ms = next === undefined ? pollMs : Math.min(pollMs, next - now + 5);
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wake = wake;
    });
  }

  async #dispatch(): Promise<void> {
    const { boss, settings, log } = this.#options;
    const pollMs = this.#stopListening ? POLL_MS : POLL_WITHOUT_NEWS_MS;
    while (!this.#stopping) {
      const free = settings.concurrency - this.#inFlight.size;
      if (free <= 0) {
        await this.#idle(pollMs);
        continue;
      }
      this.#news = false;
      const jobs = await fetchRuns(boss, free, settings.orgConcurrency).catch((error) => {
        log.warn({ err: error }, 'taking runs from the queue failed; trying again');
        return [] as Job[];
      });
      if (this.#stopping) {
        // Taken while stopping: handed straight back.
        await this.#release(jobs);
        break;
      }
      for (const job of jobs) this.#run(job);
      // An empty fetch means nothing is waiting (that this worker may take now): wait for news, or
      // for the next timer, whoever set it (a worker that died, another worker), to be due.
      if (jobs.length === 0 && !this.#news) {
        // Timers set here are known; those set elsewhere are looked up once per poll interval.
        if (Date.now() - this.#timersLookedUp >= pollMs) {
          this.#timersLookedUp = Date.now();
          const dueMs = await nextDueMs(boss).catch(() => undefined);
          if (dueMs !== undefined) this.#timerSet(new Date(Date.now() + dueMs));
        }
        await this.#idle(pollMs);
      }
    }
  }

  /** Tells the turn of an execution in flight here that there is news for it (a signal, a sub-flow's end). */
  #tellNews(executionId: string): void {
    for (const flight of this.#inFlight.values()) if (flight.job.data.executionId === executionId) flight.news.ring();
  }

  /** Aborts the step in flight of an execution that finished elsewhere (cancelled). */
  #abort(executionId: string): void {
    for (const flight of this.#inFlight.values()) if (flight.job.data.executionId === executionId) flight.cancel.abort();
  }

  // By job: after a crash, a run's timer and its lapsed job may both be taken; the lease lets one write.
  #run(job: Job): void {
    const cancel = new AbortController();
    const news = new Bell();
    const done = this.#work(job, cancel.signal, news).finally(() => {
      this.#inFlight.delete(job.id);
      // A slot is free: runs may be waiting for one.
      this.#signal();
    });
    this.#inFlight.set(job.id, { job, cancel, news, done });
  }

  async #work(job: Job, cancel: AbortSignal, news: Bell): Promise<void> {
    const { executionId } = job.data;
    const { db, log, boss } = this.#options;
    try {
      const handBack = async (tx: Transaction) => {
        await boss.complete(EXECUTIONS, { id: job.id, retryCount: job.retryCount }, null, { db: fromPrisma(tx) });
      };
      const signals = { cancel, shutdown: this.#shutdown.signal, stopping: () => this.#stopping, handBack, news };
      const outcome = await runOrLose(db(), executionId, this.#tools, signals, this.#limits);
      // Released: failing the job hands it to the queue, which gives it to another worker.
      if (outcome === 'released') throw new Error(`Execution ${executionId} released by a stopping worker.`);
      // A waiting run's job was completed with its timer set, in one transaction. Others hold their
      // slot until their job is completed: until then it counts against its organization's share.
      if (outcome !== 'waiting') await this.#complete(job);
    } catch (error) {
      // A stopping worker hands its runs on as a matter of course: no warning, no stack.
      if (this.#stopping)
        log.info({ executionId, attempt: job.retryCount + 1 }, 'execution handed on by this stopping worker; it will resume from its last completed step');
      else log.warn({ executionId, attempt: job.retryCount + 1, err: error }, 'execution interrupted; it will resume from its last completed step');
      // The queue's last try: the run cannot be left "running" for ever.
      if (job.retryCount + 1 >= RETRY_LIMIT) {
        await abandonRun(db(), this.#options.queue, executionId, { code: 'interrupted', message: 'The execution was interrupted too often.' }).catch(
          () => undefined,
        );
      }
      // A job that could not be failed lapses when its heartbeat stops, and is retried all the same.
      await boss.fail(EXECUTIONS, job.id, { message: (error as Error).message }).catch(() => undefined);
    }
  }

  /** Completes finished runs' jobs, those that finished together in one statement. */
  #complete(job: Job): Promise<void> {
    // By attempt: a copy of the job retried elsewhere after a lapse is not this one to complete.
    this.#completed.push({ id: job.id, retryCount: job.retryCount });
    this.#flushing ??= new Promise<void>((resolve) => setImmediate(() => void this.#flushCompleted().then(resolve)));
    return this.#flushing;
  }

  async #flushCompleted(): Promise<void> {
    const attempts = this.#completed.splice(0);
    this.#flushing = undefined;
    // A job left uncompleted lapses and is retried; its run, finished, is then done at once.
    await this.#options.boss.complete(EXECUTIONS, attempts).catch((error) => this.#options.log.warn({ err: error }, 'completing jobs failed'));
  }

  async #release(jobs: Job[]): Promise<void> {
    if (jobs.length > 0)
      await this.#options.boss
        .fail(
          EXECUTIONS,
          jobs.map((job) => job.id),
          { message: 'released by a stopping worker' },
        )
        .catch(() => undefined);
  }

  /** Keeps the jobs of the runs in flight: a job whose heartbeat lapses is handed to another worker. */
  async #heartbeat(): Promise<void> {
    const ids = [...this.#inFlight.values()].map((flight) => flight.job.id);
    if (ids.length > 0)
      await this.#options.boss.touch(EXECUTIONS, ids).catch((error) => this.#options.log.warn({ err: error }, 'the heartbeat of running jobs failed'));
  }

  /** Drains within `deadlineMs`: the steps in flight finish, or are aborted at the deadline. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#stopListening?.().catch(() => undefined);
    await this.#dispatching;
    const drained = Promise.all([...this.#inFlight.values()].map((flight) => flight.done));
    const deadline = setTimeout(() => this.#shutdown.abort(), deadlineMs);
    await drained;
    clearTimeout(deadline);
    clearInterval(this.#heartbeats);
    for (const stop of this.#stopHearing) stop();
    await this.#flushing;
    await this.#outbound.close();
  }
}
