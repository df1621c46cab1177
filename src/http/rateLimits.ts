// Rate limits per API key (per member, with tenant headers) and per organization, counted in
// fixed windows by @fastify/rate-limit's in-memory store. Each node counts on its own: behind a
// balancer spreading traffic over N nodes, a caller can make up to N times the limit.
// Per client address (the connection's: X-Forwarded-For is not trusted), what
// costs the most before anyone is known is bounded too: API keys looked up in the database
// (forged keys, each a new key id, would each cost a query) and sign-ups. Deliveries to one
// webhook trigger are bounded whoever sends them.
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { Caller } from '../access/tenancy.ts';
import type { RateLimitSettings } from '../config/settings.ts';
import { ProblemError } from '../contract/problems.ts';

/** Counts a request of `caller` against its limits; sets the RateLimit headers, and refuses (429) past a limit. */
export type RateLimiter = (request: FastifyRequest, reply: FastifyReply, caller: Caller) => Promise<void>;

interface Counted {
  /** What the limit is for, in a message. */
  what: string;
  max: number;
  check: ReturnType<FastifyInstance['createRateLimit']>;
}

// Which key and organization a request counts against, found by the limiters' key generators.
const subjects = new WeakMap<FastifyRequest, { key: string; orgId: string }>();

/** Counts what a client address does before it is known; refuses (429) past a limit. */
export interface AddressLimits {
  keyLookup: (request: FastifyRequest) => Promise<void>;
  signup: (request: FastifyRequest) => Promise<void>;
  /** Deliveries to one webhook trigger (by its URL's token), whoever sends them, and addresses that keep guessing tokens. */
  webhook: (request: FastifyRequest) => Promise<void>;
  /** Counts a delivery to a webhook address that names no trigger against its client address. */
  webhookMissed: (request: FastifyRequest) => void;
}

export async function registerRateLimits(
  app: FastifyInstance,
  settings: RateLimitSettings,
): Promise<{ rateLimiter: RateLimiter | undefined; addressLimits: AddressLimits | undefined }> {
  const { perKey, perOrganization, keyLookupsPerAddress, signupsPerAddress, webhooksPerTrigger } = settings;
  if (perKey === 0 && perOrganization === 0 && keyLookupsPerAddress === 0 && signupsPerAddress === 0 && webhooksPerTrigger === 0) {
    return { rateLimiter: undefined, addressLimits: undefined };
  }
  // One store for every limit: room for many keys, so that junk (forged keys, guessed webhook
  // addresses) cannot push out the counts of real callers.
  await app.register(rateLimit, { global: false, cache: STORE_KEYS });
  const addressLimits = {
    keyLookup: addressLimit(app, 'lookups', keyLookupsPerAddress, settings.windowMs, 'API keys that had to be looked up for authentication'),
    signup: addressLimit(app, 'signups', signupsPerAddress, settings.windowMs, 'sign-ups'),
    ...webhookLimits(app, webhooksPerTrigger, keyLookupsPerAddress, settings.windowMs),
  };
  const rateLimiter = perKey === 0 && perOrganization === 0 ? undefined : callerLimits(app, settings);
  return { rateLimiter, addressLimits };
}

/** A limit of `max` per window on one thing a client address does (none for 0), named `what` in the refusal. */
function addressLimit(app: FastifyInstance, name: string, max: number, windowMs: number, what: string): AddressLimits['signup'] {
  if (max === 0) return async () => {};
  const check = app.createRateLimit({ timeWindow: windowMs, max, skipOnError: false, keyGenerator: (request) => `${name} ${request.ip}` });
  return async (request) => {
    const count = await check(request);
    // Without an allow list, every request is counted.
    if (count.isAllowed || !count.isExceeded) return;
    const retryAfterSeconds = count.ttlInSeconds;
    throw new ProblemError(
      'too-many-requests',
      `This address sent more than ${max} ${what} in ${Math.ceil(windowMs / 1000)} s; retry in ${retryAfterSeconds} s.`,
      { retryAfterSeconds },
    );
  };
}

/** How many counts the limits' store keeps at most (the least recently used go first). */
const STORE_KEYS = 100_000;

/**
 * A limit of `perTrigger` deliveries per window to one webhook address (none for 0), and one of
 * `misses` addresses naming no trigger per window and client address: each costs a lookup, and
 * guessing is what they are.
 */
function webhookLimits(app: FastifyInstance, perTrigger: number, misses: number, windowMs: number): Pick<AddressLimits, 'webhook' | 'webhookMissed'> {
  const seconds = Math.ceil(windowMs / 1000);
  const check = app.createRateLimit({ timeWindow: windowMs, max: perTrigger, skipOnError: false, keyGenerator: (request) => `hook ${tokenOf(request)}` });
  const missed = new LRUCache<string, { count: number; until: number }>({ max: STORE_KEYS });
  return {
    async webhook(request) {
      const guesses = missed.get(request.ip);
      if (misses > 0 && guesses && guesses.count >= misses && guesses.until > Date.now()) {
        const retryAfterSeconds = Math.ceil((guesses.until - Date.now()) / 1000);
        throw new ProblemError(
          'too-many-requests',
          `This address sent more than ${misses} deliveries to unknown webhooks in ${seconds} s; retry in ${retryAfterSeconds} s.`,
          {
            retryAfterSeconds,
          },
        );
      }
      if (perTrigger === 0) return;
      const count = await check(request);
      if (count.isAllowed || !count.isExceeded) return;
      const retryAfterSeconds = count.ttlInSeconds;
      throw new ProblemError(
        'too-many-requests',
        `This webhook received more than ${perTrigger} deliveries in ${seconds} s; retry in ${retryAfterSeconds} s.`,
        {
          retryAfterSeconds,
        },
      );
    },
    webhookMissed(request) {
      const now = Date.now();
      const guesses = missed.get(request.ip);
      if (!guesses || guesses.until <= now) missed.set(request.ip, { count: 1, until: now + windowMs });
      else guesses.count++;
    },
  };
}

function tokenOf(request: FastifyRequest): string | undefined {
  return (request.params as { token?: string }).token;
}

function callerLimits(app: FastifyInstance, { perKey, perOrganization, windowMs }: RateLimitSettings): RateLimiter {
  const limits: Counted[] = [];
  const window = { timeWindow: windowMs, skipOnError: false };
  if (perKey > 0) {
    const check = app.createRateLimit({ ...window, max: perKey, keyGenerator: (request) => subjects.get(request)!.key });
    limits.push({ what: 'API key', max: perKey, check });
  }
  if (perOrganization > 0) {
    const check = app.createRateLimit({ ...window, max: perOrganization, keyGenerator: (request) => `org ${subjects.get(request)!.orgId}` });
    limits.push({ what: 'organization', max: perOrganization, check });
  }
  const seconds = Math.ceil(windowMs / 1000);
  return async (request, reply, caller) => {
    const subject = subjectOf(caller);
    if (!subject) return;
    subjects.set(request, subject);
    const counts = [];
    for (const limit of limits) {
      const count = await limit.check(request);
      // Without an allow list, every request is counted.
      if (!count.isAllowed) counts.push({ limit, count });
    }
    // The headers describe the limit closest to running out.
    const { limit, count } = counts.reduce((tightest, next) => (next.count.remaining < tightest.count.remaining ? next : tightest));
    reply.header('ratelimit-limit', String(limit.max));
    reply.header('ratelimit-remaining', String(count.remaining));
    reply.header('ratelimit-reset', String(count.ttlInSeconds));
    const exceeded = counts.find(({ count }) => count.isExceeded);
    if (exceeded) {
      const retryAfterSeconds = exceeded.count.ttlInSeconds;
      throw new ProblemError(
        'too-many-requests',
        `This ${exceeded.limit.what} made more than ${exceeded.limit.max} requests in ${seconds} s; retry in ${retryAfterSeconds} s.`,
        { retryAfterSeconds },
      );
    }
  };
}

// The operator and anonymous callers (sign-up, headers-mode organizations) are not limited here.
function subjectOf(caller: Caller): { key: string; orgId: string } | undefined {
  if (caller.kind === 'key') return { key: `key ${caller.keyId}`, orgId: caller.tenant.orgId };
  if (caller.kind === 'headers') return { key: `member ${caller.orgId} ${caller.userId}`, orgId: caller.orgId };
  return undefined;
}
