// Taking a webhook's delivery: find the trigger by its URL's token, check the signature over the
// raw body, read the body, and store the delivery with its run, queued, in one transaction
// before anything is answered. A delivery id accepted before makes a duplicate, which starts
// nothing: the database keeps each delivery id accepted once per trigger, so two copies sent at
// the same moment cannot both start a run (the second waits for the first's commit, then sees it).
import { v7 as uuidv7 } from 'uuid';
import { ProblemError } from '../contract/problems.ts';
import { CredentialsError, type Keyring } from '../crypto/keyring.ts';
import { type Database, fromJsonText, toJsonText } from '../db/client.ts';
import type { RunOwner } from '../engine/runs/runs.ts';
import type { Trigger as TriggerRow } from '../generated/prisma/client.ts';
import { parseJson } from '../http/jsonBody.ts';
import type { WebhookSettings } from './settings.ts';
import { defaultDeliveryIdHeader, signatureHeaders, signatureProblem } from './signatures.ts';

/** What the sender sent, as it arrived. */
export interface WebhookRequest {
  token: string;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, unknown>;
}

/** A delivery taken: its run (a duplicate's is the first's), and how the trigger answers. */
export interface TakenDelivery {
  deliveryId: string;
  executionId: string;
  duplicate: boolean;
  respond: WebhookSettings['respond'];
}

/** A JSON value, as a body is read. */
type JsonValue = object | string | number | boolean | null;

/** How much of a rejected delivery's body is kept, as text: enough to see what came, bounded whoever sends it. */
export const REJECTED_BODY_BYTES = 4096;
/** The longest delivery id kept for de-duplication; a longer one is cut (ids are far shorter). */
const DELIVERY_ID_LENGTH = 200;

export async function takeDelivery(db: Database, runs: RunOwner, keyring: Keyring, request: WebhookRequest, now: Date): Promise<TakenDelivery> {
  const trigger = await db.trigger.findFirst({ where: { hookToken: request.token, enabled: true } });
  // A disabled trigger answers as one that never existed: the URL says nothing of what was there.
  if (!trigger) throw NO_WEBHOOK();
  const settings = fromJsonText<WebhookSettings>(trigger.settings);
  const headers = lowerCased(request.headers);
  const refuse = (problem: ProblemError) => reject(db, trigger, request, keptHeaders(headers, settings), problem);
  if (settings.signature) {
    const secret = openSecret(keyring, trigger);
    const problem = signatureProblem(settings.signature, secret, request.body, headers, now);
    if (problem) await refuse(new ProblemError('bad-signature', problem));
  }
  let body: JsonValue;
  try {
    body = bodyOf(request.body, headers['content-type']);
  } catch (error) {
    if (error instanceof ProblemError) await refuse(error);
    throw error;
  }
  const kept = keptHeaders(headers, settings);
  const idHeader = deliveryIdHeader(settings);
  const deliveryKey = idHeader === undefined ? undefined : headers[idHeader]?.slice(0, DELIVERY_ID_LENGTH) || undefined;
  const input = { body, query: request.query, headers: kept };
  const taken = await db
    .$transaction(async (tx) => {
      // Deleted or disabled since it was read: answered as one that never existed, and nothing kept.
      const [live] = await tx.$queryRaw<unknown[]>`SELECT 1 FROM triggers WHERE id = ${trigger.id}::uuid AND enabled FOR SHARE`;
      if (!live) throw NO_WEBHOOK();
      const deliveryId = uuidv7();
      const [claimed] = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO trigger_deliveries (id, org_id, trigger_id, outcome, dedupe_key, headers, query, body)
      VALUES (${deliveryId}::uuid, ${trigger.orgId}::uuid, ${trigger.id}::uuid, 'accepted', ${deliveryKey ?? null}, ${toJsonText(kept)}, ${toJsonText(request.query)}, ${toJsonText(body)})
      ON CONFLICT (trigger_id, dedupe_key) DO NOTHING RETURNING id`;
      if (!claimed) {
        // Accepted before (committed: the insert waited for it): this one is listed, and starts nothing.
        const [first] = await tx.$queryRaw<{ id: string; executionId: string }[]>`
        SELECT id, execution_id AS "executionId" FROM trigger_deliveries WHERE trigger_id = ${trigger.id}::uuid AND dedupe_key = ${deliveryKey!}`;
        // Its body is the first's (the sender said so): only its headers and query are kept.
        await tx.$executeRaw`
        INSERT INTO trigger_deliveries (id, org_id, trigger_id, outcome, duplicate_of, execution_id, headers, query)
        VALUES (${deliveryId}::uuid, ${trigger.orgId}::uuid, ${trigger.id}::uuid, 'duplicate', ${first!.id}::uuid, ${first!.executionId}::uuid,
          ${toJsonText(kept)}, ${toJsonText(request.query)})`;
        return { deliveryId: first!.id, executionId: first!.executionId, duplicate: true };
      }
      const run = await runs.start(tx, {
        orgId: trigger.orgId,
        flowId: trigger.flowId,
        version: trigger.version ?? undefined,
        input,
        trigger: { type: 'webhook', id: trigger.id, deliveryId },
      });
      await tx.$executeRaw`UPDATE trigger_deliveries SET execution_id = ${run.id}::uuid WHERE id = ${deliveryId}::uuid`;
      return { deliveryId, executionId: run.id, duplicate: false };
    })
    .catch(async (error: unknown) => {
      // A full queue is the sender's to retry (429, listed as rejected); nothing of the flow behind the address is told.
      if (error instanceof ProblemError && error.kind === 'too-many-requests') await refuse(error);
      if (error instanceof ProblemError && error.kind === 'not-found') throw NO_WEBHOOK();
      throw error;
    });
  return { ...taken, respond: settings.respond };
}

/** The trigger's secret; one this node cannot open (a key rotated away) is the service's fault, and the sender's to retry (503). */
function openSecret(keyring: Keyring, trigger: TriggerRow): string {
  try {
    return keyring.openSecret(trigger.secret!, { orgId: trigger.orgId, triggerId: trigger.id });
  } catch (error) {
    if (!(error instanceof CredentialsError)) throw error;
    throw new ProblemError('service-unavailable', 'This webhook cannot check signatures right now; retry later.', { retryAfterSeconds: 60 });
  }
}

const NO_WEBHOOK = () => new ProblemError('not-found', 'No webhook at this address.');

/** Headers kept with a delivery and given to its run: all but the signature and the sender's credentials. */
function keptHeaders(headers: Record<string, string>, settings: WebhookSettings): Record<string, string> {
  const dropped = new Set([...CREDENTIAL_HEADERS, ...(settings.signature ? signatureHeaders(settings.signature) : [])]);
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !dropped.has(name)));
}

/** Credentials a sender or a proxy on the way may send, which no member should read. */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie'];

/** The header naming a delivery's id: Standard Webhooks' own (signed), or the one the trigger names. */
function deliveryIdHeader(settings: WebhookSettings): string | undefined {
  if (settings.signature?.scheme === 'standard-webhooks') return defaultDeliveryIdHeader('standard-webhooks');
  return settings.dedupe?.header.toLowerCase();
}

/** Lists the delivery as rejected (with the reason and the start of its body), then refuses it. */
async function reject(db: Database, trigger: TriggerRow, request: WebhookRequest, headers: Record<string, string>, problem: ProblemError): Promise<never> {
  const start = request.body.subarray(0, REJECTED_BODY_BYTES).toString('utf8');
  await db.triggerDelivery.create({
    data: {
      id: uuidv7(),
      orgId: trigger.orgId,
      triggerId: trigger.id,
      outcome: 'rejected',
      reason: problem.message,
      headers: toJsonText(headers),
      query: toJsonText(request.query),
      body: toJsonText(start),
    },
  });
  throw problem;
}

/**
 * Lists a delivery refused for its size (413, before its body was read whole) as rejected, so
 * that it shows among the trigger's deliveries and reports `trigger.rejected`. Its body is not
 * kept, not even its start: it was never read. An address that names no enabled trigger keeps nothing.
 */
export async function rejectTooLarge(db: Database, request: Omit<WebhookRequest, 'body'>, reason: string): Promise<void> {
  const trigger = await db.trigger.findFirst({ where: { hookToken: request.token, enabled: true } });
  if (!trigger) return;
  const settings = fromJsonText<WebhookSettings>(trigger.settings);
  await db.triggerDelivery.create({
    data: {
      id: uuidv7(),
      orgId: trigger.orgId,
      triggerId: trigger.id,
      outcome: 'rejected',
      reason,
      headers: toJsonText(keptHeaders(lowerCased(request.headers), settings)),
      query: toJsonText(request.query),
    },
  });
}

/** Header names in lower case, each with one value (repeated ones joined as HTTP joins them). */
function lowerCased(headers: WebhookRequest['headers']): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => [name.toLowerCase(), Array.isArray(value) ? value.join(', ') : value!]),
  );
}

/** The body as the run sees it: JSON or a form parsed, anything else as text; nothing sent is null. */
export function bodyOf(bytes: Buffer, contentType: string | undefined): JsonValue {
  if (bytes.length === 0) return null;
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType === 'application/json' || mediaType?.endsWith('+json')) return parseJson(bytes) as JsonValue;
  if (mediaType === 'application/x-www-form-urlencoded') return formOf(bytes.toString('utf8'));
  return bytes.toString('utf8');
}

/** The most fields a form body may have; more is refused (400). */
export const FORM_FIELDS = 1000;

// A field sent more than once becomes a list of its values, in order. Built in a Map: a field
// named __proto__ stays a field.
function formOf(text: string): Record<string, string | string[]> {
  const form = new Map<string, string | string[]>();
  let fields = 0;
  for (const [name, value] of new URLSearchParams(text)) {
    if (++fields > FORM_FIELDS) throw new ProblemError('malformed-request', `The form has more than ${FORM_FIELDS} fields.`);
    const before = form.get(name);
    if (before === undefined) form.set(name, value);
    else if (Array.isArray(before)) before.push(value);
    else form.set(name, [before, value]);
  }
  return Object.fromEntries(form);
}
