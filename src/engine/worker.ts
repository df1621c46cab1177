// A worker: takes execution jobs from the queue and runs them, at most `concurrency` at once, and
// at most `orgConcurrency` of one organization across all workers. A cancelled run's step in
// flight is aborted: at once when it was cancelled through this process, within a second
// otherwise. Stopping drains: no new jobs; the steps in flight finish and their runs are released
// to go on elsewhere; at the deadline, the steps still in flight are aborted and released unrecorded.
import type { Job, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { EngineSettings } from '../config/config.ts';
import type { Database } from '../db/client.ts';
import type { Keyring } from '../domain/credentials.ts';
import { forgetExpiredKeys } from '../domain/idempotency.ts';
import { abandonRun, finishedRuns } from '../domain/progress.ts';
import type { Metrics } from '../observability/metrics.ts';
import { Authenticator } from './credentials.ts';
import { Outbound } from './outbound.ts';
import { EXECUTIONS, type JobData, type QueuedRuns, RETRY_LIMIT } from './queue.ts';
import { runOrLose } from './run.ts';
import { type StepTools, Validators } from './step.ts';

/** How often a worker looks whether its runs were cancelled elsewhere. */
export const CANCEL_CHECK_MS = 1000;
const HOUSEKEEPING_MS = 3600_000;

export interface WorkerOptions {
  db: () => Database;
  boss: PgBoss;
  runs: QueuedRuns;
  keyring: Keyring;
  settings: EngineSettings;
  log: Logger;
  metrics?: Metrics;
}

interface InFlight {
  cancel: AbortController;
  done: Promise<unknown>;
}

export class Worker {
  readonly #options: WorkerOptions;
  readonly #outbound: Outbound;
  readonly #tools: StepTools;
  readonly #inFlight = new Map<string, InFlight>();
  readonly #shutdown = new AbortController();
  #stopping = false;
  #timers: NodeJS.Timeout[] = [];
  #workerId: string | undefined;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#outbound = new Outbound({ allowPrivateTargets: options.settings.allowPrivateTargets, responseLimitBytes: options.settings.responseLimitBytes });
    const attempts = options.metrics?.attempts;
    this.#tools = {
      outbound: this.#outbound,
      authenticator: new Authenticator(options.keyring, this.#outbound),
      validators: new Validators(),
      attempted: (actionId, status, durationMs) => attempts?.observe({ action: actionId, status }, durationMs / 1000),
    };
  }

  async start(): Promise<void> {
    const { boss, runs, settings } = this.#options;
    this.#workerId = await boss.work<JobData>(
      EXECUTIONS,
      {
        localConcurrency: settings.concurrency,
        batchSize: 1,
        groupConcurrency: settings.orgConcurrency,
        includeMetadata: true,
        pollingIntervalSeconds: 0.5,
        notifyPollingIntervalSeconds: 2,
      },
      async ([job]) => this.#work(job as Job<JobData> & { retryCount: number }),
    );
    runs.onQueued = () => this.#workerId && boss.notifyWorker(this.#workerId);
    runs.onCancelled = (executionId) => this.#inFlight.get(executionId)?.cancel.abort();
    this.#timers = [setInterval(() => void this.#watchCancellations(), CANCEL_CHECK_MS), setInterval(() => void this.#housekeeping(), HOUSEKEEPING_MS)];
    for (const timer of this.#timers) timer.unref();
  }

  async #work(job: Job<JobData> & { retryCount: number }): Promise<void> {
    const { executionId } = job.data;
    const cancel = new AbortController();
    const { db, runs, log } = this.#options;
    const running = runOrLose(db(), executionId, this.#tools, { cancel: cancel.signal, shutdown: this.#shutdown.signal, stopping: () => this.#stopping });
    this.#inFlight.set(executionId, { cancel, done: running.catch(() => undefined) });
    try {
      const outcome = await running;
      // Released: failing the job hands it to the queue, which gives it to another worker.
      if (outcome === 'released') throw new Error(`Execution ${executionId} released by a stopping worker.`);
      runs.done(executionId);
    } catch (error) {
      log.warn({ executionId, attempt: job.retryCount + 1, err: error }, 'execution interrupted; it will resume from its last completed step');
      // The queue's last try: the run cannot be left "running" for ever.
      if (job.retryCount + 1 >= RETRY_LIMIT) await abandonRun(db(), executionId, { code: 'interrupted', message: 'The execution was interrupted too often.' });
      throw error;
    } finally {
      this.#inFlight.delete(executionId);
    }
  }

  async #watchCancellations(): Promise<void> {
    const ids = [...this.#inFlight.keys()];
    if (ids.length === 0) return;
    // A run just taken is still queued until it starts: only a finished (cancelled) one stops.
    const stopped = await finishedRuns(this.#options.db(), ids).catch(() => []);
    for (const id of stopped) this.#inFlight.get(id)?.cancel.abort();
  }

  async #housekeeping(): Promise<void> {
    await forgetExpiredKeys(this.#options.db()).catch((error) => this.#options.log.warn({ err: error }, 'forgetting expired idempotency keys failed'));
  }

  /** Drains within `deadlineMs`: the steps in flight finish, or are aborted at the deadline. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    await this.#options.boss.offWork(EXECUTIONS, { wait: false }).catch(() => undefined);
    const drained = Promise.all([...this.#inFlight.values()].map((flight) => flight.done));
    const deadline = setTimeout(() => this.#shutdown.abort(), deadlineMs);
    await drained;
    clearTimeout(deadline);
    await this.#outbound.close();
  }
}
