// A PostgreSQL of a fault test's own (never the run's shared one), and the faults to inflict on
// it: stall every process of it (SIGSTOP, as a frozen host or a partition looks from outside),
// resume it, or kill it outright.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { applyMigrations } from '../../src/db/migrations.ts';

interface Test {
  teardown(fn: () => unknown): void;
}

export interface OwnPostgres extends EmbeddedPostgres {
  stall(): void;
  resume(): void;
  kill(): void;
}

/**
 * A migrated cluster, deleted when the test ends. A durable one keeps what it committed through a
 * kill -9 (throwaway clusters run without synchronous commits, for speed).
 */
export async function ownPostgres(t: Test, { durable = false } = {}): Promise<OwnPostgres> {
  const dataDir = join(tmpdir(), `tolstoy-fault-${randomUUID()}`);
  const embedded = await startEmbeddedPostgres({ dataDir, ephemeral: !durable });
  await applyMigrations(embedded.url);
  const signal = (name: NodeJS.Signals) => {
    for (const pid of processes(embedded.dataDir)) {
      try {
        process.kill(pid, name);
      } catch (error) {
        // A backend that ended after ps listed it (its client closed the connection).
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
  };
  t.teardown(async () => {
    signal('SIGCONT');
    await embedded.stop();
    await rm(embedded.dataDir, { recursive: true, force: true });
  });
  return { ...embedded, stall: () => signal('SIGSTOP'), resume: () => signal('SIGCONT'), kill: () => signal('SIGKILL') };
}

/** The postmaster and every backend it started. */
function processes(dataDir: string): number[] {
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return [];
  }
  if (!Number.isInteger(postmaster) || postmaster <= 0) return [];
  try {
    const children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(postmaster)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
    return [postmaster, ...children];
  } catch {
    // ps finds no children: the postmaster is gone.
    return [];
  }
}

/** The promise's value, or a failure naming what did not answer within `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
