// The engine of a process: the queue, the domain's view of it, and, when this process runs
// flows, a worker. The API and the worker processes both start one.
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { DatabaseTimeouts, EngineSettings } from '../config/config.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { DatabaseConnection } from '../db/client.ts';
import type { Metrics } from '../observability/metrics.ts';
import { openQueue, QueuedRuns } from './queue.ts';
import { Worker } from './worker.ts';

export interface Engine {
  runs: QueuedRuns;
  boss: PgBoss;
  worker: Worker | undefined;
  /** Drains the worker within `deadlineMs` (see Worker.stop), then closes the queue. */
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
}

export async function startEngine({ database, directUrl, keyring, settings, timeouts, log, metrics }: EngineOptions): Promise<Engine> {
  const boss = await openQueue({ url: directUrl, timeouts, working: settings.worker });
  const runs = new QueuedRuns(boss, () => database.current, settings.orgQueueLimit);
  const worker = settings.worker ? new Worker({ db: () => database.current, boss, runs, keyring, settings, log, metrics }) : undefined;
  await worker?.start();
  return {
    runs,
    boss,
    worker,
    async stop(deadlineMs) {
      await worker?.stop(deadlineMs);
      // Settles the jobs of released runs, so that other workers take them up at once.
      await boss.stop({ graceful: true, timeout: 5000 }).catch(() => undefined);
      runs.close();
    },
  };
}
