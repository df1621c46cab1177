// The engine of a process: the queue, the run owner, the news of runs and, when this process runs
// flows, a worker of runs, the maintenance jobs, the schedule ticker and the event sender. The API and the worker processes both start one.
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { DatabaseTimeouts, EngineSettings } from '../config/settings.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { DatabaseConnection } from '../db/client.ts';
import { EventSender } from '../events/sender.ts';
import type { Metrics } from '../observability/metrics.ts';
import { Evaluator } from './evaluator.ts';
import { ErrorFlowStarter } from './jobs/errorFlows.ts';
import { workMaintenance } from './jobs/maintenance.ts';
import { openQueue, RunQueue } from './jobs/queue.ts';
import { RunWorker } from './jobs/runWorker.ts';
import { ScheduleTicker } from './jobs/schedules.ts';
import { RunChanges } from './runs/changes.ts';
import { Runs } from './runs/runs.ts';

export interface Engine {
  runs: Runs;
  boss: PgBoss;
  queue: RunQueue;
  worker: RunWorker | undefined;
  /** Drains the worker within `deadlineMs` (see RunWorker.stop), then closes the queue. */
  stop(deadlineMs: number): Promise<void>;
}

export interface EngineOptions {
  database: DatabaseConnection;
  /** A direct connection for the queue (LISTEN/NOTIFY needs one; Neon's pooler has none). */
  directUrl: string;
  keyring: Keyring;
  settings: EngineSettings;
  timeouts?: DatabaseTimeouts;
  log: Logger;
  metrics?: Metrics;
  /** Told of every maintenance job this process ran. */
  maintained?: (kind: string, result: Record<string, number>) => void;
}

export async function startEngine({ database, directUrl, keyring, settings, timeouts, log, metrics, maintained }: EngineOptions): Promise<Engine> {
  const db = () => database.current;
  const boss = await openQueue({ url: directUrl, timeouts, working: settings.worker });
  const queue = new RunQueue(boss, settings.orgQueueLimit);
  const changes = new RunChanges(boss, db, log);
  await changes.start();
  // Its processes start when a task comes: in a process without a worker, when a run's concurrency key is evaluated.
  const evaluator = new Evaluator(settings.evaluation);
  const runs = new Runs(queue, changes, evaluator);
  const worker = settings.worker ? new RunWorker({ db, boss, queue, changes, keyring, evaluator, settings, log, metrics }) : undefined;
  await worker?.start();
  if (settings.worker) await workMaintenance({ boss, db, queue, log, cron: settings.maintenanceCron, ran: maintained });
  const ticker = settings.worker ? new ScheduleTicker({ db, boss, runs, log, metrics }) : undefined;
  await ticker?.start();
  const errorFlows = settings.worker ? new ErrorFlowStarter({ db, boss, runs, log }) : undefined;
  await errorFlows?.start();
  const sender = settings.worker
    ? new EventSender({ db, boss, keyring, settings: settings.events, allowPrivateTargets: settings.allowPrivateTargets, log })
    : undefined;
  await sender?.start();
  return {
    runs,
    boss,
    queue,
    worker,
    async stop(deadlineMs) {
      await Promise.all([worker?.stop(deadlineMs), ticker?.stop(), errorFlows?.stop(), sender?.stop(deadlineMs)]);
      evaluator.close();
      // Settles the jobs of released runs, so that other workers take them up at once.
      await boss.stop({ graceful: true, timeout: 5000 }).catch(() => undefined);
      await changes.close();
    },
  };
}
