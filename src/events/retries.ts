// What an attempt to deliver an event comes to, and when the next one is made: pure rules.
// A 2xx is delivered. 408, 429, 5xx, a timeout and a network error are tried again by the retry
// schedule (TOLSTOY_EVENT_RETRY_SCHEDULE_MS), honouring a 429's longer Retry-After up to the
// schedule's longest wait. Any other answer (3xx: redirects are not followed; 4xx) and a target
// the SSRF guard refuses fail at once: trying again would get the same. A secret the keyring
// cannot open (its key is not configured) is the operator's to fix: it is tried again.
import type { OutboundErrorCode } from '../engine/outbound.ts';

/** What one attempt got: an answer's status (and its Retry-After), or why there was none. */
export type Attempt = { status: number; retryAfter?: string | undefined } | { error: OutboundErrorCode | 'secret-unopened' };

export type Verdict = { outcome: 'delivered' } | { outcome: 'retry'; waitMs: number } | { outcome: 'failed' };

const RETRIED_STATUSES = new Set([408, 429]);
const PERMANENT_ERRORS = new Set<string>(['blocked-target']);

/** The verdict on attempt number `attempts` (1 for the first) by `schedule` (the wait before each attempt). */
export function verdict(attempt: Attempt, attempts: number, schedule: number[], now = Date.now()): Verdict {
  if ('status' in attempt && attempt.status >= 200 && attempt.status < 300) return { outcome: 'delivered' };
  const retried = 'status' in attempt ? RETRIED_STATUSES.has(attempt.status) || attempt.status >= 500 : !PERMANENT_ERRORS.has(attempt.error);
  if (!retried || attempts >= schedule.length) return { outcome: 'failed' };
  const scheduled = schedule[attempts]!;
  const asked = 'status' in attempt && attempt.status === 429 ? retryAfterMs(attempt.retryAfter, now) : undefined;
  if (asked === undefined || asked <= scheduled) return { outcome: 'retry', waitMs: scheduled };
  return { outcome: 'retry', waitMs: Math.min(asked, Math.max(...schedule)) };
}

/** A Retry-After header (delay-seconds or an HTTP-date) in milliseconds from `now`; undefined when unreadable. */
export function retryAfterMs(header: string | undefined, now: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** What the attempt got, in words, for `last_error` and a disabled subscription's reason. */
export function answered(attempt: Attempt, detail?: string): string {
  if ('status' in attempt) return `HTTP ${attempt.status}`;
  const what: Record<Exclude<Attempt, { status: number }>['error'], string> = {
    'blocked-target': 'a refused target',
    'network-error': 'a network error',
    timeout: 'a timeout',
    'response-too-large': 'a response too large',
    'response-too-deep': 'a response too deep',
    cancelled: 'a cancelled attempt',
    'secret-unopened': 'a secret that could not be opened',
  };
  return detail ? `${what[attempt.error]} (${detail})` : what[attempt.error];
}
