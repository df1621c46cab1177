// A subscription's deliveries: each event stored for it, with how its sending went, and sending
// one again. Their ids are the `webhook-id` the receiver sees (random, made by the database), so
// lists are ordered by the order the events were stored in (`seq`), newest first.
import type { Handler } from '../contract/handlers.ts';
import { conflict, notFound } from '../contract/problems.ts';
import { type Database, fromJsonText } from '../db/client.ts';
import type { components } from '../generated/openapi.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { decodeSequenceCursor, encodeSequenceCursor, PAGE_BYTES } from './pagination.ts';
import { assertManager } from './subscriptions.ts';

type EventDelivery = components['schemas']['EventDelivery'];

/** The most of a delivery's last error shown (the sender bounds what it writes; this bounds what is answered). */
export const LAST_ERROR_CHARACTERS = 1000;
const DEFAULT_LIMIT = 20;

interface DeliveryRow {
  id: string;
  seq: bigint;
  event: string;
  executionId: string | null;
  status: EventDelivery['status'];
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  nextAttemptAt: Date | null;
  createdAt: Date;
  deliveredAt: Date | null;
  payload: string;
}

const COLUMNS = Prisma.sql`id, seq, event, execution_id AS "executionId", status::text AS status, attempts, last_status AS "lastStatus",
  last_error AS "lastError", next_attempt_at AS "nextAttemptAt", created_at AS "createdAt", delivered_at AS "deliveredAt", payload`;

function toDelivery(row: DeliveryRow): EventDelivery {
  return {
    id: row.id,
    event: row.event as EventDelivery['event'],
    executionId: row.executionId,
    status: row.status,
    attempts: row.attempts,
    lastStatus: row.lastStatus,
    lastError: row.lastError === null ? null : [...row.lastError].slice(0, LAST_ERROR_CHARACTERS).join(''),
    nextAttemptAt: row.status === 'pending' ? (row.nextAttemptAt?.toISOString() ?? null) : null,
    createdAt: row.createdAt.toISOString(),
    deliveredAt: row.deliveredAt?.toISOString() ?? null,
    payload: fromJsonText(row.payload),
  };
}

/** The subscription's id when it is one of the organization's; 404 otherwise, alike for another organization's. */
async function subscriptionOf(db: Database, orgId: string, id: string): Promise<string> {
  const row = await db.subscription.findFirst({ where: { orgId, id }, select: { id: true } });
  if (!row) throw notFound('subscription', id);
  return row.id;
}

/**
 * One page, newest first, bounded in bytes as other lists are (src/resources/pagination.ts): the
 * running sum of the payloads' sizes stops it in the database.
 */
export const listSubscriptionDeliveries: Handler<'listSubscriptionDeliveries'> = async ({ params, query }, { db, reader }) => {
  assertManager(await reader.role());
  const { orgId } = reader.tenant;
  const subscriptionId = await subscriptionOf(db, orgId, params.id);
  const limit = query.limit ?? DEFAULT_LIMIT;
  const status = query.status === undefined ? Prisma.empty : Prisma.sql`AND status = ${query.status}::event_delivery_state`;
  const after = query.cursor === undefined ? Prisma.empty : Prisma.sql`AND seq < ${decodeSequenceCursor(query.cursor)}::numeric`;
  const rows = await db.$queryRaw<(DeliveryRow & { pageFollowed: boolean })[]>`
    SELECT * FROM (
      SELECT ${COLUMNS}, sum(octet_length(payload)) OVER page AS "pageBytes", row_number() OVER page AS "pagePosition",
        lead(seq) OVER page IS NOT NULL AS "pageFollowed"
      FROM event_deliveries
      WHERE org_id = ${orgId}::uuid AND subscription_id = ${subscriptionId}::uuid ${status} ${after}
      WINDOW page AS (ORDER BY seq DESC ROWS UNBOUNDED PRECEDING)
      ORDER BY seq DESC LIMIT ${limit + 1}
    ) listed
    WHERE "pagePosition" <= ${limit} AND ("pagePosition" = 1 OR "pageBytes" <= ${PAGE_BYTES})
    ORDER BY seq DESC`;
  const last = rows.at(-1);
  return { items: rows.map(toDelivery), nextCursor: last?.pageFollowed ? encodeSequenceCursor(last.seq) : null };
};

/**
 * Sends a delivery again: pending and due now, with its id and body unchanged. The sender is told
 * as the database's triggers tell it of a new delivery.
 */
export const redeliverSubscriptionDelivery: Handler<'redeliverSubscriptionDelivery'> = async ({ params }, { db, tenant }) => {
  assertManager(tenant.role);
  const { orgId } = tenant;
  return db.$transaction(async (tx) => {
    const [subscription] = await tx.$queryRaw<{ enabled: boolean }[]>`
      SELECT enabled FROM subscriptions WHERE org_id = ${orgId}::uuid AND id = ${params.id}::uuid FOR SHARE`;
    if (!subscription) throw notFound('subscription', params.id);
    const [row] = await tx.$queryRaw<DeliveryRow[]>`
      UPDATE event_deliveries SET status = 'pending', next_attempt_at = now(), delivered_at = NULL
      WHERE org_id = ${orgId}::uuid AND subscription_id = ${params.id}::uuid AND id = ${params.deliveryId}::uuid
      RETURNING ${COLUMNS}`;
    if (!row) throw notFound('delivery', params.deliveryId);
    if (!subscription.enabled) throw conflict(`Subscription ${params.id} is disabled: enable it first, then send its deliveries again.`);
    await tx.$executeRaw`SELECT pg_notify('tolstoy_events', ${orgId})`;
    return toDelivery(row);
  });
};
