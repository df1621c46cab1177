// Outside /organizations every operation acts inside one organization, for one of its members
// (the tenant). Who that is comes from the caller's credentials (callers.ts):
// - an API key names a member that was verified when the key was (at most a few seconds ago);
// - tenant headers only claim one, so membership is checked against the database (otherwise 403):
//   a write first asks whether the user is a member, then acts; a read asks for the rows of the
//   organization *while the user is a member of it*, in the same query (Reader.scope), and only
//   when that finds nothing asks about membership, to tell 403 from 404 or from an empty list.
import { ProblemError } from '../contract/problems.ts';
import type { Database } from '../db/client.ts';
import type { components } from '../generated/openapi.ts';
import { Prisma } from '../generated/prisma/client.ts';

export type Role = components['schemas']['Role'];

/** A member of an organization, acting in it. */
export interface Tenant {
  orgId: string;
  userId: string;
  role: Role;
}

/** Who is calling, as far as their credentials tell. */
export type Caller =
  | { kind: 'anonymous' }
  /** The operator token: every organization, and nothing inside one. */
  | { kind: 'operator' }
  /** A verified API key of a member. */
  | { kind: 'key'; keyId: string; tenant: Tenant }
  /** Tenant headers, trusted to name the organization but checked for membership. */
  | { kind: 'headers'; orgId: string; userId: string };

/** The caller of a read, not yet known to be a member: it can only look through `scope`. */
export interface Reader {
  readonly tenant: Omit<Tenant, 'role'>;
  /** A Prisma filter: rows of the caller's organization (while the caller is one of its members). */
  readonly scope: { orgId: string; organization?: { users: { some: { id: string } } } };
  /** The same for a raw query, after its `org_id = …` condition: nothing, or the membership condition. */
  readonly member: Prisma.Sql;
  /** The rows; when there are none, first makes sure the caller is a member (403 otherwise). */
  list<Row>(rows: Row[]): Promise<Row[]>;
  /** The row; when there is none, answers 403 to a non-member and `missing` (a 404) to a member. */
  one<Row>(row: Row | null, missing: () => ProblemError): Promise<Row>;
  /** The caller's role, which makes sure they are a member (403 otherwise). */
  role(): Promise<Role>;
}

/** Reads are the get… and list… operations: this decides it for the types and at run time alike. */
export type ReadOperation = `get${string}` | `list${string}`;

export function isRead(operationId: string): operationId is ReadOperation {
  return operationId.startsWith('get') || operationId.startsWith('list');
}

/** The operations on organizations themselves, which act on no one tenant. */
export type OrganizationOperation = `${string}Organization` | `${string}Organizations`;

export function isOrganizationOperation(operationId: string): operationId is OrganizationOperation {
  return operationId.endsWith('Organization') || operationId.endsWith('Organizations');
}

export async function roleOf(db: Database, orgId: string, userId: string): Promise<Role> {
  const [member] = await db.$queryRaw<{ role: Role }[]>`SELECT role::text AS role FROM users WHERE org_id = ${orgId}::uuid AND id = ${userId}::uuid`;
  // One answer for "no such organization" and "not a member", so that ids cannot be probed.
  if (!member) throw new ProblemError('forbidden', `User ${userId} is not a member of organization ${orgId}.`);
  return member.role;
}

/** The tenant of a write: a key's member as verified, or the member the headers name, once checked. */
export async function tenantOf(db: Database, caller: Caller & { kind: 'key' | 'headers' }): Promise<Tenant> {
  if (caller.kind === 'key') return caller.tenant;
  return { orgId: caller.orgId, userId: caller.userId, role: await roleOf(db, caller.orgId, caller.userId) };
}

/** The reader for a member known to be one (a verified key's, or a write's tenant). */
export function readerOf({ orgId, userId, role }: Tenant): Reader {
  return {
    tenant: { orgId, userId },
    scope: { orgId },
    member: Prisma.empty,
    list: async (rows) => rows,
    one: async (row, missing) => {
      if (row === null) throw missing();
      return row;
    },
    role: async () => role,
  };
}

export function readerFor(db: Database, caller: Caller & { kind: 'key' | 'headers' }): Reader {
  if (caller.kind === 'key') return readerOf(caller.tenant);
  const { orgId, userId } = caller;
  const assertMember = () => roleOf(db, orgId, userId);
  return {
    tenant: { orgId, userId },
    scope: { orgId, organization: { users: { some: { id: userId } } } },
    member: Prisma.sql`AND EXISTS (SELECT 1 FROM users member WHERE member.org_id = ${orgId}::uuid AND member.id = ${userId}::uuid)`,
    async list(rows) {
      if (rows.length === 0) await assertMember();
      return rows;
    },
    async one(row, missing) {
      if (row !== null) return row;
      await assertMember();
      throw missing();
    },
    role: assertMember,
  };
}

/** Refuses a member who is not an owner. */
export function assertOwner(tenant: { role: Role }, what: string): void {
  if (tenant.role !== 'owner') throw new ProblemError('forbidden', `Only an owner of the organization may ${what}.`);
}
