// Error flows. A failed run whose version names `onFailure` leaves a hand-off in the transaction
// that fails it, whatever statement does (a trigger, prisma/migrations/20261210100000_events).
// Every worker looks for hand-offs, and starts each error flow in the transaction that deletes its
// hand-off: a failure starts its error flow once, whatever crashes. Glossary: src/engine/README.md.
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { ProblemError } from '../../contract/problems.ts';
import type { Database } from '../../db/client.ts';
// The database announces a hand-off on the channel it announces events on.
import { EVENT_CHANGES } from '../../events/sender.ts';
import type { Runs } from '../runs/runs.ts';

/** How often hand-offs are looked for when no announcement comes (another node's, or a restart's). */
const POLL_MS = 1000;
/** The most organizations a round serves (one hand-off each) before it looks again. */
const ROUND_ORGANIZATIONS = 100;

interface Handoff {
  executionId: string;
  orgId: string;
  flowId: string;
  failedFlowId: string;
  summary: Record<string, unknown>;
}

export class ErrorFlowStarter {
  readonly #db: () => Database;
  readonly #boss: PgBoss;
  readonly #runs: Runs;
  readonly #log: Logger;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #stopListening: (() => Promise<void>) | undefined;

  constructor(options: { db: () => Database; boss: PgBoss; runs: Runs; log: Logger }) {
    this.#db = options.db;
    this.#boss = options.boss;
    this.#runs = options.runs;
    this.#log = options.log;
  }

  async start(): Promise<void> {
    const db = this.#boss.getDb();
    if (db.listen) {
      const handle = await db.listen(
        EVENT_CHANGES,
        () => this.#wake?.(),
        () => this.#wake?.(),
      );
      this.#stopListening = () => handle.close();
    }
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    await this.#stopListening?.().catch(() => undefined);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        while (!this.#stopped && (await this.#round())) {}
      } catch (error) {
        this.#log.error({ err: error }, 'error flows could not be started; they are tried again');
      }
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Starts the oldest hand-off of each organization that has some; false when none started. */
  async #round(): Promise<boolean> {
    const oldest = await this.#db().$queryRaw<{ executionId: string }[]>`
      SELECT execution_id AS "executionId" FROM (
        SELECT DISTINCT ON (org_id) execution_id, created_at FROM error_flow_handoffs ORDER BY org_id, created_at) first
      ORDER BY created_at LIMIT ${ROUND_ORGANIZATIONS}`;
    let started = false;
    for (const { executionId } of oldest) {
      if (this.#stopped) break;
      started = (await this.#start(executionId)) || started;
    }
    return started;
  }

  /**
   * Starts the error flow of one failed run, unless another worker holds its hand-off. A full queue
   * leaves the hand-off for later; an error flow that cannot start (deleted since) is dropped, logged.
   */
  async #start(executionId: string): Promise<boolean> {
    let handoff: Handoff | undefined;
    try {
      const started = await this.#db().$transaction(async (tx) => {
        [handoff] = await tx.$queryRaw<Handoff[]>`
          SELECT h.execution_id AS "executionId", h.org_id AS "orgId", h.flow_id AS "flowId", e.flow_id AS "failedFlowId", execution_event_data(e) AS summary
          FROM error_flow_handoffs h JOIN executions e ON e.id = h.execution_id
          WHERE h.execution_id = ${executionId}::uuid FOR UPDATE OF h SKIP LOCKED`;
        if (!handoff) return undefined;
        await tx.$executeRaw`DELETE FROM error_flow_handoffs WHERE execution_id = ${executionId}::uuid`;
        return this.#runs.start(tx, {
          orgId: handoff.orgId,
          flowId: handoff.flowId,
          input: { execution: handoff.summary },
          trigger: { type: 'error', executionId, flowId: handoff.failedFlowId },
        });
      });
      if (!started) return false;
      this.#runs.started(started.id);
      return true;
    } catch (error) {
      if (!(error instanceof ProblemError) || !handoff) throw error;
      if (error.kind === 'too-many-requests') return false;
      await this.#db().$executeRaw`DELETE FROM error_flow_handoffs WHERE execution_id = ${executionId}::uuid`;
      this.#log.warn({ executionId, orgId: handoff.orgId, errorFlowId: handoff.flowId, reason: error.message }, 'an error flow could not start');
      return true;
    }
  }
}
