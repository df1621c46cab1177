// A tool's credentials, put on a step's request as its authType says. What the execution records
// of the request shows `[REDACTED]` wherever a credential went. OAuth 2.0 tokens (client
// credentials grant, RFC 6749 §4.4) are cached per tool until shortly before they expire.
import { createHash } from 'node:crypto';
import type { Credentials, Keyring } from '../crypto/keyring.ts';
import { type Outbound, OutboundError, type OutboundRequest } from './outbound.ts';
import type { ActionCall } from './runs/progress.ts';

export const REDACTED = '[REDACTED]';

// A token is used until this long before it expires.
const EXPIRY_MARGIN_MS = 30_000;
const TOKEN_TIMEOUT_MS = 10_000;

export class CredentialsFailure extends Error {
  /** Whether trying again later may work (the token endpoint was down, not refusing). */
  readonly retryable: boolean;

  constructor(message: string, retryable: boolean) {
    super(message);
    this.retryable = retryable;
  }
}

export interface Authenticated {
  request: OutboundRequest;
  /** The same request as recorded: credentials redacted. */
  shown: OutboundRequest;
  /** Every value the credentials put on the wire, to scrub from whatever is recorded (an API may echo them). */
  secrets: string[];
}

export class Authenticator {
  readonly #keyring: Keyring;
  readonly #outbound: Outbound;
  readonly #tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(keyring: Keyring, outbound: Outbound) {
    this.#keyring = keyring;
    this.#outbound = outbound;
  }

  async apply(orgId: string, tool: ActionCall['tool'], request: OutboundRequest, signal: AbortSignal): Promise<Authenticated> {
    if (tool.authType === 'none' || tool.credentials === null) return { request, shown: request, secrets: [] };
    let credentials: Credentials;
    try {
      credentials = this.#keyring.open(tool.credentials, { orgId, toolId: tool.id });
    } catch (error) {
      throw new CredentialsFailure((error as Error).message, false);
    }
    if ('value' in credentials) {
      if (credentials.in === 'query') {
        const url = new URL(request.url);
        url.searchParams.set(credentials.name, credentials.value);
        const shown = new URL(request.url);
        shown.searchParams.set(credentials.name, REDACTED);
        return {
          request: { ...request, url: url.toString() },
          shown: { ...request, url: shown.toString() },
          // As sent (form encoding, `+` for a space), and as other encoders write it, for an API that echoes its URL.
          secrets: [credentials.value, formEncoded(credentials.value), encodeURIComponent(credentials.value)],
        };
      }
      return withHeader(request, credentials.name.toLowerCase(), credentials.value, [credentials.value]);
    }
    if ('token' in credentials) return withHeader(request, 'authorization', `Bearer ${credentials.token}`, [credentials.token]);
    if ('password' in credentials) {
      const encoded = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
      return withHeader(request, 'authorization', `Basic ${encoded}`, [encoded, credentials.password]);
    }
    const token = await this.#token(orgId, tool, credentials, signal);
    return withHeader(request, 'authorization', `Bearer ${token}`, [token, credentials.clientSecret]);
  }

  async #token(orgId: string, tool: ActionCall['tool'], credentials: Extract<Credentials, { clientSecret: string }>, signal: AbortSignal): Promise<string> {
    // Keyed by the sealed credentials too: new credentials get a new token.
    const cacheKey = createHash('sha256').update(`${tool.id} ${tool.credentials}`).digest('hex');
    const cached = this.#tokens.get(cacheKey);
    if (cached && cached.expiresAt > Date.now()) return cached.token;
    const form = new URLSearchParams({ grant_type: 'client_credentials', ...(credentials.scope && { scope: credentials.scope }) });
    const basic = Buffer.from(`${encodeURIComponent(credentials.clientId)}:${encodeURIComponent(credentials.clientSecret)}`).toString('base64');
    let answer: Awaited<ReturnType<Outbound['call']>>;
    try {
      answer = await this.#outbound.call(
        orgId,
        {
          method: 'POST',
          url: credentials.tokenUrl,
          headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: form.toString(),
        },
        signal,
        TOKEN_TIMEOUT_MS,
      );
    } catch (error) {
      const failure = error as OutboundError;
      throw new CredentialsFailure(
        `The OAuth token endpoint could not be reached: ${failure.message}`,
        failure instanceof OutboundError && failure.code !== 'blocked-target',
      );
    }
    const body = answer.body as { access_token?: unknown; expires_in?: unknown; error?: unknown };
    if (answer.status !== 200 || typeof body?.access_token !== 'string') {
      const reason = typeof body?.error === 'string' ? ` (${body.error})` : '';
      throw new CredentialsFailure(
        `The OAuth token endpoint answered ${answer.status}${reason} instead of a token.`,
        answer.status >= 500 || answer.status === 429,
      );
    }
    const lifetimeMs = typeof body.expires_in === 'number' ? body.expires_in * 1000 : 3600_000;
    this.#tokens.set(cacheKey, { token: body.access_token, expiresAt: Date.now() + lifetimeMs - EXPIRY_MARGIN_MS });
    return body.access_token;
  }
}

/** A value as URLSearchParams puts it in a query string (application/x-www-form-urlencoded). */
function formEncoded(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice('v='.length);
}

// The credential replaces an action's header of the same name: the action's value is dropped.
function withHeader(request: OutboundRequest, name: string, value: string, secrets: string[]): Authenticated {
  return {
    request: { ...request, headers: { ...request.headers, [name]: value } },
    shown: { ...request, headers: { ...request.headers, [name]: REDACTED } },
    secrets: [value, ...secrets],
  };
}

// Shorter values are too likely to be ordinary text to be scrubbed wherever they occur.
const SCRUBBED_LENGTH = 4;

/** The value with every occurrence of a secret, in any string or name, replaced by [REDACTED]. */
export function scrubbed<Value>(value: Value, secrets: ReadonlySet<string>): Value {
  const candidates = [...secrets].filter((secret) => secret.length >= SCRUBBED_LENGTH);
  if (candidates.length === 0 || !mentionsAny(value, candidates)) return value;
  const text = (string: string) => candidates.reduce((result, secret) => result.replaceAll(secret, REDACTED), string);
  const scrub = (node: unknown): unknown => {
    if (typeof node === 'string') return text(node);
    if (Array.isArray(node)) return node.map(scrub);
    if (node !== null && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([name, child]) => [text(name), scrub(child)]));
    return node;
  };
  return scrub(value) as Value;
}

// JSON escapes character by character, so a string holding a secret serializes to text holding
// the secret's escaped form: one serialization tells whether any walk is needed (most answers
// hold no credential; walking a 600 KB answer costs about 90 ms, serializing it a few).
function mentionsAny(value: unknown, secrets: string[]): boolean {
  const text = JSON.stringify(value);
  return text === undefined || secrets.some((secret) => text.includes(JSON.stringify(secret).slice(1, -1)));
}
