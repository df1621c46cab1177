// Retention: what an organization's period has outlived is removed a batch at a time, each batch
// in a short transaction of its own, so that no statement holds many locks or runs long and the
// API's statements are never queued behind a large delete. Ids are UUIDv7, so an id bound finds
// old rows by a range of an index the API already keeps (members' logs have a small one of their
// own: the execution_logs_written_idx migration).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../../db/client.ts';
import { FINISHED } from './statuses.ts';

export interface RetentionOptions {
  /** The time the periods count back from (tests move it forward instead of waiting for days). */
  now?: Date;
  /** Rows (executions, logs, deliveries) removed per transaction. */
  batch?: number;
  /** The rest between two batches, which leaves the database to the API's statements. */
  pauseMs?: number;
  /** The time (epoch ms) after which no batch begins: a large backlog is finished by later runs. */
  until?: number;
  /** Batches of each kind an organization is given before the next one's turn. */
  batchesPerTurn?: number;
}

export interface Pruned {
  organizations: number;
  /** Organizations' turns taken: more than `organizations` when some had more than one turn's work. */
  turns: number;
  executions: number;
  logs: number;
  triggerDeliveries: number;
  eventDeliveries: number;
}

const DAY_MS = 24 * 3600_000;
const ORGANIZATIONS_PER_PAGE = 1000;

interface Organization {
  id: string;
  retentionExecutionsDays: number;
  /** Per status, the last execution looked at: the next batch begins after it, not among the entries of those removed. */
  after?: Map<string, string>;
}

/**
 * Removes, for every organization, the history older than its retention period. Organizations
 * take turns: one with a large backlog has a turn's batches of each kind, then waits for
 * the others' turns (20 batches of 500 unless told), so that it does not keep them waiting for theirs.
 */
export async function pruneExpired(db: Database, options: RetentionOptions = {}): Promise<Pruned> {
  const settings = { now: new Date(), batch: 500, pauseMs: 20, until: Number.POSITIVE_INFINITY, batchesPerTurn: 20, ...options };
  const pruned: Pruned = { organizations: 0, turns: 0, executions: 0, logs: 0, triggerDeliveries: 0, eventDeliveries: 0 };
  let due = await everyOrganization(db);
  pruned.organizations = due.length;
  while (due.length > 0 && Date.now() < settings.until) {
    const behind: Organization[] = [];
    for (const organization of due) {
      if (Date.now() >= settings.until) break;
      pruned.turns += 1;
      if (await pruneOrganization(db, organization, settings, pruned)) behind.push(organization);
    }
    due = behind;
  }
  return pruned;
}

async function everyOrganization(db: Database): Promise<Organization[]> {
  const all: Organization[] = [];
  for (;;) {
    const page = await db.organization.findMany({
      select: { id: true, retentionExecutionsDays: true },
      where: all.length > 0 ? { id: { gt: all.at(-1)!.id } } : {},
      orderBy: { id: 'asc' },
      take: ORGANIZATIONS_PER_PAGE,
    });
    all.push(...page);
    if (page.length < ORGANIZATIONS_PER_PAGE) return all;
  }
}

/** One turn of an organization: adds what it removed to `pruned`; answers whether more is left. */
async function pruneOrganization(db: Database, organization: Organization, settings: Required<RetentionOptions>, pruned: Pruned) {
  const { id, retentionExecutionsDays } = organization;
  const { batch, pauseMs, until, batchesPerTurn } = settings;
  const cutoff = new Date(settings.now.getTime() - retentionExecutionsDays * DAY_MS);
  let behind = false;
  // Removes batches until one is not full, the turn's are spent, or the deadline has passed.
  const drain = async (removeBatch: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (let batches = 0; Date.now() < until; batches++) {
      if (batches === batchesPerTurn) {
        behind = true;
        break;
      }
      const removed = await removeBatch();
      total += removed;
      if (removed < batch) break;
      await sleep(pauseMs);
    }
    return total;
  };
  organization.after ??= new Map();
  const after = organization.after;
  for (const status of FINISHED) {
    pruned.executions += await drain(async () => {
      const { executions, logs, last } = await removeExecutions(db, id, status, cutoff, batch, after.get(status));
      if (last) after.set(status, last);
      pruned.logs += logs;
      return executions;
    });
  }
  pruned.logs += await drain(() => removeWrittenLogs(db, id, cutoff, batch));
  pruned.triggerDeliveries += await drain(() => removeTriggerDeliveries(db, id, cutoff, batch));
  pruned.eventDeliveries += await drain(() => removeEventDeliveries(db, id, cutoff, batch));
  return behind;
}

/** The least UUIDv7 of a time: every id made before it is smaller. */
export function idFloor(time: Date): string {
  const hex = time.getTime().toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/**
 * Removes up to `batch` executions in `status` that finished before `cutoff` (with ids after
 * `after`), with their steps and signals (cascaded) and the logs the engine wrote for them.
 * Retries that name one are unlinked. Answers the last id removed.
 */
async function removeExecutions(db: Database, orgId: string, status: string, cutoff: Date, batch: number, after = idFloor(new Date(0))) {
  return db.$transaction(async (tx) => {
    // Rows a statement of the engine or the API holds are left for the next run.
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT id FROM executions
      WHERE org_id = ${orgId}::uuid AND status = ${status}::execution_state AND id > ${after}::uuid AND id < ${idFloor(cutoff)}::uuid
        AND finished_at < ${cutoff}
      ORDER BY id LIMIT ${batch} FOR UPDATE SKIP LOCKED`;
    if (rows.length === 0) return { executions: 0, logs: 0, last: undefined };
    const ids = rows.map((row) => row.id);
    await tx.$executeRaw`UPDATE executions SET retry_of = NULL WHERE org_id = ${orgId}::uuid AND retry_of = ANY(${ids}::uuid[])`;
    const logs = await tx.$executeRaw`
      DELETE FROM execution_logs WHERE org_id = ${orgId}::uuid AND execution_id = ANY(${ids}::text[]) AND written_by_engine`;
    await tx.$executeRaw`DELETE FROM executions WHERE id = ANY(${ids}::uuid[])`;
    return { executions: ids.length, logs, last: ids.at(-1) };
  });
}

/** Removes up to `batch` execution logs that members wrote before `cutoff`. */
function removeWrittenLogs(db: Database, orgId: string, cutoff: Date, batch: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM execution_logs WHERE id IN (
      SELECT id FROM execution_logs
      WHERE org_id = ${orgId}::uuid AND id < ${idFloor(cutoff)}::uuid AND created_at < ${cutoff} AND NOT written_by_engine
      LIMIT ${batch})`;
}

/** Removes up to `batch` deliveries of the organization's triggers made before `cutoff`, each trigger's by its own index range. */
function removeTriggerDeliveries(db: Database, orgId: string, cutoff: Date, batch: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM trigger_deliveries WHERE id IN (
      SELECT old.id FROM triggers t CROSS JOIN LATERAL (
        SELECT d.id FROM trigger_deliveries d
        WHERE d.org_id = t.org_id AND d.trigger_id = t.id AND d.id < ${idFloor(cutoff)}::uuid AND d.created_at < ${cutoff}
        LIMIT ${batch}) old
      WHERE t.org_id = ${orgId}::uuid
      LIMIT ${batch})`;
}

/**
 * Removes up to `batch` deliveries of the organization's subscriptions made before `cutoff`, in
 * whatever state (a disabled subscription's pending ones too). Their ids are random, so each
 * subscription's oldest are found in the order they were made (`seq`).
 */
function removeEventDeliveries(db: Database, orgId: string, cutoff: Date, batch: number): Promise<number> {
  return db.$executeRaw`
    DELETE FROM event_deliveries WHERE id IN (
      SELECT oldest.id FROM subscriptions s CROSS JOIN LATERAL (
        SELECT d.id, d.created_at FROM event_deliveries d WHERE d.subscription_id = s.id ORDER BY d.seq LIMIT ${batch}) oldest
      WHERE s.org_id = ${orgId}::uuid AND oldest.created_at < ${cutoff}
      LIMIT ${batch})`;
}
