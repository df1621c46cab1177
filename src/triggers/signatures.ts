// Webhook triggers' signatures: whether a request to `POST /hooks/{id}` carries a valid signature
// over its raw body, and the secrets tenants give or are given. Two schemes: hmac-sha256, a hex or
// base64 HMAC of the body in a header the trigger names (GitHub, Shopify and the like), and
// Standard Webhooks (https://www.standardwebhooks.com/), which also signs the delivery's id and
// timestamp. Reasons are for the sender: they name the header and what was expected, never the
// secret or the expected digest.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type SignatureScheme = 'hmac-sha256' | 'standard-webhooks';

export interface SignatureRule {
  scheme: SignatureScheme;
  /** hmac-sha256 only: the header carrying the signature, e.g. 'X-Hub-Signature-256' (case-insensitive). */
  header?: string;
  /** hmac-sha256 only: text before the digest, e.g. 'sha256='. */
  prefix?: string;
  /** hmac-sha256 only: how the digest is written; default 'hex'. */
  encoding?: 'hex' | 'base64';
}

type Headers = Record<string, string | string[] | undefined>;

/** How far webhook-timestamp may be from now, in seconds (documented: 300, as the spec recommends). */
export const TIMESTAMP_TOLERANCE_SECONDS = 300;

const WHSEC_PREFIX = 'whsec_';
const HMAC_SECRET_LENGTH = { min: 8, max: 256 };
const WHSEC_KEY_BYTES = { min: 16, max: 64 };
const ID_HEADER = 'webhook-id';
const TIMESTAMP_HEADER = 'webhook-timestamp';
const SIGNATURE_HEADER = 'webhook-signature';
// Digits only, as the spec's "integer unix timestamp"; 15 digits keep it an exact Number.
const TIMESTAMP_SHAPE = /^[0-9]{1,15}$/;

/** A new random secret for the scheme: hmac-sha256 → 64 hex chars (32 random bytes); standard-webhooks → 'whsec_' + base64 of 24 random bytes. */
export function newSecret(scheme: SignatureScheme): string {
  if (scheme === 'hmac-sha256') return randomBytes(32).toString('hex');
  return WHSEC_PREFIX + randomBytes(24).toString('base64');
}

/** Whether a secret given by a tenant fits the scheme; an error message naming what is expected, or undefined. */
export function secretProblem(scheme: SignatureScheme, secret: string): string | undefined {
  if (scheme === 'hmac-sha256') {
    const length = [...secret].length;
    if (length < HMAC_SECRET_LENGTH.min || length > HMAC_SECRET_LENGTH.max) {
      return `an hmac-sha256 secret must be ${HMAC_SECRET_LENGTH.min} to ${HMAC_SECRET_LENGTH.max} characters long; this one has ${length}`;
    }
    return undefined;
  }
  const expected = `a standard-webhooks secret must be '${WHSEC_PREFIX}' followed by the base64 of a key of ${WHSEC_KEY_BYTES.min} to ${WHSEC_KEY_BYTES.max} bytes`;
  if (!secret.startsWith(WHSEC_PREFIX)) return `${expected}; this one does not start with '${WHSEC_PREFIX}'`;
  const key = strictBase64(secret.slice(WHSEC_PREFIX.length));
  if (key === undefined) return `${expected}; what follows '${WHSEC_PREFIX}' is not base64 (standard alphabet, with its = padding)`;
  if (key.length < WHSEC_KEY_BYTES.min || key.length > WHSEC_KEY_BYTES.max) return `${expected}; this key has ${key.length} bytes`;
  return undefined;
}

/** undefined when the signature is valid; otherwise the reason in words, for the sender. */
export function signatureProblem(rule: SignatureRule, secret: string, rawBody: Buffer, headers: Headers, now: Date): string | undefined {
  if (rule.scheme === 'hmac-sha256') return hmacProblem(rule, secret, rawBody, headers);
  return standardWebhooksProblem(secret, rawBody, headers, now);
}

/** The lower-case header names that carry the signature, to drop from the run's input. */
export function signatureHeaders(rule: SignatureRule): string[] {
  if (rule.scheme === 'standard-webhooks') return [SIGNATURE_HEADER];
  return rule.header === undefined ? [] : [rule.header.toLowerCase()];
}

/** The header naming a delivery's id by default, for de-duplication. */
export function defaultDeliveryIdHeader(scheme: SignatureScheme): string | undefined {
  return scheme === 'standard-webhooks' ? ID_HEADER : undefined;
}

function hmacProblem(rule: SignatureRule, secret: string, rawBody: Buffer, headers: Headers): string | undefined {
  // Saved rules always name one; without it nothing can be checked, so nothing passes.
  if (rule.header === undefined) return 'the trigger names no signature header, so no request can be verified';
  const value = singleHeader(headers, rule.header);
  if (typeof value !== 'string') return value.problem;
  const prefix = rule.prefix ?? '';
  if (!value.startsWith(prefix)) return `the ${rule.header} header must start with '${prefix}'`;
  const encoding = rule.encoding ?? 'hex';
  const digest = createHmac('sha256', Buffer.from(secret, 'utf8')).update(rawBody).digest(encoding);
  // Hex is case-insensitive, so an upper-case digest is accepted; base64 is compared exactly.
  const given = value.slice(prefix.length);
  const written = encoding === 'hex' ? given.toLowerCase() : given;
  return sameText(written, digest) ? undefined : 'the signature does not match the body';
}

// Not the standardwebhooks library: it checks timestamps against Date.now(), not `now`, and signs a Buffer as decoded UTF-8 text, not its raw bytes.
function standardWebhooksProblem(secret: string, rawBody: Buffer, headers: Headers, now: Date): string | undefined {
  const id = singleHeader(headers, ID_HEADER);
  if (typeof id !== 'string') return id.problem;
  // The signed content is id.timestamp.body: a full stop in the id could shift digits between them.
  if (id.includes('.')) return `the ${ID_HEADER} header must not contain a full stop`;
  const timestamp = singleHeader(headers, TIMESTAMP_HEADER);
  if (typeof timestamp !== 'string') return timestamp.problem;
  if (!TIMESTAMP_SHAPE.test(timestamp)) return `the ${TIMESTAMP_HEADER} header must be an integer number of seconds since 1970-01-01T00:00:00Z`;
  const distance = Math.abs(Math.floor(now.getTime() / 1000) - Number(timestamp));
  if (distance > TIMESTAMP_TOLERANCE_SECONDS) {
    return `the ${TIMESTAMP_HEADER} is ${distance} s away from now; at most ${TIMESTAMP_TOLERANCE_SECONDS} s is tolerated`;
  }
  const signatures = singleHeader(headers, SIGNATURE_HEADER);
  if (typeof signatures !== 'string') return signatures.problem;
  const candidates = versionOneSignatures(signatures);
  if (candidates.length === 0) return `the ${SIGNATURE_HEADER} header has no 'v1,<base64 signature>' entry`;
  const key = Buffer.from(secret.startsWith(WHSEC_PREFIX) ? secret.slice(WHSEC_PREFIX.length) : secret, 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(rawBody).digest('base64');
  // Every candidate is compared, so the time taken does not tell which one matched.
  const matches = candidates.map((candidate) => sameText(candidate, expected));
  return matches.includes(true) ? undefined : 'the signature does not match the body';
}

/** The signatures of the space-separated list whose version is v1; others (v1a, v2…) are not ours to check. */
function versionOneSignatures(header: string): string[] {
  return header
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => entry.slice('v1,'.length));
}

/** The one value of a header, looked up case-insensitively, or why there is not exactly one (an empty one counts as missing). */
function singleHeader(headers: Headers, name: string): string | { problem: string } {
  const wanted = name.toLowerCase();
  const values = Object.entries(headers)
    .filter(([key]) => key.toLowerCase() === wanted)
    .flatMap(([, value]) => (value === undefined ? [] : value))
    .filter((value) => value !== '');
  if (values.length === 0) return { problem: `the ${name} header is missing` };
  if (values.length > 1) return { problem: `the ${name} header is sent ${values.length} times; send it once` };
  return values[0]!;
}

/** Constant-time equality of two texts; texts of different lengths are simply unequal. */
function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The bytes of canonical base64 (standard alphabet, padded), or undefined: Node's decoder skips what it does not understand. */
function strictBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}
