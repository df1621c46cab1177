// Who is calling. An API key (or the operator token) is verified; tenant headers are taken as a
// claim, and only where Tolstoy runs with TOLSTOY_AUTH=headers. Every refusal of credentials is
// the same 401, whatever was wrong with them, so that the answer cannot be used to probe keys.
//
// Authentication runs on every request, so a node remembers a key it has verified for
// `keyCacheMs` (5 s by default): in steady state a key costs no query. That is also how long
// another node may still take a key after it was revoked, or its member removed or demoted; the
// node that makes the change forgets the key at once. A key id found in no row is remembered as
// unknown for as long, so a forged key sent again costs no query; and the caller may bound the
// lookups it lets through (`beforeLookup`: per client address, say).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthSettings } from '../config/settings.ts';
import { ProblemError } from '../contract/problems.ts';
import type { Database } from '../db/client.ts';
import { hashOf, lookupOf } from './keyFormat.ts';
import type { Caller, Role, Tenant } from './tenancy.ts';

/** What a request says about its caller. `bearer` is null when an Authorization header is not a bearer token. */
export interface Credentials {
  bearer: string | null | undefined;
  orgId: string | undefined;
  userId: string | undefined;
}

/** What the operation acts on: one organization, organizations themselves, or a new one (sign-up). */
export type Scope = 'tenant' | 'organizations' | 'signup';

const ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// last_used_at is kept to the minute, so a key in steady use writes once a minute at most.
const LAST_USED_RESOLUTION_MS = 60_000;
// Enough for every key in use on a busy node; past it, the oldest entry makes room.
const MAX_REMEMBERED = 10_000;

export function unauthorized(detail = 'Send a valid API key: Authorization: Bearer tsk_…'): ProblemError {
  return new ProblemError('unauthorized', detail);
}

interface VerifiedKey {
  keyId: string;
  tenant: Tenant;
  hash: Buffer;
  expiresAt: number | null;
  lastUsedAt: number | null;
  verifiedAt: number;
}

/** The keys this node has verified lately, by lookup id. */
export class VerifiedKeys {
  readonly #entries = new Map<string, VerifiedKey>();
  /** Key ids found in no row, and when. */
  readonly #unknown = new Map<string, number>();
  readonly #ttlMs: number;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  fresh(lookup: string, now: number): VerifiedKey | undefined {
    const entry = this.#entries.get(lookup);
    if (entry && now - entry.verifiedAt < this.#ttlMs) return entry;
    this.#entries.delete(lookup);
    return undefined;
  }

  remember(lookup: string, entry: VerifiedKey): void {
    if (this.#ttlMs === 0) return;
    this.#entries.delete(lookup);
    if (this.#entries.size >= MAX_REMEMBERED) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(lookup, entry);
  }

  /** Whether key id `lookup` was found in no row lately. */
  unknown(lookup: string, now: number): boolean {
    const seen = this.#unknown.get(lookup);
    if (seen !== undefined && now - seen < this.#ttlMs) return true;
    this.#unknown.delete(lookup);
    return false;
  }

  rememberUnknown(lookup: string, now: number): void {
    if (this.#ttlMs === 0) return;
    if (this.#unknown.size >= MAX_REMEMBERED) this.#unknown.delete(this.#unknown.keys().next().value!);
    this.#unknown.set(lookup, now);
  }

  /** After a key was revoked. */
  forgetKey(keyId: string): void {
    this.#forget((entry) => entry.keyId === keyId);
  }

  /** After a member was removed, or their role changed. */
  forgetMember(orgId: string, userId: string): void {
    this.#forget((entry) => entry.tenant.orgId === orgId && entry.tenant.userId === userId);
  }

  /** After an organization was deleted. */
  forgetOrganization(orgId: string): void {
    this.#forget((entry) => entry.tenant.orgId === orgId);
  }

  #forget(matches: (entry: VerifiedKey) => boolean): void {
    for (const [lookup, entry] of this.#entries) if (matches(entry)) this.#entries.delete(lookup);
  }
}

export class Authentication {
  /** What the operations on organizations need to know (the token itself stays here). */
  readonly policy: Pick<AuthSettings, 'mode' | 'signup'>;
  readonly keys: VerifiedKeys;
  readonly #adminTokenHash: Buffer | undefined;
  /** Key lookups in flight, by lookup id. */
  readonly #loading = new Map<string, Promise<VerifiedKey | undefined>>();
  readonly #shareLookups: boolean;

  constructor({ mode, signup, adminToken, keyCacheMs }: AuthSettings) {
    this.policy = { mode, signup };
    this.keys = new VerifiedKeys(keyCacheMs);
    this.#shareLookups = keyCacheMs > 0;
    this.#adminTokenHash = adminToken === undefined ? undefined : sha256(adminToken);
  }

  /** The caller of an operation of `scope`; throws a 401 (or a 403 for credentials that contradict each other). */
  async callerOf(db: Database, credentials: Credentials, scope: Scope, beforeLookup: () => Promise<void> = async () => {}): Promise<Caller> {
    const { bearer, orgId, userId } = credentials;
    if (bearer !== undefined) {
      const caller = await this.#verify(db, bearer, beforeLookup);
      if (scope === 'tenant') checkClaims(caller, orgId, userId);
      return caller;
    }
    // Sign-up decides for itself (it may be open); with tenant headers trusted, so are organizations.
    if (scope === 'signup' || (scope === 'organizations' && this.policy.mode === 'headers')) return { kind: 'anonymous' };
    if (this.policy.mode === 'keys') throw unauthorized();
    if (orgId === undefined || userId === undefined) {
      throw unauthorized('Send an API key (Authorization: Bearer tsk_…), or X-Org-ID and X-User-ID: your organization and one of its members.');
    }
    for (const [name, value] of [['X-Org-ID', orgId] as const, ['X-User-ID', userId] as const]) {
      if (!ID.test(value)) throw unauthorized(`${name} must be an id (a UUID such as 0190f1a2-7c3e-7a10-8d3c-5b2e9f4a6c00).`);
    }
    return { kind: 'headers', orgId: orgId.toLowerCase(), userId: userId.toLowerCase() };
  }

  async #verify(db: Database, token: string | null, beforeLookup: () => Promise<void>): Promise<Caller & { kind: 'key' | 'operator' }> {
    if (token === null) throw unauthorized();
    if (this.#adminTokenHash && timingSafeEqual(sha256(token), this.#adminTokenHash)) return { kind: 'operator' };
    const lookup = lookupOf(token);
    if (lookup === undefined) throw unauthorized();
    const now = Date.now();
    if (this.keys.unknown(lookup, now)) throw unauthorized();
    const entry = this.keys.fresh(lookup, now) ?? (await this.#loadOnce(db, lookup, now, beforeLookup));
    if (!entry || !timingSafeEqual(Buffer.from(hashOf(token), 'hex'), entry.hash)) throw unauthorized();
    if (entry.expiresAt !== null && entry.expiresAt <= now) throw unauthorized();
    if (entry.lastUsedAt === null || now - entry.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
      entry.lastUsedAt = now;
      await db.apiKey.updateMany({ where: { id: entry.keyId }, data: { lastUsedAt: new Date(now) } });
    }
    return { kind: 'key', keyId: entry.keyId, tenant: entry.tenant };
  }

  // Requests that need the same key while it is being looked up wait for that lookup: one query,
  // and one count against the address, however many arrive at once. The first request's address
  // being refused (429) is its own: those that waited on it are then counted for themselves.
  // With no cache (`keyCacheMs` 0), every request reads the key itself, as that setting promises.
  async #loadOnce(db: Database, lookup: string, now: number, beforeLookup: () => Promise<void>): Promise<VerifiedKey | undefined> {
    const inFlight = this.#loading.get(lookup);
    if (inFlight) {
      return inFlight.catch(async (error: unknown) => {
        if (!(error instanceof ProblemError && error.kind === 'too-many-requests')) throw error;
        await beforeLookup();
        return this.#loadOnce(db, lookup, now, COUNTED);
      });
    }
    const loading = beforeLookup()
      .then(() => this.#load(db, lookup, now))
      .finally(() => this.#loading.delete(lookup));
    if (this.#shareLookups) this.#loading.set(lookup, loading);
    return loading;
  }

  async #load(db: Database, lookup: string, now: number): Promise<VerifiedKey | undefined> {
    const [row] = await db.$queryRaw<KeyRow[]>`
      SELECT k.id, k.org_id::text AS "orgId", k.user_id::text AS "userId", k.hash, k.expires_at AS "expiresAt",
             k.last_used_at AS "lastUsedAt", u.role::text AS role
      FROM api_keys k JOIN users u ON u.org_id = k.org_id AND u.id = k.user_id
      WHERE k.lookup = ${lookup}`;
    if (!row) {
      this.keys.rememberUnknown(lookup, now);
      return undefined;
    }
    const entry: VerifiedKey = {
      keyId: row.id,
      tenant: { orgId: row.orgId, userId: row.userId, role: row.role },
      hash: Buffer.from(row.hash, 'hex'),
      expiresAt: row.expiresAt?.getTime() ?? null,
      lastUsedAt: row.lastUsedAt?.getTime() ?? null,
      verifiedAt: now,
    };
    this.keys.remember(lookup, entry);
    return entry;
  }
}

/** For a lookup already counted against its address. */
const COUNTED = async () => {};

interface KeyRow {
  id: string;
  orgId: string;
  userId: string;
  hash: string;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  role: Role;
}

// Tenant headers sent beside a key must say what the key says.
function checkClaims(caller: Caller & { kind: 'key' | 'operator' }, orgId: string | undefined, userId: string | undefined): void {
  if (caller.kind === 'operator') {
    throw new ProblemError('forbidden', "The operator token manages organizations only; act inside one with a member's API key.");
  }
  const { tenant } = caller;
  if ((orgId !== undefined && orgId.toLowerCase() !== tenant.orgId) || (userId !== undefined && userId.toLowerCase() !== tenant.userId)) {
    throw new ProblemError('forbidden', "X-Org-ID and X-User-ID, when sent with an API key, must name the key's organization and member.");
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
