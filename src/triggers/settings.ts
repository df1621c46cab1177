// A trigger's settings as tenants write them and as they are stored: the defaults filled in, the
// rules JSON Schema cannot say checked (422 naming the field), and a webhook's secret made when
// none is given.
import { unprocessable } from '../contract/problems.ts';
import type { components } from '../generated/openapi.ts';
import { newSecret, type SignatureRule, secretProblem } from './signatures.ts';
import { type CatchUp, scheduleProblem } from './slots.ts';

type WebhookInput = components['schemas']['WebhookSettings'];
type ScheduleInput = components['schemas']['ScheduleSettings'];
export type TriggerType = components['schemas']['TriggerType'];
export type Overlap = components['schemas']['Overlap'];

/** A webhook's stored settings. */
export interface WebhookSettings {
  signature: SignatureRule | null;
  respond: 'accepted' | 'output';
  dedupe: { header: string } | null;
}

/** A schedule's stored settings. */
export interface ScheduleSettings {
  cron: string;
  timezone: string;
  input: Record<string, unknown>;
  catchUp: CatchUp;
  overlap: Overlap;
}

/** The header an hmac-sha256 signature comes in when the trigger names none. */
export const DEFAULT_SIGNATURE_HEADER = 'X-Signature';

/** A webhook's settings with defaults, and the secret to seal: the one sent, a new one, or (undefined) the stored one kept. */
export function webhookSettings(input: WebhookInput, stored?: WebhookSettings): { settings: WebhookSettings; secret: string | undefined } {
  const signature = input.signature ? signatureRule(input.signature) : null;
  if (signature?.scheme === 'standard-webhooks' && input.dedupe) {
    throw unprocessable('/webhook/dedupe', 'must be null with standard-webhooks, which always de-duplicates by its signed webhook-id');
  }
  const sent = input.signature?.secret;
  if (signature && sent !== undefined) {
    const problem = secretProblem(signature.scheme, sent);
    if (problem) throw unprocessable('/webhook/signature/secret', problem);
  }
  // A secret is kept only for the scheme it was made for.
  const keeps = signature !== null && sent === undefined && stored?.signature?.scheme === signature.scheme;
  const secret = signature === null || keeps ? undefined : (sent ?? newSecret(signature.scheme));
  return { settings: { signature, respond: input.respond ?? 'accepted', dedupe: input.dedupe ?? null }, secret };
}

// Standard Webhooks names its own headers and encoding: a header, prefix or encoding (which a
// merge patch from hmac-sha256 brings along) is no part of it.
function signatureRule(signature: NonNullable<WebhookInput['signature']>): SignatureRule {
  if (signature.scheme === 'standard-webhooks') return { scheme: 'standard-webhooks' };
  return { scheme: 'hmac-sha256', header: signature.header ?? DEFAULT_SIGNATURE_HEADER, prefix: signature.prefix ?? '', encoding: signature.encoding ?? 'hex' };
}

/** A schedule's settings with defaults, refused (422) when its cron or time zone is not one. */
export function scheduleSettings(input: ScheduleInput): ScheduleSettings {
  const schedule = { cron: input.cron.trim(), timezone: input.timezone ?? 'UTC' };
  const problem = scheduleProblem(schedule);
  if (problem) throw unprocessable(problem.startsWith('timezone') ? '/schedule/timezone' : '/schedule/cron', problem);
  return { ...schedule, input: input.input ?? {}, catchUp: input.catchUp ?? 'latest', overlap: input.overlap ?? 'skip' };
}

/** The settings object that goes with a trigger's type; the other must not be sent (422). */
export function settingsFor(
  type: TriggerType,
  body: { webhook?: WebhookInput; schedule?: ScheduleInput },
): { field: 'webhook'; value: WebhookInput } | { field: 'schedule'; value: ScheduleInput } {
  if (type === 'webhook') {
    if (body.schedule !== undefined) throw unprocessable('/schedule', 'is for schedule triggers; this one is a webhook');
    return { field: 'webhook', value: body.webhook ?? {} };
  }
  if (body.webhook !== undefined) throw unprocessable('/webhook', 'is for webhook triggers; this one is a schedule');
  if (body.schedule === undefined) throw unprocessable('/schedule', 'is required for a schedule trigger: at least its cron, such as {"cron": "0 2 * * *"}');
  return { field: 'schedule', value: body.schedule };
}
