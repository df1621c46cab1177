// The schedule ticker: every worker process runs one, and each fires the slots of schedule
// triggers that are due. There is no leader to elect or take over: a trigger is fired under its
// row lock (others skip it), each slot is a delivery unique per trigger and slot, and the slot's
// run is stored in that transaction, so a slot starts at most one run whatever the number of
// workers, their crashes and their clocks (slots are read by the database's clock). While any
// worker lives, slots fire on time. Glossary: src/engine/README.md.
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { ProblemError } from '../../contract/problems.ts';
import { type Database, fromJsonText, type Transaction } from '../../db/client.ts';
import type { Trigger as TriggerRow } from '../../generated/prisma/client.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { ScheduleSettings } from '../../triggers/settings.ts';
import { CATCH_UP_CAP, catchUpPlan, dueSlots, nextSlot, ON_TIME_GRACE_MS } from '../../triggers/slots.ts';
import type { Runs } from '../runs/runs.ts';
import { sqlList, UNFINISHED } from '../runs/statuses.ts';

/** The channel a change of a schedule's next slot is announced on, so that tickers plan anew. */
export const SCHEDULE_CHANGES = 'tolstoy_schedules';
/** The longest a ticker sleeps: a slot planned by another node is looked for at least this often. */
export const TICK_MAX_MS = 5000;
/** How often queued slots (overlap `queue`) are looked at while some wait. */
const QUEUE_POLL_MS = 1000;
/** The most slots of one trigger waiting for its earlier runs (overlap `queue`); more are skipped. */
export const QUEUE_CAP = 10;
/** How soon a ticker looks again at slots still due after its round (another ticker holds them, or they failed). */
const BUSY_RETRY_MS = 100;
/** The most organizations a round of firing serves (one trigger each) before it looks again. */
const ROUND_ORGANIZATIONS = 100;

type Outcome = 'started' | 'queued' | 'skipped' | 'missed';

interface Fired {
  started: string[];
  outcomes: { outcome: Outcome; lateMs: number }[];
}

export class ScheduleTicker {
  readonly #db: () => Database;
  readonly #boss: PgBoss;
  readonly #runs: Runs;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #stopListening: (() => Promise<void>) | undefined;

  constructor(options: { db: () => Database; boss: PgBoss; runs: Runs; log: Logger; metrics?: Metrics }) {
    this.#db = options.db;
    this.#boss = options.boss;
    this.#runs = options.runs;
    this.#log = options.log;
    this.#metrics = options.metrics;
  }

  async start(): Promise<void> {
    const db = this.#boss.getDb();
    if (db.listen) {
      const handle = await db.listen(
        SCHEDULE_CHANGES,
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
      let sleepMs = TICK_MAX_MS;
      try {
        while (!this.#stopped && (await this.#fireRound())) {}
        while (!this.#stopped && (await this.#startQueued())) {}
        sleepMs = await this.#untilNext();
      } catch (error) {
        this.#log.error({ err: error }, 'the schedule ticker failed; it tries again');
      }
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, sleepMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /**
   * Fires one due trigger of each organization that has some (the most overdue of each), so that
   * an organization with many schedules delays no other's by more than a round; false when none
   * could be fired (none was due, or the database failed each: the ticker sleeps, then looks again).
   */
  async #fireRound(): Promise<boolean> {
    const due = await this.#db().$queryRaw<{ id: string }[]>`
      SELECT id FROM (SELECT DISTINCT ON (org_id) id, next_fire_at FROM triggers WHERE next_fire_at <= now() ORDER BY org_id, next_fire_at) first
      ORDER BY next_fire_at LIMIT ${ROUND_ORGANIZATIONS}`;
    let fired = false;
    for (const { id } of due) {
      if (this.#stopped) break;
      fired = (await this.#fire(id)) || fired;
    }
    return fired;
  }

  /**
   * Fires a trigger's due slots, unless another ticker holds it. Slots that cannot start (the
   * organization's queue is full, its flow is gone) are recorded as skipped, so that they hold up
   * neither this trigger's next slots nor any other trigger; a failure of the database leaves them
   * due, for the next round. False when nothing was recorded.
   */
  async #fire(triggerId: string): Promise<boolean> {
    const fire = (skipReason?: string) =>
      this.#db().$transaction(async (tx) => {
        const [due] = await tx.$queryRaw<(TriggerRow & { now: Date })[]>`
          SELECT now() AS now, id, org_id AS "orgId", flow_id AS "flowId", version, settings, next_fire_at AS "nextFireAt"
          FROM triggers WHERE id = ${triggerId}::uuid AND next_fire_at <= now() FOR UPDATE SKIP LOCKED`;
        return due ? fireSlots(tx, this.#runs, due, due.now, skipReason) : undefined;
      });
    try {
      const fired = await fire().catch((error: unknown) => {
        if (error instanceof ProblemError) return fire(error.message);
        throw error;
      });
      if (fired) this.#told(fired);
      return fired !== undefined;
    } catch (error) {
      this.#log.error({ err: error, triggerId }, 'a schedule could not fire; it is tried again next round');
      return false;
    }
  }

  /** Starts the oldest queued slot of one trigger whose earlier runs have all finished; false when none can start. */
  async #startQueued(): Promise<boolean> {
    let slotId: string | undefined;
    try {
      const fired = await this.#db().$transaction(async (tx) => {
        const [trigger] = await tx.$queryRaw<(TriggerRow & { now: Date })[]>`
          SELECT now() AS now, t.id, t.org_id AS "orgId", t.flow_id AS "flowId", t.version, t.settings FROM triggers t
          WHERE t.enabled AND EXISTS (SELECT 1 FROM trigger_deliveries d WHERE d.trigger_id = t.id AND d.outcome = 'queued')
            AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.trigger_id = t.id AND e.status IN ${sqlList(UNFINISHED)})
          ORDER BY t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED`;
        if (!trigger) return undefined;
        const [slot] = (await tx.$queryRaw<{ id: string; scheduledAt: Date }[]>`
          SELECT id, scheduled_at AS "scheduledAt" FROM trigger_deliveries WHERE trigger_id = ${trigger.id}::uuid AND outcome = 'queued'
          ORDER BY scheduled_at LIMIT 1`) as [{ id: string; scheduledAt: Date }];
        slotId = slot.id;
        const executionId = await startSlot(tx, this.#runs, trigger, slot.id, slot.scheduledAt);
        await tx.$executeRaw`UPDATE trigger_deliveries SET outcome = 'started', execution_id = ${executionId}::uuid, fired_at = now() WHERE id = ${slot.id}::uuid`;
        return { started: [executionId], outcomes: [{ outcome: 'started' as const, lateMs: trigger.now.getTime() - slot.scheduledAt.getTime() }] };
      });
      if (!fired) return false;
      this.#told(fired);
    } catch (error) {
      if (!(error instanceof ProblemError) || slotId === undefined) throw error;
      // It cannot start (the organization's queue is full, its flow is gone): skipped, so that the ones after it may.
      await this.#db()
        .$executeRaw`UPDATE trigger_deliveries SET outcome = 'skipped', reason = ${error.message} WHERE id = ${slotId}::uuid AND outcome = 'queued'`;
    }
    return true;
  }

  /** How long to sleep: until the next slot due anywhere, by the database's clock, within bounds. */
  async #untilNext(): Promise<number> {
    const [next] = await this.#db().$queryRaw<{ ms: number | null; queued: boolean }[]>`
      SELECT (EXTRACT(EPOCH FROM (SELECT min(next_fire_at) FROM triggers) - now()) * 1000)::float8 AS ms,
        EXISTS (SELECT 1 FROM trigger_deliveries WHERE outcome = 'queued') AS queued`;
    const longest = next?.queued ? QUEUE_POLL_MS : TICK_MAX_MS;
    // Still due after a round: held by another ticker, or failing; looked at again shortly.
    const ms = next?.ms ?? longest;
    return ms <= 0 ? BUSY_RETRY_MS : Math.min(longest, ms);
  }

  #told({ started, outcomes }: Fired): void {
    for (const id of started) this.#runs.started(id);
    for (const { outcome, lateMs } of outcomes) this.#metrics?.scheduleFires.observe({ outcome }, Math.max(0, lateMs) / 1000);
  }
}

/**
 * Records each due slot of the trigger as a delivery (started, queued, skipped or missed, by its
 * catch-up and overlap policies), starts the runs of those that start, and moves the trigger on
 * to its next slot after `now`. A slot already recorded (by a ticker that got there first) is
 * left as it is.
 */
async function fireSlots(tx: Transaction, runs: Runs, trigger: TriggerRow, now: Date, skipReason?: string): Promise<Fired> {
  const settings = fromJsonText<ScheduleSettings>(trigger.settings);
  const due = dueSlots(settings, trigger.nextFireAt!, now, CATCH_UP_CAP);
  const plan = catchUpPlan(due.slots, now, settings.catchUp, ON_TIME_GRACE_MS);
  const fired: Fired = { started: [], outcomes: [] };
  const lateness = (slot: Date) => now.getTime() - slot.getTime();
  for (const slot of plan.missed) {
    if (await recordSlot(tx, trigger, slot, 'missed', 'no worker ran at its time (catch-up policy)'))
      fired.outcomes.push({ outcome: 'missed', lateMs: lateness(slot) });
  }
  let [{ unfinished, queued }] = (await tx.$queryRaw<{ unfinished: number; queued: number }[]>`
    SELECT (SELECT count(*) FROM executions WHERE trigger_id = ${trigger.id}::uuid AND status IN ${sqlList(UNFINISHED)})::int AS unfinished,
      (SELECT count(*) FROM trigger_deliveries WHERE trigger_id = ${trigger.id}::uuid AND outcome = 'queued')::int AS queued`) as [
    { unfinished: number; queued: number },
  ];
  for (const slot of plan.fire) {
    const { outcome, reason } =
      skipReason === undefined ? overlapOutcome(settings.overlap, unfinished > 0 || queued > 0, queued) : { outcome: 'skipped' as const, reason: skipReason };
    const deliveryId = await recordSlot(tx, trigger, slot, outcome, reason);
    if (!deliveryId) continue;
    fired.outcomes.push({ outcome, lateMs: lateness(slot) });
    if (outcome === 'queued') queued++;
    if (outcome !== 'started') continue;
    const executionId = await startSlot(tx, runs, trigger, deliveryId, slot);
    await tx.$executeRaw`UPDATE trigger_deliveries SET execution_id = ${executionId}::uuid, fired_at = now() WHERE id = ${deliveryId}::uuid`;
    fired.started.push(executionId);
    unfinished++;
  }
  const last = due.slots.at(-1);
  await tx.$executeRaw`UPDATE triggers SET next_fire_at = ${nextSlot(settings, now)}, last_fire_at = COALESCE(${last ?? null}::timestamptz, last_fire_at)
    WHERE id = ${trigger.id}::uuid`;
  return fired;
}

/** What a due slot does by the trigger's overlap policy, while its earlier runs are unfinished (busy) or not. */
function overlapOutcome(overlap: ScheduleSettings['overlap'], busy: boolean, queued: number): { outcome: Outcome; reason: string | null } {
  if (!busy || overlap === 'allow') return { outcome: 'started', reason: null };
  if (overlap === 'queue' && queued < QUEUE_CAP) return { outcome: 'queued', reason: null };
  const reason = overlap === 'queue' ? `${QUEUE_CAP} slots already wait for this trigger's earlier runs` : 'a run this trigger started earlier was unfinished';
  return { outcome: 'skipped', reason };
}

/** Records a slot's delivery; its id, or undefined when the slot was recorded before. */
async function recordSlot(tx: Transaction, trigger: TriggerRow, slot: Date, outcome: Outcome, reason: string | null): Promise<string | undefined> {
  const [row] = await tx.$queryRaw<{ id: string }[]>`
    INSERT INTO trigger_deliveries (id, org_id, trigger_id, outcome, reason, scheduled_at)
    VALUES (${uuidv7()}::uuid, ${trigger.orgId}::uuid, ${trigger.id}::uuid, ${outcome}::delivery_outcome, ${reason}, ${slot})
    ON CONFLICT (trigger_id, scheduled_at) DO NOTHING RETURNING id`;
  return row?.id;
}

/** Stores and queues the slot's run, in the transaction that records the slot. */
async function startSlot(tx: Transaction, runs: Runs, trigger: TriggerRow, deliveryId: string, slot: Date): Promise<string> {
  const { input } = fromJsonText<ScheduleSettings>(trigger.settings);
  const run = await runs.start(tx, {
    orgId: trigger.orgId,
    flowId: trigger.flowId,
    version: trigger.version ?? undefined,
    input,
    trigger: { type: 'schedule', id: trigger.id, deliveryId, scheduledAt: slot.toISOString() },
  });
  return run.id;
}

/** Tells every ticker that a schedule's next slot changed (sent when the transaction commits). */
export async function announceSchedules(tx: Transaction): Promise<void> {
  await tx.$executeRaw`SELECT pg_notify(${SCHEDULE_CHANGES}, '')`;
}
