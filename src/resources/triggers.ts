// Triggers: webhooks and schedules that start runs of a flow. This module answers the API (the
// trigger itself, its deliveries, a replay); taking a webhook's request is src/triggers/intake.ts,
// and firing a schedule's slots src/triggers/schedules.ts.
import { randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { Answer, type Handler } from '../contract/handlers.ts';
import { conflict, notFound, unprocessable } from '../contract/problems.ts';
import type { Keyring } from '../crypto/keyring.ts';
import { fromJsonText, type Transaction, toJsonText } from '../db/client.ts';
import { announceSchedules } from '../engine/jobs/schedules.ts';
import type { Trigger as RunTrigger } from '../engine/runs/start.ts';
import type { components } from '../generated/openapi.ts';
import { type TriggerDelivery as DeliveryRow, Prisma, type Trigger as TriggerRow } from '../generated/prisma/client.ts';
import { idempotently } from '../http/rules/idempotency.ts';
import { type ScheduleSettings, scheduleSettings, settingsFor, type WebhookSettings, webhookSettings } from '../triggers/settings.ts';
import { nextSlot } from '../triggers/slots.ts';
import { boundedPageSql, pageArgs, toBoundedPage, toPage } from './pagination.ts';

type Trigger = components['schemas']['Trigger'];
type TriggerDelivery = components['schemas']['TriggerDelivery'];
type TriggerUpdate = components['schemas']['TriggerUpdate'];

/** The trigger as the API shows it; `secret` only in the answer of the write that made or set it. */
export function toTrigger(row: TriggerRow, origin: string, secret?: string): Trigger {
  const settings = fromJsonText<WebhookSettings & ScheduleSettings>(row.settings);
  const webhook =
    row.type === 'webhook'
      ? {
          url: `${origin}/hooks/${row.hookToken}`,
          token: row.hookToken!,
          signature: settings.signature && {
            scheme: settings.signature.scheme,
            header: settings.signature.header ?? null,
            prefix: settings.signature.prefix ?? null,
            encoding: settings.signature.encoding ?? null,
            ...(secret !== undefined && { secret }),
          },
          respond: settings.respond,
          dedupe: settings.dedupe,
        }
      : null;
  const schedule =
    row.type === 'schedule'
      ? {
          cron: settings.cron,
          timezone: settings.timezone,
          input: settings.input,
          catchUp: settings.catchUp,
          overlap: settings.overlap,
          nextFireAt: row.nextFireAt?.toISOString() ?? null,
          lastFireAt: row.lastFireAt?.toISOString() ?? null,
        }
      : null;
  return {
    id: row.id,
    orgId: row.orgId,
    flowId: row.flowId,
    name: row.name,
    type: row.type,
    enabled: row.enabled,
    version: row.version,
    webhook,
    schedule,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** A created trigger as a replay of its creation answers it: its secret was shown once, and is not kept. */
export function withoutSecret(answer: unknown): unknown {
  const trigger = answer as Trigger;
  if (!trigger.webhook?.signature) return trigger;
  const { secret: _shownOnce, ...signature } = trigger.webhook.signature;
  return { ...trigger, webhook: { ...trigger.webhook, signature } };
}

export const listTriggers: Handler<'listTriggers'> = async ({ query }, { db, reader, origin }) => {
  const where = { ...reader.scope, ...(query.flowId && { flowId: query.flowId }), ...(query.type && { type: query.type }) };
  const rows = await reader.list(await db.trigger.findMany(pageArgs(query, where)));
  return toPage(rows, query, (row) => toTrigger(row, origin));
};

export const getTrigger: Handler<'getTrigger'> = async ({ params }, { db, reader, origin }) => {
  return toTrigger(await reader.one(await db.trigger.findFirst({ where: { id: params.id, ...reader.scope } }), () => notFound('trigger', params.id)), origin);
};

/** The most triggers an organization may have: each is work for every worker's ticker or intake. */
export const TRIGGERS_PER_ORGANIZATION = 100;

/** Refuses a trigger more than the organization may have (409); concurrent creates may pass it by as many as are in flight. */
async function checkRoom(tx: Transaction, orgId: string): Promise<void> {
  const count = await tx.trigger.count({ where: { orgId } });
  if (count >= TRIGGERS_PER_ORGANIZATION) {
    throw conflict(`This organization has ${count} triggers, the most it may have (${TRIGGERS_PER_ORGANIZATION}); delete one first.`);
  }
}

/** The secret part of a webhook's URL: 256 random bits. */
function hookToken(): string {
  return `wh_${randomBytes(32).toString('base64url')}`;
}

/** The database's clock: every node fires and plans slots by one clock. */
async function databaseNow(tx: Transaction): Promise<Date> {
  const [{ now }] = (await tx.$queryRaw<{ now: Date }[]>`SELECT now()`) as [{ now: Date }];
  return now;
}

/**
 * Refuses a flow that is not live in the organization, or a version it does not have (422). The
 * flow stays locked until the transaction ends: a delete of the flow waits, and then deletes the
 * trigger too, or goes first, and the trigger is refused.
 */
async function checkFlow(tx: Transaction, orgId: string, flowId: string, version: number | null): Promise<void> {
  const [flow] = await tx.$queryRaw<{ version: number }[]>`
    SELECT version FROM flows WHERE org_id = ${orgId}::uuid AND id = ${flowId}::uuid AND deleted_at IS NULL FOR SHARE`;
  if (!flow) throw unprocessable('/flowId', `names no flow of this organization: ${flowId}`);
  if (version !== null && version > flow.version)
    throw unprocessable('/version', `flow ${flowId} has no version ${version}; its current version is ${flow.version}`);
}

export const createTrigger: Handler<'createTrigger'> = async ({ body }, { db, tenant, keyring, origin }) => {
  const { orgId } = tenant;
  const { flowId, name, type, enabled = true, version = null } = body;
  const chosen = settingsFor(type, body);
  const id = uuidv7();
  const webhook = chosen.field === 'webhook' ? webhookSettings(chosen.value) : undefined;
  const schedule = chosen.field === 'schedule' ? scheduleSettings(chosen.value) : undefined;
  const row = await db.$transaction(async (tx) => {
    await checkFlow(tx, orgId, flowId, version);
    await checkRoom(tx, orgId);
    const nextFireAt = schedule && enabled ? nextSlot(schedule, await databaseNow(tx)) : null;
    const created = await tx.trigger.create({
      data: {
        id,
        orgId,
        flowId,
        name,
        type,
        enabled,
        version,
        settings: toJsonText(webhook?.settings ?? schedule!),
        hookToken: webhook ? hookToken() : null,
        secret: webhook?.secret === undefined ? null : keyring.sealSecret(webhook.secret, { orgId, triggerId: id }),
        nextFireAt,
      },
    });
    if (nextFireAt) await announceSchedules(tx);
    return created;
  });
  return toTrigger(row, origin, webhook?.secret);
};

export const updateTrigger: Handler<'updateTrigger'> = async ({ params, body }, { db, tenant, keyring, origin }) => {
  const { orgId } = tenant;
  let secret: string | undefined;
  const row = await db.$transaction(async (tx) => {
    const [current] = await tx.$queryRaw<
      TriggerRow[]
    >`SELECT ${TRIGGER_COLUMNS} FROM triggers WHERE org_id = ${orgId}::uuid AND id = ${params.id}::uuid FOR UPDATE`;
    if (!current) throw notFound('trigger', params.id);
    const changes = await changesOf(tx, current, body, keyring);
    secret = changes.secret;
    const updated = await tx.trigger.update({ where: { id: current.id }, data: changes.data });
    if (changes.data.nextFireAt) await announceSchedules(tx);
    // Slots waiting for earlier runs wait no more for a trigger that is off.
    if (!updated.enabled) {
      await tx.$executeRaw`UPDATE trigger_deliveries SET outcome = 'skipped', reason = 'the trigger was disabled' WHERE trigger_id = ${current.id}::uuid AND outcome = 'queued'`;
    }
    return updated;
  });
  return toTrigger(row, origin, secret);
};

// A trigger's columns under the names of Prisma's model, so that raw rows read as its rows.
const TRIGGER_COLUMNS = Prisma.sql`id, org_id AS "orgId", flow_id AS "flowId", name, type::text AS type, enabled, version, settings, hook_token AS "hookToken",
  secret, next_fire_at AS "nextFireAt", last_fire_at AS "lastFireAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

/** What an update writes: its fields, the settings with what the answer alone shows dropped, and the next slot. */
async function changesOf(
  tx: Transaction,
  current: TriggerRow,
  body: TriggerUpdate,
  keyring: Keyring,
): Promise<{ data: Prisma.TriggerUpdateInput; secret: string | undefined }> {
  const { name, enabled, version } = body;
  const stored = fromJsonText<WebhookSettings & ScheduleSettings>(current.settings);
  if (version !== undefined) await checkFlow(tx, current.orgId, current.flowId, version);
  const chosen = body.webhook === undefined && body.schedule === undefined ? undefined : settingsFor(current.type, body);
  const data: Prisma.TriggerUpdateInput = { name, enabled, version };
  let secret: string | undefined;
  let schedule: ScheduleSettings | undefined = current.type === 'schedule' ? stored : undefined;
  if (chosen?.field === 'webhook') {
    // A merge patch brings what the answer shows (url, token) back in: only the settings are taken.
    const { signature, respond, dedupe } = chosen.value;
    const made = webhookSettings({ signature, respond, dedupe }, stored);
    data.settings = toJsonText(made.settings);
    if (made.settings.signature === null) data.secret = null;
    else if (made.secret !== undefined) data.secret = keyring.sealSecret(made.secret, { orgId: current.orgId, triggerId: current.id });
    secret = made.secret;
  }
  if (chosen?.field === 'schedule') {
    const { cron, timezone, input, catchUp, overlap } = chosen.value;
    schedule = scheduleSettings({ cron, timezone, input, catchUp, overlap });
    data.settings = toJsonText(schedule);
  }
  if (schedule) {
    const nowEnabled = enabled ?? current.enabled;
    const replanned = !current.enabled || schedule.cron !== stored.cron || schedule.timezone !== stored.timezone;
    if (!nowEnabled) data.nextFireAt = null;
    else if (replanned) data.nextFireAt = nextSlot(schedule, await databaseNow(tx));
  }
  return { data, secret };
}

export const deleteTrigger: Handler<'deleteTrigger'> = async ({ params }, { db, tenant }) => {
  const { count } = await db.trigger.deleteMany({ where: { orgId: tenant.orgId, id: params.id } });
  if (count === 0) throw notFound('trigger', params.id);
};

function toDelivery(row: DeliveryRow): TriggerDelivery {
  return {
    id: row.id,
    triggerId: row.triggerId,
    outcome: row.outcome,
    reason: row.reason,
    executionId: row.executionId,
    duplicateOf: row.duplicateOf,
    receivedAt: row.createdAt.toISOString(),
    scheduledAt: row.scheduledAt?.toISOString() ?? null,
    firedAt: row.firedAt?.toISOString() ?? null,
    headers: row.headers === null ? null : fromJsonText(row.headers),
    query: row.query === null ? null : fromJsonText(row.query),
    body: row.body === null ? null : fromJsonText(row.body),
  };
}

const DELIVERY_COLUMNS = Prisma.sql`id, org_id AS "orgId", trigger_id AS "triggerId", outcome::text AS outcome, reason, execution_id AS "executionId",
  dedupe_key AS "dedupeKey", duplicate_of AS "duplicateOf", headers, query, body, scheduled_at AS "scheduledAt", fired_at AS "firedAt", created_at AS "createdAt"`;

export const listTriggerDeliveries: Handler<'listTriggerDeliveries'> = async ({ params, query }, { db, reader }) => {
  const trigger = await reader.one(await db.trigger.findFirst({ where: { id: params.id, ...reader.scope }, select: { id: true } }), () =>
    notFound('trigger', params.id),
  );
  const from = Prisma.sql`FROM trigger_deliveries WHERE org_id = ${reader.tenant.orgId}::uuid AND trigger_id = ${trigger.id}::uuid`;
  const page = boundedPageSql(query, { columns: DELIVERY_COLUMNS, from, documents: ['headers', 'query', 'body'] });
  return toBoundedPage(await db.$queryRaw<(DeliveryRow & { pageFollowed: boolean })[]>(page), toDelivery);
};

export const replayTriggerDelivery: Handler<'replayTriggerDelivery'> = async ({ params, headers }, { db, keyring, runs, tenant }) => {
  const { orgId, userId } = tenant;
  const replay = async (tx: Transaction) => {
    const delivery = await tx.triggerDelivery.findFirst({ where: { orgId, triggerId: params.id, id: params.deliveryId }, include: { trigger: true } });
    if (!delivery) throw notFound('delivery', params.deliveryId);
    if (delivery.outcome === 'rejected')
      throw conflict(`Delivery ${delivery.id} was rejected (${delivery.reason}): its sender was not verified, so it cannot be replayed.`);
    const { trigger } = delivery;
    const settings = fromJsonText<ScheduleSettings>(trigger.settings);
    const started: RunTrigger =
      trigger.type === 'webhook'
        ? { type: 'webhook', id: trigger.id, deliveryId: delivery.id, replay: true, userId }
        : { type: 'schedule', id: trigger.id, deliveryId: delivery.id, scheduledAt: delivery.scheduledAt!.toISOString(), replay: true, userId };
    const input =
      trigger.type === 'webhook'
        ? { body: fromJsonText(delivery.body!), query: fromJsonText(delivery.query!), headers: fromJsonText(delivery.headers!) }
        : settings.input;
    const run = await runs.start(tx, { orgId, flowId: trigger.flowId, version: trigger.version ?? undefined, input, trigger: started });
    return { status: 202, body: { deliveryId: delivery.id, executionId: run.id }, headers: {} };
  };
  const key = headers['idempotency-key'];
  const request = { userId, params };
  const answer =
    key === undefined
      ? { ...(await db.$transaction(replay)), replayed: false }
      : await idempotently({ db, keyring }, { orgId, key, operation: 'replayTriggerDelivery', request }, replay);
  if (!answer.replayed) runs.started(answer.body.executionId);
  return new Answer(202, answer.body, answer.replayed ? { 'idempotent-replayed': 'true' } : {});
};
