// Outside /organizations every operation acts inside one organization, for one of its members
// (the tenant). Membership is checked on every call, against the database (otherwise 403):
// - a write first asks whether the user is a member, then acts;
// - a read asks for the rows of the organization *while the user is a member of it*, in the same
//   query (Reader.scope), and only when that finds nothing asks about membership, to tell 403 from
//   404 or from an empty list. A read so costs one query instead of two.
import type { Database } from '../db/client.ts';
import { ProblemError } from './problems.ts';

export interface Tenant {
  orgId: string;
  userId: string;
}

/** The caller of a read, not yet known to be a member: it can only look through `scope`. */
export interface Reader {
  readonly tenant: Tenant;
  /** A Prisma filter: rows of the caller's organization, while the caller is one of its members. */
  readonly scope: { orgId: string; organization: { users: { some: { id: string } } } };
  /** The rows; when there are none, first makes sure the caller is a member (403 otherwise). */
  list<Row>(rows: Row[]): Promise<Row[]>;
  /** The row; when there is none, answers 403 to a non-member and `missing` (a 404) to a member. */
  one<Row>(row: Row | null, missing: () => ProblemError): Promise<Row>;
}

/** Reads are the get… and list… operations: this decides it for the types and at run time alike. */
export type ReadOperation = `get${string}` | `list${string}`;

export function isRead(operationId: string): operationId is ReadOperation {
  return operationId.startsWith('get') || operationId.startsWith('list');
}

export async function assertMember(db: Database, { orgId, userId }: Tenant): Promise<void> {
  const members = await db.$queryRaw<unknown[]>`SELECT 1 FROM users WHERE org_id = ${orgId}::uuid AND id = ${userId}::uuid`;
  // One answer for "no such organization" and "not a member", so that ids cannot be probed.
  if (members.length === 0) throw new ProblemError('forbidden', `User ${userId} is not a member of organization ${orgId}.`);
}

export function readerFor(db: Database, tenant: Tenant): Reader {
  return {
    tenant,
    scope: { orgId: tenant.orgId, organization: { users: { some: { id: tenant.userId } } } },
    async list(rows) {
      if (rows.length === 0) await assertMember(db, tenant);
      return rows;
    },
    async one(row, missing) {
      if (row !== null) return row;
      await assertMember(db, tenant);
      throw missing();
    },
  };
}
