// One way to hear that a run changed: PostgreSQL's LISTEN/NOTIFY on one channel, announced by the
// statements that change a run's status (finishing, cancelling, abandoning it), in their own
// transaction, so a change is heard only once it is committed. `Prefer: wait` and the worker's
// cancellation of a step in flight both hear of runs here; the event webhooks of a later issue
// will too. Where LISTEN is unavailable (behind a transaction pooler), the runs someone waits for
// are looked up every FALLBACK_POLL_MS instead; when the listening connection drops, pg-boss
// re-establishes it and they are looked up once more then, so a change is never missed, only
// heard later.
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { Database } from '../../db/client.ts';
import { type ExecutionStatus, FINISHED, isFinished, sqlList } from './statuses.ts';

/** The channel, and its payload: `<executionId>:<status>`. */
export const RUN_CHANGES = 'tolstoy_runs';
/** How often the runs waited for are looked up when no notification can come. */
export const FALLBACK_POLL_MS = 500;

export interface RunChange {
  executionId: string;
  /** Its new status, or `news`: something a step of the run waits for came (a signal, a sub-flow's end). */
  status: ExecutionStatus | 'news';
}

type Listener = (change: RunChange) => void;

export class RunChanges {
  readonly #boss: PgBoss;
  readonly #db: () => Database;
  readonly #log: Logger;
  readonly #listeners = new Set<Listener>();
  /** Whose runs to look up when polling: each source names the executions it waits for. */
  readonly #watched = new Set<() => Iterable<string>>();
  #stopListening: (() => Promise<void>) | undefined;
  #poll: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(boss: PgBoss, db: () => Database, log: Logger) {
    this.#boss = boss;
    this.#db = db;
    this.#log = log;
  }

  /** Starts listening; when it cannot, polls for as long as someone waits. */
  async start(): Promise<void> {
    const db = this.#boss.getDb();
    try {
      if (!db.listen) throw new Error('the queue cannot listen for notifications');
      const handle = await db.listen(
        RUN_CHANGES,
        (payload) => this.#heard(payload),
        () => void this.#look(),
      );
      this.#stopListening = () => handle.close();
    } catch (error) {
      this.#log.warn({ err: error }, `no news of runs from the database (LISTEN/NOTIFY); looking every ${FALLBACK_POLL_MS} ms`);
      this.#poll = setInterval(() => void this.#look(), FALLBACK_POLL_MS);
      this.#poll.unref();
    }
  }

  /** Hears every change from now on; answers how to stop. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Names executions to look up when polling (the worker's runs in flight, say); answers how to stop. */
  watch(executionIds: () => Iterable<string>): () => void {
    this.#watched.add(executionIds);
    return () => this.#watched.delete(executionIds);
  }

  /** Tells this process's listeners of a change it made itself, without waiting for the notification. */
  announce(change: RunChange): void {
    for (const listener of this.#listeners) listener(change);
  }

  /**
   * Whether the execution finishes within `ms` (or before `stop`, which ends the wait). It listens
   * from the moment it is called: a caller that reads the execution after calling it misses no
   * change in between.
   */
  finished(executionId: string, ms: number, stop?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const waiting = [executionId];
      const settle = (finished: boolean) => {
        clearTimeout(timer);
        unsubscribe();
        unwatch();
        stop?.removeEventListener('abort', stopped);
        resolve(finished);
      };
      const stopped = () => settle(false);
      stop?.addEventListener('abort', stopped);
      const unsubscribe = this.subscribe((change) => change.executionId === executionId && isFinished(change.status) && settle(true));
      const unwatch = this.watch(() => waiting);
      const timer = setTimeout(() => settle(false), ms);
    });
  }

  #heard(payload: string | undefined): void {
    const [executionId, status] = (payload ?? '').split(':');
    if (executionId && status) this.announce({ executionId, status: status as RunChange['status'] });
  }

  /** Looks up the finished runs among those watched, and announces them. */
  async #look(): Promise<void> {
    const ids = [...this.#watched].flatMap((source) => [...source()]);
    if (ids.length === 0 || this.#closed) return;
    for (const change of await finishedRuns(this.#db(), ids).catch(() => [])) this.announce(change);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#poll);
    await this.#stopListening?.().catch(() => undefined);
  }
}

/** Of these executions, the ones that have finished (cancelled included), with how: a queued one has not. */
export async function finishedRuns(db: Database, executionIds: string[]): Promise<RunChange[]> {
  if (executionIds.length === 0) return [];
  return db.$queryRaw<RunChange[]>`
    SELECT id AS "executionId", status::text AS status FROM executions WHERE id = ANY(${executionIds}::uuid[]) AND status IN ${sqlList(FINISHED)}`;
}
