// Taking a webhook's delivery: find the trigger by its URL's token, check the signature over the
// raw body, read the body, and store the delivery with its run, queued, in one transaction
// before anything is answered. A delivery id accepted before makes a duplicate, which starts
// nothing: the database keeps each delivery id accepted once per trigger, so two copies sent at
// the same moment cannot both start a run (the second waits for the first's commit, then sees it).
import { v7 as uuidv7 } from 'uuid';
import { ProblemError } from '../contract/problems.ts';
import type { Keyring } from '../crypto/keyring.ts';
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
  if (!trigger) throw new ProblemError('not-found', 'No webhook at this address.');
  const settings = fromJsonText<WebhookSettings>(trigger.settings);
  const headers = lowerCased(request.headers);
  if (settings.signature) {
    const secret = keyring.openSecret(trigger.secret!, { orgId: trigger.orgId, triggerId: trigger.id });
    const problem = signatureProblem(settings.signature, secret, request.body, headers, now);
    if (problem) await reject(db, trigger, request, headers, new ProblemError('bad-signature', problem));
  }
  let body: JsonValue;
  try {
    body = bodyOf(request.body, headers['content-type']);
  } catch (error) {
    if (error instanceof ProblemError) await reject(db, trigger, request, headers, error);
    throw error;
  }
  const dropped = new Set(settings.signature ? signatureHeaders(settings.signature) : []);
  const kept = Object.fromEntries(Object.entries(headers).filter(([name]) => !dropped.has(name)));
  const idHeader = settings.dedupe?.header.toLowerCase() ?? (settings.signature ? defaultDeliveryIdHeader(settings.signature.scheme) : undefined);
  const deliveryKey = idHeader === undefined ? undefined : headers[idHeader]?.slice(0, DELIVERY_ID_LENGTH) || undefined;
  const input = { body, query: request.query, headers: kept };
  const taken = await db.$transaction(async (tx) => {
    const deliveryId = uuidv7();
    const [claimed] = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO trigger_deliveries (id, org_id, trigger_id, outcome, dedupe_key, headers, query, body)
      VALUES (${deliveryId}::uuid, ${trigger.orgId}::uuid, ${trigger.id}::uuid, 'accepted', ${deliveryKey ?? null}, ${toJsonText(kept)}, ${toJsonText(request.query)}, ${toJsonText(body)})
      ON CONFLICT (trigger_id, dedupe_key) DO NOTHING RETURNING id`;
    if (!claimed) {
      // Accepted before (committed: the insert waited for it): this one is listed, and starts nothing.
      const [first] = await tx.$queryRaw<{ id: string; executionId: string }[]>`
        SELECT id, execution_id AS "executionId" FROM trigger_deliveries WHERE trigger_id = ${trigger.id}::uuid AND dedupe_key = ${deliveryKey!}`;
      await tx.$executeRaw`
        INSERT INTO trigger_deliveries (id, org_id, trigger_id, outcome, duplicate_of, execution_id, headers, query, body)
        VALUES (${deliveryId}::uuid, ${trigger.orgId}::uuid, ${trigger.id}::uuid, 'duplicate', ${first!.id}::uuid, ${first!.executionId}::uuid,
          ${toJsonText(kept)}, ${toJsonText(request.query)}, ${toJsonText(body)})`;
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
  });
  return { ...taken, respond: settings.respond };
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

// A field sent more than once becomes a list of its values, in order. Built in a Map: a field
// named __proto__ stays a field.
function formOf(text: string): Record<string, string | string[]> {
  const form = new Map<string, string | string[]>();
  for (const [name, value] of new URLSearchParams(text)) {
    const before = form.get(name);
    form.set(name, before === undefined ? value : Array.isArray(before) ? [...before, value] : [before, value]);
  }
  return Object.fromEntries(form);
}
