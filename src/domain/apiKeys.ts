// API keys: `tsk_`, a 10-character lookup id, 43 random characters (256 bits) and a 6-character
// CRC32 checksum, all base62. The prefix lets secret scanners spot a key, the checksum lets
// Tolstoy refuse a mistyped or made-up one without a query. Only the key's SHA-256 is stored (the
// key has 256 bits of entropy, so a fast hash is enough); `lookup` finds its row.
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { components } from '../generated/openapi.ts';
import type { ApiKey as ApiKeyRow } from '../generated/prisma/client.ts';
import type { Handler } from './contract.ts';
import { pageArgs, toPage } from './pagination.ts';
import { notFound, ProblemError, unprocessable } from './problems.ts';
import { assertOwner, type Tenant } from './tenancy.ts';

type ApiKey = components['schemas']['ApiKey'];
type ApiKeyCreated = components['schemas']['ApiKeyCreated'];

export const KEY_PREFIX = 'tsk_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const LOOKUP_LENGTH = 10;
const SECRET_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${LOOKUP_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH}}$`);

/** Random base62 characters, without modulo bias: bytes of 248 and more (4 × 62) are drawn again. */
function randomCharacters(length: number): string {
  let text = '';
  while (text.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && text.length < length) text += ALPHABET[byte % 62];
    }
  }
  return text;
}

function checksum(body: string): string {
  let value = crc32(body);
  let text = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    text = ALPHABET[value % 62] + text;
    value = Math.floor(value / 62);
  }
  return text;
}

export interface NewKey {
  key: string;
  lookup: string;
  hash: string;
}

/** A new key; the lookup id is random unless given (a test forging a key for an existing id, say). */
export function newKey(lookup = randomCharacters(LOOKUP_LENGTH)): NewKey {
  const body = KEY_PREFIX + lookup + randomCharacters(SECRET_LENGTH);
  const key = body + checksum(body);
  return { key, lookup, hash: hashOf(key) };
}

/** The lookup id of a well-formed key whose checksum holds; undefined for anything else. */
export function lookupOf(text: string): string | undefined {
  if (!KEY_SHAPE.test(text)) return undefined;
  const body = text.slice(0, -CHECKSUM_LENGTH);
  if (checksum(body) !== text.slice(-CHECKSUM_LENGTH)) return undefined;
  return text.slice(KEY_PREFIX.length, KEY_PREFIX.length + LOOKUP_LENGTH);
}

export function hashOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    orgId: row.orgId,
    userId: row.userId,
    name: row.name,
    prefix: KEY_PREFIX + row.lookup,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    expiresAt: row.expiresAt?.toISOString() ?? null,
  };
}

/** What it takes to store a new key of a member; the key itself is in the answer only. */
export function keyRecord(tenant: Pick<Tenant, 'orgId' | 'userId'>, name: string, expiresAt: Date | null = null) {
  const { key, lookup, hash } = newKey();
  return { key, data: { orgId: tenant.orgId, userId: tenant.userId, name, lookup, hash, expiresAt } };
}

export function toApiKeyCreated(row: ApiKeyRow, key: string): ApiKeyCreated {
  return { ...toApiKey(row), key };
}

/** Why a key's creation is not replayed: its secret is shown once, and not kept. */
export const replayRefused = (id: string) =>
  `The first request with this Idempotency-Key made API key ${id}, whose secret was shown once and is not kept. ` +
  `If that answer was lost, revoke the key (DELETE /api-keys/${id}) and create another with a new Idempotency-Key.`;

export const createApiKey: Handler<'createApiKey'> = async ({ body }, { db, tenant }) => {
  const userId = body.userId ?? tenant.userId;
  if (userId !== tenant.userId) assertOwner(tenant, "create keys for other members (a member's own keys are theirs to make)");
  const expiresAt = body.expiresAt === undefined ? null : new Date(body.expiresAt);
  if (expiresAt && expiresAt.getTime() <= Date.now()) throw unprocessable('/expiresAt', 'must be in the future');
  const member = await db.user.findUnique({ where: { orgId_id: { orgId: tenant.orgId, id: userId } }, select: { id: true } });
  if (!member) throw unprocessable('/userId', `no user ${userId} in this organization`);
  const { key, data } = keyRecord({ orgId: tenant.orgId, userId }, body.name, expiresAt);
  return toApiKeyCreated(await db.apiKey.create({ data }), key);
};

export const listApiKeys: Handler<'listApiKeys'> = async ({ query }, { db, reader }) => {
  const { userId } = reader.tenant;
  const owner = (await reader.role()) === 'owner';
  if (!owner && query.userId !== undefined && query.userId !== userId) {
    throw new ProblemError('forbidden', "Only an owner of the organization may list other members' keys.");
  }
  const of = query.userId ?? (owner ? undefined : userId);
  const rows = await db.apiKey.findMany(pageArgs(query, { orgId: reader.tenant.orgId, ...(of && { userId: of }) }));
  return toPage(rows, query, toApiKey);
};

export const getApiKey: Handler<'getApiKey'> = async ({ params }, { db, reader }) => {
  const role = await reader.role();
  const row = await db.apiKey.findUnique({ where: { orgId_id: { orgId: reader.tenant.orgId, id: params.id } } });
  if (!row) throw notFound('API key', params.id);
  if (row.userId !== reader.tenant.userId) assertOwner({ role }, "see other members' keys");
  return toApiKey(row);
};

export const deleteApiKey: Handler<'deleteApiKey'> = async ({ params }, { db, tenant, keys }) => {
  const where = { orgId_id: { orgId: tenant.orgId, id: params.id } };
  const row = await db.apiKey.findUnique({ where, select: { userId: true } });
  if (!row) throw notFound('API key', params.id);
  if (row.userId !== tenant.userId) assertOwner(tenant, "revoke other members' keys");
  const { count } = await db.apiKey.deleteMany({ where: { orgId: tenant.orgId, id: params.id } });
  if (count === 0) throw notFound('API key', params.id);
  keys.forgetKey(params.id);
};
