// The queue of executions, on PostgreSQL with pg-boss (README, "Running flows", says why pg-boss):
// one job per execution, sent inside the transaction that stores the execution, grouped by
// organization so that one organization's runs cannot take every worker. A worker's heartbeat
// keeps its job; when the heartbeat stops (the worker died), the supervisor hands the job to
// another worker, which resumes the execution from its last completed step.
import { fromPrisma, PgBoss } from 'pg-boss';
// The channel pg-boss announces new jobs on: not part of its public API, so pinned with it.
import { DEFAULT_SCHEMA, notifyChannelSql } from 'pg-boss/dist/plans.js';
import type { DatabaseTimeouts } from '../../config/settings.ts';
import { ProblemError, plural } from '../../contract/problems.ts';
import type { Transaction } from '../../db/client.ts';
import { connectionConfig, DEFAULT_TIMEOUTS } from '../../db/connection.ts';
import { queuedRuns } from '../runs/progress.ts';

export const EXECUTIONS = 'executions';

/** Seconds without a heartbeat after which a worker is taken for dead and its job handed on. */
export const HEARTBEAT_SECONDS = 10;
/** How often the supervisor looks for such jobs (pg-boss's monitor pass, which fails lapsed jobs for a retry). */
export const SUPERVISE_SECONDS = 5;
/** How often each queue is swept of the finished jobs past its `deleteAfterSeconds`. */
export const MAINTENANCE_SECONDS = 300;
/** A job is retried this often at most: after a crash, after an outage of the database. */
export const RETRY_LIMIT = 1000;
/** When an organization whose queue is full is told to try again. */
export const FULL_QUEUE_RETRY_SECONDS = 5;

export interface JobData {
  executionId: string;
}

export interface QueueOptions {
  /** A direct connection (LISTEN/NOTIFY and pg-boss's own transactions need one). */
  url: string;
  timeouts?: DatabaseTimeouts;
  /** Whether this process works jobs: it then listens for new ones and supervises. */
  working: boolean;
}

export async function openQueue({ url, timeouts = DEFAULT_TIMEOUTS, working }: QueueOptions): Promise<PgBoss> {
  // pg-boss's maintenance statements may run longer than the API's.
  const connection = connectionConfig(url, { timeouts: { ...timeouts, statementMs: Math.max(timeouts.statementMs, 60_000) } });
  const boss = new PgBoss({
    ...(connection as object),
    application_name: working ? 'tolstoy-worker' : 'tolstoy-api',
    max: working ? 10 : 3,
    // Working processes keep the maintenance jobs' schedules (src/engine/jobs/maintenance.ts).
    schedule: working,
    cronMonitorIntervalSeconds: 5,
    supervise: working,
    superviseIntervalSeconds: SUPERVISE_SECONDS,
    // How often a queue's finished jobs past its deleteAfterSeconds are deleted: often, so that
    // each sweep is small (pg-boss's default is once a day).
    maintenanceIntervalSeconds: MAINTENANCE_SECONDS,
    monitorIntervalSeconds: SUPERVISE_SECONDS,
    // The worker listens itself (listenForRuns): pg-boss's listener wakes only pollers of its work().
    useListenNotify: false,
    registerInstance: false,
    persistWarnings: false,
  } as ConstructorParameters<typeof PgBoss>[0]);
  // pg-boss reports its own errors (a lost connection, say) as events; they are retried by it.
  boss.on('error', () => undefined);
  await boss.start();
  if (!(await boss.getQueue(EXECUTIONS))) {
    await boss
      .createQueue(EXECUTIONS, {
        notify: true,
        heartbeatSeconds: HEARTBEAT_SECONDS,
        expireInSeconds: 24 * 3600,
        retryLimit: RETRY_LIMIT,
        retryDelay: 1,
        retryBackoff: true,
        retryDelayMax: 30,
        deleteAfterSeconds: 24 * 3600,
      })
      .catch(async (error) => {
        // Another process created it first.
        if (!(await boss.getQueue(EXECUTIONS))) throw error;
      });
  }
  return boss;
}

/**
 * Calls `onRun` whenever a run is queued (pg-boss announces each new job with NOTIFY), over a
 * connection of its own that pg-boss keeps and reconnects. Answers how to stop listening.
 */
export async function listenForRuns(boss: PgBoss, onRun: () => void): Promise<() => Promise<void>> {
  const db = boss.getDb();
  if (!db.listen) throw new Error('the queue cannot listen for notifications');
  const { rows } = await db.executeSql(`SELECT ${notifyChannelSql('pgboss')} AS channel`);
  const handle = await db.listen(
    rows[0].channel,
    (queue) => queue === EXECUTIONS && onRun(),
    // Notifications may have been missed while the connection was down: look now.
    onRun,
  );
  return () => handle.close();
}

/**
 * In how many milliseconds the next run that waits in the queue (a timer, or a retry's delay) is
 * due, whoever set it, or undefined when none waits. Measured by the database's clock, the one
 * the queue compares `startAfter` with. A worker that did not set a timer (it started after the worker that set it died)
 * learns of it here, and looks when it is due rather than at its next poll.
 */
export async function nextDueMs(boss: PgBoss): Promise<number | undefined> {
  const { rows } = await boss
    .getDb()
    .executeSql(
      `SELECT (EXTRACT(EPOCH FROM min(start_after) - now()) * 1000)::float8 AS ms FROM ${DEFAULT_SCHEMA}.job WHERE name = $1 AND state IN ('created', 'retry') AND NOT blocked AND start_after > now()`,
      [EXECUTIONS],
    );
  const ms = rows[0]?.ms;
  return ms === null || ms === undefined ? undefined : Number(ms);
}

/**
 * The queue of runs: a job per run to take up now, or at a time to come (a durable timer: a step
 * that waits for its next attempt). Jobs are sent in the transaction that stores the change.
 */
export class RunQueue {
  readonly #boss: PgBoss;
  readonly #queueLimit: number;
  /** Set by a worker of this process: told of runs queued here, and of timers set here. */
  onQueued: ((executionId: string, at?: Date) => void) | undefined;

  /** `queueLimit`: the runs one organization may have queued (TOLSTOY_ORG_QUEUE_LIMIT). */
  constructor(boss: PgBoss, queueLimit: number) {
    this.#boss = boss;
    this.#queueLimit = queueLimit;
  }

  async enqueue(tx: Transaction, execution: { id: string; orgId: string }): Promise<void> {
    // Counted after the execution was stored, in its transaction: concurrent starts may each see
    // the others' uncommitted runs missing, so the bound holds up to the starts in flight at once.
    const queued = await queuedRuns(tx, execution.orgId);
    if (queued > this.#queueLimit) {
      throw new ProblemError(
        'too-many-requests',
        `This organization has ${plural(this.#queueLimit, 'run')} queued, its limit (TOLSTOY_ORG_QUEUE_LIMIT); retry once some have started.`,
        { retryAfterSeconds: FULL_QUEUE_RETRY_SECONDS },
      );
    }
    await this.#boss.send(EXECUTIONS, { executionId: execution.id } satisfies JobData, { db: fromPrisma(tx), group: { id: execution.orgId } });
  }

  /** Takes a parked run up again now, in `tx` (news came for it); no queue limit, since it was queued before. */
  async wake(tx: Transaction, execution: { id: string; orgId: string }): Promise<void> {
    await this.#boss.send(EXECUTIONS, { executionId: execution.id } satisfies JobData, { db: fromPrisma(tx), group: { id: execution.orgId } });
  }

  /** Sets a timer, in `tx`: the run is taken up again at `at`, by any worker. */
  async wakeAt(tx: Transaction, execution: { id: string; orgId: string }, at: Date): Promise<void> {
    await this.#boss.send(EXECUTIONS, { executionId: execution.id } satisfies JobData, { db: fromPrisma(tx), group: { id: execution.orgId }, startAfter: at });
  }

  /** After the commit: a worker of this process, if any, looks at once (or at `at`, a timer's time). */
  queued(executionId: string, at?: Date): void {
    this.onQueued?.(executionId, at);
  }
}
