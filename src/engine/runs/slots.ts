// Per-flow concurrency (a flow's `concurrency`, src/definitions/concurrency.ts): at most `limit`
// runs of a (flow, key value) hold a slot at once. A run's key is evaluated once, when it is
// created, and stored with the limit. A run takes a slot when it is first claimed (it becomes
// `running`) and holds it until it ends, parked waits included. A claim that finds no free slot,
// or an older run of the same key still queued, leaves the run `queued` with `awaits_slot` and
// its job ends: the run that frees a slot (ends, or leaves the queue cancelled) wakes the oldest
// waiting ones, in the transaction that frees it; the maintenance job `maintenance.slots` wakes
// any left waiting with a slot free.
//
// Every decision on the slots of a (flow, key) is made under one transaction-level advisory lock
// of that pair. Locks are taken in one order: an execution's own row first, then the pair's lock
// (several pairs' locks by the locks' own keys, since pairs that hash alike share one); holding a
// pair's lock, other runs' rows are only taken with SKIP LOCKED, so no cycle forms.
import type { Database, Transaction } from '../../db/client.ts';
import { fromJsonText, toJsonText } from '../../db/client.ts';
import { type FlowConcurrency, KEY_VALUE_LIMIT_BYTES, keyTemplate, WHOLE_FLOW } from '../../definitions/concurrency.ts';
import type { TemplateContext } from '../../definitions/templates.ts';
import type { Evaluator } from '../evaluator.ts';
import type { RunQueue } from '../jobs/queue.ts';
import type { Failure } from './progress.ts';

/** The class of the advisory locks of slots (two-key locks: apart from the one-key locks taken elsewhere); it spells "slot". */
const SLOT_LOCK_CLASS = 0x736c6f74;

/** What a new run stores of its version's concurrency: its key's value (null when it failed, with why) and the limit. */
export interface RunConcurrency {
  key: string | null;
  limit: number;
  failure?: Failure;
}

/** The slots a run takes, worked out when it is created; undefined for a version without concurrency. */
export async function concurrencyOfRun(
  evaluator: Pick<Evaluator, 'value'>,
  orgId: string,
  stored: string | null,
  context: TemplateContext,
): Promise<RunConcurrency | undefined> {
  if (stored === null) return undefined;
  const { limit, key } = fromJsonText<FlowConcurrency>(stored);
  if (key === undefined) return { key: WHOLE_FLOW, limit };
  const evaluated = await evaluator.value(orgId, { condition: null, where: 'concurrency.key', template: keyTemplate(key) }, context);
  if (evaluated.status === 'failed') return { key: null, limit, failure: { code: 'concurrency-key', message: withField(evaluated.message) } };
  const value = toJsonText((evaluated as { value: unknown }).value ?? null);
  if (Buffer.byteLength(value) > KEY_VALUE_LIMIT_BYTES) {
    const message = `concurrency.key: its value is ${Buffer.byteLength(value)} bytes of JSON; a key's value is at most ${KEY_VALUE_LIMIT_BYTES}`;
    return { key: null, limit, failure: { code: 'concurrency-key', message } };
  }
  return { key: value, limit };
}

function withField(message: string): string {
  return message.startsWith('concurrency.key') ? message : `concurrency.key: ${message}`;
}

/** How a claim fares with the slots: the run may go on, waits for a slot, or fails (its key could not be evaluated). */
export type SlotClaim = { outcome: 'go' } | { outcome: 'wait' } | { outcome: 'fail'; error: Failure };

interface SlotRow {
  flow_id: string;
  status: string;
  concurrency_key: string | null;
  concurrency_limit: number | null;
  error: string | null;
  created_at: Date;
}

/**
 * Takes a slot for a queued run of a version with concurrency, in `tx`: the run becomes `running`
 * (the claim that follows in `tx` takes its lease) when a slot of its (flow, key) is free and no
 * older run of that key is queued; otherwise it waits, marked `awaits_slot`. A run without
 * concurrency, or running already (it holds its slot), goes on as it is.
 */
export async function takeSlot(tx: Transaction, queue: RunQueue, executionId: string): Promise<SlotClaim> {
  const [run] = await tx.$queryRaw<SlotRow[]>`
    SELECT flow_id, status::text, concurrency_key, concurrency_limit, error, created_at FROM executions WHERE id = ${executionId}::uuid FOR UPDATE`;
  if (run?.status !== 'queued' || run.concurrency_limit === null) return { outcome: 'go' };
  if (run.concurrency_key === null) return { outcome: 'fail', error: keyFailure(run.error) };
  const slots = { flowId: run.flow_id, key: run.concurrency_key, limit: run.concurrency_limit };
  await lockSlots(tx, slots);
  const [state] = await tx.$queryRaw<{ running: number; older: boolean }[]>`
    SELECT (SELECT count(*)::int FROM executions WHERE flow_id = ${slots.flowId}::uuid AND concurrency_key = ${slots.key} AND status = 'running') AS running,
      EXISTS (SELECT 1 FROM executions WHERE flow_id = ${slots.flowId}::uuid AND concurrency_key = ${slots.key} AND status = 'queued'
        AND (created_at, id) < (${run.created_at}::timestamptz, ${executionId}::uuid)) AS older`;
  if (state!.running >= slots.limit || state!.older) {
    await tx.$executeRaw`UPDATE executions SET awaits_slot = true WHERE id = ${executionId}::uuid`;
    return { outcome: 'wait' };
  }
  // A lease of its own until the claim's: a running run without one reads as parked, and news would wake it twice.
  // Started by the clock, not the transaction's start: under the lock, the order slots were taken in.
  await tx.$executeRaw`
    UPDATE executions SET status = 'running', awaits_slot = false, lease = gen_random_uuid(), started_at = COALESCE(started_at, clock_timestamp()), updated_at = now()
    WHERE id = ${executionId}::uuid`;
  // Runs of the key refused while this one, older, was queued: they may take the slots left.
  await wakeWaiting(tx, queue, slots, slots.limit - state!.running - 1);
  return { outcome: 'go' };
}

/** Why a run has no key: kept as its error when it was created. */
function keyFailure(error: string | null): Failure {
  return error === null ? { code: 'concurrency-key', message: 'concurrency.key: its value could not be worked out.' } : fromJsonText<Failure>(error);
}

interface Slots {
  flowId: string;
  key: string;
  limit: number;
}

async function lockSlots(tx: Transaction, { flowId, key }: { flowId: string; key: string }): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${SLOT_LOCK_CLASS}::int, hashtext(${`${flowId} ${key}`}))`;
}

/** Wakes the `count` oldest runs of the (flow, key) waiting for a slot: each gets a job, in `tx`. */
async function wakeWaiting(tx: Transaction, queue: RunQueue, { flowId, key }: Slots, count: number): Promise<void> {
  if (count <= 0) return;
  const woken = await tx.$queryRaw<{ id: string; org_id: string }[]>`
    UPDATE executions SET awaits_slot = false WHERE id IN (
      SELECT id FROM executions WHERE flow_id = ${flowId}::uuid AND concurrency_key = ${key} AND status = 'queued' AND awaits_slot
      ORDER BY created_at, id LIMIT ${count} FOR UPDATE SKIP LOCKED)
    RETURNING id, org_id`;
  for (const run of woken) await queue.wake(tx, { id: run.id, orgId: run.org_id });
}

/**
 * After runs left their slots or the queue (ended, cancelled), in the transaction that made them
 * do so: wakes as many of the oldest runs waiting for a slot of each of their (flow, key) pairs as
 * there are slots free. The pairs' locks are taken in the order of the locks (not of the pairs).
 */
export async function freeSlots(tx: Transaction, queue: RunQueue, executionIds: string[]): Promise<void> {
  if (executionIds.length === 0) return;
  // In the order of their locks: pairs that hash alike share one (a tenant chooses its keys' values).
  const pairs = await tx.$queryRaw<Slots[]>`
    SELECT "flowId", key, "limit" FROM (
      SELECT DISTINCT flow_id AS "flowId", concurrency_key AS key, concurrency_limit AS "limit" FROM executions
      WHERE id = ANY(${executionIds}::uuid[]) AND concurrency_key IS NOT NULL AND concurrency_limit IS NOT NULL) pairs
    ORDER BY hashtext("flowId"::text || ' ' || key), "flowId", key`;
  for (const pair of pairs) {
    await lockSlots(tx, pair);
    await wakeFree(tx, queue, pair);
  }
}

async function wakeFree(tx: Transaction, queue: RunQueue, pair: Slots): Promise<number> {
  const [row] = await tx.$queryRaw<{ running: number }[]>`
    SELECT count(*)::int AS running FROM executions WHERE flow_id = ${pair.flowId}::uuid AND concurrency_key = ${pair.key} AND status = 'running'`;
  const count = pair.limit - row!.running;
  await wakeWaiting(tx, queue, pair, count);
  return Math.max(0, count);
}

/**
 * The safety net (a maintenance job): wakes runs left waiting for a slot while one is free, as
 * when the run that freed it was removed with its organization. Answers how many pairs it looked at.
 */
export async function wakeStranded(db: Database, queue: RunQueue): Promise<number> {
  const pairs = await db.$queryRaw<Slots[]>`
    SELECT w.flow_id AS "flowId", w.concurrency_key AS key, min(w.concurrency_limit)::int AS "limit" FROM executions w
    WHERE w.status = 'queued' AND w.awaits_slot AND w.concurrency_key IS NOT NULL
    GROUP BY w.flow_id, w.concurrency_key LIMIT 1000`;
  for (const pair of pairs) await db.$transaction((tx) => lockSlots(tx, pair).then(() => wakeFree(tx, queue, pair)));
  return pairs.length;
}
