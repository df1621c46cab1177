// Event subscriptions: the URLs an organization's events are sent to, signed as Standard Webhooks
// has it. Each event is stored as a delivery by the database itself, in the transaction of the
// change it reports (prisma/migrations/20261210100000_events); the sender sends them. Owners
// manage subscriptions: a URL that receives every run's summary is the organization's to give.
import { v7 as uuidv7 } from 'uuid';
import { assertOwner, type Role } from '../access/tenancy.ts';
import type { Handler } from '../contract/handlers.ts';
import { conflict, notFound, unprocessable } from '../contract/problems.ts';
import type { Transaction } from '../db/client.ts';
import type { components } from '../generated/openapi.ts';
import type { Prisma, Subscription as SubscriptionRow } from '../generated/prisma/client.ts';
import { newSecret } from '../triggers/signatures.ts';
import { pageArgs, toPage } from './pagination.ts';

type Subscription = components['schemas']['Subscription'];
type SubscriptionUpdate = components['schemas']['SubscriptionUpdate'];

/** The most subscriptions an organization may have: each event is stored, and sent, once for each. */
export const SUBSCRIPTIONS_PER_ORGANIZATION = 20;
/** How long the secret a rotation replaces keeps signing beside the new one. */
export const SECRET_OVERLAP_HOURS = 24;

const MANAGE = 'manage event subscriptions';

/** Refuses a member who is not an owner (403), for reads as for writes. */
export function assertManager(role: Role): void {
  assertOwner({ role }, MANAGE);
}

/** The subscription as the API shows it; `secret` only in the answer of the create or rotation that made it. */
export function toSubscription(row: SubscriptionRow, secret?: string, now = new Date()): Subscription {
  const overlapping = row.previousSecret !== null && row.previousSecretUntil !== null && row.previousSecretUntil > now;
  return {
    id: row.id,
    orgId: row.orgId,
    url: row.url,
    description: row.description,
    events: row.events as Subscription['events'],
    flowId: row.flowId,
    enabled: row.enabled,
    disabledReason: row.disabledReason,
    previousSecretExpiresAt: overlapping ? row.previousSecretUntil!.toISOString() : null,
    ...(secret !== undefined && { secret }),
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** A created subscription as a replay of its creation answers it: its secret was shown once, and is not kept. */
export function withoutSecret(answer: unknown): unknown {
  const { secret: _shownOnce, ...subscription } = answer as Subscription;
  return subscription;
}

export const replayRefused = (id: string) =>
  `The first request with this Idempotency-Key rotated the secret of subscription ${id}, which was shown once and is not kept. ` +
  `If that answer was lost, rotate again with a new Idempotency-Key.`;

export const listSubscriptions: Handler<'listSubscriptions'> = async ({ query }, { db, reader }) => {
  assertManager(await reader.role());
  const rows = await db.subscription.findMany(pageArgs(query, { orgId: reader.tenant.orgId }));
  return toPage(rows, query, (row) => toSubscription(row));
};

export const getSubscription: Handler<'getSubscription'> = async ({ params }, { db, reader }) => {
  assertManager(await reader.role());
  const row = await db.subscription.findFirst({ where: { id: params.id, orgId: reader.tenant.orgId } });
  if (!row) throw notFound('subscription', params.id);
  return toSubscription(row);
};

/**
 * Refuses a subscription more than the organization may have (409). Creates of one organization
 * take turns (a lock held until the transaction ends), so that concurrent ones cannot pass the bound.
 */
async function checkRoom(tx: Transaction, orgId: string): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`subscriptions/${orgId}`}, 0))`;
  const count = await tx.subscription.count({ where: { orgId } });
  if (count >= SUBSCRIPTIONS_PER_ORGANIZATION) {
    throw conflict(`This organization has ${count} subscriptions, the most it may have (${SUBSCRIPTIONS_PER_ORGANIZATION}); delete one first.`);
  }
}

/**
 * Refuses a flow that is not live in the organization (422), in the same words for one of another
 * organization. The flow stays locked until the transaction ends.
 */
async function checkFlow(tx: Transaction, orgId: string, flowId: string): Promise<void> {
  const [flow] = await tx.$queryRaw<unknown[]>`
    SELECT 1 FROM flows WHERE org_id = ${orgId}::uuid AND id = ${flowId}::uuid AND deleted_at IS NULL FOR SHARE`;
  if (!flow) throw unprocessable('/flowId', `names no flow of this organization: ${flowId}`);
}

/** The URL as stored: one the contract's pattern let through must also be one URL reads, with a port that exists. */
function checkedUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw unprocessable('/url', 'is not a URL');
  }
  if (parsed.username !== '' || parsed.password !== '') throw unprocessable('/url', 'must not hold credentials');
  return url;
}

export const createSubscription: Handler<'createSubscription'> = async ({ body }, { db, tenant, keyring }) => {
  assertManager(tenant.role);
  const { orgId } = tenant;
  const url = checkedUrl(body.url);
  const id = uuidv7();
  const secret = newSecret('standard-webhooks');
  const row = await db.$transaction(async (tx) => {
    if (body.flowId) await checkFlow(tx, orgId, body.flowId);
    await checkRoom(tx, orgId);
    return tx.subscription.create({
      data: {
        id,
        orgId,
        url,
        description: body.description ?? null,
        events: body.events,
        flowId: body.flowId ?? null,
        enabled: body.enabled ?? true,
        secret: keyring.sealSubscriptionSecret(secret, { orgId, subscriptionId: id }),
      },
    });
  });
  return toSubscription(row, secret);
};

export const updateSubscription: Handler<'updateSubscription'> = async ({ params, body }, { db, tenant }) => {
  assertManager(tenant.role);
  const { orgId } = tenant;
  const row = await db.$transaction(async (tx) => {
    const [current] = await tx.$queryRaw<{ enabled: boolean }[]>`
      SELECT enabled FROM subscriptions WHERE org_id = ${orgId}::uuid AND id = ${params.id}::uuid FOR UPDATE`;
    if (!current) throw notFound('subscription', params.id);
    if (body.flowId) await checkFlow(tx, orgId, body.flowId);
    return tx.subscription.update({ where: { id: params.id }, data: changesOf(body, current.enabled) });
  });
  return toSubscription(row);
};

/** What an update writes; enabling a subscription the platform disabled starts it afresh. */
function changesOf(body: SubscriptionUpdate, wasEnabled: boolean): Prisma.SubscriptionUncheckedUpdateInput {
  const { url, description, events, flowId, enabled } = body;
  const enabledAgain = enabled === true && !wasEnabled;
  return {
    url: url === undefined ? undefined : checkedUrl(url),
    description,
    events,
    flowId,
    enabled,
    ...(enabledAgain && { disabledReason: null, failingSince: null }),
  };
}

export const deleteSubscription: Handler<'deleteSubscription'> = async ({ params }, { db, tenant }) => {
  assertManager(tenant.role);
  // Its deliveries cascade: nothing pending is sent after this.
  const { count } = await db.subscription.deleteMany({ where: { orgId: tenant.orgId, id: params.id } });
  if (count === 0) throw notFound('subscription', params.id);
};

/**
 * A new secret; the current one becomes the previous one, which signs too until the overlap ends
 * (a rotation during an overlap drops the secret before). Sealed values move as they are: both
 * are bound to the same subscription. The overlap is counted on the database's clock, as the
 * sender's is.
 */
export const rotateSubscriptionSecret: Handler<'rotateSubscriptionSecret'> = async ({ params }, { db, tenant, keyring }) => {
  assertManager(tenant.role);
  const { orgId } = tenant;
  const secret = newSecret('standard-webhooks');
  const sealed = keyring.sealSubscriptionSecret(secret, { orgId, subscriptionId: params.id });
  const row = await db.$transaction(async (tx) => {
    const rotated = await tx.$executeRaw`
      UPDATE subscriptions SET previous_secret = secret, secret = ${sealed},
        previous_secret_until = now() + ${`${SECRET_OVERLAP_HOURS} hours`}::interval, updated_at = now()
      WHERE org_id = ${orgId}::uuid AND id = ${params.id}::uuid`;
    if (rotated === 0) throw notFound('subscription', params.id);
    return tx.subscription.findUniqueOrThrow({ where: { id: params.id } });
  });
  return toSubscription(row, secret);
};
