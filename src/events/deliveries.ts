// The statements of sending events: claiming the deliveries due, and settling an attempt. Each is
// one statement, so the sender holds a connection only while one runs.
//
// A claim counts the attempt and leases the delivery (next_attempt_at moves past the attempt's
// timeout) in the statement that takes it, so a worker that dies mid-send leaves it to any worker
// once the lease ends, with the same id. A delivery is due when it is pending, its time has come,
// its subscription is enabled, and no earlier event of the same execution for the same
// subscription is still pending: per execution, events arrive in the order they happened (an
// earlier one that failed for good holds the later ones no longer).
import type { Database } from '../db/client.ts';
import type { Verdict } from './retries.ts';

export interface Claimed {
  id: string;
  orgId: string;
  subscriptionId: string;
  payload: string;
  /** This attempt's number, 1 for the first. */
  attempts: number;
  url: string;
  secret: string;
  /** The previous secret while a rotation's overlap lasts. */
  previousSecret: string | null;
}

export interface Claim {
  /** Deliveries to take at most. */
  limit: number;
  /** At most this many of one organization in flight in this process, counting `sending`. */
  orgLimit: number;
  /** This process's sends in flight, by organization. */
  sending: Map<string, number>;
  leaseMs: number;
}

/**
 * Takes due deliveries, the organizations' turns interleaved (each one's oldest first). Each enabled
 * subscription of an organization with room is asked for at most that room of its oldest, by its
 * index: a pile of due deliveries (a receiver that hangs) costs a claim no more than a few rows.
 */
export async function claimDue(db: Database, { limit, orgLimit, sending, leaseMs }: Claim): Promise<Claimed[]> {
  const orgs = [...sending.keys()];
  const counts = orgs.map((org) => sending.get(org)!);
  return db.$queryRaw<Claimed[]>`
    WITH room AS (
      SELECT s.id, ${orgLimit} - COALESCE(busy.n, 0) AS room
      FROM subscriptions s LEFT JOIN unnest(${orgs}::uuid[], ${counts}::int[]) AS busy(org_id, n) ON busy.org_id = s.org_id
      WHERE s.enabled AND ${orgLimit} - COALESCE(busy.n, 0) > 0
    ), candidates AS (
      SELECT c.*, room.room FROM room CROSS JOIN LATERAL (
        SELECT d.id, d.org_id, d.next_attempt_at, d.seq FROM event_deliveries d
        WHERE d.subscription_id = room.id AND d.status = 'pending' AND d.next_attempt_at <= now()
          -- The first pending of its execution (looked up per row, by index, for as few rows as are taken).
          AND (d.execution_id IS NULL OR d.seq = (SELECT min(e.seq) FROM event_deliveries e
            WHERE e.subscription_id = d.subscription_id AND e.execution_id = d.execution_id AND e.status = 'pending'))
        ORDER BY d.next_attempt_at, d.seq LIMIT room.room) c
    ), due AS (
      SELECT id, next_attempt_at, room, row_number() OVER (PARTITION BY org_id ORDER BY next_attempt_at, seq) AS place FROM candidates
    ), chosen AS (
      -- By id: the few chosen are looked up, not joined with every delivery.
      SELECT d.id FROM event_deliveries d
      WHERE d.id = ANY(ARRAY(SELECT id FROM due WHERE place <= room ORDER BY place, next_attempt_at LIMIT ${limit}))
        -- Checked again on the row as locked: another worker may have claimed it since this statement began.
        AND d.status = 'pending' AND d.next_attempt_at <= now()
      FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE event_deliveries d SET attempts = d.attempts + 1, next_attempt_at = now() + ${leaseMs} * interval '1 millisecond'
    FROM chosen, subscriptions s WHERE d.id = chosen.id AND s.id = d.subscription_id
    RETURNING d.id, d.org_id AS "orgId", d.subscription_id AS "subscriptionId", d.payload, d.attempts, s.url, s.secret,
      CASE WHEN s.previous_secret_until > now() THEN s.previous_secret END AS "previousSecret"`;
}

/** How long until the next delivery falls due (one waiting for its lease or its retry), if one does within `ms`. */
export async function untilNextDue(db: Database, ms: number): Promise<number> {
  const [next] = await db.$queryRaw<{ ms: number | null }[]>`
    SELECT (EXTRACT(EPOCH FROM min(d.next_attempt_at) - now()) * 1000)::float8 AS ms
    FROM event_deliveries d JOIN subscriptions s ON s.id = d.subscription_id AND s.enabled
    WHERE d.status = 'pending' AND d.next_attempt_at > now() AND d.next_attempt_at <= now() + ${ms} * interval '1 millisecond'`;
  return Math.max(0, Math.ceil(next?.ms ?? ms));
}

export interface Settlement {
  verdict: Verdict;
  /** The answer's status, when there was one. */
  status: number | null;
  /** What went wrong, bounded; null when delivered. */
  error: string | null;
  /** What the attempt got, in words, for a disabled subscription's reason. */
  answered: string;
  failingLimitMs: number;
}

/**
 * Records an attempt's outcome, unless the delivery was settled or claimed again since (a lease
 * that ran out). A delivery clears its subscription's failing streak; a failed attempt starts it,
 * and disables the subscription once it has lasted `failingLimitMs`. The deliveries of a disabled
 * subscription stay pending, and go again when it is enabled.
 */
export async function settle(db: Database, claimed: Pick<Claimed, 'id' | 'attempts'>, settlement: Settlement): Promise<void> {
  const { verdict, status, error, answered, failingLimitMs } = settlement;
  const state = verdict.outcome === 'retry' ? 'pending' : verdict.outcome;
  const waitMs = verdict.outcome === 'retry' ? verdict.waitMs : null;
  await db.$executeRaw`
    WITH settled AS (
      UPDATE event_deliveries SET status = ${state}::event_delivery_state, last_status = ${status}::int, last_error = ${error}::text,
        next_attempt_at = now() + ${waitMs}::int * interval '1 millisecond',
        delivered_at = CASE WHEN ${state}::text = 'delivered' THEN now() END
      WHERE id = ${claimed.id}::uuid AND status = 'pending' AND attempts = ${claimed.attempts}::int
      RETURNING subscription_id
    ), judged AS (
      SELECT s.id, s.enabled AND ${state}::text <> 'delivered'
        AND now() - COALESCE(s.failing_since, now()) >= ${failingLimitMs}::bigint * interval '1 millisecond' AS disabling
      FROM subscriptions s JOIN settled ON s.id = settled.subscription_id
    )
    UPDATE subscriptions s SET
      failing_since = CASE WHEN ${state}::text = 'delivered' THEN NULL ELSE COALESCE(s.failing_since, now()) END,
      enabled = s.enabled AND NOT judged.disabling,
      disabled_reason = CASE WHEN judged.disabling
        THEN format('Disabled at %s: every delivery since %s failed; the last answered %s.', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), to_char(COALESCE(s.failing_since, now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), ${answered}::text)
        ELSE s.disabled_reason END,
      updated_at = CASE WHEN judged.disabling THEN now() ELSE s.updated_at END
    FROM judged WHERE s.id = judged.id AND (${state}::text <> 'delivered' OR s.failing_since IS NOT NULL)`;
}
