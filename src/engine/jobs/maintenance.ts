// Kinds of maintenance job: each is a queue of its own, filled by a schedule (pg-boss's cron) that
// every working process keeps. pg-boss files each occurrence of a schedule under one key, so
// however many workers keep it, one job is made per occurrence, and one worker runs it. pg-boss
// bounds its own tables: each queue's finished jobs are deleted `deleteAfterSeconds` after they
// finished, by the workers' supervision (src/engine/jobs/queue.ts).
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { Database } from '../../db/client.ts';
import { forgetExpiredKeys } from '../../http/rules/idempotency.ts';
import { pruneExpired } from '../runs/retention.ts';
import { wakeStranded } from '../runs/slots.ts';
import type { RunQueue } from './queue.ts';

export interface MaintenanceKind {
  /** The queue's name. */
  name: string;
  /** When it runs, as cron (five fields, or six with seconds first), in UTC. */
  cron: string;
  /** Does the work; answers what it did, for the log. */
  run(db: Database, queue: RunQueue): Promise<Record<string, number>>;
}

export const MAINTENANCE: readonly MaintenanceKind[] = [
  {
    name: 'maintenance.idempotency-keys',
    // Keys are kept 24 hours: forgetting them hourly keeps at most 25 hours of them.
    cron: '17 * * * *',
    run: async (db) => ({ forgotten: await forgetExpiredKeys(db) }),
  },
  {
    name: 'maintenance.retention',
    // A run stops beginning batches after 8 minutes, so one is done before the next is due.
    cron: '*/10 * * * *',
    run: async (db) => ({ ...(await pruneExpired(db, { until: Date.now() + 8 * 60_000 })) }),
  },
  {
    name: 'maintenance.slots',
    // The bound of a wait for a concurrency slot when the wake-up of the run that freed it was lost.
    cron: '* * * * *',
    run: async (db, queue) => ({ looked: await wakeStranded(db, queue) }),
  },
];

export interface MaintenanceOptions {
  boss: PgBoss;
  db: () => Database;
  queue: RunQueue;
  log: Logger;
  /** Overrides every kind's schedule (tests run them every few seconds). */
  cron?: string;
  /** Told of every job run here, after it ran. */
  ran?: (kind: string, result: Record<string, number>) => void;
}

/** Creates each kind's queue and schedule (idempotent: every worker does it), and works its jobs. */
export async function workMaintenance({ boss, db, queue, log, cron, ran }: MaintenanceOptions): Promise<void> {
  for (const kind of MAINTENANCE) {
    if (!(await boss.getQueue(kind.name))) {
      // `singleton`: one job of a kind active at a time, however long one takes.
      await boss
        .createQueue(kind.name, { policy: 'singleton', retryLimit: 2, expireInSeconds: 3600, deleteAfterSeconds: 7 * 24 * 3600 })
        .catch(async (error) => {
          if (!(await boss.getQueue(kind.name))) throw error;
        });
    }
    await boss.schedule(kind.name, cron ?? kind.cron, null, { tz: 'UTC' });
    await boss.work(kind.name, { pollingIntervalSeconds: 1 }, async () => {
      const result = await kind.run(db(), queue);
      log.info({ kind: kind.name, ...result }, 'maintenance job done');
      ran?.(kind.name, result);
    });
  }
}
